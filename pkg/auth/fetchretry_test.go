package auth

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRetryingFetchTransport: index and apt GETs are retried like registry
// requests (a reset, a 503 with Retry-After), at most three times, and the
// last failure comes back as it was; other methods are sent once.
func TestRetryingFetchTransport(t *testing.T) {
	bound := FetchTimeouts{Connect: time.Second, ResponseHeader: time.Second, Stall: time.Second}
	policy := RetryPolicy{FirstBackoff: 20 * time.Millisecond}
	tests := []struct {
		name      string
		method    string
		handler   func(w http.ResponseWriter, n int)
		wantCalls int
		wantCode  int
	}{
		{"reset then 503 then ok", http.MethodGet, func(w http.ResponseWriter, n int) {
			switch n {
			case 1:
				reset(w)
			case 2:
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
			default:
				io.WriteString(w, "Origin: Debian\n")
			}
		}, 3, http.StatusOK},
		{"always 502: the last answer", http.MethodGet, func(w http.ResponseWriter, n int) {
			w.WriteHeader(http.StatusBadGateway)
		}, maxFetchAttempts, http.StatusBadGateway},
		{"404 is not retried", http.MethodGet, func(w http.ResponseWriter, n int) {
			w.WriteHeader(http.StatusNotFound)
		}, 1, http.StatusNotFound},
		{"POST is not retried", http.MethodPost, func(w http.ResponseWriter, n int) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, 1, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { tc.handler(w, n) })
			tr := RetryingFetchTransport(nil, bound, policy)
			body := ""
			if tc.method == http.MethodPost {
				body = "x"
			}
			resp, err := do(t, tr, tc.method, srv.URL+"/debian/dists/stable/InRelease", body)
			if err != nil {
				t.Fatalf("%s: %v", tc.method, err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || srv.count() != tc.wantCalls {
				t.Errorf("got %d after %d requests, want %d after %d", resp.StatusCode, srv.count(), tc.wantCode, tc.wantCalls)
			}
			if tc.wantCode == http.StatusOK && !strings.Contains(string(data), "Origin") {
				t.Errorf("body %q", data)
			}
		})
	}
}
