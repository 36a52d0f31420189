package debsolve

import (
	"fmt"
	"sort"
	"strings"

	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// atom is one possibility of a relationship: "name:arch (op version)".
type atom struct {
	name   string
	arch   string // "", "any", "native" or an architecture
	op     string // "" when unversioned
	ver    version.Version
	text   string
	verTxt string // "(>= 1.0)" or ""
}

// rel is one relationship: alternatives separated by "|".
type rel struct {
	alts []atom
	text string
}

// provide is one entry of a Provides field.
type provide struct {
	name   string
	ver    version.Version
	hasVer bool
}

// neg is one entry of a Conflicts or Breaks field.
type neg struct {
	a     atom
	field string // "Conflicts" or "Breaks"
}

// cand is one package version of the universe or of the installed set.
type cand struct {
	pkg       *Package
	name      string
	arch      string
	ma        string
	ver       version.Version
	installed bool
	provides  []provide
	negs      []neg

	parsed   bool
	parseErr error
	pre      []rel
	deps     []rel
	recs     []rel
}

// slot identifies the packages that cannot be installed side by side: one
// per name, or one per name and architecture for Multi-Arch: same.
func (c *cand) slot() string {
	if c.ma == "same" && c.arch != "all" {
		return c.name + ":" + c.arch
	}
	return c.name
}

// label returns "name version" for messages.
func (c *cand) label() string {
	return c.name + " " + c.pkg.Version
}

// parse fills the relationship fields on first use.
func (c *cand) parse() error {
	if c.parsed {
		return c.parseErr
	}
	c.parsed = true
	var err error
	if c.pre, err = parseRels(c.pkg.PreDepends); err != nil {
		c.parseErr = fmt.Errorf("parse Pre-Depends of %s: %w", c.label(), err)
		return c.parseErr
	}
	if c.deps, err = parseRels(c.pkg.Depends); err != nil {
		c.parseErr = fmt.Errorf("parse Depends of %s: %w", c.label(), err)
		return c.parseErr
	}
	if c.recs, err = parseRels(c.pkg.Recommends); err != nil {
		c.parseErr = fmt.Errorf("parse Recommends of %s: %w", c.label(), err)
		return c.parseErr
	}
	if !c.installed {
		if c.negs, err = parseNegs(c.pkg); err != nil {
			c.parseErr = err
			return c.parseErr
		}
	}
	return nil
}

// parseRels parses a relationship field into relationships, dropping
// possibilities restricted to other architectures ("[!amd64]") and
// substitution variables.
func parseRels(field string) ([]rel, error) {
	field = strings.TrimSpace(field)
	if field == "" {
		return nil, nil
	}
	d, err := dependency.Parse(field)
	if err != nil {
		return nil, err
	}
	out := make([]rel, 0, len(d.Relations))
	for _, r := range d.Relations {
		var alts []atom
		var texts []string
		for _, p := range r.Possibilities {
			if p.Substvar {
				continue
			}
			a := atom{name: p.Name}
			if p.Arch != nil {
				a.arch = p.Arch.String()
			}
			if p.Version != nil {
				num := strings.TrimSpace(p.Version.Number)
				v, err := version.Parse(num)
				if err != nil {
					return nil, fmt.Errorf("%q: version %q: %w", r.String(), num, err)
				}
				a.op, a.ver = p.Version.Operator, v
				a.verTxt = "(" + a.op + " " + num + ")"
			}
			if a.name == "" {
				return nil, fmt.Errorf("%q: empty package name", r.String())
			}
			a.text = a.name
			if a.arch != "" {
				a.text += ":" + a.arch
			}
			if a.verTxt != "" {
				a.text += " " + a.verTxt
			}
			texts = append(texts, a.text)
			alts = append(alts, a)
		}
		if len(alts) == 0 {
			continue
		}
		out = append(out, rel{alts: alts, text: strings.Join(texts, " | ")})
	}
	return out, nil
}

// parseProvides parses a Provides field.
func parseProvides(field string) ([]provide, error) {
	rs, err := parseRels(field)
	if err != nil {
		return nil, err
	}
	var out []provide
	for _, r := range rs {
		for _, a := range r.alts {
			p := provide{name: a.name}
			if a.op != "" {
				if a.op != "=" {
					return nil, fmt.Errorf("%q: a Provides version must use '='", a.text)
				}
				p.ver, p.hasVer = a.ver, true
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// parseNegs parses the Conflicts and Breaks fields.
func parseNegs(pkg *Package) ([]neg, error) {
	var out []neg
	for _, f := range []struct{ name, text string }{{"Conflicts", pkg.Conflicts}, {"Breaks", pkg.Breaks}} {
		rs, err := parseRels(f.text)
		if err != nil {
			return nil, fmt.Errorf("parse %s of %s %s: %w", f.name, pkg.Name, pkg.Version, err)
		}
		for _, r := range rs {
			for _, a := range r.alts {
				out = append(out, neg{a: a, field: f.name})
			}
		}
	}
	return out, nil
}

// satisfies reports whether v satisfies "op want".
func satisfies(v version.Version, op string, want version.Version) bool {
	if op == "" {
		return true
	}
	q := version.Compare(v, want)
	switch op {
	case ">=":
		return q >= 0
	case "<=":
		return q <= 0
	case ">>":
		return q > 0
	case "<<":
		return q < 0
	case "=":
		return q == 0
	}
	return false
}

// provRef is one provider of a virtual name.
type provRef struct {
	c *cand
	p provide
}

// index holds the universe and the installed set, ready for look-ups.
type index struct {
	native    string
	archRank  map[string]int // allowed architectures; lower ranks first
	byName    map[string][]*cand
	providers map[string][]provRef
	installed []*cand
	notes     []string
	// otherArch lists, for names with no package of an allowed
	// architecture, the architectures they exist for.
	otherArch map[string][]string
}

// newIndex builds the look-up tables of req.
func newIndex(req Request) (*index, error) {
	idx := &index{
		native:    req.Arch,
		archRank:  map[string]int{req.Arch: 0, "all": 1},
		byName:    map[string][]*cand{},
		providers: map[string][]provRef{},
		otherArch: map[string][]string{},
	}
	foreign := append([]string(nil), req.ForeignArchs...)
	sort.Strings(foreign)
	for i, a := range foreign {
		if _, ok := idx.archRank[a]; !ok {
			idx.archRank[a] = 2 + i
		}
	}
	type key struct{ name, ver, arch string }
	seen := make(map[key]bool, len(req.Universe))
	var badVer, badProv []string
	for i := range req.Universe {
		p := &req.Universe[i]
		if _, ok := idx.archRank[p.Architecture]; !ok {
			idx.otherArch[p.Name] = appendUniq(idx.otherArch[p.Name], p.Architecture)
			continue
		}
		k := key{p.Name, p.Version, p.Architecture}
		if seen[k] {
			continue
		}
		seen[k] = true
		v, err := version.Parse(p.Version)
		if err != nil {
			badVer = append(badVer, fmt.Sprintf("%s (%q)", p.Name, p.Version))
			continue
		}
		c := &cand{pkg: p, name: p.Name, arch: p.Architecture, ma: p.MultiArch, ver: v}
		if c.provides, err = parseProvides(p.Provides); err != nil {
			badProv = append(badProv, fmt.Sprintf("%s %s", p.Name, p.Version))
			c.provides = nil
		}
		idx.byName[c.name] = append(idx.byName[c.name], c)
		for _, pr := range c.provides {
			idx.providers[pr.name] = append(idx.providers[pr.name], provRef{c, pr})
		}
	}
	if len(badVer) > 0 {
		sort.Strings(badVer)
		idx.notes = append(idx.notes, fmt.Sprintf("ignored %d package(s) with an invalid version: %s", len(badVer), strings.Join(badVer, ", ")))
	}
	if len(badProv) > 0 {
		sort.Strings(badProv)
		idx.notes = append(idx.notes, fmt.Sprintf("ignored the unparsable Provides of %d package(s): %s", len(badProv), strings.Join(badProv, ", ")))
	}
	for name, archs := range idx.otherArch {
		if len(idx.byName[name]) > 0 {
			delete(idx.otherArch, name)
		} else {
			sort.Strings(archs)
		}
	}
	for _, cs := range idx.byName {
		sort.Slice(cs, func(i, j int) bool { return idx.candLess(cs[i], cs[j]) })
	}
	for _, ps := range idx.providers {
		sort.Slice(ps, func(i, j int) bool {
			if ps[i].c.name != ps[j].c.name {
				return ps[i].c.name < ps[j].c.name
			}
			return idx.candLess(ps[i].c, ps[j].c)
		})
	}

	for i := range req.Installed {
		p := &req.Installed[i]
		v, err := version.Parse(p.Version)
		if err != nil {
			return nil, fmt.Errorf("installed package %s: parse version %q: %w; check the parent image's dpkg status", p.Name, p.Version, err)
		}
		arch := p.Architecture
		if arch == "" {
			arch = req.Arch
		}
		c := &cand{pkg: p, name: p.Name, arch: arch, ma: p.MultiArch, ver: v, installed: true}
		if c.provides, err = parseProvides(p.Provides); err != nil {
			return nil, fmt.Errorf("installed package %s: parse Provides: %w; check the parent image's dpkg status", p.Name, err)
		}
		if c.negs, err = parseNegs(p); err != nil {
			return nil, fmt.Errorf("installed package %s: %w; check the parent image's dpkg status", p.Name, err)
		}
		idx.installed = append(idx.installed, c)
	}
	sort.Slice(idx.installed, func(i, j int) bool {
		a, b := idx.installed[i], idx.installed[j]
		if a.name != b.name {
			return a.name < b.name
		}
		if a.arch != b.arch {
			return a.arch < b.arch
		}
		return version.Compare(a.ver, b.ver) > 0
	})
	return idx, nil
}

// rank orders architectures: native, all, then foreign ones by name.
func (idx *index) rank(arch string) int {
	if r, ok := idx.archRank[arch]; ok {
		return r
	}
	return len(idx.archRank) + 1
}

// candLess orders candidates of one name: highest version first, then
// native architecture, all, foreign.
func (idx *index) candLess(a, b *cand) bool {
	if q := version.Compare(a.ver, b.ver); q != 0 {
		return q > 0
	}
	if ra, rb := idx.rank(a.arch), idx.rank(b.arch); ra != rb {
		return ra < rb
	}
	if a.arch != b.arch {
		return a.arch < b.arch
	}
	// Equal versions that differ only in text, such as "1.0" and "1.00".
	return a.pkg.Version < b.pkg.Version
}
