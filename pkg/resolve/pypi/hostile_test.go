package pypi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testenv"
	"github.com/kiln-build/kiln/pkg/auth"
)

// TestRequirementsErrorsDoNotEchoFiles checks that a file included by
// mistake (-r /proc/self/environ, -r ~/.docker/config.json) is named with
// its line in the error, and none of its content is printed.
func TestRequirementsErrorsDoNotEchoFiles(t *testing.T) {
	t.Parallel()
	const secret = "FAKE-s3cret-T0KEN"
	tests := []struct{ name, content string }{
		{"environ", "PATH=/usr/bin:/bin\x00GITHUB_TOKEN=" + secret + "\x00HOME=/root\x00"},
		{"docker config", "{\"auths\": {\"r.example\": {\"auth\": \"" + secret + "\"}}}\n"},
		{"docker config pretty", "{\n  \"auths\": {\n    \"r.example\": {\"auth\": \"" + secret + "\"}\n  }\n}\n"},
		{"netrc", "machine host login me password " + secret + "\n"},
		{"token path", "token=" + secret + "/x\n"},
		{"dashes", "--" + secret + "-and-more-than-forty-characters-in-all\n"},
		{"bad marker", "six ; os_name == '" + secret + "\n"},
		{"bad scheme", "weird:" + secret + "/x.tar\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, map[string]string{"requirements.txt": "six\n-r secret.txt\n", "secret.txt": tc.content})
			_, _, err := ParseRequirements(filepath.Join(dir, "requirements.txt"))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, secret) || strings.Contains(msg, "s3cret") {
				t.Errorf("error shows the file's content: %s", msg)
			}
			if want := filepath.Join(dir, "secret.txt") + ":1:"; !strings.Contains(msg, want) {
				t.Errorf("error %q does not name %s", msg, want)
			}
			if want := "requirements.txt:2:"; !strings.Contains(msg, want) {
				t.Errorf("error %q does not name the including line %s", msg, want)
			}
		})
	}
}

