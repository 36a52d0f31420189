// Package resolve pins a spec's inputs: the parent image to a digest (and,
// in subpackages, Debian packages and wheels to versions and SHA-256 sums).
// Nothing here builds layers.
package resolve

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Parent is a resolved parent image.
type Parent struct {
	// Ref is the reference as the user wrote it (nil for scratch).
	Ref name.Reference
	// Digest pins the platform image's manifest (zero for scratch).
	Digest name.Digest
	// Image is the parent: its manifest and config are fetched, its layers
	// are lazy and only read if a later step asks for them.
	Image v1.Image
}

// Scratch reports whether the parent is the empty image.
func (p *Parent) Scratch() bool { return p.Ref == nil }

// ResolveParent resolves ref to the image for platform. For an image index it
// picks the manifest whose platform matches; for a single image it checks
// that the image's platform matches. Only manifests and the config blob are
// fetched.
func ResolveParent(ctx context.Context, ref name.Reference, platform *v1.Platform, opts ...remote.Option) (*Parent, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("resolve parent %s: %w", ref, err)
	}
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("resolve parent %s: %w", ref, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("resolve parent %s: %w", ref, err)
		}
		var found []v1.Platform
		for _, m := range im.Manifests {
			if m.Platform == nil || !m.MediaType.IsImage() {
				continue
			}
			found = append(found, *m.Platform)
			if matches(m.Platform, platform) {
				img, err = idx.Image(m.Digest)
				if err != nil {
					return nil, fmt.Errorf("resolve parent %s for %s: %w", ref, platform, err)
				}
				break
			}
		}
		if img == nil {
			return nil, fmt.Errorf("resolve parent %s: no image for platform %s in its index (it has %v); set platform to one of those", ref, platform, found)
		}
	case desc.MediaType.IsImage() || desc.MediaType == types.DockerManifestSchema1 || desc.MediaType == types.DockerManifestSchema1Signed:
		img, err = desc.Image()
		if err != nil {
			return nil, fmt.Errorf("resolve parent %s: %w", ref, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("resolve parent %s: read config: %w", ref, err)
		}
		if got := cf.Platform(); got != nil && got.Architecture != "" && !matches(got, platform) {
			return nil, fmt.Errorf("resolve parent %s: it is a %s image, not %s; set platform to %s or pick another base_image", ref, got, platform, got)
		}
	default:
		return nil, fmt.Errorf("resolve parent %s: unsupported media type %s", ref, desc.MediaType)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("resolve parent %s: %w", ref, err)
	}
	return &Parent{Ref: ref, Digest: ref.Context().Digest(d.String()), Image: img}, nil
}

// ScratchParent returns the empty parent.
func ScratchParent() *Parent { return &Parent{Image: empty.Image} }

// matches reports whether have satisfies want: same OS and architecture, and
// the same variant when want names one (arm64's "v8" is the default).
func matches(have, want *v1.Platform) bool {
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	hv := have.Variant
	if hv == "" && have.Architecture == "arm64" {
		hv = "v8"
	}
	return hv == want.Variant
}
