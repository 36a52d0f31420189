package auth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-build/kiln/internal/testenv"
)

// fakeHelpers writes docker-credential-* scripts into a directory put first
// on PATH, and a Docker config naming helper for registry.
func fakeHelpers(t *testing.T, registry, helper string) string {
	t.Helper()
	dir := t.TempDir()
	scripts := map[string]string{
		"sleepy":  "#!/bin/sh\nsleep 60\n",
		"garbage": "#!/bin/sh\necho 'not json: HELPER-S3CRET'\n",
		"fails":   "#!/bin/sh\necho 'oops HELPER-S3CRET'\nexit 3\n",
		"none":    "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n",
		"good":    "#!/bin/sh\nread url\necho '{\"ServerURL\":\"'$url'\",\"Username\":\"u\",\"Secret\":\"HELPER-S3CRET\"}'\n",
	}
	for n, s := range scripts {
		if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+n), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"credHelpers": {"`+registry+`": "`+helper+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCredentialHelpers checks that a helper that hangs is stopped and
// named, that one printing garbage or failing is named with the registry
// and its output never shown, and that good and empty answers work.
func TestCredentialHelpers(t *testing.T) {
	const registry = "127.0.0.1:5999"
	tests := []struct {
		helper   string
		want     []string // substrings of the error; nil for success
		wantUser string
	}{
		{"sleepy", []string{"docker-credential-sleepy", registry, "no answer within 300ms"}, ""},
		{"garbage", []string{"docker-credential-garbage", registry, "not the credentials JSON"}, ""},
		{"fails", []string{"docker-credential-fails", registry, "exit status 3"}, ""},
		{"missing", []string{"docker-credential-missing", registry, "not on PATH"}, ""},
		{"none", nil, ""},
		{"good", nil, "u"},
	}
	for _, tc := range tests {
		t.Run(tc.helper, func(t *testing.T) {
			cfg := fakeHelpers(t, registry, tc.helper)
			kc, err := Options{RegistryConfig: cfg, HelperTimeout: 300 * time.Millisecond}.Keychain()
			if err != nil {
				t.Fatal(err)
			}
			reg, err := name.NewRegistry(registry)
			if err != nil {
				t.Fatal(err)
			}
			a, err := kc.Resolve(reg)
			if tc.want != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "S3CRET") {
					t.Errorf("error shows the helper's output: %v", err)
				}
				var he *HelperError
				if !errors.As(err, &he) {
					t.Errorf("error %v is not a *HelperError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ac, err := a.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if ac.Username != tc.wantUser {
				t.Errorf("user %q, want %q", ac.Username, tc.wantUser)
			}
		})
	}
}

// TestCredentialHelperCancelled checks that cancelling the request stops
// a hung helper, and that the default keychain (no registry_config) runs
// helpers the same way.
func TestCredentialHelperCancelled(t *testing.T) {
	const registry = "127.0.0.1:5998"
	cfg := fakeHelpers(t, registry, "sleepy")
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".docker", "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", "")
	kc, err := Options{HelperTimeout: time.Hour}.Keychain()
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := name.NewRegistry(registry)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err = authn.Resolve(ctx, kc, reg)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// TestFetchTransportHungServers checks that index and apt requests to a
// server that accepts and never answers, or that sends headers and then
// nothing, fail with a timeout instead of hanging; and that a redirect
// from https to http is refused.
func TestFetchTransportHungServers(t *testing.T) {
	t.Parallel()
	hung := testenv.HungListener(t)
	release := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Origin: Debian\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stall.Close)
	t.Cleanup(func() { close(release) })
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("forged")) }))
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(tlsSrv.Close)

	bound := FetchTimeouts{Connect: 300 * time.Millisecond, ResponseHeader: 300 * time.Millisecond, Stall: 300 * time.Millisecond}
	tests := []struct {
		name, url string
		inner     http.RoundTripper
		want      string
	}{
		{"never answers", "http://" + hung + "/debian/dists/bookworm/InRelease", nil, "timeout awaiting response headers"},
		{"never answers, custom transport", "http://" + hung + "/debian/dists/bookworm/InRelease", roundTripperFunc(http.DefaultTransport.RoundTrip), "no progress for 600ms"},
		{"headers then nothing", stall.URL + "/debian/dists/bookworm/InRelease", nil, "no progress for 300ms"},
		{"https to http", tlsSrv.URL + "/debian/dists/bookworm/InRelease", tlsSrv.Client().Transport, "refusing the redirect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := FetchClient(tc.inner, bound).Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if ctx.Err() != nil {
				t.Fatalf("only the test's own deadline stopped the request: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
