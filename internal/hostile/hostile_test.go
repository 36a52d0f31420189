package hostile

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/pkg/layer/deblayer"
	"github.com/kiln-build/kiln/pkg/layer/wheelinstall"
	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
)

var update = flag.Bool("update", false, "rewrite testdata/hostile from the generator")

// corpusDir holds the committed corpus.
const corpusDir = "../../testdata/hostile"

// TestHostileCorpus runs every archive of testdata/hostile through its real
// entry point and checks the outcome the corpus requires (see Outcome), and
// that nothing appeared on the host: not at CanaryDir, which the escaping
// entries aim at, and not in the test's working directory.
func TestHostileCorpus(t *testing.T) {
	cases, err := Corpus()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		writeCorpus(t, cases)
	}
	checkCommitted(t, cases)
	if _, err := os.Lstat(CanaryDir); err == nil {
		t.Fatalf("%s exists before the test: remove it", CanaryDir)
	}
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(corpusDir, c.File))
			if err != nil {
				t.Fatal(err)
			}
			// Work in a directory of our own, deep enough that a relative
			// escape would land in the temp dir too.
			tmp := t.TempDir()
			wd := filepath.Join(tmp, "a", "b", "c")
			if err := os.MkdirAll(wd, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Chdir(wd)
			switch c.Kind {
			case Wheel:
				checkWheel(t, c, data)
			case Deb:
				checkDeb(t, c, data)
			case Layer:
				checkLayer(t, c, data)
			case Context:
				checkContext(t, c, data)
			default:
				t.Fatalf("unknown kind %q", c.Kind)
			}
			if _, err := os.Lstat(CanaryDir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s appeared (%v): an entry escaped to the host", CanaryDir, err)
			}
			var found []string
			filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
				if p != tmp && !strings.HasPrefix(filepath.Join(wd, "x"), p+string(filepath.Separator)) {
					found = append(found, p)
				}
				return nil
			})
			if len(found) > 0 {
				t.Fatalf("files appeared on the host: %q", found)
			}
		})
	}
}

// checkError checks that err is not nil and names the archive and the
// hostile entry.
func checkError(t *testing.T, c Case, err error, archive string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s (%s) was accepted", c.File, c.What)
	}
	msg := err.Error()
	if !strings.Contains(msg, archive) {
		t.Errorf("error %q does not name the archive %q", msg, archive)
	}
	if c.Entry != "" && !strings.Contains(msg, c.Entry) {
		t.Errorf("error %q does not name the entry %q", msg, c.Entry)
	}
}

func checkWheel(t *testing.T, c Case, data []byte) {
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	_, err := wheelinstall.Install(context.Background(), tw, bytes.NewReader(data), int64(len(data)), c.File,
		wheelinstall.VenvScheme("opt/venv", "3.11"), wheelinstall.Options{})
	checkError(t, c, err, c.File)
	if out.Len() != 0 {
		t.Errorf("Install wrote %d bytes to the layer before failing", out.Len())
	}
}

// checkDeb unpacks the .deb over a merged-/usr parent.
func checkDeb(t *testing.T, c Case, data []byte) {
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	parent := deblayer.Parent{
		Symlinks: map[string]string{"bin": "usr/bin", "lib": "usr/lib", "sbin": "usr/sbin", "var/run": "/run"},
		Files: map[string][]byte{
			"etc/passwd":          []byte("root:x:0:0:root:/root:/bin/bash\n"),
			"etc/group":           []byte("root:x:0:\n"),
			"var/lib/dpkg/status": []byte("Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n"),
		},
	}
	_, err := deblayer.Write(context.Background(), tw, parent, []deblayer.Deb{{Name: c.File, R: bytes.NewReader(data), Size: int64(len(data))}}, deblayer.Options{})
	tw.Flush()
	// Whatever was written before a failure (the caller discards it) or on
	// success must stay inside the image root.
	names := layerNames(t, out.Bytes(), err == nil)
	switch c.Want {
	case Reject:
		checkError(t, c, err, c.File)
	case Confine:
		if err != nil {
			t.Fatalf("%s (%s): %v", c.File, c.What, err)
		}
		if !slices.Contains(names, c.Inside) {
			t.Errorf("layer has no %q: %q", c.Inside, names)
		}
	}
}

// layerNames lists the entries of a layer tar, checking each is a clean
// root-relative path and neither a device nor a whiteout. A partial tar
// (strict false) may end early.
func layerNames(t *testing.T, b []byte, strict bool) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF || (err != nil && !strict) {
			return names
		}
		if err != nil {
			t.Fatalf("layer tar: %v", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
			t.Errorf("layer entry %q is not a clean root-relative path", h.Name)
		}
		if strings.HasPrefix(path.Base(name), ".wh.") {
			t.Errorf("layer entry %q is a whiteout", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			t.Errorf("layer entry %q is a device or FIFO", h.Name)
		case tar.TypeSymlink:
			if !path.IsAbs(h.Linkname) && strings.HasPrefix(path.Join(path.Dir(name), h.Linkname), "../") {
				t.Errorf("layer symlink %q -> %q climbs out of the root", h.Name, h.Linkname)
			}
		}
		names = append(names, name)
	}
}

// checkLayer reads the tar as the only layer of a parent image.
func checkLayer(t *testing.T, c Case, data []byte) {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	all := func(string, int64) int64 { return rootfs.All }
	fsys, err := rootfs.Read(context.Background(), img, all)
	switch c.Want {
	case Reject:
		checkError(t, c, err, "layer 0")
		return
	case Confine:
		if err != nil {
			t.Fatalf("%s (%s): %v", c.File, c.What, err)
		}
	}
	e, err := fsys.LstatEntry(c.Inside)
	if err != nil {
		t.Fatalf("the hostile entry is not at %q inside the image: %v", c.Inside, err)
	}
	if e.IsRegular() {
		b, err := fsys.ReadFile(c.Inside)
		if err != nil || string(b) != "hostile" {
			t.Errorf("ReadFile(%q) = %q, %v; want the layer's content", c.Inside, b, err)
		}
	}
	err = fsys.Walk(func(e rootfs.Entry) error {
		rp, err := fsys.Realpath(e.Path)
		if err == nil && (path.IsAbs(rp) || rp == ".." || strings.HasPrefix(rp, "../")) {
			t.Errorf("Realpath(%q) = %q leaves the image root", e.Path, rp)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeCorpus replaces the generated files of testdata/hostile.
func writeCorpus(t *testing.T, cases []Case) {
	old, _ := filepath.Glob(filepath.Join(corpusDir, "*"))
	for _, p := range old {
		if filepath.Base(p) != "README.md" {
			os.Remove(p)
		}
	}
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if err := os.WriteFile(filepath.Join(corpusDir, c.File), c.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkCommitted fails when testdata/hostile differs from the generator's
// output.
func checkCommitted(t *testing.T, cases []Case) {
	want := map[string]bool{"README.md": true}
	for _, c := range cases {
		if want[c.File] {
			t.Fatalf("two cases write %s", c.File)
		}
		want[c.File] = true
		b, err := os.ReadFile(filepath.Join(corpusDir, c.File))
		if err != nil || !bytes.Equal(b, c.Data) {
			t.Errorf("%s is missing or stale (%v): run go test ./internal/hostile -run TestHostileCorpus -update", c.File, err)
		}
	}
	ents, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !want[e.Name()] {
			t.Errorf("%s/%s is not generated by the corpus: remove it or run -update", corpusDir, e.Name())
		}
	}
}
