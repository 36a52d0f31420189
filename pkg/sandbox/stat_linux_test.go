//go:build linux

package sandbox_test

import (
	"io/fs"
	"path/filepath"
	"syscall"
)

type syscallStat = syscall.Stat_t

func statT(p string, st *syscall.Stat_t) error { return syscall.Stat(p, st) }

func chownTree(t interface {
	Helper()
	Fatalf(string, ...any)
}, dir string, uid, gid int) {
	t.Helper()
	err := filepathWalk(dir, func(p string) error { return syscall.Lchown(p, uid, gid) })
	if err != nil {
		t.Fatalf("chown %s: %v", dir, err)
	}
}

func filepathWalk(dir string, fn func(string) error) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return fn(p)
	})
}
