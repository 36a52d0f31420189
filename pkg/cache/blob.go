package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Opener opens a download.
type Opener func(ctx context.Context) (io.ReadCloser, error)

// Fetch returns the path of the file whose SHA-256 is sum (hex), calling
// open to download it when the cache lacks it. The download is checked
// against sum and, when size is positive, against size before it is stored:
// a file that differs from what was promised fails, names both hashes, and is
// not cached. A cached file is checked against sum too (once per process):
// one corrupted on disk is removed, with a warning, and downloaded again.
// name says what the file is, for errors. hit reports whether the file was
// already cached.
func (c *Cache) Fetch(ctx context.Context, name, sum string, size int64, open Opener) (path string, hit bool, err error) {
	h, err := v1.NewHash("sha256:" + sum)
	if err != nil {
		return "", false, fmt.Errorf("fetch %s: bad sha256 %q", name, sum)
	}
	path = c.BlobPath(h)
	if fi, err := os.Stat(path); err == nil && (size <= 0 || fi.Size() == size) {
		if c.verify(path, h, size, name) {
			return path, true, nil
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("fetch %s: %w", name, err)
	}
	rc, err := open(ctx)
	if err != nil {
		return "", false, fmt.Errorf("fetch %s: %w", name, err)
	}
	defer rc.Close()
	f, unlock, err := c.createTemp("fetch-*")
	if err != nil {
		return "", false, fmt.Errorf("fetch %s: %w", name, err)
	}
	defer os.Remove(f.Name())
	defer unlock()
	defer f.Close()
	d := sha256.New()
	var r io.Reader = rc
	if size > 0 {
		r = io.LimitReader(rc, size+1) // one byte more reveals a file that is too long
	}
	n, err := io.Copy(io.MultiWriter(f, d), &ctxReader{ctx: ctx, r: r})
	if err != nil {
		return "", false, fmt.Errorf("fetch %s: %w", name, err)
	}
	got := hex.EncodeToString(d.Sum(nil))
	if (size > 0 && n != size) || got != sum {
		return "", false, &MismatchError{Name: name, Got: got, Want: sum, GotSize: n, WantSize: size}
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("fetch %s: %w", name, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return "", false, fmt.Errorf("fetch %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", false, fmt.Errorf("fetch %s: %w", name, err)
	}
	c.mu.Lock()
	c.verified[path] = true
	c.mu.Unlock()
	return path, false, nil
}

// Has returns the path of the file whose SHA-256 is sum (hex) if the cache
// holds it (with the given size, when positive, and that content: a corrupt
// file is removed and reported missing).
func (c *Cache) Has(sum string, size int64) (string, bool) {
	h, err := v1.NewHash("sha256:" + sum)
	if err != nil {
		return "", false
	}
	p := c.BlobPath(h)
	if !c.verify(p, h, size, "file") {
		return "", false
	}
	return p, true
}

// ctxReader stops a long copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// MismatchError is a download that is not the file Fetch was asked for: its
// size (when one was given) or its SHA-256 differs.
type MismatchError struct {
	Name              string // what the file is
	Got, Want         string // hex SHA-256s
	GotSize, WantSize int64  // WantSize is 0 when unknown
}

// Error implements error, blaming the mirror or the index, which promised
// the file.
func (e *MismatchError) Error() string {
	if e.WantSize > 0 && e.GotSize != e.WantSize {
		return fmt.Sprintf("fetch %s: got %d bytes (sha256:%s), want %d bytes (sha256:%s); the mirror or index serves a different file than it promised", e.Name, e.GotSize, e.Got, e.WantSize, e.Want)
	}
	return fmt.Sprintf("fetch %s: sha256 mismatch: got sha256:%s, want sha256:%s; the mirror or index serves a different file than it promised", e.Name, e.Got, e.Want)
}
