package rootfs

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadTars reads two arbitrary tars as layers. ReadTars must not panic
// or hang; when it succeeds, every lookup must stay inside the tree: the
// canonical path of every entry reachable through symlinks has no ".."
// and is not absolute.
func FuzzReadTars(f *testing.F) {
	seeds := [][2][]ent{
		{{dir("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), symlink("bin", "usr/bin")}, {file("etc/.wh.passwd", ""), file("bin/sh", "x")}},
		{{symlink("a", "/etc"), file("a/passwd", "evil")}, {symlink("b", "../../../../tmp"), file("b/x", "y")}},
		{{file("x", "1"), hardlink("y", "x"), hardlink("z", "../../etc/shadow")}, {dir("d"), file("d/.wh..wh..opq", ""), symlink("loop", "loop/x")}},
		{{{name: "dev/null", typ: tar.TypeChar}, {name: "run/fifo", typ: tar.TypeFifo}, file("/abs/path", "a"), file("../../up", "u")}, nil},
		{{symlink("etc", "usr/etc"), file("etc/os-release", "ID=debian\n"), symlink("usr/lib/os-release", "../../etc/os-release")}, {symlink("usr", "/"), file("usr/usr/x", "")}},
	}
	for _, s := range seeds {
		var b [2][]byte
		for i, l := range s {
			b[i] = tarBytes(f, l...)
		}
		f.Add(b[0], b[1])
	}
	// The hostile corpus (internal/hostile).
	hostile, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "hostile", "layer-*.tar"))
	for _, p := range hostile {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, []byte(nil))
		}
	}
	f.Fuzz(func(t *testing.T, l0, l1 []byte) {
		sel := func(name string, size int64) int64 { return min(size, 1<<16) }
		fsys, err := ReadTars(context.Background(), sel, opener(l0), opener(l1))
		if err != nil {
			if !strings.Contains(err.Error(), "tar ") {
				t.Fatalf("error %q does not name the layer", err)
			}
			return
		}
		var paths []string
		if err := fsys.Walk(func(e Entry) error {
			paths = append(paths, e.Path)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if strings.HasPrefix(p, "/") || strings.Contains("/"+p+"/", "/../") {
				t.Fatalf("entry path %q is not inside the root", p)
			}
			rp, err := fsys.Realpath(p)
			if err == nil && (strings.HasPrefix(rp, "/") || strings.Contains("/"+rp+"/", "/../")) {
				t.Fatalf("Realpath(%q) = %q leaves the root", p, rp)
			}
			fsys.ReadFile(p)
			fsys.ReadDir(p)
			fsys.ReadLink(p)
		}
		fsys.Glob("*/*")
		fsys.ReadFile("etc/passwd")
	})
}
