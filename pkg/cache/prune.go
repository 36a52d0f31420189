package cache

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// Lock is a held lock on the cache directory; Release lets it go.
type Lock struct{ f *os.File }

// Release releases the lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	return l.f.Close()
}

// Share takes the cache's shared lock, held by every build: any number of
// builds share the directory, and prune waits for them.
func (c *Cache) Share() (*Lock, error) { return c.flock(syscall.LOCK_SH) }

func (c *Cache) flock(how int) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(c.root, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache: lock %s: %w", c.root, err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("cache: lock %s: %w", c.root, err)
	}
	return &Lock{f: f}, nil
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Removed      int
	RemovedBytes int64
	KeptBytes    int64
}

// Prune removes the least recently used blobs, parent records and unpacked
// layers until the cache holds at most maxSize bytes, and any temporary file
// or directory left by a killed build. It waits for running builds to finish.
func (c *Cache) Prune(maxSize int64) (PruneResult, error) {
	l, err := c.flock(syscall.LOCK_EX)
	if err != nil {
		return PruneResult{}, err
	}
	defer l.Release()
	var res PruneResult
	// Nothing in tmp/ is in use while we hold the exclusive lock.
	if entries, err := os.ReadDir(filepath.Join(c.root, "tmp")); err == nil {
		for _, e := range entries {
			os.RemoveAll(filepath.Join(c.root, "tmp", e.Name()))
		}
	}
	type file struct {
		path string
		size int64
		used time.Time
		dir  bool // an unpacked layer
	}
	var files []file
	var total int64
	for _, u := range c.unpackedEntries(context.Background()) {
		files = append(files, file{u.path, u.size, u.used, true})
		total += u.size
	}
	for _, sub := range []string{"blobs", "parents"} {
		filepath.WalkDir(filepath.Join(c.root, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			files = append(files, file{p, fi.Size(), fi.ModTime(), false})
			total += fi.Size()
			return nil
		})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].used.Before(files[j].used) })
	for _, f := range files {
		if total <= maxSize {
			break
		}
		remove := os.Remove
		if f.dir {
			remove = func(p string) error { return c.discard(context.Background(), p) }
		}
		if err := remove(f.path); err != nil {
			return res, fmt.Errorf("cache: prune %s: %w", f.path, err)
		}
		total -= f.size
		res.Removed++
		res.RemovedBytes += f.size
	}
	res.KeptBytes = total
	return res, nil
}
