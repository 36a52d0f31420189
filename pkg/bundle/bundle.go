// Package bundle carries a locked build across an air gap. A bundle is an
// OCI image layout holding the parent image with all its layers, every
// .deb and wheel that kiln.lock pins (each a blob named by the sha256 the
// lock records; for a wheel kiln built, also its source distribution and
// build requirements) and the lock itself, so that `kiln build --locked
// --from-bundle DIR` on a machine that reaches nothing but its target
// registry builds the digest the connected machine would.
//
// The layout's index lists two manifests: the parent image (annotated
// dev.kiln.bundle=parent) and an artifact (artifactType
// application/vnd.kiln.bundle.v1, annotated dev.kiln.bundle=packages)
// whose layers are the lock and the package files, each titled with its
// file name, so that tools that copy or garbage-collect layouts keep them.
package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specsv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/pkg/lock"
)

// Media types and annotations of a bundle.
const (
	// ArtifactType is the artifact type of the manifest listing the lock
	// and the package files.
	ArtifactType = "application/vnd.kiln.bundle.v1"
	// LockMediaType is kiln.lock's layer.
	LockMediaType = "application/vnd.kiln.lock.v1+json"
	// DebMediaType is a .deb's layer.
	DebMediaType = "application/vnd.debian.binary-package"
	// WheelMediaType is a wheel's layer.
	WheelMediaType = "application/vnd.kiln.python-wheel+zip"
	// SdistMediaType is a Python source distribution's layer.
	SdistMediaType = "application/vnd.kiln.python-sdist"
	// KindAnnotation says what an index entry is: "parent" or "packages".
	KindAnnotation = "dev.kiln.bundle"
	// URLAnnotation records, on a package layer, the URL kiln.lock names.
	URLAnnotation = "dev.kiln.url"
)

// Fetch opens a pinned file (a .deb or a wheel, at url with the sha256
// kiln.lock records) for reading.
type Fetch func(ctx context.Context, url, sha256 string) (io.ReadCloser, error)

// Write writes the bundle of l to dir, which must not exist: the parent
// (nil for scratch) with every layer, and each pinned file got with fetch
// and checked against the sha256 the lock records. It is written under a
// temporary name beside dir and renamed into place when complete.
func Write(ctx context.Context, dir string, parent v1.Image, parentRef string, l *lock.Lock, fetch Fetch) error {
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("bundle %s: already exists; remove it or name another directory", dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	if parent != nil {
		if err := p.AppendImage(parent, layout.WithAnnotations(map[string]string{
			KindAnnotation: "parent", specsv1.AnnotationRefName: parentRef,
		})); err != nil {
			return fmt.Errorf("bundle %s: the parent image: %w", dir, err)
		}
	}
	lockBytes, err := l.Marshal()
	if err != nil {
		return err
	}
	lockHash, _, err := v1.SHA256(bytes.NewReader(lockBytes))
	if err != nil {
		return err
	}
	if err := p.WriteBlob(lockHash, io.NopCloser(bytes.NewReader(lockBytes))); err != nil {
		return fmt.Errorf("bundle %s: kiln.lock: %w", dir, err)
	}
	layers := []v1.Descriptor{{MediaType: LockMediaType, Digest: lockHash, Size: int64(len(lockBytes)),
		Annotations: map[string]string{specsv1.AnnotationTitle: lock.FileName}}}
	for _, f := range pinnedFiles(l) {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := writeFile(ctx, p, f, fetch)
		if err != nil {
			return fmt.Errorf("bundle %s: %w", dir, err)
		}
		layers = append(layers, d)
	}
	emptyHash, _, _ := v1.SHA256(bytes.NewReader([]byte("{}")))
	if err := p.WriteBlob(emptyHash, io.NopCloser(strings.NewReader("{}"))); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: ArtifactType,
		Config: v1.Descriptor{MediaType: types.OCIEmptyJSON, Digest: emptyHash, Size: 2},
		Layers: layers,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	mh, _, _ := v1.SHA256(bytes.NewReader(raw))
	if err := p.WriteBlob(mh, io.NopCloser(bytes.NewReader(raw))); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := p.AppendDescriptor(v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: mh, Size: int64(len(raw)),
		ArtifactType: ArtifactType, Annotations: map[string]string{KindAnnotation: "packages"}}); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	return nil
}

// pinned is one file kiln.lock pins.
type pinned struct {
	url, sha256, mediaType string
	size                   int64
}

// pinnedFiles lists the .debs and wheels l pins, each once, with the
// source distributions and build requirements of the wheels kiln built.
func pinnedFiles(l *lock.Lock) []pinned {
	var out []pinned
	seen := map[string]bool{}
	add := func(p pinned) {
		if !seen[p.sha256] {
			seen[p.sha256] = true
			out = append(out, p)
		}
	}
	for _, d := range l.Debs {
		add(pinned{d.URL, d.SHA256, DebMediaType, d.Size})
	}
	for _, w := range l.Wheels {
		add(pinned{w.URL, w.SHA256, WheelMediaType, w.Size})
	}
	for _, w := range l.Wheels {
		if sd := w.BuiltFrom; sd != nil && sd.SHA256 != "" {
			add(pinned{sd.URL, sd.SHA256, SdistMediaType, 0})
			for _, r := range sd.Requires {
				add(pinned{r.URL, r.SHA256, WheelMediaType, r.Size})
			}
		}
	}
	return out
}

