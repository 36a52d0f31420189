package resolve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/resolve/aptrepo"
	"github.com/kiln-build/kiln/pkg/resolve/debsolve"
)

// DebRequest asks for Debian packages to be pinned.
type DebRequest struct {
	// Packages are the apt_packages: names with optional =version pins.
	Packages []string
	// Parent is the parent's filesystem, with io/fs paths relative to the
	// image root ("etc/apt/sources.list"): its dpkg status, apt sources
	// and keyrings.
	Parent fs.FS
	// Sources are the spec's apt_sources entries: one-line sources.list
	// entries or deb822 stanzas. A source with the URI and suite of a
	// parent's source replaces it; others are added.
	Sources []string
	// SpecDir resolves relative Signed-By paths of Sources (host files).
	SpecDir string
	// Arch is the Debian architecture (amd64, arm64).
	Arch string
	// InstallRecommends installs Recommends too.
	InstallRecommends bool
	// AllowExpired accepts a Release past its Valid-Until (snapshot
	// mirrors).
	AllowExpired bool
	// Fetcher fetches repository files.
	Fetcher aptrepo.Fetcher
	// Now is the clock for Valid-Until; nil means time.Now.
	Now func() time.Time
	// Log receives progress lines; nil discards them.
	Log func(format string, args ...any)
	// XZ is the path of the xz(1) program, which decodes Packages.xz
	// indices faster than the built-in decoder; "" means the built-in one.
	XZ string
	// Ahead, when set, holds the work StartDebAhead began on the indices.
	Ahead *DebAhead
}

// DebianArch maps an OCI architecture to Debian's name.
func DebianArch(ociArch, variant string) string {
	switch ociArch {
	case "arm":
		if variant == "v7" || variant == "" {
			return "armhf"
		}
		return "armel"
	case "386":
		return "i386"
	case "ppc64le":
		return "ppc64el"
	}
	return ociArch
}

type repoSource struct {
	src     aptrepo.Source
	keyring openpgp.EntityList
}

