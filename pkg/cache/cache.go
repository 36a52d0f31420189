// Package cache is kiln's local content-addressed store: built layers and
// downloaded files by SHA-256, and an index from a layer's input key to the
// layer's digest and diffID. Every write goes to a temporary file that is
// renamed into place only once complete and verified, so a killed build never
// leaves an entry that a later build trusts, and several kiln processes can
// share one directory.
package cache

import (
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
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Cache is a cache directory.
type Cache struct {
	root string

	mu sync.Mutex
	// verified holds the blobs whose content this process has hashed and
	// found right, so each is hashed once per build.
	verified map[string]bool
	warn     func(string)
}

// SetWarn sets where the cache reports what it repaired (a corrupt entry
// removed); nil discards the warnings.
func (c *Cache) SetWarn(warn func(msg string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warn = warn
}

func (c *Cache) warnf(format string, args ...any) {
	c.mu.Lock()
	warn := c.warn
	c.mu.Unlock()
	if warn != nil {
		warn(fmt.Sprintf(format, args...))
	}
}

// DefaultDir returns $XDG_CACHE_HOME/kiln, or the platform's user cache
// directory plus kiln.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kiln"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache directory: %w (set --cache-dir or XDG_CACHE_HOME)", err)
	}
	return filepath.Join(d, "kiln"), nil
}

// Open opens (creating if needed) the cache at dir.
func Open(dir string) (*Cache, error) {
	for _, sub := range []string{"blobs/sha256", "keys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("open cache %s: %w", dir, err)
		}
	}
	return &Cache{root: dir, verified: map[string]bool{}}, nil
}

// Dir returns the cache's directory.
func (c *Cache) Dir() string { return c.root }

// LayerInfo is what the cache records about a built layer.
type LayerInfo struct {
	Digest    v1.Hash         `json:"digest"`
	DiffID    v1.Hash         `json:"diffID,omitzero"`
	Size      int64           `json:"size,omitzero"`
	MediaType types.MediaType `json:"mediaType,omitzero"`
}

// BlobPath returns where the blob with the given SHA-256 digest is stored.
func (c *Cache) BlobPath(h v1.Hash) string {
	return filepath.Join(c.root, "blobs", h.Algorithm, h.Hex)
}

func (c *Cache) keyPath(key string) string {
	return filepath.Join(c.root, "keys", key[:2], key+".json")
}

// LookupLayer returns the layer recorded under key, if its blob is present
// with the recorded size.
func (c *Cache) LookupLayer(key string) (LayerInfo, bool, error) {
	var info LayerInfo
	if ok, err := c.readRecord(c.keyPath, key, &info); !ok || err != nil {
		return LayerInfo{}, false, err
	}
	if !c.present(info) {
		return LayerInfo{}, false, nil
	}
	return info, true, nil
}

// readRecord reads the JSON record for key at path(key) into v. A missing
// or unreadable record is a miss (false), never an error: a killed build
// may have left anything.
func (c *Cache) readRecord(path func(string) string, key string, v any) (bool, error) {
	if len(key) < 3 || strings.ContainsAny(key, `/\.`) {
		return false, fmt.Errorf("cache: bad key %q", key)
	}
	data, err := os.ReadFile(path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cache: read record %s: %w", key, err)
	}
	return json.Unmarshal(data, v) == nil, nil
}

// present reports whether the blob info describes is in the cache with its
// recorded size and digest, and marks it used. A blob whose content does
// not match its digest is removed (see verify).
func (c *Cache) present(info LayerInfo) bool {
	p := c.BlobPath(info.Digest)
	if !c.verify(p, info.Digest, info.Size, "layer") {
		return false
	}
	c.touch(p)
	return true
}

// verify reports whether the blob at p has the given size (when positive)
// and SHA-256 digest h. The content is hashed once per process. A blob that
// hashes to something else was corrupted on disk: it is removed, with a
// warning naming it, so that the caller rebuilds or downloads it again.
func (c *Cache) verify(p string, h v1.Hash, size int64, what string) bool {
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || (size > 0 && fi.Size() != size) {
		return false
	}
	c.mu.Lock()
	ok := c.verified[p]
	c.mu.Unlock()
	if ok {
		return true
	}
	if h.Algorithm != "sha256" {
		return false
	}
	got, hashed, err := hashFile(p)
	if err != nil {
		return false
	}
	if got != h.Hex {
		// Only the file that was hashed: another build may have put a good
		// copy in its place meanwhile.
		if now, err := os.Stat(p); err == nil && os.SameFile(now, hashed) {
			os.Remove(p)
		}
		c.warnf("cache: %s %s is corrupt on disk (its content hashes to sha256:%s); removed it from the cache", what, h, got)
		return false
	}
	c.mu.Lock()
	c.verified[p] = true
	c.mu.Unlock()
	return true
}

// hashFile returns the hex SHA-256 of the file at p, and the file's info.
func hashFile(p string) (string, os.FileInfo, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(d.Sum(nil)), fi, nil
}

// RecordLayer records that key built the layer info describes.
func (c *Cache) RecordLayer(key string, info LayerInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("cache: record %s: %w", key, err)
	}
	p := c.keyPath(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cache: record %s: %w", key, err)
	}
	return c.writeAtomic(p, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// writeAtomic writes a file through a temporary name in the cache's tmp
// directory, renaming it into place only when write succeeds.
func (c *Cache) writeAtomic(dst string, write func(io.Writer) error) error {
	f, unlock, err := c.createTemp("w-*")
	if err != nil {
		return fmt.Errorf("cache: write %s: %w", dst, err)
	}
	defer os.Remove(f.Name())
	defer unlock()
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cache: write %s: %w", dst, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("cache: write %s: %w", dst, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("cache: write %s: %w", dst, err)
	}
	return nil
}
