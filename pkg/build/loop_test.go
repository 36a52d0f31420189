package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/push"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
)

// TestLockStaleWhenAResolutionInputChanges: kiln.lock records what each
// step's resolution was made from; a --locked build of a spec that changed
// one of those inputs is refused before anything is fetched, and the error
// names the input.
func TestLockStaleWhenAResolutionInputChanges(t *testing.T) {
	const base = "name: app\nregistry: 127.0.0.1:1\nbase_image: 127.0.0.1:1/parent:1\n" +
		"packages: [flask]\npip_index: http://127.0.0.1:1/simple\napt_packages: [jq]\n"
	const source = "deb [signed-by=key.asc] http://127.0.0.1:1/debian stable main"
	const other = "deb [signed-by=key.asc] http://127.0.0.1:1/other stable main"
	specOf := func(platform, src string) string {
		return base + "platform: " + platform + "\napt_sources:\n  - " + src + "\n"
	}
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "key.asc"), []byte("key"), 0o644))
	made, err := NewPlan(context.Background(), loadSpec(t, dir, specOf("linux/amd64", source)), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	resolved, err := resolutions(made)
	must(t, err)
	if len(resolved) != 2 {
		t.Fatalf("resolutions = %+v, want the apt and python steps", resolved)
	}
	l := &lock.Lock{
		Version: lock.Version, Platform: "linux/amd64", Parent: lock.Parent{Ref: "127.0.0.1:1/parent:1", Digest: "sha256:" + strings.Repeat("a", 64)},
		AptPackages: []string{"jq"}, Packages: []string{"flask"}, Resolved: resolved,
	}
	for _, tc := range []struct {
		name, spec string
		want       string // "" for no staleness error
	}{
		{"unchanged", specOf("linux/amd64", source), ""},
		{"platform", specOf("linux/arm64", source), "platform changed since it was made"},
		{"apt source", specOf("linux/amd64", other), "apt_sources changed since it was made (step apt_packages)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(context.Background(), loadSpec(t, dir, tc.spec), PlanOptions{Epoch: time.Unix(0, 0), Lock: l})
			must(t, err)
			c, err := cache.Open(t.TempDir())
			must(t, err)
			_, err = Run(context.Background(), p, Options{Cache: c, Publisher: push.NewRegistry()})
			switch {
			case tc.want == "" && err != nil && strings.Contains(err.Error(), "stale"):
				t.Errorf("build --locked of the spec the lock was made for: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "run kiln lock again")):
				t.Errorf("build --locked after a %s change = %v, want a stale-lock error containing %q", tc.name, err, tc.want)
			}
		})
	}
}

// countingTransport counts the requests sent through it that the server
// answered (not the https probes of a plain-HTTP loopback registry).
type countingTransport struct {
	inner http.RoundTripper
	n     atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.RoundTrip(req)
	if err == nil {
		c.n.Add(1)
	}
	return resp, err
}

// TestOneTransportServesTheBuild: every registry request of a build (the
// existence check, the parent and cache pulls, the push and both cache
// reference updates) goes through the build's one registry client.
func TestOneTransportServesTheBuild(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:1", "amd64")
	dir := appDir(t)
	yaml := "name: app\nregistry: " + reg.host + "\nbase_image: " + reg.host + "/base:1\nsource_root: app\n"
	p, err := NewPlan(context.Background(), loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c, err := cache.Open(t.TempDir())
	must(t, err)
	a := auth.Options{}
	inner, err := a.Transport()
	must(t, err)
	counted := &countingTransport{inner: inner}
	client, err := a.RemoteOptionsFor(context.Background(), counted)
	must(t, err)
	reg.reset()
	_, err = Run(context.Background(), p, Options{
		Auth: a, Remote: client, Cache: c, Publisher: push.NewRegistry(client...).WithRetry(a.Retry),
		CheckExists: true, UpdateCache: true, CacheTo: reg.host + "/app:cache-to",
	})
	must(t, err)
	reg.mu.Lock()
	served := len(reg.reqs)
	reg.mu.Unlock()
	if got := counted.n.Load(); got != int64(served) || served == 0 {
		t.Errorf("the build's registry client sent %d requests, the registry served %d: some went through another transport", got, served)
	}
	for _, tag := range []string{DefaultCacheTag, "cache-to"} {
		if _, err := remote.Head(mustTag(t, reg.host+"/app:"+tag)); err != nil {
			t.Errorf("no %s tag after the build: %v", tag, err)
		}
	}
}

// TestDebLayerNamesAnUncapturedParentFile: a parent file the Debian layer
// merges with (etc/passwd) whose content was not captured is an error
// naming it, not a file silently left out of the merge.
func TestDebLayerNamesAnUncapturedParentFile(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	must(t, err)
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for _, f := range []struct{ name, body string }{{"etc/passwd", "root:x:0:0::/root:/bin/sh\n"}, {"etc/group", "root:x:0:\n"}} {
		must(t, tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(f.body))
		must(t, err)
	}
	must(t, tw.Close())
	keepAllButPasswd := func(name string, size int64) int64 {
		if name == "etc/passwd" {
			return 0
		}
		return rootfs.All
	}
	parent, err := rootfs.ReadTars(context.Background(), keepAllButPasswd, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarball.Bytes())), nil
	})
	must(t, err)
	_, err = debLayer(context.Background(), Options{Cache: c}, &resolve.Parent{}, parent, nil, &Plan{})
	if err == nil || !strings.Contains(err.Error(), "/etc/passwd") || !errors.Is(err, rootfs.ErrNotCaptured) {
		t.Errorf("debLayer with an uncaptured etc/passwd = %v, want an error naming it", err)
	}
}

