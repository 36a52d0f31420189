package push

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/pkg/auth"
)

// faultyRegistry is an in-memory registry behind a handler that can fail
// requests, and that checks, whenever a manifest is PUT, that every blob it
// names is already there.
type faultyRegistry struct {
	t     *testing.T
	inner http.Handler
	host  string

	mu     sync.Mutex
	seen   map[string]int // "METHOD kind" -> count
	fail   func(method, kind string, n int) string
	puts   int
	broken []string
}

func kindOf(r *http.Request) string {
	switch {
	case strings.Contains(r.URL.Path, "/blobs/uploads"):
		return "upload"
	case strings.Contains(r.URL.Path, "/blobs/"):
		return "blob"
	case strings.Contains(r.URL.Path, "/manifests/"):
		return "manifest"
	}
	return "other"
}

func newFaultyRegistry(t *testing.T, fail func(method, kind string, n int) string) *faultyRegistry {
	f := &faultyRegistry{t: t, inner: registry.New(registry.Logger(log.New(io.Discard, "", 0))), seen: map[string]int{}, fail: fail}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	return f
}

func (f *faultyRegistry) serve(w http.ResponseWriter, r *http.Request) {
	k := r.Method + " " + kindOf(r)
	f.mu.Lock()
	f.seen[k]++
	n := f.seen[k]
	f.mu.Unlock()
	switch f.fail(r.Method, kindOf(r), n) {
	case "reset":
		conn, _, _ := w.(http.Hijacker).Hijack()
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
		return
	case "503":
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
		return
	case "429":
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if r.Method == http.MethodPut && kindOf(r) == "manifest" {
		f.checkBlobs(r)
	}
	f.inner.ServeHTTP(w, r)
}

// checkBlobs records a manifest PUT naming a blob the registry lacks.
func (f *faultyRegistry) checkBlobs(r *http.Request) {
	body, err := readAllAndRestore(r)
	if err != nil {
		f.t.Error(err)
		return
	}
	m, err := v1.ParseManifest(strings.NewReader(string(body)))
	if err != nil {
		f.t.Errorf("manifest PUT: %v", err)
		return
	}
	repo := strings.TrimPrefix(r.URL.Path[:strings.Index(r.URL.Path, "/manifests/")], "/v2/")
	f.mu.Lock()
	f.puts++
	f.mu.Unlock()
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		rec := httptest.NewRecorder()
		f.inner.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/v2/"+repo+"/blobs/"+d.Digest.String(), nil))
		if rec.Code != http.StatusOK {
			f.mu.Lock()
			f.broken = append(f.broken, d.Digest.String())
			f.mu.Unlock()
		}
	}
}

func publishRandom(t *testing.T, f *faultyRegistry, p auth.RetryPolicy) (v1.Image, name.Digest, error) {
	t.Helper()
	img, err := random.Image(4096, 4)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(f.host + "/test/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := auth.Options{Retry: p}.RemoteOptions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewRegistry(opts...).WithRetry(p).Publish(t.Context(), img, tag)
	return img, d, err
}

func TestPublishThroughFaults(t *testing.T) {
	f := newFaultyRegistry(t, func(method, kind string, n int) string {
		switch {
		case method == http.MethodPatch && n <= 3:
			return []string{"reset", "503", "429"}[n-1]
		case method == http.MethodPut && kind == "upload" && n <= 2:
			return "500"
		case method == http.MethodPut && kind == "manifest" && n == 1:
			return "503"
		case method == http.MethodHead && kind == "blob" && n%4 == 1:
			return "reset"
		case method == http.MethodPost && n == 2:
			return "503"
		}
		return ""
	})
	img, d, err := publishRandom(t, f, auth.RetryPolicy{FirstBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("publish through faults: %v", err)
	}
	want, _ := img.Digest()
	if d.DigestStr() != want.String() {
		t.Errorf("published %s, want %s", d, want)
	}
	got, err := remote.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(got); err != nil {
		t.Errorf("the pushed image is incomplete: %v", err)
	}
	if f.puts == 0 || len(f.broken) > 0 {
		t.Errorf("%d manifest PUTs; these named blobs the registry lacked: %v", f.puts, f.broken)
	}
}

// validate reads every blob of img.
func validate(img v1.Image) error {
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = readAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func TestPublishGivesUp(t *testing.T) {
	f := newFaultyRegistry(t, func(method, kind string, n int) string {
		if method == http.MethodPatch {
			return "503"
		}
		return ""
	})
	_, _, err := publishRandom(t, f, auth.RetryPolicy{Timeout: 2 * time.Second, FirstBackoff: 10 * time.Millisecond})
	var g *auth.GiveUpError
	if !errors.As(err, &g) {
		t.Fatalf("got %v, want a GiveUpError", err)
	}
	if g.Registry != f.host || !strings.Contains(err.Error(), f.host) || !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q: want it to name %s and the 503", err, f.host)
	}
	if f.puts != 0 {
		t.Errorf("a manifest was PUT although no blob could be uploaded")
	}
}
