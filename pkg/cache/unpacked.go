package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/sandbox"
)

// unpackedFormat names the on-disk format of unpacked layers (that of
// sandbox.Unpack); it is part of every entry's key, so a kiln that unpacks
// differently never trusts an older entry.
const unpackedFormat = "kiln-unpacked-v1"

// The layout of the cache's unpacked layers: unpacked/KEY/meta.json and
// unpacked/KEY/tree (the layer's files), where KEY is the diffID's hex and
// a hash of the id map; temporaries (unpacking, sandbox scratch, entries
// being pruned) are unpacked/.tmp-*, each locked (flock on the directory)
// by its live owner; unpacked/.lock-KEY serialises the unpacking of KEY.
const (
	unpackedDir  = "unpacked"
	unpackedMeta = "meta.json"
	unpackedTree = "tree"
	tmpDirPrefix = ".tmp-"
	keyLockPfx   = ".lock-"
)

// unpackedRecord is an entry's meta.json; a temporary directory has one
// from its start, so that whoever removes it knows the id map its files
// were written with.
type unpackedRecord struct {
	Format string `json:"format"`
	DiffID string `json:"diffID,omitempty"`
	// IDs is the map the tree was written with (its files' host owners).
	IDs sandbox.IDMap `json:"ids"`
	// Size is the layer's uncompressed size, which stands for the tree's
	// size on disk (the tree may hold directories the caller cannot read).
	Size int64 `json:"size"`
}

// unpackedKey is the entry name for a layer unpacked with ids.
func unpackedKey(diffID v1.Hash, ids sandbox.IDMap) string {
	h := sha256.Sum256([]byte(unpackedFormat + "\n" + ids.String()))
	return diffID.Hex + "-" + hex.EncodeToString(h[:8])
}

// Unpacked returns the directory holding layer's files unpacked for the
// sandbox with ids (see sandbox.Unpack: overlayfs whiteouts, owners through
// the map), unpacking it on first use. The directory is shared by every
// build using the cache and must be used read-only, as an overlay lower,
// while the cache's shared lock (Share) is held.
//
// Each layer is unpacked once per diffID and id map: into a temporary
// directory beside the entry, checked against the diffID, then renamed into
// place, so a killed or failed unpacking never leaves an entry that a later
// build trusts (RemoveStale and Prune remove its remains). Concurrent
// builds wait for each other's unpacking of the same layer instead of
// repeating it.
func (c *Cache) Unpacked(ctx context.Context, layer v1.Layer, ids sandbox.IDMap) (string, error) {
	if ids.IsZero() {
		return "", errors.New("cache: unpack a layer: no id map (use the one the sandbox runs with)")
	}
	diffID, err := layer.DiffID()
	if err != nil {
		return "", fmt.Errorf("cache: unpack a layer: %w", err)
	}
	if diffID.Algorithm != "sha256" || len(diffID.Hex) != 64 {
		return "", fmt.Errorf("cache: unpack layer %s: not a sha256 diffID", diffID)
	}
	key := unpackedKey(diffID, ids)
	base := filepath.Join(c.root, unpackedDir)
	final := filepath.Join(base, key)
	if c.unpackedHit(final, key, diffID) {
		return filepath.Join(final, unpackedTree), nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("cache: unpack layer %s: %w", diffID, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(base, keyLockPfx+key))
	if err != nil {
		return "", fmt.Errorf("cache: unpack layer %s: %w", diffID, err)
	}
	defer unlock()
	if c.unpackedHit(final, key, diffID) { // another build unpacked it meanwhile
		return filepath.Join(final, unpackedTree), nil
	}
	if _, err := os.Lstat(final); err == nil {
		// Not an entry this kiln trusts (no or a bad record): replace it.
		if err := c.discard(ctx, final); err != nil {
			return "", fmt.Errorf("cache: unpack layer %s: remove the unusable %s: %w", diffID, final, err)
		}
	}
	tmp, err := c.newTempDir("unpack-", ids)
	if err != nil {
		return "", fmt.Errorf("cache: unpack layer %s: %w", diffID, err)
	}
	done := false
	defer func() {
		if !done {
			// Removing what was unpacked must not depend on a context that
			// may be why the unpacking failed.
			sandbox.RemoveAll(context.WithoutCancel(ctx), tmp.dir, ids)
		}
		tmp.unlock()
	}()
	size, err := unpackInto(ctx, layer, diffID, filepath.Join(tmp.dir, unpackedTree), ids)
	if err != nil {
		return "", fmt.Errorf("cache: unpack layer %s: %w", diffID, err)
	}
	rec := unpackedRecord{Format: unpackedFormat, DiffID: diffID.String(), IDs: ids, Size: size}
	if err := writeJSON(filepath.Join(tmp.dir, unpackedMeta), rec); err != nil {
		return "", fmt.Errorf("cache: unpack layer %s: %w", diffID, err)
	}
	if err := os.Rename(tmp.dir, final); err != nil {
		return "", fmt.Errorf("cache: unpack layer %s: %w", diffID, err)
	}
	done = true
	return filepath.Join(final, unpackedTree), nil
}

// unpackedHit reports whether final is a complete entry for key, and marks
// it used.
func (c *Cache) unpackedHit(final, key string, diffID v1.Hash) bool {
	var rec unpackedRecord
	p := filepath.Join(final, unpackedMeta)
	b, err := os.ReadFile(p)
	if err != nil || json.Unmarshal(b, &rec) != nil || rec.Format != unpackedFormat || rec.DiffID != diffID.String() || unpackedKey(diffID, rec.IDs) != key {
		return false
	}
	if fi, err := os.Lstat(filepath.Join(final, unpackedTree)); err != nil || !fi.IsDir() {
		return false
	}
	c.touch(p)
	return true
}

// unpackInto unpacks layer's tar into dir (created here) and checks that
// it hashes to diffID; it returns the tar's size.
func unpackInto(ctx context.Context, layer v1.Layer, diffID v1.Hash, dir string, ids sandbox.IDMap) (int64, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, err
	}
	rc, err := layer.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	d := sha256.New()
	counted := &countingWriter{w: d}
	r := io.TeeReader(&ctxReader{ctx: ctx, r: rc}, counted)
	if err := sandbox.Unpack(ctx, r, dir, ids); err != nil {
		return 0, err
	}
	// What follows the tar's end (its zero blocks, padding) counts too.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return 0, fmt.Errorf("read the layer: %w", err)
	}
	if got := hex.EncodeToString(d.Sum(nil)); got != diffID.Hex {
		return 0, fmt.Errorf("its content hashes to sha256:%s, not to its diffID", got)
	}
	return counted.n, nil
}

