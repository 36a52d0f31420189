package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
)

// byteProxy is a plain-HTTP reverse proxy on a loopback port in front of the
// registry that counts the body bytes going each way. Both tools talk to the
// registry only through it, one build at a time, so the difference of two
// snapshots is what one build sent (request bodies: blob PATCH/PUT/POST
// uploads and manifest PUTs) and received (blobs and manifests pulled).
// Headers are not counted.
// trace logs every registry request to stderr (KILN_BENCH_TRACE=1).
var trace = os.Getenv("KILN_BENCH_TRACE") == "1"

type byteProxy struct {
	Host     string
	up, down atomic.Int64
	requests atomic.Int64
	blobGets atomic.Int64
}

// traffic is what went through the proxy: body bytes up and down, requests,
// and blob GETs (layers and configs downloaded).
type traffic struct{ Up, Down, Requests, BlobGets int64 }

func (p *byteProxy) snapshot() traffic {
	return traffic{Up: p.up.Load(), Down: p.down.Load(), Requests: p.requests.Load(), BlobGets: p.blobGets.Load()}
}

func (a traffic) sub(b traffic) traffic {
	return traffic{Up: a.Up - b.Up, Down: a.Down - b.Down, Requests: a.Requests - b.Requests, BlobGets: a.BlobGets - b.BlobGets}
}

func startByteProxy(t *tb, target string) *byteProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &byteProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the client's Host and say it speaks plain HTTP, so that
			// the upload Locations the registry builds point at the proxy.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		FlushInterval: -1,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			p.blobGets.Add(1)
		}
		if trace {
			progress("  proxy: %s %s %s", r.Method, r.URL.Path, r.UserAgent())
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &countingReader{ReadCloser: r.Body, n: &p.up}
		}
		rp.ServeHTTP(&countingWriter{ResponseWriter: w, n: &p.down}, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n.Add(int64(n))
	return n, err
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// Unwrap lets http.ResponseController (used by ReverseProxy to flush) reach
// the real writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// htmlIndex serves the wheel index at indexURL through a loopback proxy that
// gives every client the same plain PEP 503 pages: the client's Accept
// header is dropped (so no PEP 691 JSON) and the PEP 658/714 metadata
// attributes are removed from the HTML. Debian bookworm's pip (23.0.1)
// fails on both: on the JSON pages with "TypeError: unhashable type:
// 'dict'" (their core-metadata objects), and on the metadata files with
// "inconsistent Name: expected 'flask', but metadata has 'Flask'". kiln
// reads every form; with these pages both tools download whole wheels.
func htmlIndex(t *tb, indexURL string) string {
	u, err := url.Parse(indexURL)
	if err != nil {
		t.Fatal(err)
	}
	origin := &url.URL{Scheme: u.Scheme, Host: u.Host}
	metadataAttr := regexp.MustCompile(` data-(dist-info|core)-metadata="[^"]*"`)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(origin)
			pr.Out.Header.Del("Accept")
			pr.Out.Header.Del("Accept-Encoding")
		},
		ModifyResponse: func(resp *http.Response) error {
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			body = metadataAttr.ReplaceAll(body, nil)
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
			return nil
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}
