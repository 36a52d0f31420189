package build

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/layer/deblayer"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/resolve/aptrepo"
)

// debParentFiles are the parent files the Debian layer merges with or
// respects (see deblayer.Parent).
var debParentFiles = []string{
	"var/lib/dpkg/status",
	"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow",
	"etc/ld.so.conf", "etc/ld.so.conf.d/*",
	"var/lib/dpkg/alternatives/*",
	"etc/ca-certificates.conf",
	"usr/share/ca-certificates/*/*", "usr/share/ca-certificates/*",
	"usr/local/share/ca-certificates/*", "usr/local/share/ca-certificates/*/*",
}

// resolveDebs pins the spec's apt_packages against the parent.
func resolveDebs(ctx context.Context, p *Plan, o Options, fs parentFiles, arch string) ([]lock.Deb, error) {
	s := p.Spec
	client := &http.Client{Transport: o.HTTPTransport}
	debs, notes, err := resolve.ResolveDebs(ctx, resolve.DebRequest{
		Packages:          s.AptPackages,
		Parent:            fs,
		Sources:           s.AptSources,
		SpecDir:           s.Dir,
		Arch:              arch,
		InstallRecommends: s.AptInstallRecommends,
		AllowExpired:      s.AptAllowExpired,
		Fetcher:           &aptrepo.HTTPFetcher{Client: client, UserAgent: "kiln"},
		Log:               o.logf,
	})
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		o.logf("apt: note: %s", n)
	}
	return debs, nil
}

// debLayer downloads the pinned packages into the cache (in parallel, each
// checked against its SHA-256 and size) and describes their layer.
func debLayer(ctx context.Context, o Options, parent *resolve.Parent, fs parentFiles, debs []lock.Deb, p *Plan) (*layer.Debs, error) {
	files := make([]layer.DebFile, len(debs))
	client := &http.Client{Transport: o.HTTPTransport}
	got, err := fetchParallel(ctx, len(debs), func(ctx context.Context, i int) (bool, string, error) {
		d := debs[i]
		name := fmt.Sprintf("%s_%s_%s.deb", d.Name, d.Version, d.Architecture)
		path, hit, err := o.Cache.Fetch(ctx, name, d.SHA256, d.Size, func(ctx context.Context) (io.ReadCloser, error) {
			return httpGet(ctx, client, d.URL)
		})
		files[i] = layer.DebFile{Name: d.Name, Version: d.Version, Architecture: d.Architecture, SHA256: d.SHA256, Path: path}
		return hit, path, err
	})
	if err != nil {
		return nil, err
	}
	o.logf("apt: %d packages: %s", len(debs), got)

	dp := deblayer.Parent{Symlinks: fs.TopLevelSymlinks(), Files: map[string][]byte{}}
	for _, pat := range debParentFiles {
		names, err := fs.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("read the parent's %s: %w", pat, err)
		}
		sort.Strings(names)
		for _, n := range names {
			data, err := fs.ReadFile(n)
			if err != nil {
				continue // a directory or dangling link
			}
			dp.Files[n] = data
		}
	}
	return &layer.Debs{ParentDigest: parent.Digest.DigestStr(), Parent: dp, Packages: files, Epoch: p.Epoch}, nil
}

// fetched counts what fetchParallel found in the cache and downloaded.
type fetched struct {
	cached, downloaded int
	bytes              int64
}

func (f fetched) String() string {
	return fmt.Sprintf("%d downloaded (%s), %d from the local cache", f.downloaded, HumanBytes(f.bytes), f.cached)
}

// fetchParallel runs fetch for 0..n-1, at most 8 at once; fetch returns
// whether its file was already in the cache and the file's path.
func fetchParallel(ctx context.Context, n int, fetch func(ctx context.Context, i int) (hit bool, path string, err error)) (fetched, error) {
	hits := make([]bool, n)
	paths := make([]string, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			var err error
			hits[i], paths[i], err = fetch(gctx, i)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fetched{}, err
	}
	var f fetched
	for i, h := range hits {
		if h {
			f.cached++
			continue
		}
		f.downloaded++
		if fi, err := os.Stat(paths[i]); err == nil {
			f.bytes += fi.Size()
		}
	}
	return f, nil
}

// HumanBytes formats a byte count for people: "3.7 MiB".
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func httpGet(ctx context.Context, client *http.Client, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "kiln")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", auth.RedactURL(url), resp.Status)
	}
	return resp.Body, nil
}

// parentFiles is the parent's filesystem as the Debian steps need it.
type parentFiles interface {
	resolve.Files
	TopLevelSymlinks() map[string]string
}
