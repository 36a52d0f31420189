//go:build linux

package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLowerExists(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating whiteouts (mknod c 0 0) needs root")
	}
	dir := t.TempDir()
	bottom, middle, top := filepath.Join(dir, "bottom"), filepath.Join(dir, "middle"), filepath.Join(dir, "top")
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	whiteout := func(p string) {
		mkdir(filepath.Dir(p))
		if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(bottom, "etc/passwd"))
	mk(filepath.Join(bottom, "etc/gone"))
	mk(filepath.Join(bottom, "usr/share/doc/a"))
	mk(filepath.Join(bottom, "opt/file"))
	mk(filepath.Join(bottom, "var/x"))
	whiteout(filepath.Join(middle, "etc/gone"))
	mkdir(filepath.Join(middle, "usr/share/doc"))
	if err := unix.Setxattr(filepath.Join(middle, "usr/share/doc"), "user.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	mk(filepath.Join(middle, "usr/share/doc/b"))
	mk(filepath.Join(top, "var")) // a file hides the directory below
	mk(filepath.Join(top, "new"))
	exists := LowerExists([]string{bottom, middle, top})
	for p, want := range map[string]bool{
		"etc": true, "etc/passwd": true, "etc/gone": false, "etc/none": false,
		"usr/share/doc": true, "usr/share/doc/a": false, "usr/share/doc/b": true,
		"opt/file": true, "var": true, "var/x": false, "new": true, "nothing/here": false,
	} {
		if got := exists(p); got != want {
			t.Errorf("LowerExists(%q) = %v, want %v", p, got, want)
		}
	}
}
