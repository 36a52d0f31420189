package testenv

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Counts is a snapshot of the requests a Proxy has seen, by kind.
type Counts struct {
	Ping           int // GET/HEAD /v2/
	ManifestGet    int
	ManifestHead   int
	ManifestPut    int
	ManifestDelete int
	BlobGet        int
	BlobHead       int
	BlobDelete     int
	UploadPost     int // POST .../blobs/uploads/ without mount=
	Mount          int // POST .../blobs/uploads/?mount=...
	UploadPatch    int
	UploadPut      int
	TagsList       int
	Catalog        int
	Other          int
}

// Total returns the number of requests counted.
func (c Counts) Total() int {
	return c.Ping + c.ManifestGet + c.ManifestHead + c.ManifestPut + c.ManifestDelete +
		c.BlobGet + c.BlobHead + c.BlobDelete + c.UploadPost + c.Mount + c.UploadPatch +
		c.UploadPut + c.TagsList + c.Catalog + c.Other
}

// Uploads returns the number of blob upload sessions started (POSTs that
// were not mounts).
func (c Counts) Uploads() int { return c.UploadPost }

// RequestKind classifies a registry API request; the values are the names
// of the Counts fields.
type RequestKind string

// Request kinds, one per Counts field.
const (
	KindPing           RequestKind = "Ping"
	KindManifestGet    RequestKind = "ManifestGet"
	KindManifestHead   RequestKind = "ManifestHead"
	KindManifestPut    RequestKind = "ManifestPut"
	KindManifestDelete RequestKind = "ManifestDelete"
	KindBlobGet        RequestKind = "BlobGet"
	KindBlobHead       RequestKind = "BlobHead"
	KindBlobDelete     RequestKind = "BlobDelete"
	KindUploadPost     RequestKind = "UploadPost"
	KindMount          RequestKind = "Mount"
	KindUploadPatch    RequestKind = "UploadPatch"
	KindUploadPut      RequestKind = "UploadPut"
	KindTagsList       RequestKind = "TagsList"
	KindCatalog        RequestKind = "Catalog"
	KindOther          RequestKind = "Other"
)

// Classify returns the kind of a registry API request.
func Classify(r *http.Request) RequestKind {
	p := r.URL.Path
	m := r.Method
	switch {
	case p == "/v2/" || p == "/v2":
		return KindPing
	case p == "/v2/_catalog":
		return KindCatalog
	case !strings.HasPrefix(p, "/v2/"):
		return KindOther
	case strings.HasSuffix(p, "/tags/list"):
		return KindTagsList
	case strings.Contains(p, "/blobs/uploads"):
		switch m {
		case http.MethodPost:
			if r.URL.Query().Has("mount") {
				return KindMount
			}
			return KindUploadPost
		case http.MethodPatch:
			return KindUploadPatch
		case http.MethodPut:
			return KindUploadPut
		}
	case strings.Contains(p, "/manifests/"):
		switch m {
		case http.MethodGet:
			return KindManifestGet
		case http.MethodHead:
			return KindManifestHead
		case http.MethodPut:
			return KindManifestPut
		case http.MethodDelete:
			return KindManifestDelete
		}
	case strings.Contains(p, "/blobs/"):
		switch m {
		case http.MethodGet:
			return KindBlobGet
		case http.MethodHead:
			return KindBlobHead
		case http.MethodDelete:
			return KindBlobDelete
		}
	}
	return KindOther
}

// Fault is what a Proxy does to a request instead of (or before) passing it
// on. The zero Fault passes the request through unchanged.
type Fault struct {
	// Delay stalls the request this long before doing anything else (or
	// until the client gives up).
	Delay time.Duration
	// Reset closes the client connection abruptly (TCP RST) without
	// answering.
	Reset bool
	// Status, when non-zero, answers with this status code instead of
	// forwarding, with Header (e.g. Retry-After) and Body.
	Status int
	Header http.Header
	Body   string
}

// FaultFunc decides the fault for a request; n is the 1-based number of
// requests of the same kind seen so far, including this one.
type FaultFunc func(r *http.Request, kind RequestKind, n int) Fault

// RequestRecord describes one request a Proxy handled.
type RequestRecord struct {
	Method, Path, RawQuery string
	Kind                   RequestKind
	Status                 int // 0 when the connection was reset
	Faulted                bool
}

