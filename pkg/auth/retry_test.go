package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// server is a loopback HTTP server whose handler sees the request number.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	n     int
	times []time.Time
}

func newServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.n++
		n := s.n
		s.times = append(s.times, time.Now())
		s.mu.Unlock()
		h(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func testTransport(t *testing.T, p RetryPolicy) http.RoundTripper {
	t.Helper()
	p.FirstBackoff = 20 * time.Millisecond
	tr, err := Options{Retry: p}.Transport()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func do(t *testing.T, tr http.RoundTripper, method, u string, body string) (*http.Response, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	return tr.RoundTrip(req)
}

func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

func TestRetryStatusThenSuccess(t *testing.T) {
	for _, code := range []int{500, 502, 503, 504, 429, 408} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= 2 {
					w.WriteHeader(code)
					return
				}
				fmt.Fprint(w, "ok")
			})
			resp, err := do(t, testTransport(t, RetryPolicy{}), http.MethodGet, s.URL+"/v2/", "")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" || s.count() != 3 {
				t.Errorf("status %d body %q after %d requests; want 200 ok after 3", resp.StatusCode, b, s.count())
			}
		})
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(code) })
		resp, err := do(t, testTransport(t, RetryPolicy{}), http.MethodGet, s.URL+"/v2/", "")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code || s.count() != 1 {
			t.Errorf("%d: got %d after %d requests; want it returned after 1", code, resp.StatusCode, s.count())
		}
	}
}

