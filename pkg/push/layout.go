package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	specsv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/pkg/atomicfile"
)

// Layout writes an OCI image layout directory (readable by skopeo, podman
// and umoci as oci:DIR:TAG). The layout is written beside Dir under a
// temporary name and renamed over Dir when complete, so a failed build never
// leaves a half-written layout. Dir must be absent or an OCI image layout
// (see CheckLayoutDir): kiln never removes anything else.
type Layout struct {
	Dir string
}

// Publish implements Interface. The image is annotated with its tag
// (org.opencontainers.image.ref.name) in the layout's index.
func (l *Layout) Publish(ctx context.Context, img v1.Image, tag name.Tag) (name.Digest, error) {
	return l.write(ctx, img, tag, func(p layout.Path, opt layout.Option) error { return p.AppendImage(img, opt) })
}

// PublishIndex implements IndexPublisher: the layout's index.json lists
// the image index (annotated with its tag), which lists each platform's
// image.
func (l *Layout) PublishIndex(ctx context.Context, idx v1.ImageIndex, tag name.Tag) (name.Digest, error) {
	return l.write(ctx, idx, tag, func(p layout.Path, opt layout.Option) error { return p.AppendIndex(idx, opt) })
}

// write writes a new layout holding what add appends (v, under tag) beside
// Dir, then renames it over Dir.
func (l *Layout) write(ctx context.Context, v interface{ Digest() (v1.Hash, error) }, tag name.Tag, add func(layout.Path, layout.Option) error) (name.Digest, error) {
	dir := filepath.Clean(l.Dir)
	if err := CheckLayoutDir(dir); err != nil {
		return name.Digest{}, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return name.Digest{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return name.Digest{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return name.Digest{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return name.Digest{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	if err := ctx.Err(); err != nil {
		return name.Digest{}, err
	}
	if err := add(p, layout.WithAnnotations(map[string]string{
		specsv1.AnnotationRefName: tag.TagStr(),
	})); err != nil {
		return name.Digest{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	if err := replaceDir(tmp, dir); err != nil {
		return name.Digest{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	d, err := v.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return tag.Context().Digest(d.String()), nil
}

// CheckLayoutDir reports whether dir may be written as an OCI image layout:
// it must be absent or already an OCI image layout (a directory holding an
// oci-layout file that says so). kiln replaces a layout, never anything
// else: a file, or a directory of other things, at dir is an error that
// names it.
func CheckLayoutDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("OCI layout %s: it is a symbolic link; kiln replaces only an OCI image layout directory: name the directory itself", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("OCI layout %s: it exists and is not a directory; kiln replaces only an OCI image layout: remove it or name another directory", dir)
	}
	if !isLayout(dir) {
		return fmt.Errorf("OCI layout %s: the directory exists and is not an OCI image layout (no valid oci-layout file); kiln replaces only an OCI image layout: remove it or name another directory", dir)
	}
	return nil
}

// isLayout reports whether dir holds an oci-layout file with an
// imageLayoutVersion.
func isLayout(dir string) bool {
	f, err := os.Open(filepath.Join(dir, specsv1.ImageLayoutFile))
	if err != nil {
		return false
	}
	defer f.Close()
	var l specsv1.ImageLayout
	if err := json.NewDecoder(io.LimitReader(f, 4096)).Decode(&l); err != nil {
		return false
	}
	return l.Version == specsv1.ImageLayoutVersion
}

// replaceDir renames src over dst. An existing dst (checked to be a layout)
// is first renamed to a fresh temporary name beside it and removed only once
// src is in place; nothing else is ever removed.
func replaceDir(src, dst string) error {
	if err := CheckLayoutDir(dst); err != nil {
		return err
	}
	if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(src, dst)
	}
	// The old layout moves into a directory of our own, removed at the end.
	aside, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".old-")
	if err != nil {
		return err
	}
	old := filepath.Join(aside, "layout")
	if err := os.Rename(dst, old); err != nil {
		os.Remove(aside)
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		os.Rename(old, dst)
		os.Remove(aside)
		return err
	}
	return os.RemoveAll(aside)
}

// Attach implements Attacher: the artifact's blobs join the layout, and its
// manifest is listed in the layout's index.json beside the image it refers
// to (the index is replaced atomically).
func (l *Layout) Attach(ctx context.Context, artifact v1.Image, subject name.Digest) error {
	dir := filepath.Clean(l.Dir)
	if !isLayout(dir) {
		return fmt.Errorf("attach to %s in %s: not an OCI layout (publish the image first)", subject, dir)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return fmt.Errorf("attach to %s in %s: %w", subject, dir, err)
	}
	if err := p.WriteImage(artifact); err != nil {
		return fmt.Errorf("attach to %s in %s: %w", subject, dir, err)
	}
	desc, err := partial.Descriptor(artifact)
	if err != nil {
		return fmt.Errorf("attach to %s in %s: %w", subject, dir, err)
	}
	if m, err := artifact.Manifest(); err == nil {
		desc.ArtifactType = m.ArtifactType
	}
	index := filepath.Join(dir, "index.json")
	raw, err := os.ReadFile(index)
	if err != nil {
		return fmt.Errorf("attach to %s in %s: %w", subject, dir, err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		return fmt.Errorf("attach to %s in %s: read index.json: %w", subject, dir, err)
	}
	for _, m := range im.Manifests {
		if m.Digest == desc.Digest {
			return nil
		}
	}
	im.Manifests = append(im.Manifests, *desc)
	out, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(index, atomicfile.Options{}, func(w io.Writer) error {
		_, err := w.Write(out)
		return err
	}); err != nil {
		return fmt.Errorf("attach to %s in %s: %w", subject, dir, err)
	}
	return nil
}