// Proxy is an in-process reverse proxy on a loopback port, in front of a
// Registry, that counts requests by kind and can inject faults.
type Proxy struct {
	// Host is "127.0.0.1:PORT"; the proxy speaks plain HTTP.
	Host string

	target *Registry
	srv    *httptest.Server
	closed chan struct{} // closed when the test ends, to end delays

	mu       sync.Mutex
	counts   map[RequestKind]int
	requests []RequestRecord
	fault    FaultFunc
	// inflight counts the requests being served: a client can have read
	// a whole response before its handler has logged it.
	inflight int
}

// NewCountingProxy starts a plain-HTTP proxy in front of target, stopped
// when the test ends. Clients use the target's credentials; the proxy
// forwards them.
func NewCountingProxy(t testing.TB, target *Registry) *Proxy {
	t.Helper()
	return newProxy(t, target, target.URL(), target.Transport())
}

// NewURLProxy starts a plain-HTTP proxy, like NewCountingProxy, in front of
// any HTTP server, such as an AptRepo or a WheelIndex: requests to
// proxy.URL()+path are forwarded to target+path, and can be faulted.
func NewURLProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	return newProxy(t, nil, target, http.DefaultTransport)
}

func newProxy(t testing.TB, target *Registry, targetURL string, transport http.RoundTripper) *Proxy {
	t.Helper()
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: target, counts: map[RequestKind]int{}, closed: make(chan struct{})}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the proxy's Host and tell the registry the client speaks
			// plain HTTP, so the upload Locations it builds point back at
			// the proxy.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     transport,
		FlushInterval: -1,
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, rp)
	}))
	t.Cleanup(p.srv.Close)
	// Runs before srv.Close (cleanups run last-in first-out), so that a
	// stalled request whose client left without the server noticing (an
	// unread request body hides the disconnect) does not hold Close up.
	t.Cleanup(func() { close(p.closed) })
	p.Host = strings.TrimPrefix(p.srv.URL, "http://")
	return p
}

// URL returns "http://" + Host.
func (p *Proxy) URL() string { return p.srv.URL }

// SetFault installs f to decide faults for later requests; nil removes it.
func (p *Proxy) SetFault(f FaultFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
}

// Counts returns a snapshot of the request counts.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	return Counts{
		Ping: c[KindPing], ManifestGet: c[KindManifestGet], ManifestHead: c[KindManifestHead],
		ManifestPut: c[KindManifestPut], ManifestDelete: c[KindManifestDelete],
		BlobGet: c[KindBlobGet], BlobHead: c[KindBlobHead], BlobDelete: c[KindBlobDelete],
		UploadPost: c[KindUploadPost], Mount: c[KindMount], UploadPatch: c[KindUploadPatch],
		UploadPut: c[KindUploadPut], TagsList: c[KindTagsList], Catalog: c[KindCatalog],
		Other: c[KindOther],
	}
}

// Requests returns a copy of the log of handled requests, in arrival order
// (a request is logged when it has been answered).
//
// It first waits (up to 5 s) for the requests being served to be logged, so
// that a request whose response the client has read is in the log.
func (p *Proxy) Requests() []RequestRecord {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		n := p.inflight
		p.mu.Unlock()
		if n == 0 {
			break
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]RequestRecord(nil), p.requests...)
}

// Reset zeroes the counts and the request log.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[RequestKind]int{}
	p.requests = nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	kind := Classify(r)
	p.mu.Lock()
	p.counts[kind]++
	n := p.counts[kind]
	ff := p.fault
	p.inflight++
	p.mu.Unlock()

	rec := RequestRecord{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Kind: kind}
	defer func() {
		p.mu.Lock()
		p.requests = append(p.requests, rec)
		p.inflight--
		p.mu.Unlock()
	}()

	var f Fault
	if ff != nil {
		f = ff(r, kind, n)
	}
	if f.Delay > 0 || f.Reset || f.Status != 0 {
		rec.Faulted = true
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		case <-p.closed:
			return
		}
	}
	if f.Reset {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if f.Status != 0 {
		for k, v := range f.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
		rec.Status = f.Status
		return
	}
	sr := &statusRecorder{ResponseWriter: w}
	next.ServeHTTP(sr, r)
	rec.Status = sr.status
}
