package pypi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/pkg/pep440"
)

// cause is a step of the derivation of a failure: a leaf (a requirement
// no version meets, a requirement a pinned version does not meet, a
// version that cannot be installed) or a node (every version of a
// project that its requirements allow failed, each for its own cause).
type cause struct {
	// text is a leaf's sentence.
	text string
	// name is the project the step is about.
	name string
	// edges are the requirements on name: those no version meets together
	// (a leaf), or those that allowed vers (a node).
	edges []edge
	// clash is, for a leaf, a requirement that the chosen version pinned
	// of name does not meet.
	clash     *edge
	pinned    pep440.Version
	chosenFor string
	// vers are a node's versions of name, newest first, and subs why each
	// failed.
	vers []pep440.Version
	subs []*cause
}

// leaf reports whether c is a leaf.
func (c *cause) leaf() bool { return c.vers == nil }

// maxChain bounds the choices the explanation names on the way to a
// dead end.
const maxChain = 6

// explain fills in e's Requirements and Conflicts from its derivation.
// When the failure follows from one leaf (every step on the way to it
// had a single version), that leaf is the explanation. Otherwise the
// first line says why each version of the first project chosen fails,
// versions that fail alike merged, and the second follows the newest
// choices down to the deepest step and says why each of its versions
// fails; when the first line would only say that every version of the
// first project fails for want of one deeper project, which the headline
// already implies, the second is the whole explanation.
func (r *resolver) explain(e *ResolutionError) {
	for _, t := range r.topEdges(e) {
		e.Requirements = append(e.Requirements, t.String())
	}
	var path []*cause
	c := e.cause
	single := true
	for !c.leaf() {
		path = append(path, c)
		single = single && len(c.vers) == 1
		c = c.subs[0]
	}
	if single {
		e.Conflicts = []string{c.text}
		return
	}
	last := path[len(path)-1]
	if len(path) == 1 {
		e.Conflicts = []string{r.allFail(last)}
		return
	}
	var chain []string
	for i, n := range path[:len(path)-1] {
		if i == maxChain/2 && len(path)-1 > maxChain {
			chain = append(chain, "…")
		}
		if i >= maxChain/2 && i < len(path)-1-maxChain/2 {
			continue
		}
		chain = append(chain, n.name+" "+n.vers[0].String())
	}
	deepest := "with " + strings.Join(chain, ", ") + " (the newest of each), " + r.allFail(last)
	if path[0].onlyDeeper() {
		// The first step says no more than the headline does (every
		// version of it fails for want of the next project): the
		// deepest dead end is the explanation.
		e.Conflicts = []string{"for example, " + deepest}
		return
	}
	e.Conflicts = []string{r.allFail(path[0]), "so " + deepest}
}

// onlyDeeper reports whether the versions of n's project fail alike, each
// because every version of one same deeper project does.
func (n *cause) onlyDeeper() bool {
	groups := n.groups()
	return len(groups) == 1 && !groups[0].subs[0].leaf()
}

// failGroup is versions of a step's project that fail alike, and why
// each does.
type failGroup struct {
	key  string
	vers []pep440.Version
	subs []*cause
}

// groups merges the versions of n's project that fail alike, in the order
// of their first version.
func (n *cause) groups() []*failGroup {
	var groups []*failGroup
	for i, sub := range n.subs {
		key := sub.text
		switch {
		case !sub.leaf():
			key = "every " + sub.name
		case sub.clash != nil:
			key = "clash " + sub.name + " " + sub.pinned.String()
		case sub.edges != nil:
			key = "none " + sub.name
		}
		var g *failGroup
		for _, x := range groups {
			if x.key == key {
				g = x
			}
		}
		if g == nil {
			g = &failGroup{key: key}
			groups = append(groups, g)
		}
		g.vers = append(g.vers, n.vers[i])
		g.subs = append(g.subs, sub)
	}
	return groups
}

