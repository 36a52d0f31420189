package build

import (
	"context"
	"errors"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
)

// errOverlayStopped is what a layer's tee gets once its reader has stopped.
var errOverlayStopped = errors.New("the overlay stopped reading")

// overlayTee reads a layer's tar as the layer is built, into the parent's
// files with the layer's on top (as detectSelect keeps them), so that detecting Python after
// apt_packages does not read the layer back (decompressing it again). It
// never fails the build: a tee whose reader stops discards what follows,
// and result then says why, so that the caller reads the built layer
// instead.
type overlayTee struct {
	pw   *io.PipeWriter
	done chan struct{}
	fs   *rootfs.FS
	err  error
	// layer, set once the layer is built, serves a second read of the
	// tar (see rootfs.FS.Overlay), which waits for it.
	built chan struct{}
	layer v1.Layer
}

// startOverlayTee starts reading parent plus the tar written to the
// returned tee.
func startOverlayTee(ctx context.Context, parent *rootfs.FS) *overlayTee {
	pr, pw := io.Pipe()
	t := &overlayTee{pw: pw, done: make(chan struct{}), built: make(chan struct{})}
	opened := false
	open := func() (io.ReadCloser, error) {
		if !opened {
			opened = true
			return pr, nil
		}
		select {
		case <-t.built:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if t.layer == nil {
			return nil, errors.New("the layer was not built")
		}
		return t.layer.Uncompressed()
	}
	go func() {
		defer close(t.done)
		t.fs, t.err = parent.Overlay(ctx, detectSelect, open)
		pr.CloseWithError(errOverlayStopped)
	}()
	return t
}

// Write implements io.Writer: it passes p to the reader, or discards it
// once the reader has stopped (the pipe then fails at once). It never
// fails.
func (t *overlayTee) Write(p []byte) (int, error) {
	_, _ = t.pw.Write(p)
	return len(p), nil
}

// finish ends the tar: err is why it was cut short, nil when it is whole.
func (t *overlayTee) finish(err error) {
	t.pw.CloseWithError(err)
}

// setLayer says the layer is built (l is nil when it was not).
func (t *overlayTee) setLayer(l v1.Layer) {
	t.layer = l
	close(t.built)
}

// result waits for the read and returns the parent's files with the
// layer's on top.
func (t *overlayTee) result(ctx context.Context) (*rootfs.FS, error) {
	select {
	case <-t.done:
		return t.fs, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
