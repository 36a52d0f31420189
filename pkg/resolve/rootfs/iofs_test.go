package rootfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"testing"
	"testing/fstest"
)

// TestIOFS: an FS is an io/fs file system itself (fstest.TestFS checks Open,
// ReadFile, ReadDir, Stat, Glob and ReadLink against each other), and a
// file whose content was not kept opens but does not read.
func TestIOFS(t *testing.T) {
	f, err := ReadTars(context.Background(), nil, opener(tarBytes(t,
		dir("etc/"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), file("etc/group", "root:x:0:\n"),
		dir("usr/"), dir("usr/lib/"), file("usr/lib/os-release", "ID=debian\n"),
		symlink("etc/os-release", "../usr/lib/os-release"), symlink("lib", "usr/lib"),
	)))
	if err != nil {
		t.Fatal(err)
	}
	var fsys fs.FS = f // FS is an fs.FS itself
	if err := fstest.TestFS(fsys, "etc/passwd", "etc/group", "usr/lib/os-release", "etc/os-release", "lib"); err != nil {
		t.Fatal(err)
	}
	if data, err := fs.ReadFile(fsys, "etc/os-release"); err != nil || string(data) != "ID=debian\n" {
		t.Errorf("fs.ReadFile(etc/os-release) = %q, %v", data, err)
	}
	if target, err := fs.ReadLink(fsys, "lib"); err != nil || target != "usr/lib" {
		t.Errorf("fs.ReadLink(lib) = %q, %v", target, err)
	}
	if fi, err := fs.Lstat(fsys, "lib"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("fs.Lstat(lib) = %v, %v; want a symlink", fi, err)
	}

	big, err := ReadTars(context.Background(), func(string, int64) int64 { return 0 }, opener(tarBytes(t, file("usr/bin/python3", "ELF"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadFile(big, "usr/bin/python3"); !errors.Is(err, ErrNotCaptured) {
		t.Errorf("fs.ReadFile of an uncaptured file = %v, want ErrNotCaptured", err)
	}
	// A file of which only the head was kept reads as that head, then
	// fails: Detect reads an interpreter's ELF header so.
	head, err := ReadTars(context.Background(), func(string, int64) int64 { return 2 }, opener(tarBytes(t, file("usr/bin/python3", "ELF"))))
	if err != nil {
		t.Fatal(err)
	}
	hf, err := head.Open("usr/bin/python3")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(hf); string(got) != "EL" || !errors.Is(err, ErrNotCaptured) {
		t.Errorf("reading a file of which 2 bytes were kept = %q, %v; want \"EL\", ErrNotCaptured", got, err)
	}
}
