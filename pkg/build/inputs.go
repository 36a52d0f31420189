package build

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
)

// inputs are a build's pinned inputs beyond the parent.
type inputs struct {
	// fs is the parent's filesystem, read only when a step needs it.
	fs parentFiles
	// debs are the Debian packages to install, in order.
	debs []lock.Deb
	// wheels are the wheels to install, sorted by name (nil until
	// resolved).
	wheels []lock.Wheel
	// requirements is the SHA-256 of the requirements files read.
	requirements string
}

// parentFSVersion names the set of files kiln reads from parents; bump it
// when debParentFiles or the selector changes so old caches are not used.
const parentFSVersion = "parentfs-v1"

// resolveInputs pins the spec's packages: from the lock when the plan has
// one (no index is fetched), else by resolving against the indices.
func resolveInputs(ctx context.Context, p *Plan, o Options, parent *resolve.Parent) (*inputs, error) {
	s := p.Spec
	in := &inputs{}
	if p.Lock != nil {
		if !slices.Equal(p.Lock.AptPackages, s.AptPackages) {
			return nil, fmt.Errorf("kiln.lock is stale: it pins apt_packages %v but the spec asks for %v; run kiln lock again", p.Lock.AptPackages, s.AptPackages)
		}
		if !slices.Equal(p.Lock.Packages, s.Packages) {
			return nil, fmt.Errorf("kiln.lock is stale: it pins packages %v but the spec asks for %v; run kiln lock again", p.Lock.Packages, s.Packages)
		}
		in.debs = p.Lock.Debs
		in.wheels = p.Lock.Wheels
	}
	if len(s.AptPackages) == 0 && len(in.debs) == 0 && !needsPython(s) {
		return in, nil
	}
	if parent.Scratch() {
		if needsPython(s) {
			return nil, fmt.Errorf("packages: base_image is scratch, which has no Python; use a parent with python3")
		}
		return nil, fmt.Errorf("apt_packages: base_image is scratch, which has no Debian system to install into; use a Debian or Ubuntu parent")
	}
	fs, err := rootfs.Cached(ctx, filepath.Join(o.Cache.Dir(), "parents"), parent.Image, rootfs.DefaultSelect, parentFSVersion)
	if err != nil {
		return nil, fmt.Errorf("read the parent's files: %w", err)
	}
	in.fs = fs
	if p.Lock != nil || len(s.AptPackages) == 0 {
		return in, nil
	}
	plat, err := s.TargetPlatform()
	if err != nil {
		return nil, err
	}
	in.debs, err = resolveDebs(ctx, p, o, fs, resolve.DebianArch(plat.Architecture, plat.Variant))
	if err != nil {
		return nil, err
	}
	return in, nil
}
