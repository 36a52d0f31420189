package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/bundle"
	"github.com/kiln-build/kiln/pkg/lock"
)

// WriteBundle writes to dir the bundle of the plan's lock (kiln bundle):
// the parent with all its layers, every .deb and wheel the lock pins (got
// as a --locked build gets them, through the local cache) and the lock.
func WriteBundle(ctx context.Context, p *Plan, o Options, dir string) error {
	if p.Lock == nil {
		return errors.New("kiln bundle carries what kiln.lock pins: run kiln lock first")
	}
	if len(p.Platforms) > 0 {
		return fmt.Errorf("kiln bundle carries one platform's parent and pins, and the spec builds %s: bundle each platform from a spec (or --platform) that names one", p.Spec.Platform)
	}
	remoteOpts, err := o.remoteOptions(ctx)
	if err != nil {
		return err
	}
	b, err := newSession(ctx, p, o, remoteOpts)
	if err != nil {
		return err
	}
	paths := map[string]string{} // sha256 -> file in the local cache
	client := fetchClient(b.o)
	debs := p.Lock.Debs
	got, err := fetchParallel(ctx, len(debs), func(ctx context.Context, i int) (bool, string, error) {
		d := debs[i]
		path, hit, err := b.o.Cache.Fetch(ctx, fmt.Sprintf("%s_%s_%s.deb", d.Name, d.Version, d.Architecture), d.SHA256, d.Size, func(ctx context.Context) (io.ReadCloser, error) {
			return httpGet(ctx, client, d.URL)
		})
		return hit, path, err
	})
	if err != nil {
		return err
	}
	if len(debs) > 0 {
		b.o.logf("apt: %d packages: %s", len(debs), got)
	}
	if len(p.Lock.Wheels) > 0 {
		b.in.wheels = p.Lock.Wheels
		files, err := b.downloadWheels(ctx)
		if err != nil {
			return err
		}
		for _, f := range files {
			paths[f.SHA256] = f.Path
		}
		// The source distributions and build requirements of the wheels
		// kiln built, so that the bundle can build them again.
		reqs, err := p.requirements()
		if err != nil {
			return err
		}
		idx, err := b.indexes(reqs.opts)
		if err != nil {
			return err
		}
		for _, f := range builtFromFiles(p.Lock) {
			path, _, err := b.fetchPinned(ctx, idx, client, f)
			if err != nil {
				return fmt.Errorf("download %s: %w", f.Filename, err)
			}
			paths[f.SHA256] = path
		}
	}
	for _, d := range debs {
		if path, ok := b.o.Cache.Has(d.SHA256, d.Size); ok {
			paths[d.SHA256] = path
		}
	}
	var parent v1.Image
	if !b.parent.Scratch() {
		parent = b.parent.Image
		b.o.logf("bundle: the parent %s with all its layers", b.parent.Digest)
	}
	err = bundle.Write(ctx, dir, parent, p.Spec.BaseImage, p.Lock, func(ctx context.Context, url, sha256 string) (io.ReadCloser, error) {
		path, ok := paths[sha256]
		if !ok {
			return nil, fmt.Errorf("not downloaded (sha256 %s)", sha256)
		}
		return os.Open(path)
	})
	if err != nil {
		return err
	}
	built := ""
	if n := len(builtFromFiles(p.Lock)); n > 0 {
		built = fmt.Sprintf(", %d files the wheels kiln built were built from (sdists and build requirements)", n)
	}
	b.o.logf("bundle: wrote %s: the parent, %d Debian packages, %d wheels%s and kiln.lock", dir, len(debs), len(p.Lock.Wheels), built)
	return nil
}

// seedFromBundle puts every file the lock pins into the local cache from
// the bundle, so that the steps find them there and fetch nothing.
func (b *session) seedFromBundle(ctx context.Context) error {
	l, bd := b.p.Lock, b.o.Bundle
	open := func(sha256 string) func(context.Context) (io.ReadCloser, error) {
		return func(context.Context) (io.ReadCloser, error) { return bd.Open(sha256) }
	}
	for _, d := range l.Debs {
		if _, _, err := b.o.Cache.Fetch(ctx, fmt.Sprintf("%s_%s_%s.deb", d.Name, d.Version, d.Architecture), d.SHA256, d.Size, open(d.SHA256)); err != nil {
			return fmt.Errorf("from the bundle: %w", err)
		}
	}
	for _, w := range append(append([]lock.Wheel{}, l.Wheels...), builtFromFiles(l)...) {
		if _, _, err := b.o.Cache.Fetch(ctx, w.Filename, w.SHA256, w.Size, open(w.SHA256)); err != nil {
			return fmt.Errorf("from the bundle: %w", err)
		}
	}
	return nil
}

// builtFromFiles lists the source distributions of the wheels l pins as
// built by kiln, and their build requirements' wheels.
func builtFromFiles(l *lock.Lock) []lock.Wheel {
	var out []lock.Wheel
	seen := map[string]bool{}
	add := func(w lock.Wheel) {
		if !seen[w.SHA256] {
			seen[w.SHA256] = true
			out = append(out, w)
		}
	}
	for _, w := range l.Wheels {
		if sd := w.BuiltFrom; sd != nil && sd.SHA256 != "" {
			add(lock.Wheel{Name: w.Name, Filename: sd.Filename, URL: sd.URL, SHA256: sd.SHA256})
			for _, r := range sd.Requires {
				add(r)
			}
		}
	}
	return out
}