// TestDebLayerReadsAnyFS: the Debian layer takes its parent as an fs.FS,
// so a test parent is an fstest.MapFS.
func TestDebLayerReadsAnyFS(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	must(t, err)
	parent := fstest.MapFS{
		"etc/passwd":              {Data: []byte("root:x:0:0::/root:/bin/sh\n")},
		"etc/ld.so.conf.d/x.conf": {Data: []byte("/opt/x\n")},
		"bin":                     {Data: []byte("usr/bin"), Mode: fs.ModeSymlink},
		"usr/bin/sh":              {Data: []byte("ELF")},
	}
	dl, err := debLayer(context.Background(), Options{Cache: c}, &resolve.Parent{}, parent, nil, &Plan{})
	must(t, err)
	if string(dl.Parent.Files["etc/passwd"]) != "root:x:0:0::/root:/bin/sh\n" || dl.Parent.Files["etc/ld.so.conf.d/x.conf"] == nil || dl.Parent.Symlinks["bin"] != "usr/bin" {
		t.Errorf("debLayer read the parent as files %v, symlinks %v", dl.Parent.Files, dl.Parent.Symlinks)
	}
}

// TestRequirementsReadOnce: the requirements file is parsed once, by
// NewPlan; the tag, the python step's key and the resolution all use that
// parse, so a file changed during the build cannot give an image whose
// tag says otherwise.
func TestRequirementsReadOnce(t *testing.T) {
	dir := appDir(t)
	must(t, os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("flask>=3\n"), 0o644))
	s := loadSpec(t, dir, "name: app\nbase_image: scratch\nrequirements: requirements.txt\n")
	p, err := NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	first, err := p.requirements()
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("django\n"), 0o644))
	again, err := p.requirements()
	must(t, err)
	in, _, err := pythonStep{}.inputs(context.Background(), &session{p: p, parent: &resolve.Parent{}})
	must(t, err)
	if again != first || len(again.lines) != 1 || again.lines[0].Requirement.Name != "flask" || in["requirements"] != first.digest {
		t.Errorf("the requirements were read again after NewPlan: %+v, step input %q, want the plan's flask (%s)", again.lines, in["requirements"], first.digest)
	}
}

// TestPythonStepConfigDelta: the python step's record says what it adds to
// the image config (VIRTUAL_ENV, the venv's bin first on PATH), and
// applying it gives the environment kiln always wrote.
func TestPythonStepConfigDelta(t *testing.T) {
	d := pythonStep{}.config()
	tests := []struct {
		name, yaml string
		env, want  []string
	}{
		{"parent PATH", "", []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"},
			[]string{"PATH=/opt/venv/bin:/usr/bin:/bin", "LANG=C.UTF-8", "VIRTUAL_ENV=/opt/venv"}},
		{"no PATH", "", nil,
			[]string{"VIRTUAL_ENV=/opt/venv", "PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		{"spec sets PATH and VIRTUAL_ENV", "env: {PATH: /mine, VIRTUAL_ENV: /v}\n", []string{"PATH=/mine", "VIRTUAL_ENV=/v"},
			[]string{"PATH=/mine", "VIRTUAL_ENV=/v"}},
		{"parent VIRTUAL_ENV replaced", "", []string{"VIRTUAL_ENV=/old", "PATH=/bin"},
			[]string{"VIRTUAL_ENV=/opt/venv", "PATH=/opt/venv/bin:/bin"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := loadSpec(t, t.TempDir(), "name: app\nbase_image: scratch\n"+tc.yaml)
			if got := applyDelta(tc.env, s, d); !slices.Equal(got, tc.want) {
				t.Errorf("applyDelta(%q) = %q, want %q", tc.env, got, tc.want)
			}
		})
	}
}
