package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ent is one tar member of a test layer.
type ent struct {
	name string
	typ  byte   // tar.TypeReg when zero
	body string // content, or the link target for links
	mode int64
}

func dir(name string) ent          { return ent{name: name, typ: tar.TypeDir} }
func file(name, body string) ent   { return ent{name: name, body: body} }
func symlink(name, to string) ent  { return ent{name: name, typ: tar.TypeSymlink, body: to} }
func hardlink(name, to string) ent { return ent{name: name, typ: tar.TypeLink, body: to} }

func tarBytes(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: 0, Gid: 0}
		switch e.typ {
		case 0:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = e.body
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if e.typ == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func opener(b []byte) Opener {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func image(t *testing.T, layers ...[]ent) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, l := range layers {
		b := tarBytes(t, l...)
		layer, err := tarball.LayerFromOpener(tarball.Opener(opener(b)))
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, layer)
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// elf is a fake interpreter bigger than HeadSize.
var elf = "\x7fELF" + strings.Repeat("x", 2*HeadSize)

// testImage has the cases the tests check, in three layers.
func testImage(t *testing.T) v1.Image {
	return image(t,
		[]ent{
			dir("./"), dir("./usr/"), dir("usr/bin/"), dir("usr/lib/"), dir("usr/lib64"), dir("usr/sbin"),
			symlink("bin", "usr/bin"), symlink("lib", "usr/lib"), symlink("lib64", "usr/lib64"), symlink("sbin", "usr/sbin"),
			dir("./etc/"),
			file("./etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
			file("/etc/group", "root:x:0:\n"),
			symlink("etc/os-release", "../usr/lib/os-release"),
			file("usr/lib/os-release", "ID=debian\n"),
			dir("etc/apt/"),
			symlink("etc/apt/sources.list.d", "/somewhere"),
			file("somewhere/debian.sources", "Types: deb\n"),
			file("var/lib/dpkg/status", "Package: libc6\n"),
			file("opt/old/a", "a"), file("opt/old/b/c", "c"),
			file("opt/keep/x", "x"), file("opt/keep/y", "y"),
			file("opt/opq/lower1", "l"),
			file("usr/bin/python3.11", elf), symlink("usr/bin/python3", "python3.11"),
			symlink("loop1", "loop2"), symlink("loop2", "/loop1"),
			file("usr/lib/x86_64-linux-gnu/ld.so.2", "ld"),
			symlink("usr/lib64/ld.so", "/lib/x86_64-linux-gnu/ld.so.2"),
			symlink("usr/escape", "../../../../etc"),
			file("data/big", "hard"),
			hardlink("etc/hl", "data/big"),
			hardlink("./data/hl2", "./etc/passwd"),
		},
		[]ent{
			file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
			file("opt/keep/.wh.x", ""),
			file("opt/.wh.old", ""),
			file("opt/opq/new1", "n"),
			file("opt/opq/.wh..wh..opq", ""),
			file("lib/python3.11/_sysconfigdata__x86_64-linux-gnu.py", "build_time_vars = {}\n"),
		},
		[]ent{
			dir("opt/old/"),
			file("opt/old/new", "new"),
		},
	)
}

func TestRead(t *testing.T) {
	f, err := Read(context.Background(), testImage(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want string // content, or the error: "notexist", "loop", "notcaptured"
	}{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"}, // overridden
		{"/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"},
		{"./etc/group", "root:x:0:\n"},
		{"etc/os-release", "ID=debian\n"},                                                    // relative symlink to a file
		{"etc/apt/sources.list.d/debian.sources", "Types: deb\n"},                            // absolute symlinked dir, second pass
		{"usr/lib/python3.11/_sysconfigdata__x86_64-linux-gnu.py", "build_time_vars = {}\n"}, // written through lib
		{"lib/python3.11/_sysconfigdata__x86_64-linux-gnu.py", "build_time_vars = {}\n"},
		{"etc/hl", "hard"}, // hard link selected, target not
		{"data/hl2", "root:x:0:0:root:/root:/bin/bash\n"}, // hard link to the lower passwd
		{"usr/escape/group", "root:x:0:\n"},               // .. stops at the root
		{"../../etc/group", "root:x:0:\n"},
		{"lib64/ld.so", "notcaptured"},
		{"opt/keep/x", "notexist"},    // file whiteout
		{"opt/keep/y", "notcaptured"}, // its sibling stays
		{"opt/old/a", "notexist"},     // directory whiteout
		{"opt/old/b/c", "notexist"},   // ... not resurrected by the directory in a higher layer
		{"opt/old/new", "notcaptured"},
		{"opt/opq/lower1", "notexist"}, // opaque
		{"opt/opq/new1", "notcaptured"},
		{"loop1", "loop"},
		{"loop1/x", "loop"},
		{"bin/python3", "notcaptured"},
		{"nothere", "notexist"},
		{"etc/passwd/x", "notexist"},
	} {
		got, err := f.readFile(tc.path)
		var gotS string
		switch {
		case errors.Is(err, fs.ErrNotExist):
			gotS = "notexist"
		case errors.Is(err, ErrLoop):
			gotS = "loop"
		case errors.Is(err, ErrNotCaptured):
			gotS = "notcaptured"
		case err != nil:
			gotS = err.Error()
		default:
			gotS = string(got)
		}
		if gotS != tc.want {
			t.Errorf("ReadFile(%q) = %q, want %q", tc.path, gotS, tc.want)
		}
	}

	head, err := f.ReadHead("bin/python3", 64)
	if err != nil || len(head) != 64 || string(head[:4]) != "\x7fELF" {
		t.Errorf("ReadHead(bin/python3) = %q, %v; want 64 bytes of ELF", head, err)
	}
	if head, err := f.ReadHead("usr/bin/python3.11", 1<<20); err != nil || len(head) != HeadSize {
		t.Errorf("ReadHead(usr/bin/python3.11) = %d bytes, %v; want %d", len(head), err, HeadSize)
	}

	wantLinks := map[string]string{"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin", "loop1": "loop2", "loop2": "/loop1"}
	if got := f.TopLevelSymlinks(); !mapsEqual(got, wantLinks) {
		t.Errorf("TopLevelSymlinks() = %v, want %v", got, wantLinks)
	}

	if got, err := f.readlink("lib64/ld.so"); err != nil || got != "/lib/x86_64-linux-gnu/ld.so.2" {
		t.Errorf("Readlink(lib64/ld.so) = %q, %v", got, err)
	}
	if _, err := f.readlink("etc/passwd"); err == nil {
		t.Error("Readlink(etc/passwd) succeeded on a regular file")
	}
	if got, err := f.Realpath("lib64/ld.so"); err != nil || got != "usr/lib/x86_64-linux-gnu/ld.so.2" {
		t.Errorf("Realpath(lib64/ld.so) = %q, %v", got, err)
	}

	if e, err := f.LstatEntry("bin"); err != nil || !e.IsSymlink() || e.Path != "bin" {
		t.Errorf("Lstat(bin) = %+v, %v; want a symlink", e, err)
	}
	if e, err := f.StatEntry("bin"); err != nil || !e.IsDir() || e.Path != "bin" {
		t.Errorf("Stat(bin) = %+v, %v; want a directory", e, err)
	}
	if e, err := f.StatEntry("etc/hl"); err != nil || !e.IsRegular() || e.Size != 4 || e.Mode.Perm() != 0o644 {
		t.Errorf("Stat(etc/hl) = %+v, %v; want a 4-byte regular file", e, err)
	}
	if e, err := f.StatEntry("opt/old"); err != nil || !e.IsDir() {
		t.Errorf("Stat(opt/old) = %+v, %v", e, err)
	}

	for _, tc := range []struct{ dir, want string }{
		{"opt/opq", "opt/opq/new1"},
		{"opt/old", "opt/old/new"},
		{"opt/keep", "opt/keep/y"},
		{"etc/apt/sources.list.d", "etc/apt/sources.list.d/debian.sources"},
		{"opt", "opt/keep opt/old opt/opq"},
	} {
		ents, err := f.ReadDirEntries(tc.dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Path)
		}
		if err != nil || strings.Join(names, " ") != tc.want {
			t.Errorf("ReadDir(%q) = %v, %v; want %s", tc.dir, names, err, tc.want)
		}
	}

	for _, tc := range []struct{ pattern, want string }{
		{"etc/apt/sources.list.d/*", "etc/apt/sources.list.d/debian.sources"},
		{"usr/lib/python3*/_sysconfigdata_*.py", "usr/lib/python3.11/_sysconfigdata__x86_64-linux-gnu.py"},
		{"bin/python3*", "bin/python3 bin/python3.11"},
		{"etc/passwd", "etc/passwd"},
		{"etc/nothere", ""},
		{"*/ld.so", "lib64/ld.so"},
		{"loop1/*", ""},
	} {
		got, err := f.Glob(tc.pattern)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("Glob(%q) = %v, %v; want %q", tc.pattern, got, err, tc.want)
		}
	}
	if _, err := f.Glob("etc/["); err == nil {
		t.Error("Glob(etc/[) succeeded")
	}
	// The io/fs methods take io/fs paths only.
	for _, name := range []string{"/etc/passwd", "../../etc/group", "./etc/passwd", "etc/"} {
		if _, err := f.ReadFile(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("ReadFile(%q) = %v, want fs.ErrInvalid", name, err)
		}
		if _, err := f.Open(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want fs.ErrInvalid", name, err)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		layer []ent
		want  string
	}{
		{"hard link to nothing", []ent{hardlink("a", "b")}, "hard link a to b"},
		{"hard link to a directory", []ent{dir("d"), hardlink("a", "d")}, "hard link a to directory d"},
		{"symlink loop in a member's path", []ent{symlink("a", "b"), symlink("b", "a"), file("a/x", "")}, ErrLoop.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTars(context.Background(), nil, opener(tarBytes(t, tc.layer...)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	bad := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("not a tar, and longer than a block? no")), nil
	}
	if _, err := ReadTars(context.Background(), nil, bad); err == nil || !strings.Contains(err.Error(), "tar 0") {
		t.Errorf("reading a corrupt tar: err = %v, want it to name the tar", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadTars(ctx, nil, opener(tarBytes(t, file("a", "")))); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled read: err = %v", err)
	}
}

func TestSelect(t *testing.T) {
	keep := func(name string, size int64) int64 {
		if name == "a" {
			return 2
		}
		return 0
	}
	f, err := ReadTars(context.Background(), keep, opener(tarBytes(t, file("a", "hello"), file("b", "world"))))
	if err != nil {
		t.Fatal(err)
	}
	if h, err := f.ReadHead("a", 10); err != nil || string(h) != "he" {
		t.Errorf("ReadHead(a) = %q, %v; want he", h, err)
	}
	if _, err := f.ReadFile("a"); !errors.Is(err, ErrNotCaptured) {
		t.Errorf("ReadFile(a) err = %v, want ErrNotCaptured", err)
	}
	if _, err := f.ReadHead("b", 10); !errors.Is(err, ErrNotCaptured) {
		t.Errorf("ReadHead(b) err = %v, want ErrNotCaptured", err)
	}
}

func TestOverlay(t *testing.T) {
	ctx := context.Background()
	base, err := ReadTars(ctx, nil, opener(tarBytes(t, file("etc/a", "1"), file("etc/b", "2"))))
	if err != nil {
		t.Fatal(err)
	}
	over, err := base.Overlay(ctx, nil, opener(tarBytes(t, file("etc/a", "3"), file("etc/.wh.b", ""))))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := over.ReadFile("etc/a"); err != nil || string(got) != "3" {
		t.Errorf("overlay etc/a = %q, %v", got, err)
	}
	if _, err := over.Stat("etc/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("overlay etc/b err = %v, want not exist", err)
	}
	if got, err := base.ReadFile("etc/a"); err != nil || string(got) != "1" {
		t.Errorf("base etc/a after Overlay = %q, %v", got, err)
	}
	if _, err := base.Stat("etc/b"); err != nil {
		t.Errorf("base etc/b after Overlay: %v", err)
	}
}

// noLayers fails the test if a layer's content is read.
type noLayers struct {
	v1.Image
	t *testing.T
}

func (i noLayers) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for j, l := range ls {
		out[j] = failLayer{l, i.t}
	}
	return out, nil
}

type failLayer struct {
	v1.Layer
	t *testing.T
}

func (l failLayer) Compressed() (io.ReadCloser, error) {
	l.t.Error("a layer was read")
	return nil, errors.New("layer read")
}

func (l failLayer) Uncompressed() (io.ReadCloser, error) {
	l.t.Error("a layer was read")
	return nil, errors.New("layer read")
}

func snapshot(t *testing.T, f *FS) []string {
	t.Helper()
	var out []string
	err := f.Walk(func(e Entry) error {
		line := e.Path + " " + e.Mode.String() + " " + e.Linkname
		if b, err := f.ReadHead(e.Path, 1<<20); err == nil && e.IsRegular() {
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCached(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := testImage(t)
	first, err := Cached(ctx, dir, img, nil, "v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 {
		t.Fatalf("cache dir holds %v, want one file", files)
	}
	second, err := Cached(ctx, dir, noLayers{img, t}, nil, "v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := snapshot(t, first), snapshot(t, second); !slices.Equal(a, b) {
		t.Errorf("cached FS differs:\n%v\n%v", a, b)
	}
	if got, err := second.ReadFile("etc/apt/sources.list.d/debian.sources"); err != nil || string(got) != "Types: deb\n" {
		t.Errorf("cached ReadFile = %q, %v", got, err)
	}

	// Another selector version is a miss.
	if _, err := Cached(ctx, dir, img, nil, "v2", nil); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 2 {
		t.Errorf("cache dir holds %v after a second version, want two files", files)
	}

	// A truncated or corrupted cache file is a miss, not an error.
	for _, damage := range []func([]byte) []byte{
		func(b []byte) []byte { return b[:len(b)/2] },
		func(b []byte) []byte { c := slices.Clone(b); c[len(c)-3] ^= 0xff; return c },
		func([]byte) []byte { return nil },
	} {
		b, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(files[0], damage(b), 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := Cached(ctx, dir, img, nil, "v1", nil)
		if err != nil {
			t.Fatalf("Cached with a damaged cache file: %v", err)
		}
		if a, b := snapshot(t, first), snapshot(t, again); !slices.Equal(a, b) {
			t.Errorf("FS after a damaged cache differs")
		}
		// The damaged file was replaced.
		if _, err := Cached(ctx, dir, noLayers{img, t}, nil, "v1", nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadRealParent reads the bookworm rootfs the test environment builds,
// when it exists.
func TestReadRealParent(t *testing.T) {
	const tarPath = "../../../.cache/testenv/bookworm-python3.tar"
	if _, err := os.Stat(tarPath); err != nil {
		t.Skip("no test parent rootfs:", err)
	}
	f, err := ReadTars(context.Background(), nil, func() (io.ReadCloser, error) { return os.Open(tarPath) })
	if err != nil {
		t.Fatal(err)
	}
	if b, err := f.ReadFile("etc/os-release"); err != nil || !strings.Contains(string(b), "bookworm") {
		t.Errorf("etc/os-release = %q, %v", b, err)
	}
	if got, err := f.Realpath("bin/python3"); err != nil || got != "usr/bin/python3.11" {
		t.Errorf("Realpath(bin/python3) = %q, %v", got, err)
	}
	if l := f.TopLevelSymlinks(); l["lib"] != "usr/lib" || l["bin"] != "usr/bin" {
		t.Errorf("TopLevelSymlinks() = %v", l)
	}
	if _, err := f.ReadFile("var/lib/dpkg/status"); err != nil {
		t.Error(err)
	}
}

// TestReadAhead checks that the files selected symlinks lead to are kept
// in the first pass over a layer when the symlink comes first in the
// stream (the layer is opened once), also through a symlinked directory
// read after the symlink, and that a target read before its symlink still
// gets its content from the second pass.
func TestReadAhead(t *testing.T) {
	awk := "#!mawk\n"
	timer := "[Timer]\n"
	for _, tc := range []struct {
		name  string
		ents  []ent
		opens int
		want  map[string]string // path -> content
	}{
		{
			name:  "symlink first",
			ents:  []ent{symlink("etc/alternatives/awk", "/usr/bin/mawk"), file("usr/bin/mawk", awk)},
			opens: 1,
			want:  map[string]string{"etc/alternatives/awk": awk, "usr/bin/mawk": awk},
		},
		{
			name: "through a symlinked directory read later",
			ents: []ent{
				symlink("etc/systemd/system/timers.target.wants/x.timer", "/lib/systemd/system/x.timer"),
				symlink("lib", "usr/lib"), file("usr/lib/systemd/system/x.timer", timer),
			},
			opens: 1,
			want:  map[string]string{"etc/systemd/system/timers.target.wants/x.timer": timer},
		},
		{
			name:  "relative, through ..",
			ents:  []ent{symlink("etc/alternatives/pager", "../../bin/more"), symlink("bin", "usr/bin"), file("usr/bin/more", "more")},
			opens: 1,
			want:  map[string]string{"etc/alternatives/pager": "more"},
		},
		{
			name:  "target first",
			ents:  []ent{file("usr/bin/mawk", awk), symlink("etc/alternatives/awk", "/usr/bin/mawk")},
			opens: 2,
			want:  map[string]string{"etc/alternatives/awk": awk},
		},
		{
			name:  "a later member of the same name wins",
			ents:  []ent{symlink("etc/alternatives/awk", "/usr/bin/mawk"), file("usr/bin/mawk", "old"), file("usr/bin/mawk", awk)},
			opens: 1,
			want:  map[string]string{"etc/alternatives/awk": awk},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tarBytes(t, tc.ents...)
			opens := 0
			f, err := ReadTars(context.Background(), nil, func() (io.ReadCloser, error) {
				opens++
				return io.NopCloser(bytes.NewReader(b)), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if opens != tc.opens {
				t.Errorf("the layer was opened %d times, want %d", opens, tc.opens)
			}
			for p, want := range tc.want {
				got, err := fs.ReadFile(f, p)
				if err != nil || string(got) != want {
					t.Errorf("%s: %q, %v; want %q", p, got, err, want)
				}
			}
		})
	}
}

// TestReadSeen checks that ReadSeen tells of each file it keeps whole by
// its member name, in stream order and once per layer holding it, and of
// nothing else; and
// that Cached does not when it reads its file instead of the layers.
func TestReadSeen(t *testing.T) {
	ctx := context.Background()
	img := testImage(t)
	var got []string
	seen := func(name string, data []byte) { got = append(got, name+"="+string(data)) }
	if _, err := ReadSeen(ctx, img, nil, seen); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"etc/passwd=root:x:0:0:root:/root:/bin/bash\n",
		"etc/group=root:x:0:\n",
		"usr/lib/os-release=ID=debian\n",
		"var/lib/dpkg/status=Package: libc6\n",
		"etc/passwd=root:x:0:0:root:/root:/bin/sh\n",
		// Not lib/python3.11/_sysconfigdata_*: only through the symlink lib
		// -> usr/lib does sel keep it.
	}
	if !slices.Equal(got, want) {
		t.Errorf("seen:\n%q\nwant:\n%q", got, want)
	}

	dir := t.TempDir()
	if _, err := Cached(ctx, dir, img, nil, "v1", nil); err != nil {
		t.Fatal(err)
	}
	got = nil
	if _, err := Cached(ctx, dir, noLayers{img, t}, nil, "v1", seen); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("Cached from its file told seen of %q", got)
	}
}
