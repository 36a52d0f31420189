package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/push"
)

// trustBuild plans s and runs it with o (a fresh cache when o.Cache is nil),
// returning the result and the log.
func trustBuild(t *testing.T, dir, yaml string, o Options) (*Result, string, error) {
	t.Helper()
	p, err := NewPlan(context.Background(), loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	if o.Cache == nil {
		o.Cache, err = cache.Open(t.TempDir())
		must(t, err)
	}
	if o.Publisher == nil {
		o.Publisher = push.NewRegistry()
	}
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), p, o)
	return res, log.String(), err
}

// TestTagWithoutSpecHashIsRebuilt builds with tags that do not carry the
// spec hash (tag_format: latest, image: repo:v1): a code change must push a
// new image under the same tag, and an unchanged spec must still be
// skipped.
func TestTagWithoutSpecHashIsRebuilt(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:1", "amd64")
	for _, tc := range []struct{ name, naming string }{
		{"tag_format latest", "name: app\nregistry: " + reg.host + "\ntag_format: latest\n"},
		{"image with a tag", "image: " + reg.host + "/other:v1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := appDir(t)
			yaml := tc.naming + "base_image: " + reg.host + "/base:1\nsource_root: app\n"
			o := Options{CheckExists: true, UpdateCache: true}
			first, _, err := trustBuild(t, dir, yaml, o)
			must(t, err)
			same, log, err := trustBuild(t, dir, yaml, o)
			must(t, err)
			if !same.Skipped || same.Ref.DigestStr() != first.Ref.DigestStr() {
				t.Errorf("an unchanged spec was rebuilt (skipped=%v):\n%s", same.Skipped, log)
			}
			must(t, os.WriteFile(filepath.Join(dir, "app", "main.py"), []byte("print('changed')\n"), 0o644))
			changed, log, err := trustBuild(t, dir, yaml, o)
			must(t, err)
			if changed.Skipped || changed.Ref.DigestStr() == first.Ref.DigestStr() {
				t.Fatalf("a code change under a fixed tag kept the old image (skipped=%v):\n%s", changed.Skipped, log)
			}
			desc, err := remote.Head(changed.Ref.Context().Tag(tagStr(t, tc.naming)))
			must(t, err)
			if desc.Digest.String() != changed.Ref.DigestStr() {
				t.Errorf("the tag holds %s, want the new build %s", desc.Digest, changed.Ref.DigestStr())
			}
		})
	}
}

func tagStr(t *testing.T, naming string) string {
	t.Helper()
	if strings.Contains(naming, "tag_format: latest") {
		return "latest"
	}
	return "v1"
}

// evilLayer is a code layer whose /root/main.py prints EVIL.
func evilLayer(t *testing.T) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("print('EVIL')\n")
	must(t, tw.WriteHeader(&tar.Header{Name: "root/", Typeflag: tar.TypeDir, Mode: 0o755}))
	must(t, tw.WriteHeader(&tar.Header{Name: "root/main.py", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}))
	_, err := tw.Write(body)
	must(t, err)
	must(t, tw.Close())
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	must(t, err)
	return l
}

// poisonAnnotation maps the step key to the given layer digests.
func poisonAnnotation(t *testing.T, key string, digests ...string) string {
	t.Helper()
	// Hand-written, as an attacker would: only the fields kiln needs.
	var layers []map[string]string
	for _, d := range digests {
		layers = append(layers, map[string]string{"digest": d, "description": "code (source_root and copy)", "kind": string(cache.KindFiles)})
	}
	data, err := json.Marshal([]map[string]any{{"name": StepCode, "key": key, "layers": layers}})
	must(t, err)
	return string(data)
}

// lastLayer returns the digest of img's last layer.
func lastLayer(t *testing.T, img v1.Image) string {
	t.Helper()
	ls, err := img.Layers()
	must(t, err)
	d, err := ls[len(ls)-1].Digest()
	must(t, err)
	return d.String()
}

