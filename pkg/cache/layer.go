package cache

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression says how layers are compressed. It is part of a layer's key:
// the same tar compressed two ways gives two digests.
type Compression struct {
	// Algorithm is "gzip" (the default) or "zstd".
	Algorithm string
	// Level is the compression level; 0 means the algorithm's default.
	Level int
}

// String returns e.g. "gzip/6", for keys and logs.
func (c Compression) String() string { return fmt.Sprintf("%s/%d", c.algorithm(), c.Level) }

func (c Compression) algorithm() string {
	if c.Algorithm == "" {
		return "gzip"
	}
	return c.Algorithm
}

// MediaType is the OCI media type of layers compressed this way.
func (c Compression) MediaType() types.MediaType {
	if c.algorithm() == "zstd" {
		return types.OCILayerZStd
	}
	return types.OCILayer
}

// Validate reports an unknown algorithm or level.
func (c Compression) Validate() error {
	switch c.algorithm() {
	case "gzip":
		if c.Level < 0 || c.Level > 9 {
			return fmt.Errorf("gzip level %d is out of range; use 1 (fastest) to 9 (smallest)", c.Level)
		}
	case "zstd":
		if c.Level < 0 || c.Level > 4 {
			return fmt.Errorf("zstd level %d is out of range; use 1 (fastest) to 4 (smallest)", c.Level)
		}
	default:
		return fmt.Errorf("unknown compression %q; use gzip or zstd", c.Algorithm)
	}
	return nil
}

func (c Compression) writer(w io.Writer) (io.WriteCloser, error) {
	if c.algorithm() == "zstd" {
		level := zstd.SpeedDefault
		if c.Level > 0 {
			level = zstd.EncoderLevel(c.Level)
		}
		// Two goroutines ("light" concurrency) give the bytes of one; more, or
		// WithConcurrentBlocks, would change them.
		return zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(2))
	}
	level := gzip.DefaultCompression
	if c.Level > 0 {
		level = c.Level
	}
	return gzip.NewWriterLevel(w, level)
}

// BuildLayer runs write to produce a layer's uncompressed tar, compressing
// and hashing it in one pass (diffID before compression, digest after) into a
// temporary file, then moves the blob into place and records it under key.
func (c *Cache) BuildLayer(key string, comp Compression, write func(io.Writer) error) (LayerInfo, error) {
	if err := comp.Validate(); err != nil {
		return LayerInfo{}, err
	}
	f, unlock, err := c.createTemp("layer-*")
	if err != nil {
		return LayerInfo{}, fmt.Errorf("cache: build layer: %w", err)
	}
	defer os.Remove(f.Name())
	defer unlock()
	defer f.Close()

	digest := sha256.New()
	// The compressors write a few hundred bytes at a time: buffered, the
	// file takes them in large writes (a 335 MiB layer made 1.4 million
	// write calls, 3.2 s of CPU, unbuffered).
	bf := bufio.NewWriterSize(f, 1<<20)
	counted := &countingWriter{w: io.MultiWriter(bf, digest)}
	zw, err := comp.writer(counted)
	if err != nil {
		return LayerInfo{}, fmt.Errorf("cache: build layer: %w", err)
	}
	diffID := sha256.New()
	// The tar is hashed and compressed in a goroutine of its own while
	// write produces the next bytes.
	pw := newPipeWriter(io.MultiWriter(zw, diffID), 8)
	if err := write(pw); err != nil {
		pw.Close()
		return LayerInfo{}, err
	}
	if err := pw.Close(); err != nil {
		return LayerInfo{}, fmt.Errorf("cache: %w", err)
	}
	if err := zw.Close(); err != nil {
		return LayerInfo{}, fmt.Errorf("cache: compress layer: %w", err)
	}
	if err := bf.Flush(); err != nil {
		return LayerInfo{}, fmt.Errorf("cache: build layer: %w", err)
	}
	if err := f.Close(); err != nil {
		return LayerInfo{}, fmt.Errorf("cache: build layer: %w", err)
	}
	info := LayerInfo{
		Digest:    toHash(digest),
		DiffID:    toHash(diffID),
		Size:      counted.n,
		MediaType: comp.MediaType(),
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return LayerInfo{}, fmt.Errorf("cache: build layer: %w", err)
	}
	if err := os.Rename(f.Name(), c.BlobPath(info.Digest)); err != nil {
		return LayerInfo{}, fmt.Errorf("cache: store layer: %w", err)
	}
	c.mu.Lock()
	c.verified[c.BlobPath(info.Digest)] = true
	c.mu.Unlock()
	if err := c.RecordLayer(key, info); err != nil {
		return LayerInfo{}, err
	}
	return info, nil
}

