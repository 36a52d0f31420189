package pylock

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/wheeltag"
)

// Kind is the kind of a file named by a spec's requirements key.
type Kind string

const (
	// KindRequirements is pip's requirements.txt format (any other name).
	KindRequirements Kind = "requirements"
	// KindPyproject is a pyproject.toml, resolved like a requirements file.
	KindPyproject Kind = "pyproject.toml"
	// KindPylock is a PEP 751 lock, pylock.toml or pylock.<name>.toml.
	KindPylock Kind = "pylock.toml"
	// KindUV is uv's uv.lock.
	KindUV Kind = "uv.lock"
	// KindPoetry is Poetry's poetry.lock, read with the pyproject.toml
	// beside it.
	KindPoetry Kind = "poetry.lock"
)

// KindOf returns the kind of the file at path, from its name alone.
func KindOf(path string) Kind {
	base := filepath.Base(path)
	switch {
	case base == "pyproject.toml":
		return KindPyproject
	case base == "pylock.toml" || (strings.HasPrefix(base, "pylock.") && strings.HasSuffix(base, ".toml") && len(base) > len("pylock..toml")):
		return KindPylock
	case base == "uv.lock":
		return KindUV
	case base == "poetry.lock":
		return KindPoetry
	}
	return KindRequirements
}

// IsLock reports whether k is a lock file kind.
func (k Kind) IsLock() bool { return k == KindPylock || k == KindUV || k == KindPoetry }

// File is one distribution file a lock names.
type File struct {
	// Filename is the file's name, such as "idna-3.13-py3-none-any.whl".
	Filename string
	// URL is where the lock says the file is ("" when it gives only a
	// name, as poetry.lock does); a local path is a file:// URL.
	URL string
	// SHA256 is the lock's hex SHA-256 of the file ("" if it has none).
	SHA256 string
	// Size is the lock's size of the file, or 0.
	Size int64
}

// locate makes the File a lock entry names by rawURL or by a path
// (relative to dir); filename, when empty, is taken from either.
func locate(filename, rawURL, p, dir string, size int64) (File, error) {
	f := File{Filename: filename, Size: size}
	switch {
	case rawURL != "":
		u, err := url.Parse(rawURL)
		if err != nil {
			return File{}, fmt.Errorf("url: %w", err)
		}
		f.URL = rawURL
		if f.Filename == "" {
			f.Filename = path.Base(u.Path)
		}
	case p != "":
		p = filepath.FromSlash(p)
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		f.URL = (&url.URL{Scheme: "file", Path: filepath.ToSlash(p)}).String()
		if f.Filename == "" {
			f.Filename = filepath.Base(p)
		}
	default:
		return File{}, errors.New("a file has neither url nor path")
	}
	return f, nil
}

// Dep is an edge of a lock's dependency graph.
type Dep struct {
	// Name is the normalised project name.
	Name string
	// Version, when set, is the version the lock chose (uv.lock names it
	// when a project is locked at more than one version).
	Version string
	// Constraint, when set, is a version range that picks among several
	// locked versions of Name (poetry.lock).
	Constraint *pep440.SpecifierSet
	// Marker limits the edge to some environments (nil: always).
	Marker *pep508.Marker
	// Extras are the extras asked of Name, normalised.
	Extras []string
}

// Package is one locked project at one version.
type Package struct {
	// Name is the normalised project name; Version its version.
	Name, Version string
	// Marker limits the package to some environments (nil: always); in
	// a flat lock (pylock.toml) MarkerText, which may test PEP 751's extras
	// and dependency_groups, says when the package is installed.
	Marker     *pep508.Marker
	MarkerText string
	// RequiresPython is the Python the package needs (may be empty).
	RequiresPython pep440.SpecifierSet
	// Deps are its dependencies; Optional its extras' dependencies; Groups
	// the dependency groups of a root package.
	Deps     []Dep
	Optional map[string][]Dep
	Groups   map[string][]Dep
	// Wheels are its wheels; Sdist its source distribution, if any.
	Wheels []File
	Sdist  *File
	// Index is the index the files came from, "" when unknown.
	Index string
	// Unsupported, when set, says why kiln cannot install the package
	// (a Git, directory or editable source): an error if it is needed.
	Unsupported string
}