// TestRequirementsIncludeFanOut checks that a tree of includes where every
// file includes every file of the next level (12 levels of 8: 8^12 paths)
// reads each file once.
func TestRequirementsIncludeFanOut(t *testing.T) {
	t.Parallel()
	files := map[string]string{}
	const levels, width = 12, 8
	var top strings.Builder
	for j := range width {
		fmt.Fprintf(&top, "-r l0-%d.txt\n", j)
	}
	files["requirements.txt"] = top.String()
	for i := range levels {
		for j := range width {
			var b strings.Builder
			fmt.Fprintf(&b, "pkg%d-%d==1.0\n", i, j)
			if i+1 < levels {
				for k := range width {
					fmt.Fprintf(&b, "-r l%d-%d.txt\n", i+1, k)
				}
			}
			files[fmt.Sprintf("l%d-%d.txt", i, j)] = b.String()
		}
	}
	dir := writeFiles(t, files)
	lines, _, err := ParseRequirements(filepath.Join(dir, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != levels*width {
		t.Errorf("%d lines, want %d (each file read once)", len(lines), levels*width)
	}
}

// TestRequirementsIncludeBounds checks the cycle error and the bounds on
// depth and number of files, each naming the file.
func TestRequirementsIncludeBounds(t *testing.T) {
	t.Parallel()
	chain := func(n int) map[string]string {
		files := map[string]string{"requirements.txt": "-r c0.txt\n"}
		for i := range n {
			files[fmt.Sprintf("c%d.txt", i)] = fmt.Sprintf("-r c%d.txt\n", i+1)
		}
		files[fmt.Sprintf("c%d.txt", n)] = "six\n"
		return files
	}
	many := map[string]string{}
	var b strings.Builder
	for i := range MaxRequirementsFiles + 5 {
		fmt.Fprintf(&b, "-r f%d.txt\n", i)
		many[fmt.Sprintf("f%d.txt", i)] = "six\n"
	}
	many["requirements.txt"] = b.String()
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error; nil for success
	}{
		{"cycle", map[string]string{"requirements.txt": "-r a.txt\n", "a.txt": "-r b.txt\n", "b.txt": "-r a.txt\n"},
			[]string{"cycle", "a.txt -> ", "b.txt -> ", "requirements.txt:1:"}},
		{"constraint cycle", map[string]string{"requirements.txt": "-r a.txt\n", "a.txt": "-c b.txt\n", "b.txt": "-c a.txt\n"},
			[]string{"cycle", "b.txt -> "}},
		{"depth at the bound", chain(MaxRequirementsDepth - 2), nil},
		{"too deep", chain(MaxRequirementsDepth + 3), []string{fmt.Sprintf("deeper than %d", MaxRequirementsDepth), fmt.Sprintf("c%d.txt", MaxRequirementsDepth-1)}},
		{"too many files", many, []string{fmt.Sprintf("more than %d requirements files", MaxRequirementsFiles), fmt.Sprintf("f%d.txt", MaxRequirementsFiles-1)}},
		{"same file twice", map[string]string{"requirements.txt": "-r a.txt\n-r ./a.txt\n-c a.txt\n", "a.txt": "six\n"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tc.files)
			_, _, err := ParseRequirements(filepath.Join(dir, "requirements.txt"))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// recordingServer records the Authorization header of every request.
type recordingServer struct {
	mu    sync.Mutex
	auths []string
	n     int
}

func (r *recordingServer) record(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if a := req.Header.Get("Authorization"); a != "" {
		r.auths = append(r.auths, a)
	}
}

func (r *recordingServer) seen() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, append([]string(nil), r.auths...)
}

// TestIndexCredentialsStayWithTheirOrigin checks that the index URL's
// credentials go only to its scheme, host and port: not to another port of
// the same host a redirect names, and never over plain http (a redirect
// from https to http is refused).
func TestIndexCredentialsStayWithTheirOrigin(t *testing.T) {
	t.Parallel()
	page := []byte(`<a href="six-1.0-py3-none-any.whl#sha256=` + strings.Repeat("0", 64) + `">six</a>`)
	serve := func(rec *recordingServer) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			rec.record(r)
			w.Header().Set("Content-Type", "text/html")
			w.Write(page)
		}
	}
	var plainRec, otherRec, sameRec recordingServer
	plain := httptest.NewServer(serve(&plainRec))
	t.Cleanup(plain.Close)
	other := httptest.NewTLSServer(serve(&otherRec))
	t.Cleanup(other.Close)
	var target string
	index := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/same/") {
			serve(&sameRec)(w, r)
			return
		}
		http.Redirect(w, r, strings.Replace(target, "SAME", "https://"+r.Host, 1)+r.URL.Path, http.StatusMovedPermanently)
	}))
	t.Cleanup(index.Close)
	u := strings.Replace(index.URL, "https://", "https://probeuser:pr0be-pa55@", 1) + "/simple"

	tests := []struct {
		name     string
		target   string
		rec      *recordingServer
		wantErr  string
		wantAuth bool
	}{
		{"https to http of the same host", plain.URL, &plainRec, "refusing the redirect", false},
		{"https to another port of the same host", other.URL, &otherRec, "", false},
		{"https to the same origin", "SAME/same", &sameRec, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target = tc.target
			ix, err := NewIndex(u, IndexOptions{Client: index.Client(), Netrc: filepath.Join(t.TempDir(), "none")})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ix.Project(context.Background(), "six")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "pr0be-pa55") {
					t.Errorf("error shows the password: %v", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			n, auths := tc.rec.seen()
			if tc.wantErr != "" && n != 0 {
				t.Errorf("the plain-http server got %d requests after a refused redirect", n)
			}
			if tc.wantAuth != (len(auths) > 0) {
				t.Errorf("redirect target got credentials %v, want them: %v", auths, tc.wantAuth)
			}
		})
	}
}

// TestIndexURLBadPercentEscape checks the message for a password with a
// bare %.
func TestIndexURLBadPercentEscape(t *testing.T) {
	t.Parallel()
	_, err := NewIndex("https://u:p%zzword@127.0.0.1/simple", IndexOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"bad percent-escape", "%25"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "zzword") {
		t.Errorf("error shows the password: %v", err)
	}
}

// TestIndexHungServers checks that an index that accepts connections and
// never answers, or sends headers and then nothing, fails with an error
// naming the URL instead of hanging.
func TestIndexHungServers(t *testing.T) {
	t.Parallel()
	// Accepts, reads nothing, answers nothing.
	hung := testenv.HungListener(t)
	release := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<a href"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stall.Close)
	t.Cleanup(func() { close(release) })

	bound := auth.FetchTimeouts{Connect: 300 * time.Millisecond, ResponseHeader: 300 * time.Millisecond, Stall: 300 * time.Millisecond}
	tests := []struct {
		name, base string
		want       string
	}{
		{"never answers", "http://" + hung + "/simple", "timeout awaiting response headers"},
		{"headers then nothing", stall.URL + "/simple", "no progress for 300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ix, err := NewIndex(tc.base, IndexOptions{Client: auth.FetchClient(nil, bound), Netrc: filepath.Join(t.TempDir(), "none")})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err = ix.Project(ctx, "six")
			if err == nil {
				t.Fatal("no error")
			}
			if ctx.Err() != nil {
				t.Fatalf("only the test's own deadline stopped the request: %v", err)
			}
			for _, w := range []string{tc.base + "/six/", tc.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
