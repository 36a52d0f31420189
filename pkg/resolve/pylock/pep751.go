package pylock

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
)

// pep751File is the TOML of a pylock.toml.
type pep751File struct {
	LockVersion      string          `toml:"lock-version"`
	Environments     []string        `toml:"environments"`
	RequiresPython   string          `toml:"requires-python"`
	Extras           []string        `toml:"extras"`
	DependencyGroups []string        `toml:"dependency-groups"`
	DefaultGroups    []string        `toml:"default-groups"`
	CreatedBy        string          `toml:"created-by"`
	Packages         []pep751Package `toml:"packages"`
}

type pep751Package struct {
	Name           string         `toml:"name"`
	Version        string         `toml:"version"`
	Marker         string         `toml:"marker"`
	RequiresPython string         `toml:"requires-python"`
	Index          string         `toml:"index"`
	VCS            map[string]any `toml:"vcs"`
	Directory      map[string]any `toml:"directory"`
	Archive        map[string]any `toml:"archive"`
	Sdist          *pep751Dist    `toml:"sdist"`
	Wheels         []pep751Dist   `toml:"wheels"`
}

type pep751Dist struct {
	Name   string            `toml:"name"`
	URL    string            `toml:"url"`
	Path   string            `toml:"path"`
	Size   int64             `toml:"size"`
	Hashes map[string]string `toml:"hashes"`
}

// ParsePylock parses a PEP 751 lock file read from path (which names it
// in errors and anchors relative paths).
func ParsePylock(path string, data []byte) (*Lock, error) {
	var f pep751File
	if _, err := toml.Decode(string(data), &f); err != nil {
		return nil, fmt.Errorf("%s: not valid TOML: %w", path, err)
	}
	major, _, _ := strings.Cut(f.LockVersion, ".")
	if f.LockVersion == "" {
		return nil, fmt.Errorf("%s: no lock-version; a PEP 751 lock starts with lock-version = \"1.0\"", path)
	}
	if major != "1" {
		return nil, fmt.Errorf("%s: lock-version %q is not 1.x, which kiln reads; lock again with a tool writing PEP 751 1.0", path, f.LockVersion)
	}
	l := &Lock{Kind: KindPylock, Path: path, Flat: true, DefaultGroups: normAll(f.DefaultGroups)}
	l.Extras = normAll(f.Extras)
	l.Groups = normAll(f.DependencyGroups)
	if l.Extras == nil {
		l.Extras = []string{}
	}
	if l.Groups == nil {
		l.Groups = []string{}
	}
	var err error
	if l.RequiresPython, err = parseRequiresPython(f.RequiresPython); err != nil {
		return nil, fmt.Errorf("%s: requires-python: %w", path, err)
	}
	if l.Environments, err = parseMarkers(f.Environments); err != nil {
		return nil, fmt.Errorf("%s: environments%w", path, err)
	}
	dir := filepath.Dir(path)
	for i, p := range f.Packages {
		where := fmt.Sprintf("%s: packages[%d]", path, i)
		if !pep508.ValidName(p.Name) {
			return nil, fmt.Errorf("%s: name %q is not a valid project name", where, p.Name)
		}
		pkg := Package{Name: pep508.NormalizeName(p.Name), Version: p.Version, MarkerText: p.Marker, Index: p.Index}
		where = fmt.Sprintf("%s: %s", path, pkg.Name)
		if p.Marker != "" {
			// Checked now (set tests replaced), evaluated per target.
			if _, err := evalLockMarker(p.Marker, pep508.Environment{}, nil, nil); err != nil {
				if _, ok := err.(*pep508.UndefinedComparisonError); !ok {
					return nil, fmt.Errorf("%s: marker: %w", where, err)
				}
			}
		}
		if pkg.RequiresPython, err = parseRequiresPython(p.RequiresPython); err != nil {
			return nil, fmt.Errorf("%s: requires-python: %w", where, err)
		}
		switch {
		case p.VCS != nil:
			pkg.Unsupported = "it comes from version control (vcs)"
		case p.Directory != nil:
			pkg.Unsupported = "it is a local directory"
		case p.Archive != nil:
			pkg.Unsupported = "it is an archive URL"
		}
		for j, w := range p.Wheels {
			df, err := w.file(dir)
			if err != nil {
				return nil, fmt.Errorf("%s: wheels[%d]: %w", where, j, err)
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
		l.Packages = append(l.Packages, pkg)
	}
	return l, nil
}

// file converts a wheel or sdist entry; a path is taken relative to dir.
func (d pep751Dist) file(dir string) (File, error) {
	f, err := locate(d.Name, d.URL, d.Path, dir, d.Size)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", d.Name, err)
	}
	sum, err := sha256Of(d.Hashes)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", f.Filename, err)
	}
	f.SHA256 = sum
	return f, nil
}

// sha256Of returns the sha256 of a hashes table, lower case, checked.
func sha256Of(hashes map[string]string) (string, error) {
	sum, ok := hashes["sha256"]
	if !ok {
		return "", nil
	}
	return checkSHA256(sum)
}

func checkSHA256(sum string) (string, error) {
	sum = strings.ToLower(sum)
	if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
		return "", fmt.Errorf("sha256 %q is not 64 hex digits", sum)
	}
	return sum, nil
}

// parseMarkers parses a lock's list of environment markers; an error
// starts with the failing entry's index, "[i]: ".
func parseMarkers(list []string) ([]*pep508.Marker, error) {
	var out []*pep508.Marker
	for i, e := range list {
		m, err := pep508.ParseMarker(e)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func parseRequiresPython(s string) (pep440.SpecifierSet, error) {
	if strings.TrimSpace(s) == "" {
		return pep440.SpecifierSet{}, nil
	}
	return pep440.ParseSpecifierSet(s)
}

func normAll(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, pep508.NormalizeName(n))
	}
	return out
}
