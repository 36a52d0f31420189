package build

import (
	"bytes"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// each returns the plans to build, one per platform: p's Platforms, or p
// itself when it builds one platform.
func (p *Plan) each() []*Plan {
	if len(p.Platforms) == 0 {
		return []*Plan{p}
	}
	return p.Platforms
}

// index lists each platform's image, in the spec's order, with its
// platform, in an OCI image index annotated with the spec hash.
func index(p *Plan, images []*platformImage) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, pi := range images {
		plat, err := pi.plan.targetPlatform()
		if err != nil {
			return nil, err
		}
		mt, err := pi.img.MediaType()
		if err != nil {
			return nil, fmt.Errorf("index the %s image: %w", pi.plan.Spec.Platform, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: pi.img, Descriptor: v1.Descriptor{MediaType: mt, Platform: plat}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, map[string]string{SpecHashAnnotation: p.Hash}).(v1.ImageIndex), nil
}

// existingIndex reports whether tag holds an image index with an image for
// every platform of p, and its digest. Unless the tag has the spec hash in
// it, the index must also record p's spec hash (as existing asks of an
// image).
func existingIndex(p *Plan, tag name.Tag, desc *remote.Descriptor) (v1.Hash, bool, error) {
	if !desc.MediaType.IsIndex() {
		return v1.Hash{}, false, nil
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return v1.Hash{}, false, fmt.Errorf("check whether %s exists: read its index: %w", tag, err)
	}
	if !tagHoldsHash(p, tag) && im.Annotations[SpecHashAnnotation] != p.Hash {
		return v1.Hash{}, false, nil
	}
	for _, sub := range p.Platforms {
		want, err := sub.targetPlatform()
		if err != nil {
			return v1.Hash{}, false, err
		}
		found := false
		for _, m := range im.Manifests {
			if m.Platform != nil && m.MediaType.IsImage() && samePlatform(*m.Platform, *want) {
				found = true
				break
			}
		}
		if !found {
			return v1.Hash{}, false, nil
		}
	}
	return desc.Digest, true, nil
}

// samePlatform reports whether an index entry's platform is want: the same
// OS and architecture, and the same variant unless want names none.
func samePlatform(have, want v1.Platform) bool {
	return have.OS == want.OS && have.Architecture == want.Architecture &&
		(want.Variant == "" || have.Variant == want.Variant)
}
