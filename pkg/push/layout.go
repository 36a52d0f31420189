package push

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	specsv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layout writes an OCI image layout directory (readable by skopeo, podman
// and umoci as oci:DIR:TAG). The layout is written beside Dir under a
// temporary name and renamed over Dir when complete, so a failed build never
// leaves a half-written layout.
type Layout struct {
	Dir string
}

// Publish implements Interface. The image is annotated with its tag
// (org.opencontainers.image.ref.name) in the layout's index.
func (l *Layout) Publish(ctx context.Context, img v1.Image, tag name.Tag) (name.Digest, error) {
	dir := filepath.Clean(l.Dir)
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
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		specsv1.AnnotationRefName: tag.TagStr(),
	})); err != nil {
		return name.Digest{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	if err := replaceDir(tmp, dir); err != nil {
		return name.Digest{}, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return tag.Context().Digest(d.String()), nil
}

// replaceDir renames src over dst, moving an existing dst aside first.
func replaceDir(src, dst string) error {
	old := ""
	if _, err := os.Lstat(dst); err == nil {
		old = dst + ".old"
		os.RemoveAll(old)
		if err := os.Rename(dst, old); err != nil {
			return err
		}
	}
	if err := os.Rename(src, dst); err != nil {
		if old != "" {
			os.Rename(old, dst)
		}
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}