// TestPoisonedCacheFrom builds against a cache_from image whose annotation
// maps the code step's key to a layer that prints EVIL, and a local cache
// poisoned the same way. Without a pinned lock the cache is trusted (as the
// README says); a --locked build from a --with-layers lock rebuilds the
// step, naming it and both digests; --verify-cache fails, naming them.
func TestPoisonedCacheFrom(t *testing.T) {
	reg := newRegistry(t)
	parent := pushParent(t, reg.host+"/base:1", "amd64")
	dir := appDir(t)
	yaml := "name: app\nregistry: " + reg.host + "\nbase_image: " + reg.host + "/base:1\nsource_root: app\ncache_from: " + reg.host + "/poison:1\n"
	ctx := context.Background()

	// kiln lock --with-layers, before the cache is poisoned.
	p0, err := NewPlan(ctx, loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c0, err := cache.Open(t.TempDir())
	must(t, err)
	l, err := Lock(ctx, p0, Options{Cache: c0, Refresh: true, LockLayers: true})
	must(t, err)
	if len(l.Steps) != 1 || l.Steps[0].Name != StepCode || len(l.Steps[0].Layers) != 1 {
		t.Fatalf("kiln lock --with-layers pinned %+v, want the code step's layer", l.Steps)
	}
	key, good := l.Steps[0].Key, l.Steps[0].Layers[0]

	evil := evilLayer(t)
	ed, err := evil.Digest()
	must(t, err)
	bad := ed.String()
	poisoned, err := mutate.AppendLayers(parent, evil)
	must(t, err)
	poisoned = mutate.Annotations(poisoned, map[string]string{CacheAnnotation: poisonAnnotation(t, key, bad)}).(v1.Image)
	must(t, remote.Write(mustTag(t, reg.host+"/poison:1"), poisoned))

	// A local cache poisoned the same way: the step record names the EVIL layer.
	poisonLocal := func(t *testing.T) *cache.Cache {
		c, err := cache.Open(t.TempDir())
		must(t, err)
		rc, err := evil.Uncompressed()
		must(t, err)
		info, err := c.BuildLayer(strings.Repeat("ee", 32), cache.Compression{}, func(w io.Writer) error {
			_, err := io.Copy(w, rc)
			return err
		})
		must(t, err)
		rc.Close()
		must(t, c.RecordStep("x", cache.Step{Name: StepCode, Key: key, Layers: []cache.StepLayer{{LayerInfo: info, Kind: "files"}}}))
		return c
	}

	for _, tc := range []struct {
		name   string
		locked bool
		verify bool
		local  bool
		// want is the code layer the image must end with ("" for a failure).
		want    string
		wantLog []string
		wantErr []string
	}{
		{"cache_from trusted without a lock", false, false, false, bad, []string{HowRemote}, nil},
		{"cache_from --locked", true, false, false, good, []string{"cache: step code from cache_from has layer " + bad + ", kiln.lock says " + good + "; rebuilding"}, nil},
		{"cache_from --verify-cache", false, true, false, "", nil, []string{"step code", bad, good}},
		{"local cache --locked", true, false, true, good, []string{"cache: step code from the local cache has layer", "kiln.lock says " + good + "; rebuilding"}, nil},
		{"local cache --verify-cache", false, true, true, "", nil, []string{"step code", "local cache", good}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			po := PlanOptions{Epoch: time.Unix(0, 0)}
			if tc.locked {
				po.Lock = l
			}
			p, err := NewPlan(ctx, loadSpec(t, dir, yaml), po)
			must(t, err)
			var c *cache.Cache
			if tc.local {
				c = poisonLocal(t)
			} else {
				c, err = cache.Open(t.TempDir())
				must(t, err)
			}
			var log bytes.Buffer
			res, err := Run(ctx, p, Options{Cache: c, Publisher: push.NewRegistry(), Force: true, VerifyCache: tc.verify, Log: &log})
			if tc.want == "" {
				var ve *VerifyError
				if !errors.As(err, &ve) {
					t.Fatalf("Run = %v, want a VerifyError\n%s", err, log.String())
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			must(t, err)
			if got := lastLayer(t, res.Image); got != tc.want {
				t.Errorf("the image's code layer is %s, want %s\n%s", got, tc.want, log.String())
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(log.String(), w) {
					t.Errorf("the log lacks %q:\n%s", w, log.String())
				}
			}
		})
	}
}

// TestCacheFromNamesAMissingLayer builds against cache images whose
// annotation names, for the code step, a layer that is not in the image's
// manifest, or one the registry does not have: the step is built, with a
// warning naming the digest, and the build succeeds.
func TestCacheFromNamesAMissingLayer(t *testing.T) {
	reg := newRegistry(t)
	parent := pushParent(t, reg.host+"/base:1", "amd64")
	dir := appDir(t)
	yaml := "name: app\nregistry: " + reg.host + "\nbase_image: " + reg.host + "/base:1\nsource_root: app\ncache_from: " + reg.host + "/cache:1\n"
	ctx := context.Background()
	p, err := NewPlan(ctx, loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c0, err := cache.Open(t.TempDir())
	must(t, err)
	l, err := Lock(ctx, p, Options{Cache: c0, Refresh: true, LockLayers: true})
	must(t, err)
	key, good := l.Steps[0].Key, l.Steps[0].Layers[0]

	absent, err := random.Layer(1024, types.OCILayer)
	must(t, err)
	ad, err := absent.Digest()
	must(t, err)
	for _, tc := range []struct {
		name    string
		push    func(t *testing.T, tag name.Tag) string // returns the digest the annotation names
		wantLog string
	}{
		{"not in the manifest", func(t *testing.T, tag name.Tag) string {
			img := mutate.Annotations(parent, map[string]string{CacheAnnotation: poisonAnnotation(t, key, ad.String())}).(v1.Image)
			must(t, remote.Write(tag, img))
			return ad.String()
		}, "not one of its layers"},
		{"not in the registry", func(t *testing.T, tag name.Tag) string {
			img, err := mutate.AppendLayers(parent, absent)
			must(t, err)
			img = mutate.Annotations(img, map[string]string{CacheAnnotation: poisonAnnotation(t, key, ad.String())}).(v1.Image)
			// The manifest and config only: the layer's blob is never uploaded.
			raw, err := img.RawConfigFile()
			must(t, err)
			must(t, remote.WriteLayer(tag.Context(), static.NewLayer(raw, types.OCIConfigJSON)))
			must(t, remote.Put(tag, img))
			return ad.String()
		}, "cannot serve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag := mustTag(t, reg.host+"/cache:1")
			named := tc.push(t, tag)
			c, err := cache.Open(t.TempDir())
			must(t, err)
			var log bytes.Buffer
			res, err := Run(ctx, p, Options{Cache: c, Publisher: push.NewRegistry(), Force: true, Log: &log})
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, log.String())
			}
			if got := lastLayer(t, res.Image); got != good {
				t.Errorf("the code layer is %s, want the built %s", got, good)
			}
			if !strings.Contains(log.String(), "warning") || !strings.Contains(log.String(), named) || !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("the log does not warn about %s (%q):\n%s", named, tc.wantLog, log.String())
			}
		})
	}
}

