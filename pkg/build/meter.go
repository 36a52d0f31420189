package build

import (
	"io"
	"net/http"
	"sync/atomic"
)

// Meter counts a build's bytes while they move, for a live display to
// read as the build runs: the bytes of every response body downloaded and
// the uncompressed bytes of the layers written. Its zero value is ready,
// its methods are safe for concurrent use, and a nil *Meter counts nothing.
type Meter struct {
	downloaded atomic.Int64
	written    atomic.Int64
	layer      atomic.Pointer[meterLayer]
}

// meterLayer is the layer being written and its bytes so far.
type meterLayer struct {
	desc string
	n    atomic.Int64
}

// Downloaded returns the bytes of response bodies read so far.
func (m *Meter) Downloaded() int64 {
	if m == nil {
		return 0
	}
	return m.downloaded.Load()
}

// Writing returns the description of the layer being written ("" between
// layers), its uncompressed bytes so far, and those of all layers written.
func (m *Meter) Writing() (layer string, layerBytes, total int64) {
	if m == nil {
		return "", 0, 0
	}
	if l := m.layer.Load(); l != nil {
		layer, layerBytes = l.desc, l.n.Load()
	}
	return layer, layerBytes, m.written.Load()
}

// Transport returns t (http.DefaultTransport when nil) with the bytes of
// every GET response body it reads counted as downloaded.
func (m *Meter) Transport(t http.RoundTripper) http.RoundTripper {
	if m == nil {
		return t
	}
	if t == nil {
		t = http.DefaultTransport
	}
	return &meterTransport{base: t, m: m}
}

// startLayer marks desc as being written and returns the writer that
// counts its bytes into w, and the function that marks it done.
func (m *Meter) startLayer(desc string, w io.Writer) (io.Writer, func()) {
	if m == nil {
		return w, func() {}
	}
	l := &meterLayer{desc: desc}
	m.layer.Store(l)
	return &meterWriter{w: w, layer: &l.n, total: &m.written}, func() { m.layer.Store(nil) }
}

type meterTransport struct {
	base http.RoundTripper
	m    *Meter
}

func (t *meterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil && req.Method == http.MethodGet && resp.Body != nil {
		resp.Body = &meterBody{ReadCloser: resp.Body, n: &t.m.downloaded}
	}
	return resp, err
}

type meterBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *meterBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

type meterWriter struct {
	w            io.Writer
	layer, total *atomic.Int64
}

func (w *meterWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.layer.Add(int64(n))
	w.total.Add(int64(n))
	return n, err
}
