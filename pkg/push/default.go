package push

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry publishes to the registry the tag names. ggcr's remote.Write
// checks each blob with HEAD before uploading it, mounts blobs across
// repositories of the same registry, uploads blobs concurrently and puts the
// manifest only after every blob is in place.
type Registry struct {
	opts []remote.Option
}

// NewRegistry returns a registry publisher using opts (auth, transport).
func NewRegistry(opts ...remote.Option) *Registry {
	return &Registry{opts: opts}
}

// Publish implements Interface.
func (r *Registry) Publish(ctx context.Context, img v1.Image, tag name.Tag) (name.Digest, error) {
	opts := append([]remote.Option{remote.WithContext(ctx)}, r.opts...)
	if err := remote.Write(tag, img, opts...); err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
	}
	return tag.Context().Digest(d.String()), nil
}
