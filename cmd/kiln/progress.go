package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/build"
)

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// uploadCounter is an http.RoundTripper that counts the bytes of blob
// upload bodies (PATCH and PUT under /blobs/uploads/): what a push really
// sent, not what it found already in place.
type uploadCounter struct {
	base  http.RoundTripper
	bytes atomic.Int64
}

func (u *uploadCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && (req.Method == http.MethodPatch || req.Method == http.MethodPut) && strings.Contains(req.URL.Path, "/blobs/uploads/") {
		req = req.Clone(req.Context())
		req.Body = &countingBody{ReadCloser: req.Body, n: &u.bytes}
	}
	return u.base.RoundTrip(req)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// pushProgress shows a live upload line on a terminal while a push runs.
type pushProgress struct {
	w       io.Writer
	updates chan v1.Update
	done    sync.WaitGroup
}

// newPushProgress starts drawing updates on w; Wait stops it.
func newPushProgress(w io.Writer) *pushProgress {
	p := &pushProgress{w: w, updates: make(chan v1.Update, 64)}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		last := time.Time{}
		drawn := false
		for u := range p.updates {
			if u.Error != nil || u.Total == 0 || time.Since(last) < 100*time.Millisecond {
				continue
			}
			last = time.Now()
			fmt.Fprintf(p.w, "\r\033[Kpushing: %s / %s", build.HumanBytes(u.Complete), build.HumanBytes(u.Total))
			drawn = true
		}
		if drawn {
			fmt.Fprint(p.w, "\r\033[K")
		}
	}()
	return p
}

// Wait waits until the push closed the updates channel and the line is
// cleared.
func (p *pushProgress) Wait() { p.done.Wait() }
