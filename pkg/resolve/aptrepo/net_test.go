package aptrepo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/pkg/auth"
)

// TestSourcesRefuseCredentials checks that a source URI holding a user
// name or password is refused, in both formats, without showing it: kiln
// sends no credentials to apt repositories, and a URI holding them would
// reach kiln.lock and the image's cache annotation.
func TestSourcesRefuseCredentials(t *testing.T) {
	const secret = "apt-pa55w0rd"
	tests := []struct {
		name  string
		parse func() error
	}{
		{"one-line", func() error {
			_, err := ParseSourcesList("x.list", []byte("deb [signed-by=/k.gpg] https://me:"+secret+"@repo.example.invalid/debian stable main\n"))
			return err
		}},
		{"token only", func() error {
			_, err := ParseSourcesList("x.list", []byte("deb [signed-by=/k.gpg] https://"+secret+"@repo.example.invalid/debian stable main\n"))
			return err
		}},
		{"deb822", func() error {
			_, err := ParseDeb822Sources("x.sources", []byte("Types: deb\nURIs: https://me:"+secret+"@repo.example.invalid/debian\nSuites: stable\nComponents: main\nSigned-By: /k.gpg\n"))
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse()
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the credential: %v", err)
			}
			for _, w := range []string{"user name or password", "repo.example.invalid", auth.Mask + "@"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestHTTPFetcherRedactsURL checks that a fetch error names the URL with
// its credentials masked the way every other kiln message masks them.
func TestHTTPFetcherRedactsURL(t *testing.T) {
	const secret = "apt-pa55w0rd"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusInternalServerError
		if strings.HasSuffix(r.URL.Path, "/missing") {
			code = http.StatusNotFound
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct{ url, want string }{
		{"http://me:" + secret + "@" + host + "/broken", "http://me:***@" + host + "/broken"},
		{"http://" + secret + "@" + host + "/missing", "http://***@" + host + "/missing"},
	} {
		_, err := (&HTTPFetcher{Client: srv.Client()}).Fetch(context.Background(), tc.url)
		if err == nil {
			t.Fatalf("Fetch(%s): no error", tc.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the credential: %v", err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q does not name %s", err, tc.want)
		}
	}
}