// ResolveDebs fetches the signed indices of the parent's and the spec's apt
// sources, and solves the requested packages against the parent's installed
// set. It returns the packages to install in dependency order.
func ResolveDebs(ctx context.Context, req DebRequest) ([]lock.Deb, []string, error) {
	logf := req.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	sources, err := collectSources(req)
	if err != nil {
		return nil, nil, err
	}
	statusData, err := fs.ReadFile(req.Parent, "var/lib/dpkg/status")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read the parent's dpkg status: %w", err)
	}
	var installed []debsolve.Package
	if len(statusData) > 0 {
		st, err := aptrepo.ParseStatus(strings.NewReader(string(statusData)))
		if err != nil {
			return nil, nil, fmt.Errorf("parse the parent's /var/lib/dpkg/status: %w", err)
		}
		for _, p := range st {
			if p.Installed() {
				installed = append(installed, toSolve(&p))
			}
		}
	}

	type job struct {
		src   repoSource
		suite string
	}
	fetcher, idxOpts := req.Fetcher, aptrepo.IndexOptions{XZ: req.XZ}
	if req.Ahead != nil {
		fetcher, idxOpts.Ahead = req.Ahead.a, req.Ahead.a
	}
	var jobs []job
	for _, s := range sources {
		for _, suite := range s.src.Suites {
			jobs = append(jobs, job{s, suite})
		}
	}
	indices := make([][]aptrepo.Package, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, j := range jobs {
		g.Go(func() error {
			rel, err := aptrepo.FetchRelease(gctx, fetcher, j.src.src, j.suite, j.src.keyring, aptrepo.ReleaseOptions{Now: req.Now, AllowExpired: req.AllowExpired})
			if err != nil {
				return err
			}
			for _, comp := range j.src.src.IndexComponents(j.suite) {
				for _, arch := range rel.IndexArchs(req.Arch) {
					idx, err := aptrepo.FetchIndex(gctx, fetcher, rel, comp, arch, idxOpts)
					if err != nil {
						if arch == "all" && errors.Is(err, aptrepo.ErrNotFound) {
							continue
						}
						return err
					}
					indices[i] = append(indices[i], idx.Packages...)
				}
			}
			logf("apt: %s %s: %d packages (signed by %s)", j.src.src.URI, j.suite, len(indices[i]), rel.Signer)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var all []*aptrepo.Package
	for i := range indices {
		for j := range indices[i] {
			all = append(all, &indices[i][j])
		}
	}
	var universe []debsolve.Package
	for _, p := range reachable(all, req.Packages, req.InstallRecommends) {
		universe = append(universe, toSolve(p))
	}
	res, err := debsolve.Solve(debsolve.Request{
		Universe:          universe,
		Installed:         installed,
		Install:           req.Packages,
		Arch:              req.Arch,
		InstallRecommends: req.InstallRecommends,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("apt_packages: %w", err)
	}
	var out []lock.Deb
	for _, st := range res.Install {
		p, ok := st.Package.Ref.(*aptrepo.Package)
		if !ok {
			return nil, nil, fmt.Errorf("apt_packages: internal error: %s has no index entry", st.Package.Name)
		}
		out = append(out, lock.Deb{Name: p.Package, Version: p.Version, Architecture: p.Architecture, SHA256: p.SHA256, Size: p.Size, URL: p.URL})
	}
	return out, res.Notes, nil
}

func toSolve(p *aptrepo.Package) debsolve.Package {
	return debsolve.Package{
		Name: p.Package, Version: p.Version, Architecture: p.Architecture, MultiArch: p.MultiArch,
		Depends: p.Depends, PreDepends: p.PreDepends, Recommends: p.Recommends, Provides: p.Provides,
		Conflicts: p.Conflicts, Breaks: p.Breaks, Essential: p.Essential, Ref: p,
	}
}

// reachable returns the packages whose names the requested ones can reach
// through Depends, Pre-Depends (and Recommends when asked for) and
// Provides: the only ones a solution can contain. Solving over them instead
// of the whole archive (60k packages) keeps a cold build fast and small;
// conflicts of packages that cannot be installed do not matter.
func reachable(all []*aptrepo.Package, requested []string, recommends bool) []*aptrepo.Package {
	byName := map[string][]*aptrepo.Package{}
	for _, p := range all {
		byName[p.Package] = append(byName[p.Package], p)
		for _, v := range depNames(p.Provides) {
			byName[v] = append(byName[v], p)
		}
	}
	seen := map[string]bool{}
	picked := map[*aptrepo.Package]bool{}
	var queue []string
	for _, r := range requested {
		name, _, _ := strings.Cut(r, "=")
		name, _, _ = strings.Cut(name, ":")
		queue = append(queue, strings.TrimSpace(name))
	}
	var out []*aptrepo.Package
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if seen[n] {
			continue
		}
		seen[n] = true
		for _, p := range byName[n] {
			if picked[p] {
				continue
			}
			picked[p] = true
			out = append(out, p)
			queue = append(queue, p.Package)
			queue = append(queue, depNames(p.Depends)...)
			queue = append(queue, depNames(p.PreDepends)...)
			if recommends {
				queue = append(queue, depNames(p.Recommends)...)
			}
		}
	}
	return out
}

// depNames returns the package names in a dependency field such as
// "a (>= 1) | b:any, c [amd64] <!nocheck>".
func depNames(field string) []string {
	var out []string
	for _, alt := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == '|' }) {
		name := strings.TrimSpace(alt)
		if i := strings.IndexAny(name, " (\t[<"); i >= 0 {
			name = name[:i]
		}
		name, _, _ = strings.Cut(name, ":")
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// collectSources reads the parent's sources (with keyrings from the parent)
// and overlays the spec's (with keyrings from the host).
func collectSources(req DebRequest) ([]repoSource, error) {
	var parent []aptrepo.Source
	if data, err := fs.ReadFile(req.Parent, "etc/apt/sources.list"); err == nil {
		s, _, err := parentSourcesFile("etc/apt/sources.list", data)
		if err != nil {
			return nil, err
		}
		parent = append(parent, s...)
	}
	names, err := fs.Glob(req.Parent, "etc/apt/sources.list.d/*")
	if err != nil {
		return nil, fmt.Errorf("list the parent's apt sources: %w", err)
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := fs.ReadFile(req.Parent, n)
		if err != nil {
			continue // a dangling link or directory: apt ignores it too
		}
		s, ok, err := parentSourcesFile(n, data)
		if err != nil {
			return nil, err
		}
		if ok {
			parent = append(parent, s...)
		}
	}
	var out []repoSource
	var spec []repoSource
	for i, entry := range req.Sources {
		s, err := parseSpecSource(i, entry)
		if err != nil {
			return nil, err
		}
		for _, src := range s {
			kr, err := hostKeyring(src, req.SpecDir)
			if err != nil {
				return nil, err
			}
			spec = append(spec, repoSource{src: src, keyring: kr})
		}
	}
	var specSrcs []aptrepo.Source
	for _, sp := range spec {
		specSrcs = append(specSrcs, sp.src)
	}
	for _, src := range parent {
		if replaced(src, specSrcs) {
			continue
		}
		kr, err := parentKeyring(src, req.Parent)
		if err != nil {
			return nil, err
		}
		out = append(out, repoSource{src: src, keyring: kr})
	}
	out = append(out, spec...)
	if len(out) == 0 {
		return nil, errors.New("apt_packages: the parent image has no apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/) and the spec has no apt_sources; add apt_sources, e.g. [\"deb [signed-by=archive-key.asc] http://mirror/debian bookworm main\"]")
	}
	return out, nil
}

// parentSourcesFile parses the parent's file name (a root-relative path)
// when apt reads it as a sources file: etc/apt/sources.list, or a *.list
// (one-line) or *.sources (deb822) file in etc/apt/sources.list.d/. ok
// is false for any other file.
func parentSourcesFile(name string, data []byte) (srcs []aptrepo.Source, ok bool, err error) {
	label := "/" + name + " (parent image)"
	inDir := path.Dir(name) == "etc/apt/sources.list.d"
	switch {
	case name == "etc/apt/sources.list" || inDir && strings.HasSuffix(name, ".list"):
		srcs, err = aptrepo.ParseSourcesList(label, data)
	case inDir && strings.HasSuffix(name, ".sources"):
		srcs, err = aptrepo.ParseDeb822Sources(label, data)
	default:
		return nil, false, nil
	}
	return srcs, true, err
}

// parseSpecSource parses the spec's apt_sources entry i: a sources.list
// line or a deb822 stanza.
func parseSpecSource(i int, entry string) ([]aptrepo.Source, error) {
	label := fmt.Sprintf("apt_sources[%d]", i)
	var s []aptrepo.Source
	var err error
	if strings.Contains(entry, ":") && strings.Contains(strings.SplitN(entry, "\n", 2)[0], "Types:") || strings.HasPrefix(strings.TrimSpace(entry), "Types:") {
		s, err = aptrepo.ParseDeb822Sources(label, []byte(entry))
	} else {
		s, err = aptrepo.ParseSourcesList(label, []byte(entry))
	}
	if err != nil {
		return nil, fmt.Errorf("%w (write a sources.list line such as \"deb [signed-by=key.asc] http://host/debian bookworm main\" or a deb822 stanza)", err)
	}
	return s, nil
}

// replaced reports whether one of the spec's sources replaces the
// parent's source src: it has src's URI and one of its suites.
func replaced(src aptrepo.Source, spec []aptrepo.Source) bool {
	for _, sp := range spec {
		if sp.URI == src.URI && overlap(sp.Suites, src.Suites) {
			return true
		}
	}
	return false
}

func overlap(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}

// splitPaths splits a Signed-By value into paths (comma or space separated).
func splitPaths(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// parentKeyring loads a parent source's keys from the parent's files:
// Signed-By paths, or /etc/apt/trusted.gpg(.d) when there is none.
func parentKeyring(src aptrepo.Source, files fs.FS) (openpgp.EntityList, error) {
	sb := strings.TrimSpace(src.SignedBy)
	if strings.HasPrefix(sb, "-----BEGIN PGP") {
		return src.Keyring()
	}
	var paths []string
	if sb != "" {
		for _, p := range splitPaths(sb) {
			paths = append(paths, strings.TrimPrefix(path.Clean(p), "/"))
		}
	} else {
		if _, err := fs.ReadFile(files, "etc/apt/trusted.gpg"); err == nil {
			paths = append(paths, "etc/apt/trusted.gpg")
		}
		more, _ := fs.Glob(files, "etc/apt/trusted.gpg.d/*")
		sort.Strings(more)
		paths = append(paths, more...)
	}
	var el openpgp.EntityList
	for _, p := range paths {
		data, err := fs.ReadFile(files, p)
		if err != nil {
			return nil, fmt.Errorf("source %s (%s): keyring /%s is not in the parent image: %w", auth.RedactURL(src.URI), src.Location, p, err)
		}
		keys, err := aptrepo.ReadKeyring("/"+p+" (parent image)", data)
		if err != nil {
			return nil, err
		}
		el = append(el, keys...)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("source %s (%s): no keyring: the parent has no Signed-By file and nothing in /etc/apt/trusted.gpg.d; add apt_sources with signed-by", auth.RedactURL(src.URI), src.Location)
	}
	return el, nil
}

// hostKeyring loads an apt_sources entry's keys from host files (relative
// to the spec's directory) or an inline key block.
func hostKeyring(src aptrepo.Source, dir string) (openpgp.EntityList, error) {
	sb := strings.TrimSpace(src.SignedBy)
	if sb == "" {
		return nil, fmt.Errorf("apt_sources entry %s (%s) has no signed-by: name the repository's key file (relative to the spec) or give the key inline; kiln never installs unsigned packages", auth.RedactURL(src.URI), src.Location)
	}
	if strings.HasPrefix(sb, "-----BEGIN PGP") {
		return src.Keyring()
	}
	var el openpgp.EntityList
	for _, p := range splitPaths(sb) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("apt_sources entry %s (%s): read signed-by key: %w", auth.RedactURL(src.URI), src.Location, err)
		}
		keys, err := aptrepo.ReadKeyring(p, data)
		if err != nil {
			return nil, err
		}
		el = append(el, keys...)
	}
	return el, nil
}