// TestLockedReusesPinnedLayers checks that pinning does not defeat the
// cache: with a --with-layers lock, an honest cache_from (the kiln-cache
// tag) whose layers are the pinned ones is reused on a fresh machine.
func TestLockedReusesPinnedLayers(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:1", "amd64")
	dir := appDir(t)
	yaml := "name: app\nregistry: " + reg.host + "\nbase_image: " + reg.host + "/base:1\nsource_root: app\n"
	ctx := context.Background()
	p0, err := NewPlan(ctx, loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c0, err := cache.Open(t.TempDir())
	must(t, err)
	l, err := Lock(ctx, p0, Options{Cache: c0, Refresh: true, LockLayers: true})
	must(t, err)
	for i, want := range []struct{ built, remote int }{{1, 0}, {0, 1}} {
		p, err := NewPlan(ctx, loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0), Lock: l})
		must(t, err)
		c, err := cache.Open(t.TempDir())
		must(t, err)
		var log bytes.Buffer
		res, err := Run(ctx, p, Options{Cache: c, Publisher: push.NewRegistry(), Force: true, UpdateCache: true, Log: &log})
		must(t, err)
		if res.Built != want.built || res.ReusedRemote != want.remote || strings.Contains(log.String(), "rebuilding") {
			t.Errorf("build %d: built %d, reused %d from cache_from; want %d and %d\n%s", i+1, res.Built, res.ReusedRemote, want.built, want.remote, log.String())
		}
		if got := lastLayer(t, res.Image); got != l.Steps[0].Layers[0] {
			t.Errorf("build %d: code layer %s, kiln.lock pins %s", i+1, got, l.Steps[0].Layers[0])
		}
	}
	// --verify-cache over the honest cache: rebuilt, the same, no error.
	p, err := NewPlan(ctx, loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c, err := cache.Open(t.TempDir())
	must(t, err)
	var log bytes.Buffer
	res, err := Run(ctx, p, Options{Cache: c, Publisher: push.NewRegistry(), Force: true, VerifyCache: true, Log: &log})
	must(t, err)
	if res.Built != 1 || !strings.Contains(log.String(), "cache: step code from cache_from verified") {
		t.Errorf("--verify-cache over an honest cache: built %d\n%s", res.Built, log.String())
	}
}