// allFail says why every version of a step's project fails, versions
// that fail alike merged.
func (r *resolver) allFail(n *cause) string {
	groups := n.groups()
	var parts []string
	for i, g := range groups {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more reasons", len(groups)-3))
			break
		}
		parts = append(parts, r.groupFail(n.name, g.vers, g.subs))
	}
	what := "every version of " + n.name + " that " + froms(n.edges) + " allow"
	if len(n.edges) == 1 {
		what += "s"
	}
	return fmt.Sprintf("%s (%s) fails: %s", what, r.versions(n.name, n.vers), strings.Join(parts, "; "))
}

// groupFail says why versions vers of project name fail, for the like
// causes subs.
func (r *resolver) groupFail(name string, vers []pep440.Version, subs []*cause) string {
	who := r.versions(name, vers)
	first := subs[0]
	switch {
	case !first.leaf():
		return fmt.Sprintf("with %s, every version of %s fails", who, first.name)
	case len(vers) == 1:
		return first.text
	case first.clash != nil:
		var specs []string
		for _, s := range subs {
			specs = appendNew(specs, s.clash.req.Specifier.String())
		}
		return fmt.Sprintf("%s need %s %s, but %s %s was chosen for %s", who, first.name, orList(specs), first.name, first.pinned, first.chosenFor)
	case first.edges != nil:
		// What these versions ask of first.name, and what the others do.
		var own, others []string
		for _, s := range subs {
			var mine []string
			for _, e := range s.edges {
				if e.parent == name {
					mine = append(mine, e.req.Specifier.String())
				} else {
					others = appendNew(others, e.String())
				}
			}
			own = appendNew(own, strings.Join(mine, " and "))
		}
		if len(own) == 1 && len(others) == 0 {
			return fmt.Sprintf("%s (and likewise for %s)", first.text, who)
		}
		if len(others) == 0 {
			return fmt.Sprintf("%s need %s %s, and no version of %s is", who, first.name, orList(own), first.name)
		}
		return fmt.Sprintf("%s need %s %s, which no version of %s meets together with %s", who, first.name, orList(own), first.name, orList(others))
	}
	return fmt.Sprintf("%s (and likewise for %s)", first.text, who)
}

// versions names the versions vs of project n: "p28 6.0 to 11.0" when
// they are consecutive releases on the index.
func (r *resolver) versions(n string, vs []pep440.Version) string {
	if len(vs) == 1 {
		return n + " " + vs[0].String()
	}
	if p := r.projects[n]; p != nil {
		var idx []int
		for _, v := range vs {
			for i, rel := range p.releases {
				if rel.version.Equal(v) {
					idx = append(idx, i)
				}
			}
		}
		if len(idx) == len(vs) {
			lo, hi := slices.Min(idx), slices.Max(idx)
			if hi-lo+1 == len(vs) {
				return fmt.Sprintf("%s %s to %s", n, p.releases[hi].version, p.releases[lo].version)
			}
		}
	}
	var out []string
	for i, v := range vs {
		if i == 4 {
			out = append(out, fmt.Sprintf("… (%d in all)", len(vs)))
			break
		}
		out = append(out, v.String())
	}
	return n + " " + strings.Join(out, ", ")
}

// froms names who made the requirements es: "p00 1.0 and p27>=18.0 (from
// packages)".
func froms(es []edge) string {
	var out []string
	for _, e := range es {
		w := e.from
		if e.parent == "" {
			w = e.String()
		}
		out = appendNew(out, w)
	}
	return andList(out)
}

func appendNew(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

// orList joins items with " or ", at most four.
func orList(xs []string) string {
	if len(xs) > 4 {
		return strings.Join(xs[:3], " or ") + fmt.Sprintf(" or … (%d in all)", len(xs))
	}
	return strings.Join(xs, " or ")
}

// topEdges returns the top-level requirements e depends on, in order.
func (r *resolver) topEdges(e *ResolutionError) []edge {
	var out []edge
	for i, t := range r.req.Requirements {
		if e.tops[i+1] {
			out = append(out, edge{req: t.Requirement, from: t.Source, top: i + 1})
		}
	}
	return out
}

// andList joins items as "a, b and c".
func andList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
