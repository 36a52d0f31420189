package pylock

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
)

// poetryTOML is [tool.poetry] of a pyproject.toml.
type poetryTOML struct {
	Name            string                 `toml:"name"`
	Dependencies    map[string]any         `toml:"dependencies"`
	DevDependencies map[string]any         `toml:"dev-dependencies"`
	Extras          map[string][]string    `toml:"extras"`
	Group           map[string]poetryGroup `toml:"group"`
}

type poetryGroup struct {
	Optional     bool           `toml:"optional"`
	Dependencies map[string]any `toml:"dependencies"`
}

// PoetrySection is what kiln reads of [tool.poetry].
type PoetrySection struct {
	// Deps are the main dependencies (python excluded); Optional marks
	// those installed only through an extra.
	Deps     []Dep
	Optional map[string]bool
	// Extras maps an extra to the names of the optional dependencies it
	// installs.
	Extras map[string][]string
	// Groups are the dependency groups (dev-dependencies is group dev).
	Groups map[string][]Dep
}

func (t *poetryTOML) section(path string) (*PoetrySection, error) {
	s := &PoetrySection{Optional: map[string]bool{}, Extras: map[string][]string{}, Groups: map[string][]Dep{}}
	for _, name := range sortedKeysOf(t.Dependencies) {
		if strings.EqualFold(name, "python") {
			continue
		}
		deps, opt, err := poetryDeps(name, t.Dependencies[name], fmt.Sprintf("%s: [tool.poetry.dependencies] %s", path, name))
		if err != nil {
			return nil, err
		}
		s.Deps = append(s.Deps, deps...)
		if opt {
			s.Optional[pep508.NormalizeName(name)] = true
		}
	}
	for x, names := range t.Extras {
		s.Extras[pep508.NormalizeName(x)] = normAll(names)
	}
	addGroup := func(g string, m map[string]any, where string) error {
		g = pep508.NormalizeName(g)
		for _, name := range sortedKeysOf(m) {
			deps, _, err := poetryDeps(name, m[name], where+" "+name)
			if err != nil {
				return err
			}
			s.Groups[g] = append(s.Groups[g], deps...)
		}
		if s.Groups[g] == nil {
			s.Groups[g] = []Dep{}
		}
		return nil
	}
	if err := addGroup("dev", t.DevDependencies, path+": [tool.poetry.dev-dependencies]"); err != nil {
		return nil, err
	}
	if len(t.DevDependencies) == 0 {
		delete(s.Groups, "dev")
	}
	for _, g := range sortedKeysOf(t.Group) {
		if err := addGroup(g, t.Group[g].Dependencies, fmt.Sprintf("%s: [tool.poetry.group.%s.dependencies]", path, g)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// poetryDeps reads one dependency of Poetry's format: a constraint
// string, a table (version, markers, python, extras, optional), or a list
// of tables for different environments. It reports whether it is
// optional.
func poetryDeps(name string, v any, where string) ([]Dep, bool, error) {
	if !pep508.ValidName(name) {
		return nil, false, fmt.Errorf("%s: %q is not a valid project name", where, name)
	}
	n := pep508.NormalizeName(name)
	switch v := v.(type) {
	case string:
		return []Dep{{Name: n, Constraint: poetryConstraint(v)}}, false, nil
	case map[string]any:
		d, opt, err := poetryDepTable(n, v, where)
		if err != nil {
			return nil, false, err
		}
		return []Dep{d}, opt, nil
	case []map[string]any:
		var out []Dep
		anyOpt := false
		for _, t := range v {
			d, opt, err := poetryDepTable(n, t, where)
			if err != nil {
				return nil, false, err
			}
			out = append(out, d)
			anyOpt = anyOpt || opt
		}
		return out, anyOpt, nil
	case []any:
		var out []Dep
		anyOpt := false
		for _, e := range v {
			t, ok := e.(map[string]any)
			if !ok {
				return nil, false, fmt.Errorf("%s: a list of constraints must hold tables", where)
			}
			d, opt, err := poetryDepTable(n, t, where)
			if err != nil {
				return nil, false, err
			}
			out = append(out, d)
			anyOpt = anyOpt || opt
		}
		return out, anyOpt, nil
	}
	return nil, false, fmt.Errorf("%s: want a version constraint or a table", where)
}

func poetryDepTable(n string, t map[string]any, where string) (Dep, bool, error) {
	d := Dep{Name: n}
	str := func(k string) string {
		s, _ := t[k].(string)
		return s
	}
	if v := str("version"); v != "" {
		d.Constraint = poetryConstraint(v)
	}
	var markers []string
	if m := str("markers"); m != "" {
		markers = append(markers, "("+m+")")
	}
	if py := str("python"); py != "" {
		if m := pythonMarker(py); m != "" {
			markers = append(markers, "("+m+")")
		}
	}
	if len(markers) > 0 {
		m, err := pep508.ParseMarker(strings.Join(markers, " and "))
		if err != nil {
			return Dep{}, false, fmt.Errorf("%s: markers: %w", where, err)
		}
		d.Marker = m
	}
	if xs, ok := t["extras"].([]any); ok {
		for _, x := range xs {
			if s, ok := x.(string); ok {
				d.Extras = append(d.Extras, pep508.NormalizeName(s))
			}
		}
	}
	opt, _ := t["optional"].(bool)
	return d, opt, nil
}

// pythonMarker turns a Poetry python constraint into a marker ("" for
// any Python, or a constraint with || kiln does not translate).
func pythonMarker(c string) string {
	set := poetryConstraint(c)
	if set == nil {
		return ""
	}
	var parts []string
	for _, sp := range set.Specifiers() {
		parts = append(parts, fmt.Sprintf("python_full_version %s %q", sp.Operator(), sp.Version()))
	}
	return strings.Join(parts, " and ")
}

var poetryClauseRE = regexp.MustCompile(`^(\^|~=|~|==|!=|>=|<=|>|<|=)?\s*([0-9][0-9A-Za-z.*+!-]*)$`)

// poetryConstraint converts a Poetry version constraint ("^1.2", "~1.2.3",
// ">=2,<3", "1.2.*", "*") to a PEP 440 specifier set; nil means any
// version (or a || alternative, which a set cannot hold).
func poetryConstraint(c string) *pep440.SpecifierSet {
	c = strings.TrimSpace(c)
	if c == "" || c == "*" || strings.Contains(c, "||") || strings.Contains(c, "|") {
		return nil
	}
	var specs []string
	for _, clause := range strings.FieldsFunc(c, func(r rune) bool { return r == ',' }) {
		// ">=1 <2" is an AND too.
		for _, part := range splitSpaced(strings.TrimSpace(clause)) {
			m := poetryClauseRE.FindStringSubmatch(part)
			if m == nil {
				return nil
			}
			op, v := m[1], m[2]
			switch op {
			case "^":
				specs = append(specs, ">="+v, "<"+caretUpper(v))
			case "~":
				specs = append(specs, ">="+v, "<"+tildeUpper(v))
			case "", "=":
				if v == "*" {
					continue
				}
				specs = append(specs, "=="+v)
			default:
				specs = append(specs, op+v)
			}
		}
	}
	if len(specs) == 0 {
		return nil
	}
	set, err := pep440.ParseSpecifierSet(strings.Join(specs, ","))
	if err != nil {
		return nil
	}
	return &set
}

// splitSpaced splits ">= 1 < 2" into ">=1", "<2".
func splitSpaced(s string) []string {
	var out []string
	cur := ""
	for _, f := range strings.Fields(s) {
		if strings.Trim(f, "^~=!<>") == "" {
			cur += f
			continue
		}
		out = append(out, cur+f)
		cur = ""
	}
	return out
}

func releaseParts(v string) []int {
	var out []int
	for _, p := range strings.Split(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}

// caretUpper is the exclusive upper bound of ^v: the first non-zero
// release part goes up by one.
func caretUpper(v string) string {
	p := releaseParts(v)
	if len(p) == 0 {
		return v
	}
	i := 0
	for i < len(p)-1 && p[i] == 0 {
		i++
	}
	return bump(p, i)
}

// tildeUpper is the exclusive upper bound of ~v: ~1.2.3 is <1.3, ~1 <2.
func tildeUpper(v string) string {
	p := releaseParts(v)
	if len(p) == 0 {
		return v
	}
	if len(p) == 1 {
		return bump(p, 0)
	}
	return bump(p, 1)
}

func bump(p []int, i int) string {
	var parts []string
	for j := 0; j <= i; j++ {
		n := p[j]
		if j == i {
			n++
		}
		parts = append(parts, strconv.Itoa(n))
	}
	if len(parts) == 1 {
		parts = append(parts, "0")
	}
	return strings.Join(parts, ".")
}

type poetryLockTOML struct {
	Package  []poetryLockPkg     `toml:"package"`
	Extras   map[string][]string `toml:"extras"`
	Metadata struct {
		LockVersion    string                      `toml:"lock-version"`
		PythonVersions string                      `toml:"python-versions"`
		Files          map[string][]poetryLockFile `toml:"files"`
	} `toml:"metadata"`
}

type poetryLockPkg struct {
	Name           string              `toml:"name"`
	Version        string              `toml:"version"`
	Optional       bool                `toml:"optional"`
	PythonVersions string              `toml:"python-versions"`
	Markers        any                 `toml:"markers"`
	Files          []poetryLockFile    `toml:"files"`
	Dependencies   map[string]any      `toml:"dependencies"`
	Extras         map[string][]string `toml:"extras"`
	Source         map[string]string   `toml:"source"`
}

type poetryLockFile struct {
	File string `toml:"file"`
	Hash string `toml:"hash"`
}

// extraNameRE takes the project name from an extras entry of poetry.lock:
// "asgiref (>=3.2)" or "asgiref>=3.2".
var extraNameRE = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)`)

// ParsePoetry parses a poetry.lock read from path with the project's
// pyproject.toml (its dependencies are the roots of the lock's graph).
// poetry.lock names files without URLs: Pin.File.URL is "" and Pin.Index
// the package's source URL ("" for PyPI).
func ParsePoetry(path string, data []byte, pp *Pyproject) (*Lock, error) {
	var f poetryLockTOML
	if _, err := toml.Decode(string(data), &f); err != nil {
		return nil, fmt.Errorf("%s: not valid TOML: %w", path, err)
	}
	major, _, _ := strings.Cut(f.Metadata.LockVersion, ".")
	if major != "1" && major != "2" {
		return nil, fmt.Errorf("%s: [metadata] lock-version %q: kiln reads poetry.lock versions 1.x and 2.x", path, f.Metadata.LockVersion)
	}
	l := &Lock{Kind: KindPoetry, Path: path, RootOptional: map[string][]Dep{}, RootGroups: map[string][]Dep{}, Extras: []string{}, Groups: []string{}}
	if set := poetryConstraint(f.Metadata.PythonVersions); set != nil {
		l.RequiresPython = *set
	}
	for _, p := range f.Package {
		if !pep508.ValidName(p.Name) {
			return nil, fmt.Errorf("%s: package name %q is not a valid project name", path, p.Name)
		}
		pkg := Package{Name: pep508.NormalizeName(p.Name), Version: p.Version, Optional: map[string][]Dep{}}
		where := fmt.Sprintf("%s: %s %s", path, pkg.Name, p.Version)
		if set := poetryConstraint(p.PythonVersions); set != nil {
			pkg.RequiresPython = *set
		}
		if m, ok := p.Markers.(string); ok && m != "" {
			mk, err := pep508.ParseMarker(m)
			if err != nil {
				return nil, fmt.Errorf("%s: markers: %w", where, err)
			}
			pkg.Marker = mk
		}
		optional := map[string]bool{}
		for _, dn := range sortedKeysOf(p.Dependencies) {
			deps, opt, err := poetryDeps(dn, p.Dependencies[dn], where+" dependencies")
			if err != nil {
				return nil, err
			}
			if opt {
				optional[pep508.NormalizeName(dn)] = true
				continue
			}
			pkg.Deps = append(pkg.Deps, deps...)
		}
		for x, entries := range p.Extras {
			xn := pep508.NormalizeName(x)
			for _, e := range entries {
				m := extraNameRE.FindStringSubmatch(e)
				if m == nil {
					continue
				}
				n := pep508.NormalizeName(m[1])
				if raw, ok := p.Dependencies[m[1]]; ok {
					deps, _, err := poetryDeps(m[1], raw, where+" extras")
					if err != nil {
						return nil, err
					}
					pkg.Optional[xn] = append(pkg.Optional[xn], deps...)
					continue
				}
				pkg.Optional[xn] = append(pkg.Optional[xn], Dep{Name: n})
			}
		}
		switch t := p.Source["type"]; t {
		case "", "legacy":
			pkg.Index = p.Source["url"]
		default:
			pkg.Unsupported = "it comes from a " + t + " source"
		}
		files := p.Files
		if len(files) == 0 {
			files = f.Metadata.Files[p.Name]
		}
		for _, fl := range files {
			df := File{Filename: fl.File}
			if algo, sum, ok := strings.Cut(fl.Hash, ":"); ok && algo == "sha256" {
				s, err := checkSHA256(sum)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %w", where, fl.File, err)
				}
				df.SHA256 = s
			}
			if strings.HasSuffix(fl.File, ".whl") {
				pkg.Wheels = append(pkg.Wheels, df)
			} else if pkg.Sdist == nil {
				d := df
				pkg.Sdist = &d
			}
		}
		l.Packages = append(l.Packages, pkg)
	}
	if pp == nil {
		return nil, fmt.Errorf("%s: poetry.lock needs the project's pyproject.toml beside it", path)
	}
	if pp.Name != "" {
		l.Projects = []string{pp.Name}
	}
	// The roots: [project] (Poetry 2) and [tool.poetry] dependencies.
	for _, r := range pp.Dependencies {
		d, err := pep508Dep(r)
		if err != nil {
			return nil, fmt.Errorf("%s: [project.dependencies] %q: %w", pp.Path, r, err)
		}
		l.Roots = append(l.Roots, d)
	}
	for x, reqs := range pp.Optional {
		l.Extras = appendNew(l.Extras, x)
		for _, r := range reqs {
			d, err := pep508Dep(r)
			if err != nil {
				return nil, fmt.Errorf("%s: [project.optional-dependencies] %s %q: %w", pp.Path, x, r, err)
			}
			l.RootOptional[x] = append(l.RootOptional[x], d)
		}
	}
	for g := range pp.Groups {
		reqs, err := pp.GroupRequirements(g)
		if err != nil {
			return nil, err
		}
		l.Groups = appendNew(l.Groups, g)
		for _, r := range reqs {
			d, err := pep508Dep(r)
			if err != nil {
				return nil, fmt.Errorf("%s: [dependency-groups] %s %q: %w", pp.Path, g, r, err)
			}
			l.RootGroups[g] = append(l.RootGroups[g], d)
		}
	}
	if ps := pp.Poetry; ps != nil {
		for _, d := range ps.Deps {
			if !ps.Optional[d.Name] {
				l.Roots = append(l.Roots, d)
			}
		}
		for x, names := range ps.Extras {
			l.Extras = appendNew(l.Extras, x)
			for _, n := range names {
				for _, d := range ps.Deps {
					if d.Name == n {
						l.RootOptional[x] = append(l.RootOptional[x], d)
					}
				}
			}
		}
		for g, deps := range ps.Groups {
			l.Groups = appendNew(l.Groups, g)
			l.RootGroups[g] = append(l.RootGroups[g], deps...)
		}
	}
	if len(l.Roots) == 0 && len(l.RootOptional) == 0 && len(l.RootGroups) == 0 {
		return nil, fmt.Errorf("%s: the pyproject.toml beside it (%s) has no dependencies ([tool.poetry.dependencies] or [project].dependencies)", path, pp.Path)
	}
	sort.Strings(l.Extras)
	sort.Strings(l.Groups)
	return l, nil
}

// pep508Dep converts a PEP 508 requirement to a Dep.
func pep508Dep(s string) (Dep, error) {
	r, err := pep508.ParseRequirement(s)
	if err != nil {
		return Dep{}, err
	}
	d := Dep{Name: r.NormalizedName(), Marker: r.Marker, Extras: normAll(r.Extras)}
	if r.Specifier.Len() > 0 {
		set := r.Specifier
		d.Constraint = &set
	}
	return d, nil
}
