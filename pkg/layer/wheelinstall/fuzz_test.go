package wheelinstall_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/pkg/layer/wheelinstall"
)

// FuzzInstall feeds arbitrary archives to Install. It must never panic,
// never write a path outside the scheme's directories, and on success
// write a well-formed tar whose files are those Installed reports.
func FuzzInstall(f *testing.F) {
	for _, w := range synthetic {
		f.Add(w.build(f))
	}
	w := simple(zfile{name: "pkg/__init__.py", data: "x"}, zfile{name: "pkg-1.0.data/scripts/s", data: "#!python\nx\n"})
	w.entryPoints = "[console_scripts]\na = b:c\n"
	f.Add(w.build(f))
	if b, err := os.ReadFile(filepath.Join("testdata", "simplewheel-1.0-py2.py3-none-any.whl")); err == nil {
		f.Add(b)
	}
	// The hostile corpus (internal/hostile).
	hostile, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "hostile", "*.whl"))
	for _, p := range hostile {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"pkg-1.0-py3-none-any.whl", "data_full-1.0-py3-none-any.whl", "uni_pkg-2.0-py3-none-any.whl"} {
			checkInstall(t, data, name)
		}
	})
}

// FuzzInstallWellFormed fuzzes the contents of archives that are valid
// zips with a correct RECORD, which random bytes rarely reach: entry
// names, script contents, entry points, modes.
func FuzzInstallWellFormed(f *testing.F) {
	f.Add("pkg/__init__.py", "pkg-1.0.data/scripts/s", "#!python -u\r\nx\n", "[console_scripts]\na = b:c\n[gui_scripts]\ng = m:f [x]\n", uint32(0o100755))
	f.Add("pkg/A.py", "pkg/a.py", "", "", uint32(0))
	f.Add("pkg-1.0.data/headers/h.h", "pkg-1.0.data/data/x", "#!pythonw", "[console_scripts]\npip = pip:main\neasy_install = e:m\n", uint32(0o120777))
	f.Fuzz(func(t *testing.T, name1, name2, content, entryPoints string, mode uint32) {
		if name1 == name2 {
			return
		}
		if content != "" && (strings.HasSuffix(name1, "/") || strings.HasSuffix(name2, "/")) {
			return // zip.Writer cannot store data under a directory name
		}
		w := simple(zfile{name: name1, data: content, mode: mode}, zfile{name: name2, data: content})
		w.entryPoints = entryPoints
		checkInstall(t, w.build(t), w.filename())
	})
}

// checkInstall installs data as name and checks the result's invariants.
func checkInstall(t *testing.T, data []byte, name string) {
	scheme := wheelinstall.VenvScheme("opt/venv", "3.11")
	{
		{
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			inst, err := wheelinstall.Install(context.Background(), tw, bytes.NewReader(data), int64(len(data)), name, scheme,
				wheelinstall.Options{Epoch: testEpoch, Requested: true, Limits: wheelinstall.Limits{MaxTotalSize: 64 << 20}})
			if err != nil {
				if buf.Len() != 0 {
					t.Fatalf("%s: wrote %d bytes before failing: %v", name, buf.Len(), err)
				}
				if !strings.Contains(err.Error(), name) {
					t.Fatalf("error %q does not name the wheel", err)
				}
				return
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			if !sort.StringsAreSorted(inst.Files) {
				t.Fatalf("Files not sorted: %q", inst.Files)
			}
			files := map[string]bool{}
			tr := tar.NewReader(&buf)
			var size int64
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(h.Name, "opt/") || strings.Contains("/"+h.Name+"/", "/../") || strings.Contains(h.Name, "//") {
					t.Fatalf("entry %q escapes the scheme", h.Name)
				}
				if h.Typeflag == tar.TypeReg {
					n, err := io.Copy(io.Discard, tr)
					if err != nil || n != h.Size {
						t.Fatalf("%s: read %d of %d: %v", h.Name, n, h.Size, err)
					}
					files[h.Name] = true
					size += h.Size
				} else if h.Typeflag != tar.TypeDir {
					t.Fatalf("%s: type %c", h.Name, h.Typeflag)
				}
			}
			if len(files) != len(inst.Files) || size != inst.Size {
				t.Fatalf("tar has %d files, %d bytes; Installed says %d, %d", len(files), size, len(inst.Files), inst.Size)
			}
		}
	}
}
