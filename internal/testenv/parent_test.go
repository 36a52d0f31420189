package testenv

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// walkOrderLess compares tar entry names component by component, the order
// of a depth-first walk with each directory's entries sorted.
func walkOrderLess(a, b string) bool {
	ac := strings.Split(strings.TrimSuffix(a, "/"), "/")
	bc := strings.Split(strings.TrimSuffix(b, "/"), "/")
	if a == "" {
		return true
	}
	for i := 0; i < len(ac) && i < len(bc); i++ {
		if ac[i] != bc[i] {
			return ac[i] < bc[i]
		}
	}
	return len(ac) < len(bc)
}

func TestParentRootfsTar(t *testing.T) {
	p := ParentRootfsTar(t)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	found := map[string]*tar.Header{}
	prev := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !walkOrderLess(prev, h.Name) {
			t.Errorf("entries not in sorted walk order: %q after %q", h.Name, prev)
		}
		prev = h.Name
		if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
			t.Errorf("device node %s in parent tar", h.Name)
		}
		found[h.Name] = h
	}
	if h := found["bin"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin is not the merged-/usr symlink to usr/bin: %+v", h)
	}
	if h := found["usr/bin/python3"]; h == nil {
		t.Errorf("usr/bin/python3 missing")
	}
	if h := found["dev/"]; h == nil {
		t.Errorf("dev/ directory missing")
	}
}

func TestParentImageWithPodman(t *testing.T) {
	t.Parallel()
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "auth"}[auth], func(t *testing.T) {
			t.Parallel()
			reg := StartRegistry(t, RegistryOptions{Auth: auth})
			ref := ParentImage(t, reg)
			if !strings.HasPrefix(ref, reg.Host+"/debian/python3@sha256:") {
				t.Fatalf("ParentImage returned %q", ref)
			}

			info := DecodeSkopeoInspect(t, SkopeoInspect(t, reg, ref))
			if info.Os != "linux" || info.Architecture != "amd64" || len(info.Layers) != 1 {
				t.Errorf("skopeo inspect: %+v", info)
			}
			if len(info.Env) != 1 || info.Env[0] != "PATH="+ParentPath {
				t.Errorf("parent env: %q", info.Env)
			}

			p := NewPodman(t)
			p.UseRegistry(reg)
			p.Pull(ref)
			out, err := p.Run(ref, "python3", "-c", "print(6*7)")
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(out) != "42" {
				t.Fatalf("python3 printed %q, want 42", out)
			}
		})
	}
}

func TestParentIndex(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, RegistryOptions{})
	ref := ParentIndex(t, reg)
	raw := SkopeoInspect(t, reg, ref, "--raw")
	var idx struct {
		MediaType string
		Manifests []struct {
			Platform struct{ OS, Architecture string }
		}
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 2 ||
		idx.Manifests[0].Platform.Architecture != "amd64" || idx.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index: %s", raw)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		out, err := Skopeo(t, "inspect", "--tls-verify=false", "--override-arch", arch, "docker://"+reg.Host+"/"+ParentRepository+":"+ParentIndexTag)
		if err != nil {
			t.Fatal(err)
		}
		if info := DecodeSkopeoInspect(t, []byte(out)); info.Architecture != arch {
			t.Errorf("platform %s resolved to %+v", arch, info)
		}
	}
}

func TestParentRootfsTarArm64(t *testing.T) {
	p := parentRootfsTar(t, "arm64")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	found := map[string]*tar.Header{}
	var machine []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h
		if h.Name == "usr/bin/dpkg" {
			hdr := make([]byte, 20)
			if _, err := io.ReadFull(tr, hdr); err != nil {
				t.Fatalf("reading usr/bin/dpkg: %v", err)
			}
			machine = hdr[18:20]
		}
	}
	if h := found["bin"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin is not the merged-/usr symlink to usr/bin: %+v", h)
	}
	if h := found["usr/bin/python3"]; h == nil {
		t.Errorf("usr/bin/python3 missing")
	}
	// e_machine of an ELF file, little-endian: 0xb7 is EM_AARCH64.
	if len(machine) != 2 || machine[0] != 0xb7 || machine[1] != 0 {
		t.Errorf("usr/bin/dpkg is not an aarch64 ELF program: e_machine %x", machine)
	}
	if _, ok := found["usr/lib/aarch64-linux-gnu/"]; !ok {
		t.Errorf("usr/lib/aarch64-linux-gnu/ missing")
	}
}

func TestMultiArchParentWithPodman(t *testing.T) {
	t.Parallel()
	RequireQemuBinfmt(t, "arm64")
	reg := StartRegistry(t, RegistryOptions{})
	ref := MultiArchParent(t, reg)
	if !strings.HasPrefix(ref, reg.Host+"/debian/python3@sha256:") {
		t.Fatalf("MultiArchParent returned %q", ref)
	}
	raw := SkopeoInspect(t, reg, ref, "--raw")
	var idx struct {
		MediaType string
		Manifests []struct {
			MediaType string
			Platform  struct {
				OS           string
				Architecture string
				Variant      string
			}
		}
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 2 {
		t.Fatalf("index: %s", raw)
	}
	var platforms []string
	for _, m := range idx.Manifests {
		if m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
			t.Errorf("manifest media type %q", m.MediaType)
		}
		platforms = append(platforms, strings.TrimSuffix(m.Platform.OS+"/"+m.Platform.Architecture+"/"+m.Platform.Variant, "/"))
	}
	if strings.Join(platforms, ",") != "linux/amd64,linux/arm64/v8" {
		t.Errorf("index platforms %q, want linux/amd64 and linux/arm64/v8", platforms)
	}

	p := NewPodman(t)
	for _, tc := range []struct{ platform, machine string }{
		{"linux/amd64", "x86_64"},
		{"linux/arm64", "aarch64"},
	} {
		out, err := p.RunPlatform(tc.platform, ref, "python3", "-c", "import platform; print(platform.machine())")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out); got != tc.machine {
			t.Errorf("%s: platform.machine() printed %q, want %q", tc.platform, got, tc.machine)
		}
	}
}
