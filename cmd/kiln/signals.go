package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// interrupts turns the first SIGINT or SIGTERM into the cancellation of a
// context, so that every phase (resolve, download, layer build, push) stops
// at its next check and removes its temporary files on the way out, and
// remembers the signal for the exit code (130 or 143). A second signal
// exits at once.
type interrupts struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	done   chan struct{}
	stderr io.Writer

	mu  sync.Mutex
	sig os.Signal
}

// watchSignals starts watching for SIGINT and SIGTERM. Call stop when done.
func watchSignals(parent context.Context, stderr io.Writer) *interrupts {
	ctx, cancel := context.WithCancel(parent)
	i := &interrupts{ctx: ctx, cancel: cancel, ch: make(chan os.Signal, 2), done: make(chan struct{}), stderr: stderr}
	signal.Notify(i.ch, os.Interrupt, syscall.SIGTERM)
	go i.loop()
	return i
}

func (i *interrupts) loop() {
	for {
		select {
		case <-i.done:
			return
		case s := <-i.ch:
			i.mu.Lock()
			first := i.sig == nil
			if first {
				i.sig = s
			}
			i.mu.Unlock()
			if first {
				fmt.Fprintf(i.stderr, "kiln: %s: stopping (again to exit at once)\n", signalName(s))
				i.cancel()
				continue
			}
			fmt.Fprintf(i.stderr, "kiln: %s again: exiting at once; temporary files may be left behind\n", signalName(s))
			os.Exit(exitCodeFor(s))
		}
	}
}

// stop stops watching and releases the context.
func (i *interrupts) stop() {
	signal.Stop(i.ch)
	close(i.done)
	i.cancel()
}

// received returns the first signal, or nil.
func (i *interrupts) received() os.Signal {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.sig
}

// exitCode returns the exit code for an interrupted command, and whether
// a signal arrived.
func (i *interrupts) exitCode() (int, bool) {
	s := i.received()
	if s == nil {
		return 0, false
	}
	return exitCodeFor(s), true
}

func exitCodeFor(s os.Signal) int {
	if s == syscall.SIGTERM {
		return exitSIGTERM
	}
	return exitSIGINT
}

func signalName(s os.Signal) string {
	if s == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}

// interruptible runs f and returns its result, or ctx's error as soon as
// ctx is done, whichever comes first: reading a spec, requirements file or
// .dockerignore that is a FIFO nobody writes, or walking a huge tree, must
// not outlive the first SIGINT. When ctx wins, f's goroutine is abandoned,
// still blocked; the process is about to exit.
func interruptible[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
