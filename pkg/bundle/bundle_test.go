package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kiln-build/kiln/pkg/lock"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func testLock(files map[string]string) *lock.Lock {
	l := &lock.Lock{Version: lock.Version, Parent: lock.Parent{Ref: "example.invalid/base:1", Digest: "sha256:" + strings.Repeat("a", 64)}}
	l.Debs = append(l.Debs, lock.Deb{Name: "hello", Version: "1", Architecture: "amd64", SHA256: sum(files["deb"]), Size: int64(len(files["deb"])), URL: "http://deb.example/pool/hello_1_amd64.deb"})
	l.Wheels = append(l.Wheels, lock.Wheel{Name: "six", Version: "1.17.0", Filename: "six-1.17.0-py2.py3-none-any.whl", SHA256: sum(files["whl"]), URL: "http://pypi.example/six-1.17.0-py2.py3-none-any.whl"})
	return l
}

// TestWriteOpen: a bundle holds the parent, the lock and each pinned file,
// served by URL and by sha256; a request for anything else fails naming it.
func TestWriteOpen(t *testing.T) {
	files := map[string]string{"deb": "a deb", "whl": "a wheel"}
	byURL := map[string]string{"http://deb.example/pool/hello_1_amd64.deb": files["deb"], "http://pypi.example/six-1.17.0-py2.py3-none-any.whl": files["whl"]}
	parent, err := random.Image(128, 2)
	if err != nil {
		t.Fatal(err)
	}
	l := testLock(files)
	dir := filepath.Join(t.TempDir(), "bundle")
	fetch := func(_ context.Context, url, _ string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(byURL[url])), nil
	}
	if err := Write(context.Background(), dir, parent, "example.invalid/base:1", l, fetch); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Matches(l) {
		t.Error("the bundle does not match the lock it was written from")
	}
	other := testLock(map[string]string{"deb": "another deb", "whl": "a wheel"})
	if b.Matches(other) {
		t.Error("the bundle matches another lock")
	}
	d, _ := parent.Digest()
	if got, err := b.Parent(d); err != nil {
		t.Errorf("Parent: %v", err)
	} else if gd, _ := got.Digest(); gd != d {
		t.Errorf("Parent = %s, want %s", gd, d)
	}
	client := &http.Client{Transport: b.Transport()}
	for url, want := range byURL {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Errorf("GET %s = %q, want %q", url, got, want)
		}
	}
	if _, err := client.Get("http://deb.example/dists/bookworm/InRelease"); err == nil || !strings.Contains(err.Error(), "not in the bundle") {
		t.Errorf("GET of an unpinned URL: %v, want a refusal", err)
	}
	if rc, err := b.Open(sum(files["whl"])); err != nil {
		t.Errorf("Open by sha256: %v", err)
	} else {
		rc.Close()
	}
	if err := Write(context.Background(), dir, parent, "x", l, fetch); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Write over a bundle: %v, want a refusal", err)
	}
}

// TestWriteRefusesWrongFile: a file whose sha256 is not the lock's fails
// the bundle, naming the URL, and leaves nothing behind.
func TestWriteRefusesWrongFile(t *testing.T) {
	l := testLock(map[string]string{"deb": "a deb", "whl": "a wheel"})
	parentDir := t.TempDir()
	dir := filepath.Join(parentDir, "bundle")
	err := Write(context.Background(), dir, nil, "", l, func(context.Context, string, string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("tampered")), nil
	})
	if err == nil || !strings.Contains(err.Error(), "hello_1_amd64.deb") || !strings.Contains(err.Error(), "kiln.lock pins") {
		t.Errorf("Write with a tampered file: %v", err)
	}
	if entries, _ := os.ReadDir(parentDir); len(entries) != 0 {
		t.Errorf("a failed Write left %v", entries)
	}
}

// TestWriteCarriesSdists: for a wheel kiln built, the bundle also holds its
// source distribution and build requirements, each once, served by URL.
func TestWriteCarriesSdists(t *testing.T) {
	files := map[string]string{"deb": "a deb", "whl": "a wheel"}
	byURL := map[string]string{
		"http://deb.example/pool/hello_1_amd64.deb":              files["deb"],
		"http://pypi.example/six-1.17.0-py2.py3-none-any.whl":    files["whl"],
		"file:///cache/blobs/sha256/built":                       "a built wheel",
		"http://pypi.example/simple-2.0.tar.gz":                  "an sdist",
		"http://pypi.example/setuptools-68.1.2-py3-none-any.whl": "setuptools",
		"http://pypi.example/wheel-0.42.0-py3-none-any.whl":      "wheel",
		"http://pypi.example/require_simple-1.0.tar.gz":          "another sdist",
	}
	l := testLock(files)
	reqs := []lock.Wheel{
		{Name: "setuptools", Version: "68.1.2", Filename: "setuptools-68.1.2-py3-none-any.whl", URL: "http://pypi.example/setuptools-68.1.2-py3-none-any.whl", SHA256: sum("setuptools")},
		{Name: "wheel", Version: "0.42.0", Filename: "wheel-0.42.0-py3-none-any.whl", URL: "http://pypi.example/wheel-0.42.0-py3-none-any.whl", SHA256: sum("wheel")},
	}
	l.Wheels = append(l.Wheels,
		lock.Wheel{Name: "simple", Version: "2.0", Filename: "simple-2.0-py3-none-any.whl", URL: "file:///cache/blobs/sha256/built", SHA256: sum("a built wheel"),
			BuiltFrom: &lock.Sdist{Filename: "simple-2.0.tar.gz", URL: "http://pypi.example/simple-2.0.tar.gz", SHA256: sum("an sdist"), Requires: reqs}},
		lock.Wheel{Name: "require-simple", Version: "1.0", Filename: "require_simple-1.0-py3-none-any.whl", URL: "file:///cache/blobs/sha256/built2", SHA256: sum("another built wheel"),
			BuiltFrom: &lock.Sdist{Filename: "require_simple-1.0.tar.gz", URL: "http://pypi.example/require_simple-1.0.tar.gz", SHA256: sum("another sdist"), Requires: reqs}})
	byURL["file:///cache/blobs/sha256/built2"] = "another built wheel"
	var fetched []string
	fetch := func(_ context.Context, url, _ string) (io.ReadCloser, error) {
		fetched = append(fetched, url)
		return io.NopCloser(strings.NewReader(byURL[url])), nil
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := Write(context.Background(), dir, nil, "", l, fetch); err != nil {
		t.Fatal(err)
	}
	if len(fetched) != len(byURL) {
		t.Errorf("Write fetched %d files (%v), want each of the %d once", len(fetched), fetched, len(byURL))
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: b.Transport()}
	for url, want := range byURL {
		if strings.HasPrefix(url, "file:") {
			continue
		}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Errorf("GET %s = %q, want %q", url, got, want)
		}
	}
}
