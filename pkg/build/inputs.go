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
		in.debs = p.Lock.Debs
	}
	if len(s.AptPackages) == 0 && len(in.debs) == 0 {
		return in, nil
	}
	if parent.Scratch() {
		return nil, fmt.Errorf("apt_packages: base_image is scratch, which has no Debian system to install into; use a Debian or Ubuntu parent")
	}
	fs, err := rootfs.Cached(ctx, filepath.Join(o.Cache.Dir(), "parents"), parent.Image, rootfs.DefaultSelect, parentFSVersion)
	if err != nil {
		return nil, fmt.Errorf("read the parent's files: %w", err)
	}
	in.fs = fs
	if p.Lock != nil {
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

// Lock resolves every input of the plan and returns the lock that pins them,
// without building anything.
func Lock(ctx context.Context, p *Plan, o Options) (*lock.Lock, error) {
	remoteOpts, err := o.Auth.RemoteOptions(ctx)
	if err != nil {
		return nil, err
	}
	q := *p
	q.Lock = nil
	parent, err := resolveParent(ctx, &q, o.Auth, remoteOpts)
	if err != nil {
		return nil, err
	}
	in, err := resolveInputs(ctx, &q, o, parent)
	if err != nil {
		return nil, err
	}
	l := &lock.Lock{
		Version:     lock.Version,
		Platform:    p.Spec.Platform,
		AptPackages: p.Spec.AptPackages,
		Debs:        in.debs,
	}
	if !parent.Scratch() {
		l.Parent = lock.Parent{Ref: p.Spec.BaseImage, Digest: parent.Digest.DigestStr()}
	} else {
		l.Parent = lock.Parent{Ref: "scratch", Digest: "scratch"}
	}
	return l, nil
}
