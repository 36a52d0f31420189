package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2ECommandsForeignPlatform: kiln as nobody builds a linux/arm64
// image whose parent is a tiny arm64 userland made here (testdata/multicall
// as /bin/sh, and as /usr/bin/uname through a symlink). Its commands run
// the parent's arm64 programs in the sandbox under qemu-user-static
// (registered in the sandbox, or the host's handler when a test has
// registered one), and the commands layer holds what uname -m said there:
// aarch64.
func TestE2ECommandsForeignPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	if runtime.GOARCH == "arm64" {
		t.Skip("arm64 is native here")
	}
	testenv.Require(t, "docker-registry", "setpriv", "qemu-aarch64-static")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := pushArm64Userland(t, reg)

	spec := "name: armcmds\nregistry: " + reg.Host + "\nbase_image: " + base + "\nplatform: linux/arm64\ncommands: [\"uname -m > /arch\"]\n"
	dir := writeSpec(t, spec, nil)
	ref, res := buildRef(t, testenv.RunOptions{Dir: dir, Home: testenv.UserDir(t)})
	show(t, "$ kiln build   (platform: linux/arm64, commands: [uname -m > /arch])", res.Stderr)
	if !strings.Contains(res.Stderr, "linux/arm64 programs under") {
		t.Errorf("the log does not say how the arm64 commands ran:\n%s", res.Stderr)
	}
	if got := commandsLayerFile(t, reg, ref, "arch"); got != "aarch64\n" {
		t.Errorf("/arch = %q, want %q (uname -m under qemu-aarch64)", got, "aarch64\n")
	}
}

// pushArm64Userland builds testdata/multicall for linux/arm64 and pushes a
// linux/arm64 image of it (/bin/sh, /usr/bin/uname -> /bin/sh) to reg,
// returning its reference by digest.
func pushArm64Userland(t *testing.T, reg *testenv.Registry) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(t.TempDir(), "multicall")
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", bin, "./cmd/kiln/testdata/multicall")
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/multicall for arm64: %v\n%s", err, out)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/sh", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(prog))},
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/uname", Typeflag: tar.TypeSymlink, Linkname: "/bin/sh", Mode: 0o777},
		{Name: "root/", Typeflag: tar.TypeDir, Mode: 0o700},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(prog); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "arm64"
	cf.Config.Env = []string{"PATH=/usr/bin:/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Host+"/arm64/userland:latest", reg.NameOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, reg.RemoteOptions(t.Context())...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().String() + "@" + d.String()
}

// commandsLayerFile returns the content of the file p (root-relative) in
// the commands layer of the image ref, and checks the image is arm64.
func commandsLayerFile(t *testing.T, reg *testenv.Registry, ref, p string) string {
	t.Helper()
	cf, tr := commandsLayer(t, reg, ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	if cf.Architecture != "arm64" {
		t.Errorf("the image's architecture is %q, want arm64", cf.Architecture)
	}
	for {
		th, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("the commands layer of %s has no %s", ref, p)
		}
		if err != nil {
			t.Fatal(err)
		}
		if th.Name == p {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}