// Lock is a parsed lock file.
type Lock struct {
	// Kind is the file's kind; Path where it was read from.
	Kind Kind
	Path string
	// RequiresPython is the Python the lock is for (may be empty).
	RequiresPython pep440.SpecifierSet
	// Environments, when set, are the markers of the environments the
	// lock covers: one must hold for the target.
	Environments []*pep508.Marker
	// Flat marks a lock whose packages are chosen by their own markers
	// (pylock.toml) rather than by walking Roots.
	Flat bool
	// Roots are the top-level requirements, when not Flat; RootOptional
	// and RootGroups the project's extras and dependency groups.
	Roots        []Dep
	RootOptional map[string][]Dep
	RootGroups   map[string][]Dep
	// Projects are the normalised names of the project and its workspace
	// members: a dependency on one of them is met by the roots (its
	// extras by RootOptional).
	Projects []string
	// Extras and Groups are the extras and groups the lock knows, for
	// checking the names a spec asks for (nil: not checked).
	Extras, Groups []string
	// DefaultGroups are installed when no group is asked for
	// (pylock.toml's default-groups).
	DefaultGroups []string
	// Packages are the locked packages, in file order.
	Packages []Package
}

// Target is the interpreter a lock is installed for.
type Target struct {
	// Env holds the target's marker values; Tags its wheel tags, and Name
	// describes it in errors ("cp311-manylinux_2_36_x86_64").
	Env  pep508.Environment
	Tags *wheeltag.TagSet
	Name string
	// Extras and Groups are the project's extras and dependency groups to
	// install (the spec's extras and groups keys).
	Extras, Groups []string
}

// Pin is one wheel to install.
type Pin struct {
	// Name is the normalised project name; Version its locked version.
	Name, Version string
	// File is the chosen wheel.
	File File
	// Index is the index the lock says the file came from, or "".
	Index string
	// Requested marks a top-level requirement.
	Requested bool
}

// CoverageError reports a lock that does not cover the target.
type CoverageError struct {
	// File is the lock's path; Target the target's description.
	File, Target string
	// Missing says what is missing, one entry per problem.
	Missing []string
}

// Error implements error.
func (e *CoverageError) Error() string {
	return fmt.Sprintf("%s does not cover the target %s: %s; lock again for this platform and Python (or change platform/base_image)", e.File, e.Target, strings.Join(e.Missing, "; "))
}

// Install returns the wheels to install for t: the packages the target
// needs (by markers, extras and groups), each with the best wheel for t's
// tags, sorted by name. It fails with a *CoverageError when the lock is
// not for t's Python or environment, or a needed package has no wheel that
// fits t, and with other errors for extras or groups the lock does not
// have, or packages kiln cannot install from a lock.
func (l *Lock) Install(t Target) ([]Pin, error) {
	cov := &CoverageError{File: filepath.Base(l.Path), Target: t.Name}
	py, err := pep440.Parse(t.Env.PythonFullVersion)
	if err != nil {
		return nil, fmt.Errorf("target Python %q: %w", t.Env.PythonFullVersion, err)
	}
	if l.RequiresPython.Len() > 0 && !l.RequiresPython.Contains(py, true) {
		cov.Missing = append(cov.Missing, fmt.Sprintf("it is for Python %s, the target has %s", l.RequiresPython, py))
		return nil, cov
	}
	if len(l.Environments) > 0 {
		ok := false
		var envs []string
		for _, m := range l.Environments {
			holds, err := m.Evaluate(t.Env)
			if err != nil {
				return nil, fmt.Errorf("%s: environments: %w", l.Path, err)
			}
			ok = ok || holds
			envs = append(envs, m.String())
		}
		if !ok {
			cov.Missing = append(cov.Missing, fmt.Sprintf("it covers only the environments %s", strings.Join(envs, " | ")))
			return nil, cov
		}
	}
	extras, err := checkNames("extras", t.Extras, l.Extras, l.Path)
	if err != nil {
		return nil, err
	}
	groups := t.Groups
	if len(groups) == 0 {
		groups = l.DefaultGroups
	}
	groups, err = checkNames("groups", groups, l.Groups, l.Path)
	if err != nil {
		return nil, err
	}
	var chosen []chosenPkg
	if l.Flat {
		chosen, err = l.flat(t, extras, groups)
	} else {
		chosen, err = l.walk(t, extras, groups)
	}
	if err != nil {
		return nil, err
	}
	var pins []Pin
	for _, c := range chosen {
		p := c.pkg
		if p.Unsupported != "" {
			return nil, fmt.Errorf("%s: %s %s: %s; kiln installs wheels from a lock only", l.Path, p.Name, p.Version, p.Unsupported)
		}
		if p.RequiresPython.Len() > 0 && !p.RequiresPython.Contains(py, true) {
			cov.Missing = append(cov.Missing, fmt.Sprintf("%s %s requires Python %s", p.Name, p.Version, p.RequiresPython))
			continue
		}
		f, ok, why := bestWheel(p, t.Tags)
		if !ok {
			cov.Missing = append(cov.Missing, why)
			continue
		}
		if f.SHA256 == "" {
			return nil, fmt.Errorf("%s: %s %s: %s has no sha256 hash in the lock; kiln installs only files the lock hashes (lock again with hashes)", l.Path, p.Name, p.Version, f.Filename)
		}
		pins = append(pins, Pin{Name: p.Name, Version: p.Version, File: f, Index: p.Index, Requested: c.requested})
	}
	if len(cov.Missing) > 0 {
		return nil, cov
	}
	sort.Slice(pins, func(i, j int) bool { return pins[i].Name < pins[j].Name })
	return pins, nil
}

