package cache

import (
	"fmt"
	"io"
)

// pipeChunk is the unit in which a pipeWriter hands bytes over.
const pipeChunk = 256 << 10

// pipeWriter passes what is written to it to a writer running in its own
// goroutine (the compressor), through at most depth chunks in flight, so
// that producing a layer's tar and compressing it use two cores. The
// destination sees exactly the bytes written, in order, in the same
// number of bytes whatever the timing: the output does not change.
type pipeWriter struct {
	full   chan []byte
	free   chan []byte
	failed chan struct{} // closed when dst fails; werr is then set
	done   chan struct{} // closed when the goroutine has ended
	werr   error
	cur    []byte
	err    error
	closed bool
}

// newPipeWriter starts copying to dst; the caller must Close it.
func newPipeWriter(dst io.Writer, depth int) *pipeWriter {
	p := &pipeWriter{
		full:   make(chan []byte, depth),
		free:   make(chan []byte, depth+1),
		failed: make(chan struct{}),
		done:   make(chan struct{}),
	}
	for range depth + 1 {
		p.free <- make([]byte, 0, pipeChunk)
	}
	go func() {
		defer close(p.done)
		for b := range p.full {
			if p.werr == nil {
				if _, err := dst.Write(b); err != nil {
					p.werr = err
					close(p.failed)
				}
			}
			p.free <- b[:0]
		}
	}()
	p.cur = <-p.free
	return p
}

// Write copies b into chunks, handing each full one to the destination.
func (p *pipeWriter) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n := len(b)
	for len(b) > 0 {
		k := min(len(b), cap(p.cur)-len(p.cur))
		p.cur = append(p.cur, b[:k]...)
		b = b[k:]
		if len(p.cur) == cap(p.cur) {
			if err := p.send(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (p *pipeWriter) send() error {
	select {
	case p.full <- p.cur:
	case <-p.failed:
		p.err = fmt.Errorf("compress layer: %w", p.werr)
		return p.err
	}
	// The goroutine hands every chunk back, so one always comes.
	p.cur = <-p.free
	return nil
}

// Close hands over the last chunk, waits for the destination to have
// written everything and returns its error.
func (p *pipeWriter) Close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	if p.err == nil && len(p.cur) > 0 {
		p.send()
	}
	close(p.full)
	<-p.done
	if p.err == nil && p.werr != nil {
		p.err = fmt.Errorf("compress layer: %w", p.werr)
	}
	return p.err
}