func TestRetryReplaysBody(t *testing.T) {
	var got []string
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	resp, err := do(t, testTransport(t, RetryPolicy{}), http.MethodPut, s.URL+"/v2/x/manifests/latest", `{"m":1}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(got) != 2 || got[0] != `{"m":1}` || got[1] != `{"m":1}` {
		t.Errorf("status %d, bodies %q; want 201 after the same body twice", resp.StatusCode, got)
	}
}

func TestUploadNotReplayed(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	tr := testTransport(t, RetryPolicy{})
	for _, m := range []string{http.MethodPatch, http.MethodPut} {
		before := s.count()
		resp, err := do(t, tr, m, s.URL+"/v2/x/blobs/uploads/abc?_state=x", "data")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || s.count()-before != 1 {
			t.Errorf("%s upload: %d after %d requests; want the 503 handed back after 1 (the upload restarts as a whole)", m, resp.StatusCode, s.count()-before)
		}
	}
}

func TestRetryOnReset(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			reset(w)
			return
		}
		fmt.Fprint(w, "ok")
	})
	resp, err := do(t, testTransport(t, RetryPolicy{}), http.MethodHead, s.URL+"/v2/x/blobs/sha256:aa", "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || s.count() < 2 {
		t.Errorf("status %d after %d requests; want 200 after a retry", resp.StatusCode, s.count())
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "ok")
	})
	tr := testTransport(t, RetryPolicy{})
	resp, err := do(t, tr, http.MethodGet, s.URL+"/v2/", "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.count() != 2 {
		t.Fatalf("%d requests, want 2", s.count())
	}
	// A lower bound: the retry cannot come before the registry allowed it.
	if gap := s.times[1].Sub(s.times[0]); gap < 2*time.Second-50*time.Millisecond {
		t.Errorf("retried %s after a 429 with Retry-After: 2", gap)
	}
}

func TestRetryAfterGatesOtherRequests(t *testing.T) {
	// A 429 on an upload (not replayed) still holds back the next request
	// to the same registry.
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "ok")
	})
	tr := testTransport(t, RetryPolicy{})
	resp, err := do(t, tr, http.MethodPatch, s.URL+"/v2/x/blobs/uploads/u", "data")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 {
		t.Fatalf("PATCH: %d, want the 429 handed back", resp.StatusCode)
	}
	resp, err = do(t, tr, http.MethodHead, s.URL+"/v2/x/blobs/sha256:aa", "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gap := s.times[1].Sub(s.times[0]); gap < time.Second-50*time.Millisecond {
		t.Errorf("next request %s after a 429 with Retry-After: 1", gap)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"99999999999", 24 * time.Hour, true},
		{"-3", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Thu, 02 Jan 2025 03:05:05 GMT", time.Minute, true},
	} {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestStalledResponseAbandoned(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		fmt.Fprint(w, "ok")
	})
	resp, err := do(t, testTransport(t, RetryPolicy{StallTimeout: 200 * time.Millisecond}), http.MethodGet, s.URL+"/v2/", "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || s.count() != 2 {
		t.Errorf("status %d after %d requests; want 200 after the stalled one was abandoned", resp.StatusCode, s.count())
	}
}

func TestStalledBodyAbandoned(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Length", "10")
		w.Write([]byte("12345"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	resp, err := do(t, testTransport(t, RetryPolicy{StallTimeout: 200 * time.Millisecond}), http.MethodGet, s.URL+"/v2/x/blobs/sha256:aa", "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	var stall *StallError
	if !errors.As(err, &stall) || !Temporary(err) {
		t.Errorf("reading a stalled body: %v; want a temporary StallError", err)
	}
}

// slowReader produces its data slowly, like a layer compressed on the fly.
type slowReader struct{ n int }

func (r *slowReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(150 * time.Millisecond)
	r.n--
	p[0] = 'x'
	return 1, nil
}

func TestSlowProducerIsNotAStall(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprint(w, len(b))
	})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, s.URL+"/v2/x/blobs/uploads/u", io.NopCloser(&slowReader{n: 4}))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testTransport(t, RetryPolicy{StallTimeout: 100 * time.Millisecond}).RoundTrip(req)
	if err != nil {
		t.Fatalf("a slowly produced body was abandoned: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "4" {
		t.Errorf("server got %s bytes, want 4", b)
	}
}

func TestGiveUp(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	_, err := do(t, testTransport(t, RetryPolicy{Timeout: 2 * time.Second}), http.MethodGet, s.URL+"/v2/", "")
	var g *GiveUpError
	if !errors.As(err, &g) {
		t.Fatalf("got %v, want a GiveUpError", err)
	}
	host := strings.TrimPrefix(s.URL, "http://")
	if g.Registry != host || g.Attempts < 2 || g.Attempts != s.count() || !strings.Contains(err.Error(), "503 Service Unavailable") || !strings.Contains(err.Error(), host) {
		t.Errorf("error %q (%d attempts, %d requests): want it to name %s, the 503 and every attempt", err, g.Attempts, s.count(), host)
	}
	if Temporary(err) {
		t.Error("a GiveUpError must not be retried again")
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for s.count() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/v2/", nil)
	_, err := testTransport(t, RetryPolicy{}).RoundTrip(req)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

type failingTransport struct{ t *testing.T }

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("request to %s was sent", r.URL)
	return nil, errors.New("not sent")
}

func TestPlainHTTPRefusedOffLoopback(t *testing.T) {
	tr := newRegistryTransport(failingTransport{t}, RetryPolicy{}, false)
	for _, u := range []string{"http://10.1.2.3:5000/v2/", "http://registry.example:5000/v2/", "http://[fd00::1]/v2/", "http://192.168.1.1/token?scope=x"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		_, err := tr.RoundTrip(req)
		var pe *PlainHTTPError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("%s: %v; want a refusal naming --insecure", u, err)
		}
	}
	for _, h := range []string{"127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", "a.localhost"} {
		if !IsLoopback(h) {
			t.Errorf("IsLoopback(%q) = false", h)
		}
	}
	for _, h := range []string{"10.0.0.1", "192.168.0.1", "example.com", "localhost.example.com", "128.0.0.1", "::2"} {
		if IsLoopback(h) {
			t.Errorf("IsLoopback(%q) = true", h)
		}
	}
	// Loopback plain HTTP, and anything with --insecure, goes through.
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {})
	if resp, err := do(t, testTransport(t, RetryPolicy{}), http.MethodGet, s.URL+"/v2/", ""); err != nil {
		t.Errorf("loopback plain HTTP: %v", err)
	} else {
		resp.Body.Close()
	}
	ok := false
	insecure := newRegistryTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		ok = true
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}), RetryPolicy{}, true)
	req, _ := http.NewRequest(http.MethodGet, "http://10.1.2.3:5000/v2/", nil)
	if _, err := insecure.RoundTrip(req); err != nil || !ok {
		t.Errorf("--insecure plain HTTP: %v (sent: %v)", err, ok)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTemporary(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{syscall.ECONNRESET, true},
		{&url.Error{Op: "Patch", URL: "u", Err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}}, true},
		{syscall.ECONNREFUSED, true},
		{io.ErrUnexpectedEOF, true},
		{&StallError{Timeout: time.Second}, true},
		{&transport.Error{StatusCode: 503}, true},
		{&transport.Error{StatusCode: 429}, true},
		{&transport.Error{StatusCode: 401}, false},
		{&transport.Error{StatusCode: 404}, false},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{&GiveUpError{Last: syscall.ECONNRESET}, false},
		{&PlainHTTPError{Host: "h"}, false},
		{errors.New("x509: certificate signed by unknown authority"), false},
	} {
		if got := Temporary(c.err); got != c.want {
			t.Errorf("Temporary(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{}
	for attempt, want := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 3: 2 * time.Second, 6: 15 * time.Second, 50: 15 * time.Second} {
		for i := 0; i < 50; i++ {
			if d := p.Backoff(attempt); d < want/2 || d > want {
				t.Fatalf("Backoff(%d) = %s, want within [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
}
