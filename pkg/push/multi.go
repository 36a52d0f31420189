package push

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Multi publishes to each destination in order and returns the first
// destination's digest reference (the registry, when there is one).
func Multi(dests ...Interface) Interface { return multi(dests) }

type multi []Interface

// Publish implements Interface.
func (m multi) Publish(ctx context.Context, img v1.Image, tag name.Tag) (name.Digest, error) {
	if len(m) == 0 {
		return name.Digest{}, fmt.Errorf("publish %s: no destination", tag)
	}
	var first name.Digest
	for i, d := range m {
		got, err := d.Publish(ctx, img, tag)
		if err != nil {
			return name.Digest{}, err
		}
		if i == 0 {
			first = got
		}
	}
	return first, nil
}

// PublishIndex implements IndexPublisher when every destination does; a
// destination that cannot hold an index (a docker archive) fails before
// anything is published.
func (m multi) PublishIndex(ctx context.Context, idx v1.ImageIndex, tag name.Tag) (name.Digest, error) {
	if len(m) == 0 {
		return name.Digest{}, fmt.Errorf("publish %s: no destination", tag)
	}
	var ips []IndexPublisher
	for _, d := range m {
		ip, ok := d.(IndexPublisher)
		if !ok {
			return name.Digest{}, fmt.Errorf("publish %s: %T cannot hold an image index (several platforms)", tag, d)
		}
		ips = append(ips, ip)
	}
	var first name.Digest
	for i, ip := range ips {
		got, err := ip.PublishIndex(ctx, idx, tag)
		if err != nil {
			return name.Digest{}, err
		}
		if i == 0 {
			first = got
		}
	}
	return first, nil
}

// Attach implements Attacher: the artifact goes to every destination that
// can hold it (a docker archive cannot).
func (m multi) Attach(ctx context.Context, artifact v1.Image, subject name.Digest) error {
	for _, d := range m {
		if a, ok := d.(Attacher); ok {
			if err := a.Attach(ctx, artifact, subject); err != nil {
				return err
			}
		}
	}
	return nil
}
