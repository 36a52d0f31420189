package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestLayoutUmociPodman writes the parent image as an OCI layout and a
// docker-archive with ggcr, then unpacks the layout with umoci and runs
// both with podman.
func TestLayoutUmociPodman(t *testing.T) {
	t.Parallel()
	RequireRoot(t)
	reg := StartRegistry(t, RegistryOptions{})
	ref := ParentImage(t, reg)
	img, err := remote.Image(mustRef(t, ref), reg.RemoteOptions(t.Context())...)
	if err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	step := func(what string) {
		t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond))
		start = time.Now()
	}
	step("layout written")
	rootfs := UmociUnpack(t, dir, "v1")
	if target, err := os.Readlink(filepath.Join(rootfs, "bin")); err != nil || target != "usr/bin" {
		t.Errorf("bin in unpacked rootfs: %q, %v", target, err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "usr/bin/python3")); err != nil {
		t.Error(err)
	}

	step("umoci unpack")
	info := DecodeSkopeoInspect(t, SkopeoInspect(t, nil, "oci:"+dir+":v1"))
	if info.Architecture != "amd64" || len(info.Layers) != 1 {
		t.Errorf("skopeo inspect of layout: %+v", info)
	}

	p := NewPodman(t)
	out, err := p.RunOCI(dir, "v1", "python3", "-c", "import sys; print(sys.version_info[:2])")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "(3, 11)" {
		t.Errorf("python version in layout image: %q", out)
	}

	step("podman run oci:")
	archive := filepath.Join(t.TempDir(), "image.tar")
	tag, err := name.NewTag("kiln.test/parent:archived")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	step("docker-archive written")
	names := p.Load(archive)
	step("podman load")
	if len(names) != 1 || names[0] != "kiln.test/parent:archived" {
		t.Fatalf("podman load: %q", names)
	}
	out, err = p.Run(names[0], "sh", "-c", "echo $PATH; id -u")
	if err != nil {
		t.Fatal(err)
	}
	if out != ParentPath+"\n0\n" {
		t.Errorf("loaded image output: %q", out)
	}
}
