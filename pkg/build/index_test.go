package build

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/push"
)

// pushParentIndex pushes a two-platform parent index and returns its
// reference.
func pushParentIndex(t *testing.T, reg *countingRegistry) string {
	t.Helper()
	amd := pushParent(t, reg.host+"/base:amd64", "amd64")
	arm := pushParent(t, reg.host+"/base:arm64", "arm64")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref := reg.host + "/base:multi"
	r, err := name.ParseReference(ref)
	must(t, err)
	must(t, remote.WriteIndex(r, idx))
	return ref
}

// TestBuildSeveralPlatforms: a spec of two platforms gives an OCI index
// with one image per platform, each on its platform's parent; the code
// layer, which does not depend on the platform, is built once and shared
// by digest; kiln exists is true only when the index holds every platform.
func TestBuildSeveralPlatforms(t *testing.T) {
	reg := newRegistry(t)
	base := pushParentIndex(t, reg)
	dir := appDir(t)
	s := loadSpec(t, dir, "name: app\nregistry: "+reg.host+"\nbase_image: "+base+"\nsource_root: app\nplatform: [linux/amd64, linux/arm64]\n")
	ctx := context.Background()
	p, err := NewPlan(ctx, s, PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	if len(p.Platforms) != 2 {
		t.Fatalf("%d platform plans, want 2", len(p.Platforms))
	}
	if ok, err := Exists(ctx, p, auth.Options{}); err != nil || ok {
		t.Fatalf("Exists before the build = %v, %v; want false", ok, err)
	}
	c, err := cache.Open(t.TempDir())
	must(t, err)
	lay := t.TempDir() + "/oci"
	res, err := Run(ctx, p, Options{Cache: c, Publisher: push.Multi(push.NewRegistry(), &push.Layout{Dir: lay}), UpdateCache: true})
	must(t, err)
	if res.Index == nil || res.Image != nil {
		t.Fatalf("Result: index %v image %v, want an index only", res.Index, res.Image)
	}
	if res.Built != 1 || res.ReusedLocal != 1 {
		t.Errorf("layers: %d built, %d reused locally; want the code layer built once and reused for the second platform", res.Built, res.ReusedLocal)
	}
	idx, err := remote.Index(res.Ref)
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	if len(im.Manifests) != 2 {
		t.Fatalf("the index lists %d manifests, want 2", len(im.Manifests))
	}
	if im.Annotations[SpecHashAnnotation] != p.Hash {
		t.Errorf("index spec hash annotation %q, want %q", im.Annotations[SpecHashAnnotation], p.Hash)
	}
	var code []v1.Hash
	for i, want := range []string{"amd64", "arm64"} {
		d := im.Manifests[i]
		if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != want {
			t.Errorf("manifest %d platform %v, want linux/%s", i, d.Platform, want)
			continue
		}
		img, err := idx.Image(d.Digest)
		must(t, err)
		cf, err := img.ConfigFile()
		must(t, err)
		if cf.Architecture != want {
			t.Errorf("the %s image's config says %s", want, cf.Architecture)
		}
		ls, err := img.Layers()
		must(t, err)
		if len(ls) != 3 {
			t.Fatalf("the %s image has %d layers, want the parent's 2 and the code layer", want, len(ls))
		}
		cd, err := ls[2].Digest()
		must(t, err)
		code = append(code, cd)
	}
	if len(code) == 2 && code[0] != code[1] {
		t.Errorf("code layers %s and %s differ: it does not depend on the platform", code[0], code[1])
	}
	if ok, err := Exists(ctx, p, auth.Options{}); err != nil || !ok {
		t.Errorf("Exists after the build = %v, %v; want true", ok, err)
	}
	// A spec asking for a third platform is not in that index.
	s3 := loadSpec(t, dir, "name: app\nregistry: "+reg.host+"\nbase_image: "+base+"\nsource_root: app\nplatform: [linux/amd64, linux/arm64]\ntag_format: fixed\n")
	p3, err := NewPlan(ctx, s3, PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	p3.Platforms = append(p3.Platforms, &Plan{Spec: s3.ForPlatform(v1.Platform{OS: "linux", Architecture: "riscv64"})})
	tag := p3.Ref.(name.Tag)
	if _, err := push.NewRegistry().PublishIndex(ctx, idx, tag); err != nil {
		t.Fatal(err)
	}
	if _, found, err := existing(p3, tag, nil); err != nil || found {
		t.Errorf("existing with a platform missing from the index = %v, %v; want false", found, err)
	}
	// The OCI layout holds the same index.
	lp, err := layout.FromPath(lay)
	must(t, err)
	li, err := lp.ImageIndex()
	must(t, err)
	lim, err := li.IndexManifest()
	must(t, err)
	if len(lim.Manifests) != 1 || lim.Manifests[0].Digest.String() != res.Ref.DigestStr() {
		t.Errorf("the layout lists %v, want the index %s", lim.Manifests, res.Ref.DigestStr())
	}
	if !lim.Manifests[0].MediaType.IsIndex() {
		t.Errorf("the layout's entry is a %s, want an image index", lim.Manifests[0].MediaType)
	}
	// Built again from an empty cache: the same index digest.
	c2, err := cache.Open(t.TempDir())
	must(t, err)
	res2, err := Run(ctx, p, Options{Cache: c2, Publisher: push.NewRegistry(), Refresh: true})
	must(t, err)
	if res2.Ref.DigestStr() != res.Ref.DigestStr() {
		t.Errorf("rebuilt from an empty cache: %s, want %s", res2.Ref.DigestStr(), res.Ref.DigestStr())
	}
}

// TestBuildSeveralPlatformsMissingParent: a platform the parent lacks fails
// the build naming that platform.
func TestBuildSeveralPlatformsMissingParent(t *testing.T) {
	reg := newRegistry(t)
	base := pushParentIndex(t, reg)
	s := loadSpec(t, appDir(t), "name: app\nregistry: "+reg.host+"\nbase_image: "+base+"\nsource_root: app\nplatform: linux/amd64,linux/s390x\n")
	p, err := NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c, err := cache.Open(t.TempDir())
	must(t, err)
	_, err = Run(context.Background(), p, Options{Cache: c, Publisher: push.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "platform linux/s390x") {
		t.Errorf("Run = %v, want an error naming platform linux/s390x", err)
	}
}

// TestPublishIndexToTarball: a docker archive cannot hold an index.
func TestPublishIndexToTarball(t *testing.T) {
	tag, err := name.NewTag("example.com/app:1")
	must(t, err)
	out := published{idx: empty.Index}
	_, err = out.publish(context.Background(), push.Multi(&push.Tarball{Path: t.TempDir() + "/x.tar"}), tag)
	if err == nil || !strings.Contains(err.Error(), "image index") {
		t.Errorf("publish an index to a tarball: %v, want a refusal", err)
	}
}

// TestLockSeveralPlatforms: kiln lock pins each platform's parent; a
// --locked build installs each platform from its own pins, and a lock
// without a platform's pins is refused naming it.
func TestLockSeveralPlatforms(t *testing.T) {
	reg := newRegistry(t)
	base := pushParentIndex(t, reg)
	dir := appDir(t)
	yaml := "name: app\nregistry: " + reg.host + "\nbase_image: " + base + "\nsource_root: app\nplatform: linux/amd64,linux/arm64\n"
	ctx := context.Background()
	p, err := NewPlan(ctx, loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	c, err := cache.Open(t.TempDir())
	must(t, err)
	l, err := Lock(ctx, p, Options{Cache: c})
	must(t, err)
	if l.Platform != "linux/amd64,linux/arm64" || len(l.Platforms) != 2 {
		t.Fatalf("lock platform %q with %d platform locks, want both", l.Platform, len(l.Platforms))
	}
	want := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		r, err := name.ParseReference(reg.host + "/base:" + arch)
		must(t, err)
		d, err := remote.Head(r)
		must(t, err)
		want["linux/"+arch] = d.Digest.String()
	}
	for _, sub := range l.Platforms {
		if sub.Parent.Digest != want[sub.Platform] {
			t.Errorf("%s: parent %s, want %s", sub.Platform, sub.Parent.Digest, want[sub.Platform])
		}
	}
	// The lock survives a round trip through its file format.
	data, err := l.Marshal()
	must(t, err)
	l2, err := lock.Parse(data)
	must(t, err)
	lp, err := NewPlan(ctx, loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0), Lock: l2})
	must(t, err)
	res, err := Run(ctx, lp, Options{Cache: c, Publisher: push.NewRegistry()})
	must(t, err)
	im, err := res.Index.IndexManifest()
	must(t, err)
	for _, m := range im.Manifests {
		img, err := res.Index.Image(m.Digest)
		must(t, err)
		mf, err := img.Manifest()
		must(t, err)
		plat := "linux/" + m.Platform.Architecture
		if got := mf.Annotations["org.opencontainers.image.base.digest"]; got != want[plat] {
			t.Errorf("%s image's base.digest %s, want the pinned %s", plat, got, want[plat])
		}
	}
	// A lock of one platform does not serve a spec of two.
	one := *l.Platforms[0]
	if _, err := NewPlan(ctx, loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0), Lock: &one}); err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("NewPlan with a linux/amd64 lock for two platforms: %v, want a stale-lock error naming linux/arm64", err)
	}
}
