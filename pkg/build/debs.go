package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"sort"

	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/layer/deblayer"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/resolve/aptrepo"
	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
)

// debParentFiles are the parent files the Debian layer merges with or
// respects (see deblayer.Parent).
var debParentFiles = []string{
	"var/lib/dpkg/status",
	"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow",
	"etc/ld.so.conf", "etc/ld.so.conf.d/*", "etc/ld.so.cache",
	"var/lib/dpkg/triggers/*",
	"var/lib/dpkg/alternatives/*",
	"etc/ca-certificates.conf",
	"usr/share/ca-certificates/*/*", "usr/share/ca-certificates/*",
	"usr/local/share/ca-certificates/*", "usr/local/share/ca-certificates/*/*",
}

// debRequest asks to pin the spec's apt_packages for the Debian
// architecture arch; its Parent is left to the caller.
func debRequest(p *Plan, o Options, arch string) resolve.DebRequest {
	s := p.Spec
	return resolve.DebRequest{
		Packages:          s.AptPackages,
		Sources:           s.AptSources,
		SpecDir:           s.Dir,
		Arch:              arch,
		InstallRecommends: s.AptInstallRecommends,
		AllowExpired:      s.AptAllowExpired,
		Fetcher:           &aptrepo.HTTPFetcher{Client: fetchClient(o), UserAgent: "kiln"},
		Log:               o.logf,
		XZ:                xzProgram(),
	}
}

// resolveDebs pins req's packages, saying the solver's notes.
func resolveDebs(ctx context.Context, o Options, req resolve.DebRequest) ([]lock.Deb, error) {
	debs, notes, err := resolve.ResolveDebs(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		o.logf("apt: note: %s", n)
	}
	return debs, nil
}

// debLayer describes the layer of the pinned packages. The layer
// downloads them into the cache as it is built (in parallel, each checked
// against its SHA-256 and size), decoding each as soon as it is there.
func debLayer(ctx context.Context, o Options, parent *resolve.Parent, fsys fs.FS, debs []lock.Deb, p *Plan) (*layer.Debs, error) {
	files := make([]layer.DebFile, len(debs))
	for i, d := range debs {
		files[i] = layer.DebFile{Name: d.Name, Version: d.Version, Architecture: d.Architecture, SHA256: d.SHA256}
	}
	client := fetchClient(o)
	fetch := func(ctx context.Context, got func(i int, path string, err error)) error {
		n, err := fetchParallel(ctx, len(debs), func(ctx context.Context, i int) (bool, string, error) {
			d := debs[i]
			name := fmt.Sprintf("%s_%s_%s.deb", d.Name, d.Version, d.Architecture)
			path, hit, err := o.Cache.Fetch(ctx, name, d.SHA256, d.Size, func(ctx context.Context) (io.ReadCloser, error) {
				return httpGet(ctx, client, d.URL)
			})
			if err != nil && p.Lock != nil {
				err = lockPinned(err)
			}
			got(i, path, err)
			return hit, path, err
		})
		if err != nil {
			return err
		}
		o.logf("apt: %d packages: %s", len(debs), n)
		return nil
	}

	symlinks, err := topLevelSymlinks(fsys)
	if err != nil {
		return nil, fmt.Errorf("read the parent's top-level symlinks: %w", err)
	}
	dp := deblayer.Parent{Symlinks: symlinks, Files: map[string][]byte{}}
	for _, pat := range debParentFiles {
		names, err := fs.Glob(fsys, pat)
		if err != nil {
			return nil, fmt.Errorf("read the parent's %s: %w", pat, err)
		}
		sort.Strings(names)
		for _, n := range names {
			data, err := fs.ReadFile(fsys, n)
			if errors.Is(err, rootfs.ErrNotCaptured) {
				return nil, fmt.Errorf("read the parent's /%s, which installing Debian packages needs: kiln did not keep its content (it keeps parent files of at most 16 MiB): %w", n, err)
			}
			if err != nil {
				continue // a directory or dangling link
			}
			dp.Files[n] = data
		}
	}
	return &layer.Debs{ParentDigest: parent.Digest.DigestStr(), Parent: dp, Packages: files, Epoch: p.Epoch, XZ: xzProgram(), Fetch: fetch}, nil
}

// xzProgram is the path of xz(1), "" when the machine has none: it decodes
// Packages.xz indices and data.tar.xz members about twice as fast as the
// built-in decoder, which is used without it. The bytes are the same
// either way.
func xzProgram() string {
	xz, _ := exec.LookPath("xz")
	return xz
}

// topLevelSymlinks returns the symlinks directly under the root of fsys by
// name, with their targets ({"bin": "usr/bin"} on a merged-/usr parent).
func topLevelSymlinks(fsys fs.FS) (map[string]string, error) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range ents {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		target, err := fs.ReadLink(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		out[e.Name()] = target
	}
	return out, nil
}
