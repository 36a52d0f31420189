package pylock

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/kiln-build/kiln/pkg/pep508"
)

// uvFile is the TOML of a uv.lock.
type uvFile struct {
	Version        int      `toml:"version"`
	Revision       int      `toml:"revision"`
	RequiresPython string   `toml:"requires-python"`
	Supported      []string `toml:"supported-markers"`
	Manifest       uvManif  `toml:"manifest"`
	Packages       []uvPkg  `toml:"package"`
}

type uvManif struct {
	Members []string `toml:"members"`
}

type uvPkg struct {
	Name           string             `toml:"name"`
	Version        string             `toml:"version"`
	Source         map[string]string  `toml:"source"`
	ResolutionMark []string           `toml:"resolution-markers"`
	Dependencies   []uvDep            `toml:"dependencies"`
	Optional       map[string][]uvDep `toml:"optional-dependencies"`
	Dev            map[string][]uvDep `toml:"dev-dependencies"`
	Sdist          *uvDist            `toml:"sdist"`
	Wheels         []uvDist           `toml:"wheels"`
}

type uvDep struct {
	Name    string            `toml:"name"`
	Version string            `toml:"version"`
	Source  map[string]string `toml:"source"`
	Marker  string            `toml:"marker"`
	Extra   []string          `toml:"extra"`
}

type uvDist struct {
	URL      string `toml:"url"`
	Path     string `toml:"path"`
	Filename string `toml:"filename"`
	Hash     string `toml:"hash"`
	Size     int64  `toml:"size"`
}

// ParseUV parses a uv.lock read from path. The roots are the project and
// workspace members (packages whose source is editable or virtual, or the
// manifest's members); their dependencies, optional-dependencies (extras)
// and dev-dependencies (groups) are the top-level requirements.
func ParseUV(path string, data []byte) (*Lock, error) {
	var f uvFile
	if _, err := toml.Decode(string(data), &f); err != nil {
		return nil, fmt.Errorf("%s: not valid TOML: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s: version = %d: kiln reads uv.lock version 1; lock again with uv 0.4 or later", path, f.Version)
	}
	l := &Lock{Kind: KindUV, Path: path, RootOptional: map[string][]Dep{}, RootGroups: map[string][]Dep{}, Extras: []string{}, Groups: []string{}}
	var err error
	if l.RequiresPython, err = parseRequiresPython(f.RequiresPython); err != nil {
		return nil, fmt.Errorf("%s: requires-python: %w", path, err)
	}
	if l.Environments, err = parseMarkers(f.Supported); err != nil {
		return nil, fmt.Errorf("%s: supported-markers%w", path, err)
	}
	members := map[string]bool{}
	for _, m := range f.Manifest.Members {
		members[pep508.NormalizeName(m)] = true
	}
	dir := filepath.Dir(path)
	roots := 0
	for _, p := range f.Packages {
		if !pep508.ValidName(p.Name) {
			return nil, fmt.Errorf("%s: package name %q is not a valid project name", path, p.Name)
		}
		pkg := Package{Name: pep508.NormalizeName(p.Name), Version: p.Version, Optional: map[string][]Dep{}}
		where := fmt.Sprintf("%s: %s %s", path, pkg.Name, p.Version)
		if len(p.ResolutionMark) > 0 {
			// The package is for the union of these forks.
			text := "(" + strings.Join(p.ResolutionMark, ") or (") + ")"
			if pkg.Marker, err = pep508.ParseMarker(text); err != nil {
				return nil, fmt.Errorf("%s: resolution-markers: %w", where, err)
			}
		}
		if pkg.Deps, err = uvDeps(p.Dependencies, where); err != nil {
			return nil, err
		}
		for x, ds := range p.Optional {
			if pkg.Optional[pep508.NormalizeName(x)], err = uvDeps(ds, where+" optional-dependencies."+x); err != nil {
				return nil, err
			}
		}
		root := false
		var src string
		for _, k := range []string{"registry", "editable", "virtual", "directory", "path", "git", "url"} {
			if v, ok := p.Source[k]; ok {
				src = k
				if k == "registry" {
					pkg.Index = v
				}
				break
			}
		}
		switch src {
		case "editable", "virtual":
			root = members[pkg.Name] || p.Source[src] == "."
			if !root {
				pkg.Unsupported = "it is a local " + src + " project"
			}
		case "directory", "path":
			pkg.Unsupported = "it is a local " + src + " source"
		case "git":
			pkg.Unsupported = "it comes from Git"
		}
		if members[pkg.Name] {
			root = true
		}
		for _, w := range p.Wheels {
			df, err := w.file(dir)
			if err != nil {
				return nil, fmt.Errorf("%s: wheels: %w", where, err)
			}
			pkg.Wheels = append(pkg.Wheels, df)
		}
		if p.Sdist != nil {
			df, err := p.Sdist.file(dir)
			if err != nil {
				return nil, fmt.Errorf("%s: sdist: %w", where, err)
			}
			pkg.Sdist = &df
		}
		if src == "url" && len(pkg.Wheels) == 0 {
			pkg.Unsupported = "it is a source archive URL"
		}
		if !root {
			l.Packages = append(l.Packages, pkg)
			continue
		}
		roots++
		l.Projects = appendNew(l.Projects, pkg.Name)
		l.Roots = append(l.Roots, pkg.Deps...)
		for x, ds := range pkg.Optional {
			l.RootOptional[x] = append(l.RootOptional[x], ds...)
			l.Extras = appendNew(l.Extras, x)
		}
		for g, ds := range p.Dev {
			deps, err := uvDeps(ds, where+" dev-dependencies."+g)
			if err != nil {
				return nil, err
			}
			g = pep508.NormalizeName(g)
			l.RootGroups[g] = append(l.RootGroups[g], deps...)
			l.Groups = appendNew(l.Groups, g)
		}
	}
	if roots == 0 {
		return nil, fmt.Errorf("%s: no project in the lock (a package with source = { editable = \".\" } or { virtual = \".\" }); lock the project with uv lock", path)
	}
	sort.Strings(l.Extras)
	sort.Strings(l.Groups)
	return l, nil
}

func appendNew(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func uvDeps(ds []uvDep, where string) ([]Dep, error) {
	var out []Dep
	for _, d := range ds {
		if !pep508.ValidName(d.Name) {
			return nil, fmt.Errorf("%s: dependency name %q is not a valid project name", where, d.Name)
		}
		dep := Dep{Name: pep508.NormalizeName(d.Name), Version: d.Version, Extras: normAll(d.Extra)}
		if d.Marker != "" {
			m, err := pep508.ParseMarker(d.Marker)
			if err != nil {
				return nil, fmt.Errorf("%s: dependency %s: marker: %w", where, d.Name, err)
			}
			dep.Marker = m
		}
		out = append(out, dep)
	}
	return out, nil
}

// file converts a uv wheel or sdist; hash is "sha256:<hex>".
func (d uvDist) file(dir string) (File, error) {
	f, err := locate(d.Filename, d.URL, d.Path, dir, d.Size)
	if err != nil {
		return File{}, err
	}
	if d.Hash != "" {
		algo, sum, ok := strings.Cut(d.Hash, ":")
		if !ok {
			return File{}, fmt.Errorf("%s: hash %q: want sha256:<hex>", f.Filename, d.Hash)
		}
		if algo == "sha256" {
			s, err := checkSHA256(sum)
			if err != nil {
				return File{}, fmt.Errorf("%s: %w", f.Filename, err)
			}
			f.SHA256 = s
		}
	}
	return f, nil
}
