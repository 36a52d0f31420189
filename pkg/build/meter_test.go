package build

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

type bodyTransport string

func (b bodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(string(b))), Request: req}, nil
}

// TestMeter: the meter counts GET response bodies as they are read, and a
// layer's bytes while it is written; a nil meter counts nothing.
func TestMeter(t *testing.T) {
	m := &Meter{}
	c := &http.Client{Transport: m.Transport(bodyTransport("0123456789"))}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, "http://example.invalid/x", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got := m.Downloaded(); got != 10 {
		t.Errorf("after reading a 10-byte GET body (and a HEAD's), Downloaded() = %d, want 10", got)
	}
	var buf bytes.Buffer
	w, done := m.startLayer("code", &buf)
	w.Write([]byte("abcd"))
	if l, n, total := m.Writing(); l != "code" || n != 4 || total != 4 {
		t.Errorf("while writing 4 bytes of layer code, Writing() = %q, %d, %d", l, n, total)
	}
	done()
	w, done = m.startLayer("apt", &buf)
	w.Write([]byte("xy"))
	if l, n, total := m.Writing(); l != "apt" || n != 2 || total != 6 {
		t.Errorf("while writing 2 bytes of a second layer, Writing() = %q, %d, %d; want apt, 2, 6", l, n, total)
	}
	done()
	if l, _, total := m.Writing(); l != "" || total != 6 {
		t.Errorf("between layers, Writing() = %q, total %d", l, total)
	}
	if buf.String() != "abcdxy" {
		t.Errorf("the layers' writer wrote %q", buf.String())
	}
	var nilMeter *Meter
	if nilMeter.Transport(nil) != nil || nilMeter.Downloaded() != 0 {
		t.Error("a nil meter changed the transport or counted")
	}
	if w, _ := nilMeter.startLayer("x", &buf); w != &buf {
		t.Error("a nil meter wrapped the layer writer")
	}
}
