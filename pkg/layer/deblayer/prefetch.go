package deblayer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Decoding ahead. Write installs packages one after the other, in input
// order, but most of its time goes to decompressing data.tar members, which
// do not depend on each other. A prefetcher decodes the .debs after the one
// being written on other cores, each into a fragment: its decompressed
// data.tar, held in memory while a shared budget allows and spilled to an
// unlinked temporary file past it. Write reads the fragments in order,
// exactly as it would read the decompressor, so the layer's bytes do not
// depend on how many workers there are, on the budget or on timing.

const (
	// defaultDecodeMemory is the memory budget for decoded fragments.
	defaultDecodeMemory = 64 << 20
	// chunkSize is the unit in which a fragment takes memory from the
	// budget.
	chunkSize = 1 << 20
	// maxAhead bounds the fragments decoded (or being decoded) and not
	// yet released, the one being written included, and so the temporary
	// disk space in use.
	maxAhead = 32
)

// budget is memory shared by the fragments of one Write.
type budget struct {
	mu   sync.Mutex
	left int64
}

func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left < n {
		return false
	}
	b.left -= n
	return true
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	b.left += n
	b.mu.Unlock()
}

// fragment is one .deb opened and its data.tar decompressed.
type fragment struct {
	arch *debArchive
	// openErr is the error of openDeb; dataErr that of opening the
	// data.tar decompressor.
	openErr, dataErr error
	// The decompressed bytes are chunks (in memory) or file (spilled).
	chunks   [][]byte
	file     *os.File
	fileBuf  *bufio.Writer
	size     int64
	reserved int64
	// tail is the error the decompressor returned after size bytes, or
	// nil at a clean end.
	tail error

	budget  *budget
	tempDir string
}

// Write appends p to the fragment, in memory while the budget allows.
func (f *fragment) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if f.file != nil {
			if _, err := f.fileBuf.Write(p); err != nil {
				return 0, fmt.Errorf("spill decoded data.tar to a temporary file: %w", err)
			}
			break
		}
		if len(f.chunks) == 0 || len(f.chunks[len(f.chunks)-1]) == cap(f.chunks[len(f.chunks)-1]) {
			if !f.budget.take(chunkSize) {
				if err := f.spill(); err != nil {
					return 0, err
				}
				continue
			}
			f.reserved += chunkSize
			f.chunks = append(f.chunks, make([]byte, 0, chunkSize))
		}
		last := &f.chunks[len(f.chunks)-1]
		k := min(len(p), cap(*last)-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
	f.size += int64(n)
	return n, nil
}

// spill moves the fragment to an unlinked temporary file.
func (f *fragment) spill() error {
	tf, err := os.CreateTemp(f.tempDir, "kiln-deb-*.tar")
	if err != nil {
		return fmt.Errorf("spill decoded data.tar to a temporary file: %w", err)
	}
	// Unlinked at once: nothing is left behind, even if kiln is killed.
	os.Remove(tf.Name())
	f.file = tf
	f.fileBuf = bufio.NewWriterSize(tf, 256<<10)
	for _, c := range f.chunks {
		if _, err := f.fileBuf.Write(c); err != nil {
			return fmt.Errorf("spill decoded data.tar to a temporary file: %w", err)
		}
	}
	f.chunks = nil
	f.budget.give(f.reserved)
	f.reserved = 0
	return nil
}

// reader returns the decompressed data.tar: its bytes, then tail (or
// io.EOF).
func (f *fragment) reader() (io.Reader, error) {
	var r io.Reader
	if f.file != nil {
		if err := f.fileBuf.Flush(); err != nil {
			return nil, fmt.Errorf("spill decoded data.tar to a temporary file: %w", err)
		}
		if _, err := f.file.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("read back decoded data.tar: %w", err)
		}
		r = bufio.NewReaderSize(io.LimitReader(f.file, f.size), 256<<10)
	} else {
		rs := make([]io.Reader, len(f.chunks))
		for i, c := range f.chunks {
			rs[i] = bytes.NewReader(c)
		}
		r = io.MultiReader(rs...)
	}
	return &tailReader{r: r, tail: f.tail}, nil
}

// release frees the fragment's memory and temporary file.
func (f *fragment) release() {
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
	f.chunks = nil
	if f.budget != nil {
		f.budget.give(f.reserved)
	}
	f.reserved = 0
}

// tailReader returns tail instead of io.EOF at the end of r.
type tailReader struct {
	r    io.Reader
	tail error
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF && t.tail != nil {
		err = t.tail
	}
	return n, err
}

// decodeLimit bounds the decompressed size of a data.tar: twice the
// bound Write puts on its regular files, for headers and padding, plus
// slack.
func decodeLimit(a *debArchive) int64 {
	limit := int64(maxDataSize)
	if n, err := strconv.ParseInt(a.control.get("Installed-Size"), 10, 64); err == nil && n >= 0 && n < 1<<40 {
		limit = 2*n<<10 + 64<<20
	}
	return 2*limit + 64<<20
}

