package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	specsv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/push"
	"github.com/kiln-build/kiln/pkg/spec"
)

// countingRegistry is an in-process registry that records every request.
type countingRegistry struct {
	host string
	mu   sync.Mutex
	reqs []string // "METHOD path"
}

func newRegistry(t *testing.T) *countingRegistry {
	t.Helper()
	cr := &countingRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cr.mu.Lock()
		cr.reqs = append(cr.reqs, r.Method+" "+r.URL.Path)
		cr.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cr.host = strings.TrimPrefix(srv.URL, "http://")
	return cr
}

// blobGETs returns the blob GETs for digests other than skip.
func (cr *countingRegistry) blobGETs(skip ...string) []string {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	var out []string
	for _, r := range cr.reqs {
		if !strings.HasPrefix(r, "GET ") || !strings.Contains(r, "/blobs/") {
			continue
		}
		skipped := false
		for _, s := range skip {
			if strings.HasSuffix(r, s) {
				skipped = true
			}
		}
		if !skipped {
			out = append(out, r)
		}
	}
	return out
}

func (cr *countingRegistry) reset() {
	cr.mu.Lock()
	cr.reqs = nil
	cr.mu.Unlock()
}

// pushParent pushes a random two-layer image with a config like a distro's.
func pushParent(t *testing.T, ref string, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	cf.Config.Cmd = []string{"bash"}
	cf.Config.Entrypoint = []string{"/entry"}
	cf.Config.Labels = map[string]string{"parent": "yes"}
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	r, err := name.ParseReference(ref)
	must(t, err)
	must(t, remote.Write(r, img))
	return img
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func appDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "app"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "app", "main.py"), []byte("print('hi')\n"), 0o644))
	return dir
}

func loadSpec(t *testing.T, dir, yaml string) *spec.Spec {
	t.Helper()
	s, err := spec.Parse("kiln.yaml", dir, []byte(yaml))
	must(t, err)
	must(t, s.Validate())
	return s
}

func runBuild(t *testing.T, s *spec.Spec, epoch time.Time, cacheDir string) *Result {
	t.Helper()
	ctx := context.Background()
	p, err := NewPlan(ctx, s, PlanOptions{Epoch: epoch})
	must(t, err)
	c, err := cache.Open(cacheDir)
	must(t, err)
	res, err := Run(ctx, p, Options{Cache: c, Publisher: push.NewRegistry(), CheckExists: true, UpdateCache: true})
	must(t, err)
	return res
}

func TestBuildOnIndexParentReadsNoParentLayers(t *testing.T) {
	reg := newRegistry(t)
	amd := pushParent(t, reg.host+"/base:amd64", "amd64")
	arm := pushParent(t, reg.host+"/base:arm64", "arm64")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	idxRef, err := name.ParseReference(reg.host + "/base:multi")
	must(t, err)
	must(t, remote.WriteIndex(idxRef, idx))

	dir := appDir(t)
	s := loadSpec(t, dir, "name: app\nregistry: "+reg.host+"\nbase_image: "+reg.host+"/base:multi\nsource_root: app\n")
	reg.reset()
	res := runBuild(t, s, time.Unix(0, 0), t.TempDir())

	amdConfig, err := amd.ConfigName()
	must(t, err)
	if gets := reg.blobGETs(amdConfig.String()); len(gets) != 0 {
		t.Errorf("the build downloaded parent blobs other than its config: %v", gets)
	}
	got, err := remote.Image(res.Ref)
	must(t, err)
	layers, err := got.Layers()
	must(t, err)
	if len(layers) != 3 {
		t.Errorf("%d layers, want the parent's 2 plus the code layer", len(layers))
	}
	amdDigest, err := amd.Digest()
	must(t, err)
	m, err := got.Manifest()
	must(t, err)
	if m.Annotations[specsv1.AnnotationBaseImageDigest] != amdDigest.String() {
		t.Errorf("base.digest annotation = %q, want the amd64 image %s", m.Annotations[specsv1.AnnotationBaseImageDigest], amdDigest)
	}
	if want := reg.host + "/base:multi"; m.Annotations[specsv1.AnnotationBaseImageName] != want {
		t.Errorf("base.name annotation = %q, want %q", m.Annotations[specsv1.AnnotationBaseImageName], want)
	}
}

