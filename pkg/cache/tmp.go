package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// StaleAge is how old a temporary file must be before RemoveStale considers
// it. A writer locks its temporary file right after creating it; the age
// covers that instant, so a file that is unlocked and this old has no
// writer left.
const StaleAge = time.Minute

// unlockedStaleAge is how old a temporary file that its writer does not lock
// (the parents' filesystem records, written in one go) must be before it is
// removed.
const unlockedStaleAge = time.Hour

// createTemp creates a temporary file in the cache's tmp directory and
// locks it (flock, exclusive) through a second descriptor that the caller
// releases, with unlock, only after renaming the file into place: while the
// writer lives, RemoveStale leaves the file alone, however long the write
// takes; once the writer is gone (killed), the kernel drops the lock.
func (c *Cache) createTemp(pattern string) (f *os.File, unlock func(), err error) {
	f, err = os.CreateTemp(filepath.Join(c.root, "tmp"), pattern)
	if err != nil {
		return nil, nil, err
	}
	l, err := os.Open(f.Name())
	if err == nil {
		err = syscall.Flock(int(l.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil {
			l.Close()
		}
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, nil, fmt.Errorf("lock temporary file %s: %w", f.Name(), err)
	}
	return f, func() { l.Close() }, nil
}

// StaleResult says what RemoveStale removed.
type StaleResult struct {
	Removed      int
	RemovedBytes int64
}

// RemoveStale removes the temporary files that killed builds left in the
// cache: files in tmp/ that no live writer locks and that are older than
// StaleAge, and the parents' unfinished records (parents/.rootfs-*) older
// than an hour, and the unpacking and sandbox directories (unpacked/.tmp-*)
// that no live build locks and that are older than StaleAge (removed from
// inside a user namespace, see sandbox.RemoveAll). Builds call it at their
// start, holding the shared lock (see Share): it is safe while other
// builds write their own temporaries.
func (c *Cache) RemoveStale() (StaleResult, error) {
	var res StaleResult
	now := time.Now()
	dir := filepath.Join(c.root, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("cache: remove stale temporaries: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || now.Sub(fi.ModTime()) < StaleAge {
			continue
		}
		if removeIfUnlocked(p) {
			res.Removed++
			res.RemovedBytes += fi.Size()
		}
	}
	parents := filepath.Join(c.root, "parents")
	entries, _ = os.ReadDir(parents)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".rootfs-") {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || now.Sub(fi.ModTime()) < unlockedStaleAge {
			continue
		}
		if os.Remove(filepath.Join(parents, e.Name())) == nil {
			res.Removed++
			res.RemovedBytes += fi.Size()
		}
	}
	c.removeStaleDirs(context.Background(), &res)
	return res, nil
}

// removeIfUnlocked removes p if no one holds a lock on it: its writer is
// gone. It holds the lock while removing, so no writer can take it in
// between.
func removeIfUnlocked(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false
	}
	return os.Remove(p) == nil
}