// decode fills f from d, with the xz(1) program at xzPath for .xz
// members if it is not "".
func (f *fragment) decode(ctx context.Context, d Deb, xzPath string) {
	a, err := openDeb(d)
	if err != nil {
		f.openErr = err
		return
	}
	f.arch = a
	limit := decodeLimit(a)
	if xzPath != "" && path.Ext(a.dataTar.name) == ".xz" {
		f.decodeXZ(ctx, xzPath, limit)
		return
	}
	rc, err := decompress(a.dataTar)
	if err != nil {
		f.dataErr = err
		return
	}
	defer rc.Close()
	n, err := io.Copy(f, &ctxReader{ctx: ctx, r: io.LimitReader(rc, limit+1)})
	switch {
	case err != nil:
		f.tail = err
	case n > limit:
		f.tail = fmt.Errorf("%s decompresses to more than %d bytes, far more than the package's Installed-Size (decompression bomb?)", a.dataTar.name, limit)
	}
}

// decodeXZ decompresses the data.tar.xz member with the xz(1) program at
// xzPath (liblzma), after the same dictionary check as the built-in
// decoder. xz verifies each block's check (CRC64 or SHA-256) and fails on
// anything that is not a well-formed stream.
func (f *fragment) decodeXZ(ctx context.Context, xzPath string, limit int64) {
	m := f.arch.dataTar
	if err := checkXZ(m.data, m.data.Size()); err != nil {
		f.dataErr = err
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, xzPath, "--decompress", "--stdout", "--quiet", "--no-warn", "--memlimit-decompress="+strconv.Itoa(maxXZDict+64<<20))
	cmd.Stdin = io.NewSectionReader(m.data, 0, m.data.Size())
	cmd.Env = []string{"LC_ALL=C"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		f.dataErr = fmt.Errorf("run %s: %w", xzPath, err)
		return
	}
	if err := cmd.Start(); err != nil {
		f.dataErr = fmt.Errorf("run %s: %w", xzPath, err)
		return
	}
	n, copyErr := io.Copy(f, io.LimitReader(out, limit+1))
	if copyErr != nil || n > limit {
		cancel() // xz may be blocked writing to the pipe
	}
	waitErr := cmd.Wait()
	switch {
	case copyErr != nil:
		f.tail = copyErr
	case n > limit:
		f.tail = fmt.Errorf("%s decompresses to more than %d bytes, far more than the package's Installed-Size (decompression bomb?)", m.name, limit)
	case ctx.Err() != nil:
		f.tail = ctx.Err()
	case waitErr != nil:
		f.tail = fmt.Errorf("xz: %s (%s)", strings.TrimSpace(stderr.String()), waitErr)
	}
}

// ctxReader fails once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// prefetcher decodes debs ahead of Write, at most workers at once and
// at most ahead fragments not yet released.
type prefetcher struct {
	ctx    context.Context
	cancel context.CancelFunc
	out    []chan *fragment
	window chan struct{}
	wg     sync.WaitGroup
	// taken marks the fragments next has returned (Write releases them).
	taken []bool
}

func newPrefetcher(ctx context.Context, debs []Deb, opts Options) *prefetcher {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	mem := opts.DecodeMemory
	if mem == 0 {
		mem = defaultDecodeMemory
	}
	// A window of a few fragments left the workers idle while Write
	// worked through a large package (4 fragments on 2 cores: 30% idle).
	ahead := max(maxAhead, workers+1)
	ctx, cancel := context.WithCancel(ctx)
	pf := &prefetcher{
		ctx:    ctx,
		cancel: cancel,
		out:    make([]chan *fragment, len(debs)),
		window: make(chan struct{}, ahead),
		taken:  make([]bool, len(debs)),
	}
	for i := range pf.out {
		pf.out[i] = make(chan *fragment, 1)
	}
	bud := &budget{left: max(mem, 0)}
	cpu := make(chan struct{}, workers)
	pf.wg.Add(1)
	go func() {
		defer pf.wg.Done()
		// Slots are taken in input order, so the fragment Write waits for
		// is always started: no deadlock whatever the window.
		for i, d := range debs {
			select {
			case pf.window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			var openErr error
			if d.R == nil && d.Open != nil {
				// Waits for the download, holding no worker.
				d.R, d.Size, openErr = d.Open(ctx)
			}
			select {
			case cpu <- struct{}{}:
			case <-ctx.Done():
				<-pf.window
				return
			}
			pf.wg.Add(1)
			go func() {
				defer pf.wg.Done()
				f := &fragment{budget: bud, tempDir: opts.TempDir, openErr: openErr}
				if openErr == nil {
					f.decode(ctx, d, opts.XZ)
				}
				<-cpu
				pf.out[i] <- f
			}()
		}
	}()
	return pf
}

// next waits for fragment i. The caller releases it with done.
func (pf *prefetcher) next(i int) (*fragment, error) {
	select {
	case f := <-pf.out[i]:
		pf.taken[i] = true
		return f, nil
	case <-pf.ctx.Done():
		return nil, pf.ctx.Err()
	}
}

// done releases fragment f and its window slot.
func (pf *prefetcher) done(f *fragment) {
	f.release()
	<-pf.window
}

// close stops the workers and frees every fragment not taken.
func (pf *prefetcher) close() {
	pf.cancel()
	pf.wg.Wait()
	for i, ch := range pf.out {
		if pf.taken[i] {
			continue
		}
		select {
		case f := <-ch:
			f.release()
		default:
		}
	}
}
