package pylock

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/kiln-build/kiln/pkg/pep508"
)

// Pyproject is the part of a pyproject.toml kiln reads.
type Pyproject struct {
	// Path is where it was read from.
	Path string
	// Name is [project].name, normalised ("" if unset).
	Name string
	// Dependencies are [project].dependencies, PEP 508 strings.
	Dependencies []string
	// Optional are [project.optional-dependencies], by normalised extra.
	Optional map[string][]string
	// Groups are PEP 735 [dependency-groups], by normalised name: each
	// entry a PEP 508 string or an include of another group.
	Groups map[string][]GroupEntry
	// Poetry is [tool.poetry], when present.
	Poetry *PoetrySection
	// BuildRequires is [build-system].requires.
	BuildRequires []string
}

// GroupEntry is one entry of a PEP 735 dependency group: a requirement,
// or (when Include is set) the name of a group to include.
type GroupEntry struct {
	Requirement string
	Include     string
}

// Requirement is a requirement taken from a pyproject.toml with where it
// came from.
type Requirement struct {
	// Text is the PEP 508 requirement.
	Text string
	// Source is where it was written, such as
	// "pyproject.toml [project.optional-dependencies] yaml".
	Source string
}

type pyprojectTOML struct {
	Project *struct {
		Name         string              `toml:"name"`
		Dependencies []string            `toml:"dependencies"`
		Optional     map[string][]string `toml:"optional-dependencies"`
		Dynamic      []string            `toml:"dynamic"`
	} `toml:"project"`
	DependencyGroups map[string][]any `toml:"dependency-groups"`
	BuildSystem      struct {
		Requires []string `toml:"requires"`
	} `toml:"build-system"`
	Tool struct {
		Poetry *poetryTOML `toml:"poetry"`
	} `toml:"tool"`
}

// ParsePyproject parses a pyproject.toml read from path.
func ParsePyproject(path string, data []byte) (*Pyproject, error) {
	var t pyprojectTOML
	if _, err := toml.Decode(string(data), &t); err != nil {
		return nil, fmt.Errorf("%s: not valid TOML: %w", path, err)
	}
	p := &Pyproject{Path: path, Optional: map[string][]string{}, Groups: map[string][]GroupEntry{}, BuildRequires: t.BuildSystem.Requires}
	if t.Project != nil {
		p.Name = pep508.NormalizeName(t.Project.Name)
		p.Dependencies = t.Project.Dependencies
		for x, ds := range t.Project.Optional {
			n := pep508.NormalizeName(x)
			p.Optional[n] = append(p.Optional[n], ds...)
		}
		if slices.Contains(t.Project.Dynamic, "dependencies") {
			return nil, fmt.Errorf("%s: [project] declares dependencies dynamic (the build backend computes them); kiln reads them from pyproject.toml only: list them in [project].dependencies, or use a requirements file or a lock", path)
		}
	}
	for g, entries := range t.DependencyGroups {
		n := pep508.NormalizeName(g)
		if _, dup := p.Groups[n]; dup {
			return nil, fmt.Errorf("%s: [dependency-groups] has %q twice once normalised (%s); rename one", path, n, g)
		}
		p.Groups[n] = []GroupEntry{}
		for i, e := range entries {
			switch v := e.(type) {
			case string:
				p.Groups[n] = append(p.Groups[n], GroupEntry{Requirement: v})
			case map[string]any:
				inc, ok := v["include-group"].(string)
				if !ok || len(v) != 1 {
					return nil, fmt.Errorf("%s: [dependency-groups] %s[%d]: a table must be {include-group = \"name\"}", path, g, i)
				}
				p.Groups[n] = append(p.Groups[n], GroupEntry{Include: pep508.NormalizeName(inc)})
			default:
				return nil, fmt.Errorf("%s: [dependency-groups] %s[%d]: want a requirement string or {include-group = \"name\"}", path, g, i)
			}
		}
	}
	if t.Tool.Poetry != nil {
		ps, err := t.Tool.Poetry.section(path)
		if err != nil {
			return nil, err
		}
		p.Poetry = ps
		if p.Name == "" {
			p.Name = pep508.NormalizeName(t.Tool.Poetry.Name)
		}
	}
	return p, nil
}

// Requirements returns the project's dependencies with the given extras'
// optional dependencies and the given PEP 735 groups' requirements. A
// requirement on the project itself with extras ("demo[yaml]" in demo's
// optional dependencies) brings those extras instead.
func (p *Pyproject) Requirements(extras, groups []string) ([]Requirement, error) {
	base := p.Path
	if i := strings.LastIndex(base, "/"); i >= 0 {
		base = base[i+1:]
	}
	var out []Requirement
	done := map[string]bool{}
	var addExtra func(x, why string) error
	addReqs := func(reqs []string, source string) error {
		for _, r := range reqs {
			if p.Name != "" {
				if req, err := pep508.ParseRequirement(r); err == nil && req.NormalizedName() == p.Name {
					if req.Marker != nil {
						return fmt.Errorf("%s: %s: %s: a requirement on the project itself with a marker is not supported; list the dependencies instead", p.Path, source, r)
					}
					for _, x := range req.Extras {
						if err := addExtra(pep508.NormalizeName(x), source); err != nil {
							return err
						}
					}
					continue
				}
			}
			out = append(out, Requirement{Text: r, Source: base + " " + source})
		}
		return nil
	}
	addExtra = func(x, why string) error {
		if done[x] {
			return nil
		}
		done[x] = true
		reqs, ok := p.Optional[x]
		if !ok {
			return fmt.Errorf("%s: [project.optional-dependencies] has no extra %q (asked by %s; it has %s)", p.Path, x, why, listOrNone(sortedKeysOf(p.Optional)))
		}
		return addReqs(reqs, "[project.optional-dependencies] "+x)
	}
	if err := addReqs(p.Dependencies, "[project.dependencies]"); err != nil {
		return nil, err
	}
	for _, x := range extras {
		if err := addExtra(pep508.NormalizeName(x), "the spec's extras"); err != nil {
			return nil, err
		}
	}
	for _, g := range groups {
		reqs, err := p.GroupRequirements(pep508.NormalizeName(g))
		if err != nil {
			return nil, err
		}
		if err := addReqs(reqs, "[dependency-groups] "+pep508.NormalizeName(g)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GroupRequirements returns the requirements of PEP 735 group g with its
// includes expanded; a cycle of includes is an error.
func (p *Pyproject) GroupRequirements(g string) ([]string, error) {
	var out []string
	var visit func(g string, stack []string) error
	visit = func(g string, stack []string) error {
		if i := slices.Index(stack, g); i >= 0 {
			return fmt.Errorf("%s: [dependency-groups] include a group in a cycle: %s", p.Path, strings.Join(append(stack[i:], g), " -> "))
		}
		entries, ok := p.Groups[g]
		if !ok {
			if len(stack) > 0 {
				return fmt.Errorf("%s: [dependency-groups] %s includes %q, which does not exist", p.Path, stack[len(stack)-1], g)
			}
			return fmt.Errorf("%s: [dependency-groups] has no group %q (it has %s); fix the spec's groups key", p.Path, g, listOrNone(sortedKeysOf(p.Groups)))
		}
		for _, e := range entries {
			if e.Include != "" {
				if err := visit(e.Include, append(stack, g)); err != nil {
					return err
				}
				continue
			}
			out = append(out, e.Requirement)
		}
		return nil
	}
	return out, visit(g, nil)
}

func sortedKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
