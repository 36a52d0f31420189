package push

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/pkg/atomicfile"
)

// Tarball writes a docker-archive (`podman load -i FILE`, `docker load`)
// to Path through a temporary file renamed into place when complete.
type Tarball struct {
	Path string
}

// Publish implements Interface.
func (t *Tarball) Publish(ctx context.Context, img v1.Image, tag name.Tag) (name.Digest, error) {
	dir := filepath.Dir(t.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return name.Digest{}, fmt.Errorf("write tarball %s: %w", t.Path, err)
	}
	err := atomicfile.Write(t.Path, atomicfile.Options{Pattern: "." + filepath.Base(t.Path) + ".tmp-"}, func(w io.Writer) error {
		return tarball.Write(tag, img, &ctxWriter{ctx: ctx, w: w})
	})
	if err != nil {
		return name.Digest{}, fmt.Errorf("write tarball %s: %w", t.Path, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return tag.Context().Digest(d.String()), nil
}

// ctxWriter stops a long write when its context is cancelled.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
