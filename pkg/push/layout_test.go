package push

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestLayoutReplacesOnlyALayout publishes over what may be at the layout
// path: only an absent path or an existing OCI layout is written; a file or
// a directory of other things is refused and left as it was, and no
// ".old" sibling that kiln did not make is touched.
func TestLayoutReplacesOnlyALayout(t *testing.T) {
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	tag := name.MustParseReference("example.com/app:v1").(name.Tag)
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		wantErr string
		// kept is a file (relative to the parent) that must survive.
		kept string
	}{
		{"absent", func(*testing.T, string) {}, "", ""},
		{"existing file", func(t *testing.T, dir string) {
			write(t, dir, "the spec")
		}, "is not a directory", "out"},
		{"directory with other files", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "src", "main.py"), "print(1)")
		}, "is not an OCI image layout", "out/src/main.py"},
		{"directory with a bogus oci-layout", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "oci-layout"), `{"imageLayoutVersion": "9"}`)
			write(t, filepath.Join(dir, "data"), "keep me")
		}, "is not an OCI image layout", "out/data"},
		{"symbolic link to a directory", func(t *testing.T, dir string) {
			write(t, dir+"-target/keep", "keep me")
			if err := os.Symlink(dir+"-target", dir); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link", "out-target/keep"},
		{"existing layout", func(t *testing.T, dir string) {
			old, _ := random.Image(256, 1)
			p, err := layout.Write(dir, empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AppendImage(old); err != nil {
				t.Fatal(err)
			}
			write(t, dir+".old", "not kiln's")
		}, "", "out.old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			tc.prepare(t, dir)
			_, err := (&Layout{Dir: dir}).Publish(t.Context(), img, tag)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("Publish = %v, want an error naming %s and saying %q", err, dir, tc.wantErr)
				}
				if e := CheckLayoutDir(dir); e == nil {
					t.Errorf("CheckLayoutDir accepted what Publish refused")
				}
			} else {
				if err != nil {
					t.Fatalf("Publish: %v", err)
				}
				p, err := layout.FromPath(dir)
				if err != nil {
					t.Fatal(err)
				}
				idx, err := p.ImageIndex()
				if err != nil {
					t.Fatal(err)
				}
				m, err := idx.IndexManifest()
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Manifests) != 1 || m.Manifests[0].Digest != want {
					t.Errorf("layout holds %v, want only %s", m.Manifests, want)
				}
			}
			if tc.kept != "" {
				if _, err := os.Stat(filepath.Join(parent, tc.kept)); err != nil {
					t.Errorf("%s was removed: %v", tc.kept, err)
				}
			}
			entries, _ := os.ReadDir(parent)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary %s left behind", e.Name())
				}
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