// writeFile fetches f into p's blobs, checking its sha256, and returns its
// layer descriptor.
func writeFile(ctx context.Context, p layout.Path, f pinned, fetch Fetch) (v1.Descriptor, error) {
	h, err := v1.NewHash("sha256:" + f.sha256)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: kiln.lock's sha256 %q: %w", f.url, f.sha256, err)
	}
	rc, err := fetch(ctx, f.url, f.sha256)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("fetch %s: %w", f.url, err)
	}
	defer rc.Close()
	cr := &checkedReader{r: rc, h: sha256.New(), want: f.sha256, url: f.url}
	if err := p.WriteBlob(h, io.NopCloser(cr)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("fetch %s: %w", f.url, err)
	}
	if !cr.done {
		return v1.Descriptor{}, fmt.Errorf("fetch %s: not read to its end", f.url)
	}
	name := path.Base(f.url)
	if u, err := url.Parse(f.url); err == nil {
		name = path.Base(u.Path)
	}
	return v1.Descriptor{MediaType: types.MediaType(f.mediaType), Digest: h, Size: cr.n, Annotations: map[string]string{
		specsv1.AnnotationTitle: name, URLAnnotation: f.url,
	}}, nil
}

// checkedReader fails at EOF when what it read does not hash to want.
type checkedReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	want string
	url  string
	done bool
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err == io.EOF {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want {
			return n, fmt.Errorf("sha256 %s, but kiln.lock pins %s", got, c.want)
		}
		c.done = true
	}
	return n, err
}

// Bundle is an opened bundle.
type Bundle struct {
	dir   string
	path  layout.Path
	lock  *lock.Lock
	raw   []byte
	files map[string]v1.Hash // URL -> blob
}

// Open opens the bundle in dir.
func Open(dir string) (*Bundle, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: not an OCI layout written by kiln bundle: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	b := &Bundle{dir: dir, path: p, files: map[string]v1.Hash{}}
	for _, d := range im.Manifests {
		if d.Annotations[KindAnnotation] != "packages" {
			continue
		}
		raw, err := p.Bytes(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", dir, err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", dir, err)
		}
		for _, l := range m.Layers {
			switch l.MediaType {
			case LockMediaType:
				if b.raw, err = p.Bytes(l.Digest); err != nil {
					return nil, fmt.Errorf("bundle %s: kiln.lock: %w", dir, err)
				}
			default:
				if u := l.Annotations[URLAnnotation]; u != "" {
					b.files[u] = l.Digest
				}
			}
		}
	}
	if b.raw == nil {
		return nil, fmt.Errorf("bundle %s: holds no kiln.lock; write it with kiln bundle", dir)
	}
	if b.lock, err = lock.Parse(b.raw); err != nil {
		return nil, fmt.Errorf("bundle %s: its kiln.lock: %w", dir, err)
	}
	return b, nil
}

// Lock returns the lock the bundle was written from.
func (b *Bundle) Lock() *lock.Lock { return b.lock }

// Matches reports whether l is the lock the bundle was written from.
func (b *Bundle) Matches(l *lock.Lock) bool {
	got, err := l.Marshal()
	return err == nil && bytes.Equal(got, b.raw)
}

// Parent returns the parent image with manifest digest d.
func (b *Bundle) Parent(d v1.Hash) (v1.Image, error) {
	img, err := b.path.Image(d)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: no parent image %s: %w", b.dir, d, err)
	}
	return img, nil
}

// Open opens the pinned file with the given sha256 (lower-case hex).
func (b *Bundle) Open(sha256 string) (io.ReadCloser, error) {
	h, err := v1.NewHash("sha256:" + sha256)
	if err != nil {
		return nil, err
	}
	rc, err := b.path.Blob(h)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: no file with sha256 %s (was it written from this kiln.lock?): %w", b.dir, sha256, err)
	}
	return rc, nil
}

// Transport serves GET requests for the files the lock pins from the
// bundle; any other request fails naming its URL, so a build from a bundle
// reaches nothing but its registry.
func (b *Bundle) Transport() http.RoundTripper { return transport{b} }

type transport struct{ b *Bundle }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	u := *req.URL
	u.User = nil
	h, ok := t.b.files[u.String()]
	if !ok || req.Method != http.MethodGet {
		return nil, fmt.Errorf("%s %s: not in the bundle %s (kiln bundle carries only what kiln.lock pins)", req.Method, u.String(), t.b.dir)
	}
	rc, err := t.b.path.Blob(h)
	if err != nil {
		return nil, fmt.Errorf("%s: bundle %s: %w", u.String(), t.b.dir, err)
	}
	fi, err := os.Stat(filepath.Join(t.b.dir, "blobs", h.Algorithm, h.Hex))
	size := int64(-1)
	if err == nil {
		size = fi.Size()
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: rc, ContentLength: size, Request: req,
	}, nil
}