// checkNames normalises the asked names and checks them against known
// (when known is not nil).
func checkNames(what string, asked, known []string, path string) ([]string, error) {
	var out []string
	for _, a := range asked {
		n := pep508.NormalizeName(a)
		if known != nil && !slices.Contains(known, n) {
			have := "none"
			if len(known) > 0 {
				have = strings.Join(known, ", ")
			}
			return nil, fmt.Errorf("%s: %s: %s has no %q (it has %s); fix the spec's %s key", what, filepath.Base(path), path, a, have, what)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

type chosenPkg struct {
	pkg       *Package
	requested bool
}

// flat chooses the packages of a pylock.toml by their markers.
func (l *Lock) flat(t Target, extras, groups []string) ([]chosenPkg, error) {
	var out []chosenPkg
	seen := map[string]string{}
	for i := range l.Packages {
		p := &l.Packages[i]
		ok, err := evalLockMarker(p.MarkerText, t.Env, extras, groups)
		if err != nil {
			return nil, fmt.Errorf("%s: %s %s: marker: %w", l.Path, p.Name, p.Version, err)
		}
		if !ok {
			continue
		}
		if v, dup := seen[p.Name]; dup {
			return nil, fmt.Errorf("%s: both %s %s and %s apply to the target; the lock's markers must choose one version per project", l.Path, p.Name, v, p.Version)
		}
		seen[p.Name] = p.Version
		out = append(out, chosenPkg{pkg: p})
	}
	return out, nil
}

// walk chooses the packages reachable from the roots for t.
func (l *Lock) walk(t Target, extras, groups []string) ([]chosenPkg, error) {
	byName := map[string][]int{}
	for i, p := range l.Packages {
		byName[p.Name] = append(byName[p.Name], i)
	}
	type item struct {
		dep  Dep
		from string
		top  bool
	}
	var queue []item
	for _, d := range l.Roots {
		queue = append(queue, item{d, "the project", true})
	}
	rootExtras := map[string]bool{}
	for _, x := range extras {
		rootExtras[x] = true
		for _, d := range l.RootOptional[x] {
			queue = append(queue, item{d, "the project's extra " + x, true})
		}
	}
	for _, g := range groups {
		for _, d := range l.RootGroups[g] {
			queue = append(queue, item{d, "the project's group " + g, true})
		}
	}
	chosen := map[int]*chosenPkg{}
	extrasDone := map[int]map[string]bool{}
	var order []int
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		ok, err := it.dep.Marker.Evaluate(t.Env)
		if err != nil {
			return nil, fmt.Errorf("%s: %s requires %s: marker: %w", l.Path, it.from, it.dep.Name, err)
		}
		if !ok {
			continue
		}
		if slices.Contains(l.Projects, it.dep.Name) {
			for _, x := range it.dep.Extras {
				if !rootExtras[x] {
					rootExtras[x] = true
					for _, d := range l.RootOptional[x] {
						queue = append(queue, item{d, "the project's extra " + x, true})
					}
				}
			}
			continue
		}
		idx, err := l.pick(byName[it.dep.Name], it.dep, t, it.from)
		if err != nil {
			return nil, err
		}
		p := &l.Packages[idx]
		c := chosen[idx]
		if c == nil {
			for j, o := range chosen {
				if l.Packages[j].Name == p.Name {
					return nil, fmt.Errorf("%s: both %s %s and %s are needed for the target (%s requires the latter); kiln installs one version per project", l.Path, p.Name, o.pkg.Version, p.Version, it.from)
				}
			}
			c = &chosenPkg{pkg: p}
			chosen[idx] = c
			order = append(order, idx)
			extrasDone[idx] = map[string]bool{}
			from := p.Name + " " + p.Version
			for _, d := range p.Deps {
				queue = append(queue, item{d, from, false})
			}
		}
		c.requested = c.requested || it.top
		for _, x := range it.dep.Extras {
			if extrasDone[idx][x] {
				continue
			}
			extrasDone[idx][x] = true
			for _, d := range p.Optional[x] {
				queue = append(queue, item{d, p.Name + "[" + x + "] " + p.Version, false})
			}
		}
	}
	var out []chosenPkg
	for _, i := range order {
		out = append(out, *chosen[i])
	}
	return out, nil
}

// pick chooses among the locked versions of a dependency.
func (l *Lock) pick(cands []int, d Dep, t Target, from string) (int, error) {
	if len(cands) == 0 {
		return 0, fmt.Errorf("%s: %s requires %s, which the lock does not have; lock again", l.Path, from, d.Name)
	}
	if len(cands) == 1 && d.Version == "" {
		return cands[0], nil
	}
	py, _ := pep440.Parse(t.Env.PythonFullVersion)
	var fits []int
	for _, i := range cands {
		p := l.Packages[i]
		if d.Version != "" && p.Version != d.Version {
			continue
		}
		if d.Constraint != nil {
			v, err := pep440.Parse(p.Version)
			if err != nil || !d.Constraint.Contains(v, true) {
				continue
			}
		}
		if p.RequiresPython.Len() > 0 && !p.RequiresPython.Contains(py, true) && len(cands) > 1 {
			continue
		}
		if ok, err := p.Marker.Evaluate(t.Env); err == nil && !ok {
			continue
		}
		fits = append(fits, i)
	}
	if len(fits) == 0 {
		var have []string
		for _, i := range cands {
			have = append(have, l.Packages[i].Version)
		}
		want := d.Version
		if d.Constraint != nil {
			want = d.Constraint.String()
		}
		return 0, fmt.Errorf("%s: %s requires %s %s, but the lock has only %s; lock again", l.Path, from, d.Name, want, strings.Join(have, ", "))
	}
	return fits[0], nil
}

// bestWheel returns p's wheel with the best tag priority for tags.
func bestWheel(p *Package, tags *wheeltag.TagSet) (File, bool, string) {
	best, bestPrio := -1, 0
	var names []string
	for i, w := range p.Wheels {
		fn, err := wheeltag.ParseFilename(w.Filename)
		if err != nil {
			continue
		}
		names = append(names, w.Filename)
		prio, ok := tags.Priority(fn)
		if ok && (best < 0 || prio < bestPrio) {
			best, bestPrio = i, prio
		}
	}
	if best >= 0 {
		return p.Wheels[best], true, ""
	}
	switch {
	case len(names) == 0 && p.Sdist != nil:
		return File{}, false, fmt.Sprintf("%s %s has only a source distribution (%s) and kiln installs wheels only", p.Name, p.Version, p.Sdist.Filename)
	case len(names) == 0:
		return File{}, false, fmt.Sprintf("%s %s has no wheel in the lock", p.Name, p.Version)
	}
	if len(names) > 4 {
		names = append(names[:4], fmt.Sprintf("and %d more", len(names)-4))
	}
	return File{}, false, fmt.Sprintf("no wheel of %s %s fits (the lock has %s)", p.Name, p.Version, strings.Join(names, ", "))
}

// setTestRE matches PEP 751's set tests: 'name' in extras, "g" not in
// dependency_groups.
var setTestRE = regexp.MustCompile(`(['"])([^'"]*)['"]\s+(not\s+in|in)\s+(extras|dependency_groups)\b`)

// evalLockMarker evaluates a pylock.toml marker, whose extras and
// dependency_groups variables are the sets of extras and groups asked for.
// PEP 508's evaluator knows no set variables, so each set test is replaced
// by its truth value first.
func evalLockMarker(text string, env pep508.Environment, extras, groups []string) (bool, error) {
	if strings.TrimSpace(text) == "" {
		return true, nil
	}
	text = setTestRE.ReplaceAllStringFunc(text, func(m string) string {
		sub := setTestRE.FindStringSubmatch(m)
		set := extras
		if sub[4] == "dependency_groups" {
			set = groups
		}
		in := slices.Contains(set, pep508.NormalizeName(sub[2]))
		if strings.HasPrefix(sub[3], "not") {
			in = !in
		}
		if in {
			return `"1" == "1"`
		}
		return `"1" == "0"`
	})
	m, err := pep508.ParseMarker(text)
	if err != nil {
		return false, err
	}
	return m.Evaluate(env)
}