func toHash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Layer returns the cached layer described by info as a v1.Layer whose
// compressed bytes are read from the cache.
func (c *Cache) Layer(info LayerInfo) v1.Layer {
	return &cachedLayer{path: c.BlobPath(info.Digest), info: info}
}

type cachedLayer struct {
	path string
	info LayerInfo
}

func (l *cachedLayer) Digest() (v1.Hash, error)            { return l.info.Digest, nil }
func (l *cachedLayer) DiffID() (v1.Hash, error)            { return l.info.DiffID, nil }
func (l *cachedLayer) Size() (int64, error)                { return l.info.Size, nil }
func (l *cachedLayer) MediaType() (types.MediaType, error) { return l.info.MediaType, nil }

// Compressed returns the blob's bytes; reading fails at the end if they do
// not hash to the layer's digest, so corrupt bytes are never published
// under it.
func (l *cachedLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("cache: open layer %s: %w", l.info.Digest, err)
	}
	return &verifyingReader{f: f, want: l.info.Digest, d: sha256.New()}, nil
}

// verifyingReader hashes what it reads and fails at EOF when the bytes do
// not hash to want.
type verifyingReader struct {
	f    *os.File
	want v1.Hash
	d    hash.Hash
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.d.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.d.Sum(nil)); v.want.Algorithm != "sha256" || got != v.want.Hex {
			return n, fmt.Errorf("cache: layer %s is corrupt on disk: its content hashes to sha256:%s (%s); run the build again to rebuild it", v.want, got, v.f.Name())
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.f.Close() }

func (l *cachedLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	r, err := decompress(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cache: read layer %s: %w", l.info.Digest, err)
	}
	return r, nil
}

// decompress returns the tar stream inside rc, recognising gzip and zstd by
// their magic numbers (parent layers come in every flavour); closing it
// closes rc.
func decompress(rc io.ReadCloser) (io.ReadCloser, error) {
	br := bufio.NewReader(rc)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		g, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return &closeBoth{ReadCloser: g, f: rc}, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		d, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return &closeBoth{ReadCloser: d.IOReadCloser(), f: rc}, nil
	}
	return &closeBoth{ReadCloser: io.NopCloser(br), f: rc}, nil
}

// Image wraps img so that reading a layer fetches its compressed blob into
// the cache once (checked against its digest) and reads it from disk from
// then on: a step that reads the parent's layers twice, or a later build on
// the same parent, downloads nothing again.
func (c *Cache) Image(ctx context.Context, img v1.Image) v1.Image {
	return &localImage{Image: img, c: c, ctx: ctx}
}

type localImage struct {
	v1.Image
	c   *Cache
	ctx context.Context
}

func (li *localImage) Layers() ([]v1.Layer, error) {
	ls, err := li.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = &localLayer{Layer: l, c: li.c, ctx: li.ctx}
	}
	return out, nil
}

type localLayer struct {
	v1.Layer
	c   *Cache
	ctx context.Context
}

func (l *localLayer) Compressed() (io.ReadCloser, error) {
	d, err := l.Layer.Digest()
	if err != nil {
		return nil, err
	}
	size, err := l.Layer.Size()
	if err != nil {
		return nil, err
	}
	if d.Algorithm != "sha256" {
		return l.Layer.Compressed()
	}
	p, _, err := l.c.Fetch(l.ctx, "layer "+d.String(), d.Hex, size, func(context.Context) (io.ReadCloser, error) {
		return l.Layer.Compressed()
	})
	if err != nil {
		return nil, err
	}
	l.c.touch(p)
	return os.Open(p)
}

func (l *localLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	r, err := decompress(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return r, nil
}

type closeBoth struct {
	io.ReadCloser
	f io.Closer
}

func (c *closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if ferr := c.f.Close(); err == nil {
		err = ferr
	}
	return err
}