// Scratch is a sandbox run's upper and work directories: fresh, empty, and
// on the cache's file system, as overlayfs needs them next to each other.
type Scratch struct {
	// Upper receives the command's changes (sandbox.Config.Upper).
	Upper string
	// Work is the overlay's work directory (sandbox.Config.Work).
	Work string
	tmp  *tempDir
	ids  sandbox.IDMap
}

// NewScratch creates a Scratch in the cache for a run with ids. The caller
// holds the cache's shared lock while it is in use and calls Remove when
// done; one left by a killed build is removed by RemoveStale or Prune.
func (c *Cache) NewScratch(ids sandbox.IDMap) (*Scratch, error) {
	if err := os.MkdirAll(filepath.Join(c.root, unpackedDir), 0o755); err != nil {
		return nil, fmt.Errorf("cache: sandbox directories: %w", err)
	}
	tmp, err := c.newTempDir("run-", ids)
	if err != nil {
		return nil, fmt.Errorf("cache: sandbox directories: %w", err)
	}
	s := &Scratch{Upper: filepath.Join(tmp.dir, "upper"), Work: filepath.Join(tmp.dir, "work"), tmp: tmp, ids: ids}
	for _, d := range []string{s.Upper, s.Work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(tmp.dir)
			tmp.unlock()
			return nil, fmt.Errorf("cache: sandbox directories: %w", err)
		}
	}
	return s, nil
}

// Remove removes the scratch directories and what the command left in
// them (with sandbox.RemoveAll: files of subordinate owners included).
func (s *Scratch) Remove(ctx context.Context) error {
	defer s.tmp.unlock()
	if err := sandbox.RemoveAll(ctx, s.tmp.dir, s.ids); err != nil {
		return fmt.Errorf("cache: remove sandbox directories: %w", err)
	}
	return nil
}

// tempDir is a temporary directory under unpacked/, locked while its owner
// lives.
type tempDir struct {
	dir  string
	lock *os.File
}

func (t *tempDir) unlock() { t.lock.Close() }

