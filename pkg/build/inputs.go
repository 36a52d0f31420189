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

// inputs are a build's pinned inputs beyond the parent, filled in as the
// steps that need them run.
type inputs struct {
	// fs is the parent's filesystem, read only when a step needs it.
	fs *rootfs.FS
	// debs are the Debian packages to install, in order (nil until pinned).
	debs []lock.Deb
	// wheels are the wheels to install, sorted by name (nil until pinned).
	wheels []lock.Wheel
	// requirements is the digest of the requirements files read.
	requirements string
}

// parentFSVersion names the set of files kiln reads from parents; bump it
// when debParentFiles or the selector changes so old caches are not used.
const parentFSVersion = "parentfs-v2"

// checkLock fails when the spec asks for other packages than the lock pins.
func checkLock(p *Plan) error {
	if p.Lock == nil {
		return nil
	}
	s := p.Spec
	if !slices.Equal(p.Lock.AptPackages, s.AptPackages) {
		return fmt.Errorf("kiln.lock is stale: it pins apt_packages %v but the spec asks for %v; run kiln lock again", p.Lock.AptPackages, s.AptPackages)
	}
	if !slices.Equal(p.Lock.Packages, s.Packages) {
		return fmt.Errorf("kiln.lock is stale: it pins packages %v but the spec asks for %v; run kiln lock again", p.Lock.Packages, s.Packages)
	}
	return checkResolutions(p)
}

// wantsDebs reports whether the build installs Debian packages.
func wantsDebs(p *Plan) bool {
	return len(p.Spec.AptPackages) > 0 || (p.Lock != nil && len(p.Lock.Debs) > 0)
}

// parentFS reads (once, through the cache) the parent files later steps
// need.
func (b *session) parentFS(ctx context.Context) (*rootfs.FS, error) {
	return b.parentFSSeen(ctx, nil)
}

// parentFSSeen is parentFS that tells seen about the files kept whole as
// the parent's layers stream by, when it reads them.
func (b *session) parentFSSeen(ctx context.Context, seen rootfs.Seen) (*rootfs.FS, error) {
	if b.in.fs != nil {
		return b.in.fs, nil
	}
	if b.parent.Scratch() {
		if needsPython(b.p.Spec) {
			return nil, fmt.Errorf("packages: base_image is scratch, which has no Python; use a parent with python3")
		}
		return nil, fmt.Errorf("apt_packages: base_image is scratch, which has no Debian system to install into; use a Debian or Ubuntu parent")
	}
	fs, err := rootfs.Cached(ctx, filepath.Join(b.o.Cache.Dir(), "parents"), b.o.Cache.Image(ctx, b.parent.Image), rootfs.DefaultSelect, parentFSVersion, seen)
	if err != nil {
		return nil, fmt.Errorf("read the parent's files: %w", err)
	}
	b.in.fs = fs
	return fs, nil
}

// pinDebs takes the Debian packages from the lock, or resolves them.
func (b *session) pinDebs(ctx context.Context) error {
	if b.in.debs != nil || !wantsDebs(b.p) {
		return nil
	}
	if b.p.Lock != nil {
		b.in.debs = b.p.Lock.Debs
		return nil
	}
	plat, err := b.p.targetPlatform()
	if err != nil {
		return err
	}
	req := debRequest(b.p, b.o, resolve.DebianArch(plat.Architecture, plat.Variant))
	var seen rootfs.Seen
	if b.in.fs == nil && !b.parent.Scratch() {
		// Fetch and parse the indices while the parent streams by: its
		// sources files come long before the end of its layers.
		req.Ahead = resolve.StartDebAhead(ctx, req)
		defer req.Ahead.Close()
		seen = req.Ahead.Seen
	}
	fs, err := b.parentFSSeen(ctx, seen)
	if err != nil {
		return err
	}
	req.Parent = fs
	debs, err := resolveDebs(ctx, b.o, req)
	if err != nil {
		return err
	}
	b.in.debs = debs
	return nil
}