func TestBuildPlatformMismatch(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:arm", "arm64")
	dir := appDir(t)
	s := loadSpec(t, dir, "name: app\nregistry: "+reg.host+"\nbase_image: "+reg.host+"/base:arm\n")
	p, err := NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c, err := cache.Open(t.TempDir())
	must(t, err)
	_, err = Run(context.Background(), p, Options{Cache: c, Publisher: push.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "arm64") || !strings.Contains(err.Error(), "platform") {
		t.Errorf("building linux/amd64 on an arm64 parent: %v, want an error naming both platforms", err)
	}
}

func TestBuildConfig(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:1", "amd64")
	dir := appDir(t)
	for _, tc := range []struct {
		name  string
		yaml  string
		check func(t *testing.T, c v1.Config)
	}{
		{"defaults", "", func(t *testing.T, c v1.Config) {
			if want := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PYTHONPATH=/root"}; !reflect.DeepEqual(c.Env, want) {
				t.Errorf("Env = %v, want %v", c.Env, want)
			}
			if c.WorkingDir != "/root" {
				t.Errorf("WorkingDir = %q, want /root", c.WorkingDir)
			}
			if !reflect.DeepEqual(c.Entrypoint, []string{"/entry"}) || !reflect.DeepEqual(c.Cmd, []string{"bash"}) {
				t.Errorf("Entrypoint %v Cmd %v, want the parent's", c.Entrypoint, c.Cmd)
			}
			if c.Labels["parent"] != "yes" {
				t.Errorf("Labels = %v, want the parent's kept", c.Labels)
			}
		}},
		{"overrides", "env: {PATH: /opt/bin, PYTHONPATH: /src, X: '1'}\nworkdir: /src\nuser: '1000:1000'\nentrypoint: [python3, main.py]\nlabels: {team: ml}\n", func(t *testing.T, c v1.Config) {
			if want := []string{"PATH=/opt/bin", "LANG=C.UTF-8", "PYTHONPATH=/src", "X=1"}; !reflect.DeepEqual(c.Env, want) {
				t.Errorf("Env = %v, want %v", c.Env, want)
			}
			if c.WorkingDir != "/src" || c.User != "1000:1000" {
				t.Errorf("WorkingDir %q User %q", c.WorkingDir, c.User)
			}
			if !reflect.DeepEqual(c.Entrypoint, []string{"python3", "main.py"}) || c.Cmd != nil {
				t.Errorf("Entrypoint %v Cmd %v, want the new entrypoint and the parent's cmd dropped", c.Entrypoint, c.Cmd)
			}
			if c.Labels["team"] != "ml" || c.Labels["parent"] != "yes" {
				t.Errorf("Labels = %v, want team=ml merged over the parent's", c.Labels)
			}
		}},
		{"clear entrypoint", "entrypoint: []\ncmd: [python3]\n", func(t *testing.T, c v1.Config) {
			if c.Entrypoint != nil || !reflect.DeepEqual(c.Cmd, []string{"python3"}) {
				t.Errorf("Entrypoint %v Cmd %v, want none and [python3]", c.Entrypoint, c.Cmd)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loadSpec(t, dir, "name: app\nregistry: "+reg.host+"\nbase_image: "+reg.host+"/base:1\nsource_root: app\n"+tc.yaml)
			epoch := time.Unix(1700000000, 0).UTC()
			res := runBuild(t, s, epoch, t.TempDir())
			img, err := remote.Image(res.Ref)
			must(t, err)
			cf, err := img.ConfigFile()
			must(t, err)
			tc.check(t, cf.Config)
			if !cf.Created.Time.Equal(epoch) {
				t.Errorf("created = %v, want %v", cf.Created, epoch)
			}
			if n := len(cf.History); n != 3 || !strings.Contains(cf.History[2].CreatedBy, "kiln") {
				t.Errorf("history = %+v, want one entry per layer, the last made by kiln", cf.History)
			}
		})
	}
}

func TestBuildReproducibleAndSkipsWhenPresent(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:1", "amd64")
	dir := appDir(t)
	yaml := "name: app\nregistry: " + reg.host + "\nbase_image: " + reg.host + "/base:1\nsource_root: app\n"

	t.Setenv("TZ", "Asia/Kolkata")
	first := runBuild(t, loadSpec(t, dir, yaml), time.Unix(0, 0), t.TempDir())
	if first.Skipped {
		t.Fatal("first build skipped")
	}
	// The same inputs elsewhere: another checkout, cache and time zone.
	other := appDir(t)
	t.Setenv("TZ", "America/Los_Angeles")
	second := runBuild(t, loadSpec(t, other, yaml), time.Unix(0, 0), t.TempDir())
	if !second.Skipped {
		t.Error("second build with the same inputs did not find the existing tag")
	}
	if first.Ref.DigestStr() != second.Ref.DigestStr() {
		t.Errorf("digests differ: %s vs %s", first.Ref.DigestStr(), second.Ref.DigestStr())
	}
	// Forced: rebuilt from scratch in a fresh cache, still the same digest.
	p, err := NewPlan(context.Background(), loadSpec(t, other, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c, err := cache.Open(t.TempDir())
	must(t, err)
	forced, err := Run(context.Background(), p, Options{Cache: c, Publisher: push.NewRegistry(), CheckExists: true, Force: true})
	must(t, err)
	if forced.Skipped || forced.Ref.DigestStr() != first.Ref.DigestStr() {
		t.Errorf("forced rebuild: skipped=%v digest %s, want a rebuild with digest %s", forced.Skipped, forced.Ref.DigestStr(), first.Ref.DigestStr())
	}

	// A code change changes the tag.
	must(t, os.WriteFile(filepath.Join(other, "app", "main.py"), []byte("print('bye')\n"), 0o644))
	changed := runBuild(t, loadSpec(t, other, yaml), time.Unix(0, 0), t.TempDir())
	if changed.Skipped || changed.Ref.DigestStr() == first.Ref.DigestStr() {
		t.Error("a code change did not give a new image")
	}
}

func TestExists(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:1", "amd64")
	dir := appDir(t)
	s := loadSpec(t, dir, "name: app\nregistry: "+reg.host+"\nbase_image: "+reg.host+"/base:1\nsource_root: app\n")
	p, err := NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	ok, err := Exists(context.Background(), p, auth.Options{})
	if err != nil || ok {
		t.Fatalf("Exists before the build = %v, %v; want false, nil", ok, err)
	}
	runBuild(t, s, time.Unix(0, 0), t.TempDir())
	ok, err = Exists(context.Background(), p, auth.Options{})
	if err != nil || !ok {
		t.Fatalf("Exists after the build = %v, %v; want true, nil", ok, err)
	}
	// A registry that cannot be reached is "cannot tell", not "absent".
	s2 := loadSpec(t, dir, "name: app\nregistry: 127.0.0.1:1\nbase_image: scratch\n")
	p2, err := NewPlan(context.Background(), s2, PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	if ok, err := Exists(context.Background(), p2, auth.Options{}); err == nil {
		t.Errorf("Exists on a dead registry = %v, nil; want an error", ok)
	}
}

func TestZstdReproducibleAndDistinct(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:1", "amd64")
	dir := appDir(t)
	yaml := "name: app\nregistry: " + reg.host + "\nbase_image: " + reg.host + "/base:1\nsource_root: app\n"
	digests := map[string]string{}
	for _, comp := range []cache.Compression{{Algorithm: "gzip"}, {Algorithm: "zstd"}} {
		for i := 0; i < 2; i++ {
			p, err := NewPlan(context.Background(), loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
			must(t, err)
			c, err := cache.Open(t.TempDir())
			must(t, err)
			res, err := Run(context.Background(), p, Options{Cache: c, Compression: comp, Publisher: push.NewRegistry(), Force: true})
			must(t, err)
			if prev, ok := digests[comp.Algorithm]; ok && prev != res.Ref.DigestStr() {
				t.Errorf("%s: two builds of the same inputs gave %s and %s", comp.Algorithm, prev, res.Ref.DigestStr())
			}
			digests[comp.Algorithm] = res.Ref.DigestStr()
			if comp.Algorithm == "zstd" {
				layers, err := res.Image.Layers()
				must(t, err)
				mt, _ := layers[len(layers)-1].MediaType()
				if !strings.Contains(string(mt), "zstd") {
					t.Errorf("zstd build's layer has media type %s", mt)
				}
			}
		}
	}
	if digests["gzip"] == digests["zstd"] {
		t.Error("gzip and zstd builds share a digest")
	}
}

func TestConcurrentBuildsShareACache(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:1", "amd64")
	cacheDir := t.TempDir()
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		dir := appDir(t)
		// Two pairs of identical trees: pairs race on the same cache keys.
		must(t, os.WriteFile(filepath.Join(dir, "app", "n.txt"), []byte(fmt.Sprint(i%2)), 0o644))
		s := loadSpec(t, dir, "name: app\nregistry: "+reg.host+"\nbase_image: "+reg.host+"/base:1\nsource_root: app\n")
		go func() {
			p, err := NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
			if err != nil {
				errs <- err
				return
			}
			c, err := cache.Open(cacheDir)
			if err != nil {
				errs <- err
				return
			}
			l, err := c.Share()
			if err != nil {
				errs <- err
				return
			}
			defer l.Release()
			_, err = Run(context.Background(), p, Options{Cache: c, Publisher: push.NewRegistry(), Force: true})
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent build: %v", err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(cacheDir, "tmp")); len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestRemoteCacheReusesLayersOnAFreshMachine(t *testing.T) {
	reg := newRegistry(t)
	parent := pushParent(t, reg.host+"/base:1", "amd64")
	dir := appDir(t)
	must(t, os.WriteFile(filepath.Join(dir, "big.bin"), bytes.Repeat([]byte("model"), 1<<16), 0o644))
	yaml := "name: app\nregistry: " + reg.host + "\nbase_image: " + reg.host + "/base:1\nsource_root: app\ncopy: {big.bin: /opt/model/}\n"
	first := runBuild(t, loadSpec(t, dir, yaml), time.Unix(0, 0), t.TempDir())
	if first.Built == 0 {
		t.Fatal("the first build built nothing")
	}
	// The default cache tag now points at the first build.
	if _, err := remote.Head(mustTag(t, reg.host+"/app:"+DefaultCacheTag)); err != nil {
		t.Fatalf("no %s tag after the first build: %v", DefaultCacheTag, err)
	}
	// Same inputs, fresh cache: the code step comes from the registry.
	reg.reset()
	p, err := NewPlan(context.Background(), loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c, err := cache.Open(t.TempDir())
	must(t, err)
	var log bytes.Buffer
	res, err := Run(context.Background(), p, Options{Cache: c, Publisher: push.NewRegistry(), Force: true, Explain: true, Log: &log})
	must(t, err)
	if res.ReusedRemote == 0 || res.Built != 0 {
		t.Errorf("fresh machine: built %d, reused %d from the registry; want everything from the registry\n%s", res.Built, res.ReusedRemote, log.String())
	}
	if res.Ref.DigestStr() != first.Ref.DigestStr() {
		t.Errorf("reusing layers changed the digest: %s vs %s", res.Ref.DigestStr(), first.Ref.DigestStr())
	}
	parentCfg, err := parent.ConfigName()
	must(t, err)
	cacheCfg, err := first.Image.ConfigName()
	must(t, err)
	if gets := reg.blobGETs(parentCfg.String(), cacheCfg.String()); len(gets) > 0 {
		t.Errorf("reusing from the registry downloaded blobs other than configs: %v", gets)
	}
	if !strings.Contains(log.String(), "explain: code") || !strings.Contains(log.String(), HowRemote) {
		t.Errorf("--explain did not say where the code layer came from:\n%s", log.String())
	}
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	must(t, err)
	return tag
}