// newTempDir creates unpacked/.tmp-PREFIX*, locks it and records ids in it
// (for whoever removes it after a crash).
func (c *Cache) newTempDir(prefix string, ids sandbox.IDMap) (*tempDir, error) {
	dir, err := os.MkdirTemp(filepath.Join(c.root, unpackedDir), tmpDirPrefix+prefix+"*")
	if err != nil {
		return nil, err
	}
	l, err := os.Open(dir)
	if err == nil {
		if err = syscall.Flock(int(l.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			l.Close()
		}
	}
	if err == nil {
		if err = os.Chmod(dir, 0o755); err != nil {
			l.Close()
		}
	}
	if err == nil {
		if err = writeJSON(filepath.Join(dir, unpackedMeta), unpackedRecord{Format: unpackedFormat, IDs: ids}); err != nil {
			l.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("lock temporary directory %s: %w", dir, err)
	}
	return &tempDir{dir: dir, lock: l}, nil
}

// writeJSON writes v to the new file p.
func writeJSON(p string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// lockFile takes an exclusive flock on the file p (created if needed),
// waiting for its holder until ctx is done.
func lockFile(ctx context.Context, p string) (unlock func(), err error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readUnpackedRecord returns the id map recorded in dir, or the caller's
// (HostIDMap) when there is none.
func readUnpackedRecord(dir string) unpackedRecord {
	var rec unpackedRecord
	if b, err := os.ReadFile(filepath.Join(dir, unpackedMeta)); err == nil {
		json.Unmarshal(b, &rec)
	}
	if rec.IDs.IsZero() {
		rec.IDs, _ = sandbox.HostIDMap()
	}
	return rec
}

// discard removes an unpacked entry or temporary directory: renamed first
// to a temporary name (so that no half-removed entry is ever found under
// its key), then removed from inside a user namespace with the id map its
// files were written with.
func (c *Cache) discard(ctx context.Context, dir string) error {
	victim := dir
	if !strings.HasPrefix(filepath.Base(dir), tmpDirPrefix) {
		victim = filepath.Join(filepath.Dir(dir), fmt.Sprintf("%sgone-%d-%s", tmpDirPrefix, time.Now().UnixNano(), filepath.Base(dir)))
		if err := os.Rename(dir, victim); err != nil {
			return err
		}
	}
	rec := readUnpackedRecord(victim)
	err := sandbox.RemoveAll(ctx, victim, rec.IDs)
	if err != nil {
		// The map may have changed (a new subordinate range): try the
		// caller's current one, then plain removal (root, or files the
		// caller owns).
		if ids, _ := sandbox.HostIDMap(); ids.String() != rec.IDs.String() && sandbox.RemoveAll(ctx, victim, ids) == nil {
			return nil
		}
		if os.RemoveAll(victim) == nil {
			return nil
		}
	}
	return err
}

// removeStaleDirs removes the temporary directories under unpacked/ that
// no live owner locks and that are older than StaleAge.
func (c *Cache) removeStaleDirs(ctx context.Context, res *StaleResult) {
	base := filepath.Join(c.root, unpackedDir)
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	now := time.Now()
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tmpDirPrefix) {
			continue
		}
		p := filepath.Join(base, e.Name())
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < StaleAge {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		// Holding the lock while removing: no owner can take it meanwhile.
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			size := readUnpackedRecord(p).Size
			if err := c.discard(ctx, p); err == nil {
				res.Removed++
				res.RemovedBytes += size
			} else {
				c.warnf("cache: cannot remove %s, left by a killed build: %v", p, err)
			}
		}
		f.Close()
	}
}

// unpackedEntry is one unpacked layer, for Prune.
type unpackedEntry struct {
	path string
	size int64
	used time.Time
}

// unpackedEntries lists the unpacked layers, and removes the temporaries
// and key locks (Prune holds the exclusive lock: nothing is in use).
func (c *Cache) unpackedEntries(ctx context.Context) []unpackedEntry {
	base := filepath.Join(c.root, unpackedDir)
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	var out []unpackedEntry
	for _, e := range entries {
		p := filepath.Join(base, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), keyLockPfx):
			os.Remove(p)
		case strings.HasPrefix(e.Name(), tmpDirPrefix):
			if err := c.discard(ctx, p); err != nil {
				c.warnf("cache: cannot remove %s: %v", p, err)
			}
		case e.IsDir():
			fi, err := os.Stat(filepath.Join(p, unpackedMeta))
			if err != nil {
				if err := c.discard(ctx, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					c.warnf("cache: cannot remove %s: %v", p, err)
				}
				continue
			}
			out = append(out, unpackedEntry{path: p, size: readUnpackedRecord(p).Size, used: fi.ModTime()})
		}
	}
	return out
}
