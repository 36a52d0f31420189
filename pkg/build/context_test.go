package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/pkg/spec"
)

// planErr returns NewPlan's error for yaml in dir (nil when it plans).
func planErr(t *testing.T, dir, yaml string) (*Plan, error) {
	t.Helper()
	s, err := spec.Parse("kiln.yaml", dir, []byte(yaml))
	must(t, err)
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return NewPlan(context.Background(), s, PlanOptions{Epoch: time.Unix(0, 0)})
}

// TestPlanConfinesAndChecksFiles covers what only reading the files finds:
// requirements includes and local wheels outside the build context, and
// files of source_root and copy that cannot go into an image. Each is a
// *spec.Error (exit 2) naming the key.
func TestPlanConfinesAndChecksFiles(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "app")
	must(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "tree"), 0o755))
	must(t, os.WriteFile(filepath.Join(top, "outside.txt"), []byte("flask\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(top, "w-1.0-py3-none-any.whl"), []byte("wheel"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "tree", ".wh.etc"), []byte("x"), 0o644))
	must(t, syscall.Mkfifo(filepath.Join(dir, "src", "pipe"), 0o644))
	must(t, os.Symlink("../outside.txt", filepath.Join(dir, "inc.txt")))
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo.txt"), 0o644))
	req := func(name, body string) string {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
		return "requirements: " + name + "\n"
	}
	const base = "base_image: scratch\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"include outside", req("r1.txt", "-r ../outside.txt\n"), []string{"kiln.yaml:2", "requirements", "r1.txt:1", "outside the build context", "--context"}},
		{"include through a symlink", req("r2.txt", "-c inc.txt\n"), []string{"r2.txt:1", "resolves to " + filepath.Join(top, "outside.txt")}},
		{"include a named pipe", req("r4.txt", "-r fifo.txt\n"), []string{"r4.txt:1", "fifo.txt is a named pipe"}},
		{"wheel outside", req("r3.txt", "flask\n../w-1.0-py3-none-any.whl\n"), []string{"r3.txt:2", "w-1.0-py3-none-any.whl", "outside the build context"}},
		{"package wheel outside", "packages: [\"" + filepath.Join(top, "w-1.0-py3-none-any.whl") + "\"]\n", []string{"kiln.yaml:2", "packages[0]", "outside the build context"}},
		{"named pipe", "source_root: src\n", []string{"kiln.yaml:2", "source_root", "pipe", "a named pipe", ".dockerignore"}},
		{"whiteout", "copy: {tree: /opt/tree/}\n", []string{"kiln.yaml:2", "copy", ".wh.etc", "whiteout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := planErr(t, dir, base+tc.yaml)
			if err == nil {
				t.Fatalf("the plan succeeded, want an error with %q", tc.want)
			}
			var se *spec.Error
			if !errors.As(err, &se) {
				t.Errorf("error %v is %T, want *spec.Error", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestLocalWheelContentChangesTag rebuilds a local wheel under the same
// name: the tag and the python step's input change.
func TestLocalWheelContentChangesTag(t *testing.T) {
	for _, tc := range []struct{ name, yaml, file string }{
		{"packages", "packages: [./dist/x-1.0-py3-none-any.whl]\n", ""},
		{"requirements", "requirements: requirements.txt\n", "dist/x-1.0-py3-none-any.whl\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			must(t, os.MkdirAll(filepath.Join(dir, "dist"), 0o755))
			if tc.file != "" {
				must(t, os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte(tc.file), 0o644))
			}
			yaml := "name: app\nbase_image: scratch\n" + tc.yaml
			var refs, locals []string
			for _, content := range []string{"first build", "second build", "first build"} {
				must(t, os.WriteFile(filepath.Join(dir, "dist", "x-1.0-py3-none-any.whl"), []byte(content), 0o644))
				p, err := planErr(t, dir, yaml)
				must(t, err)
				refs = append(refs, p.Ref.String())
				locals = append(locals, p.LocalWheels)
			}
			if refs[0] == refs[1] || locals[0] == locals[1] || locals[0] == "" {
				t.Errorf("a rebuilt wheel kept the tag: %q, local wheels %q", refs, locals)
			}
			if refs[0] != refs[2] {
				t.Errorf("the same wheel content gave two tags: %q", refs)
			}
		})
	}
}

// pushTreeParent pushes a one-layer parent holding ents: "name/" is a
// directory, "name -> target" a symlink.
func pushTreeParent(t *testing.T, ref string, ents ...string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e, Typeflag: tar.TypeDir, Mode: 0o755}
		if n, target, ok := strings.Cut(e, " -> "); ok {
			hdr = &tar.Header{Name: n, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
		}
		must(t, tw.WriteHeader(hdr))
	}
	must(t, tw.Close())
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	must(t, err)
	img, err := mutate.AppendLayers(empty.Image, l)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	r, err := name.ParseReference(ref)
	must(t, err)
	must(t, remote.Write(r, img))
}

// TestCopyThroughParentSymlinks builds copies into /bin and /lib: on a
// merged-/usr parent they land under /usr and the layer has no bin/ or
// lib/ entry that would replace the parent's symlinks; on a parent with
// real directories they stay where they are.
func TestCopyThroughParentSymlinks(t *testing.T) {
	reg := newRegistry(t)
	pushTreeParent(t, reg.host+"/merged:1", "usr/", "usr/bin/", "usr/lib/", "bin -> usr/bin", "lib -> /usr/lib", "root/")
	pushTreeParent(t, reg.host+"/split:1", "usr/", "usr/bin/", "bin/", "lib/", "root/")
	dir := appDir(t)
	must(t, os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755))
	for _, tc := range []struct {
		parent string
		want   []string
		not    []string
	}{
		{"merged", []string{"usr/bin/tool", "usr/lib/mylib/tool", "root/main.py"}, []string{"bin/", "lib/", "bin/tool"}},
		{"split", []string{"bin/tool", "lib/mylib/tool", "root/main.py"}, []string{"usr/bin/tool"}},
	} {
		t.Run(tc.parent, func(t *testing.T) {
			s := loadSpec(t, dir, "name: tools\nregistry: "+reg.host+"\nbase_image: "+reg.host+"/"+tc.parent+":1\nsource_root: app\ncopy: [{tool: /bin/tool}, {tool: /lib/mylib/tool}]\n")
			res := runBuild(t, s, time.Unix(0, 0), t.TempDir())
			img, err := remote.Image(res.Ref)
			must(t, err)
			layers, err := img.Layers()
			must(t, err)
			rc, err := layers[len(layers)-1].Uncompressed()
			must(t, err)
			defer rc.Close()
			names := map[string]bool{}
			tr := tar.NewReader(rc)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				must(t, err)
				names[h.Name] = true
			}
			for _, w := range tc.want {
				if !names[w] {
					t.Errorf("the code layer has no %s: %v", w, names)
				}
			}
			for _, n := range tc.not {
				if names[n] {
					t.Errorf("the code layer has %s, which replaces the parent's symlink: %v", n, names)
				}
			}
		})
	}
}
