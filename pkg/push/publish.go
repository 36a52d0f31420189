// Package push sends built images to their destinations: a registry, an OCI
// image layout or a docker-archive tarball. Each destination implements the
// one-method Interface; decorators such as Multi combine them.
package push

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Interface publishes an image under a tag and returns where it can be
// pulled from by digest.
type Interface interface {
	Publish(ctx context.Context, img v1.Image, tag name.Tag) (name.Digest, error)
}

// Attacher is a destination that can also hold artifacts referring to an
// image it published (OCI 1.1 referrers, such as an SBOM): artifact is an
// image manifest whose subject is the image subject names (see Artifact).
type Attacher interface {
	Attach(ctx context.Context, artifact v1.Image, subject name.Digest) error
}

// IndexPublisher is a destination that can also publish an image index
// (one image per platform) under a tag. A docker archive cannot hold one,
// so Tarball is not an IndexPublisher.
type IndexPublisher interface {
	PublishIndex(ctx context.Context, idx v1.ImageIndex, tag name.Tag) (name.Digest, error)
}
