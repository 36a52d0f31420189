package pypi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/wheeltag"
)

// PrereleasePolicy says when pre-releases may be chosen.
type PrereleasePolicy int

const (
	// PrereleaseIfNeeded is pip's default: a pre-release is chosen only if a
	// requirement on the project mentions one (">=2.0b1"), or if no final
	// release satisfies the requirements.
	PrereleaseIfNeeded PrereleasePolicy = iota
	// PrereleaseAllow treats pre-releases like final releases (pip --pre).
	PrereleaseAllow
)

// DefaultMaxRounds bounds the resolver's search when Request.MaxRounds is 0.
const DefaultMaxRounds = 200000

// Request is what to resolve, and for which interpreter.
type Request struct {
	// Requirements are the top-level requirements (the spec's packages and
	// the requirements files' lines).
	Requirements []Requirement
	// Constraints limit the versions of projects that something requires,
	// without requiring them (pip -c).
	Constraints []Requirement
	// Env holds the marker values of the target interpreter.
	Env pep508.Environment
	// Target is the target interpreter and platform that wheels must fit.
	Target wheeltag.Target
	// Indexes are searched in order; see Indexes.Find. Direct URL and local
	// wheels are downloaded through the first one's client and Store.
	Indexes Indexes
	// Prereleases is the pre-release policy.
	Prereleases PrereleasePolicy
	// RequireHashes turns on hash-checking mode: every distribution must be
	// listed with --hash among the requirements or constraints, and the
	// chosen file's SHA-256 must be one of them.
	RequireHashes bool
	// MaxRounds bounds the number of candidates tried; 0 means
	// DefaultMaxRounds.
	MaxRounds int
	// Builder, when set, builds a wheel from the source distribution of
	// a version no wheel offers for the target; such versions are tried
	// after every version with a wheel (like pip --prefer-binary). Nil
	// keeps to wheels.
	Builder Builder
}

// Builder builds wheels from source distributions for a Request's target.
type Builder interface {
	// BuildWheel builds the wheel of project name at version from sdist,
	// listed on ix.
	BuildWheel(ctx context.Context, ix *Index, name, version string, sdist File) (Built, error)
}

// Built is a wheel built from a source distribution.
type Built struct {
	// Path is where the wheel is on the host (in the cache); Filename,
	// SHA256 (hex) and Size describe it.
	Path, Filename, SHA256 string
	Size                   int64
}

// Distribution is one pinned wheel of a Result.
type Distribution struct {
	// Name is the normalised project name.
	Name string
	// Version is the normalised version.
	Version string
	// Filename, URL (without credentials: add them back from the index
	// configuration), SHA256 (hex) and Size (0 when unknown) describe the
	// wheel to install.
	Filename, URL, SHA256 string
	Size                  int64
	// Index is the URL of the index the wheel came from, without
	// credentials, or "" for a direct URL or local wheel.
	Index string
	// Requested reports a top-level requirement (pip's REQUESTED file).
	Requested bool
	// Extras are the extras installed, sorted.
	Extras []string
	// RequiredBy lists who required it: "flask 3.1.3", or the Source of a
	// top-level requirement such as "packages".
	RequiredBy []string
	// Chain is a shortest chain of requirements that pulled it in, from a
	// top-level requirement: ["flask", "werkzeug>=3.1"].
	Chain []string
	// Dependencies are the normalised names of its dependencies for the
	// target and the installed extras, sorted.
	Dependencies []string
	// BuiltFrom, for a wheel built from a source distribution, is that
	// distribution (URL without credentials and SHA-256).
	BuiltFrom *File
}

// Result is a resolution: one wheel per project, sorted by name.
type Result struct {
	Distributions []Distribution
}

// ResolutionError reports requirements that no set of wheels satisfies.
// Its message says which top-level requirements cannot be installed
// together and derives why from the conflict the resolver learnt, naming
// the versions and who required them.
type ResolutionError struct {
	// Requirements are the top-level requirements the conflict derives
	// from, as "p27>=18.0 (from packages)".
	Requirements []string
	// Conflicts are the lines of the explanation after the headline,
	// root cause first.
	Conflicts []string
	// cause is the derivation of the failure.
	cause *cause
	// culprits are the pinned projects whose choices the failure depends
	// on (its conflict set): trying other versions of any other project
	// cannot help, so the resolver jumps back over them.
	culprits map[string]bool
	// tops are the top-level requirements (edge.top) it depends on.
	tops map[int]bool
}

// Error implements error.
func (e *ResolutionError) Error() string {
	head := "cannot resolve the Python requirements"
	switch len(e.Requirements) {
	case 0:
	case 1:
		head += ": " + e.Requirements[0] + " cannot be installed"
	default:
		head += ": " + andList(e.Requirements) + " cannot be installed together"
	}
	if len(e.Conflicts) == 0 {
		return head
	}
	return head + ": " + strings.Join(e.Conflicts, "\n  ")
}

// conflict returns a failure explained by a sentence.
func conflict(format string, args ...any) *ResolutionError {
	return &ResolutionError{cause: &cause{text: fmt.Sprintf(format, args...)}}
}

// blame returns e with the projects names added to its conflict set.
func (e *ResolutionError) blame(names ...string) *ResolutionError {
	if e.culprits == nil {
		e.culprits = map[string]bool{}
	}
	for _, n := range names {
		if n != "" {
			e.culprits[n] = true
		}
	}
	return e
}

// blameEdges adds the requirements es to e's conflict set: the pins that
// made them, or the top-level requirements.
func (e *ResolutionError) blameEdges(es ...edge) *ResolutionError {
	for _, x := range es {
		switch {
		case x.parent != "":
			e.blame(x.parent)
		case x.top > 0:
			if e.tops == nil {
				e.tops = map[int]bool{}
			}
			e.tops[x.top] = true
		}
	}
	return e
}

// edge is a requirement on a project and who made it.
type edge struct {
	req    pep508.Requirement
	from   string // "flask 3.1.3", or a top-level Source
	parent string // normalised name of the requiring project, "" if top-level
	top    int    // 1 + the index of a top-level requirement, 0 if not one
}

func (e edge) String() string { return fmt.Sprintf("%s (from %s)", e.req, e.from) }

// candidate is a version of a project with the wheel that would install it.
type candidate struct {
	name    string
	version pep440.Version
	file    File
	index   *Index // nil for a direct reference
	// sdist, when set, is the source distribution the wheel is built
	// from (file is filled in once built, at path built).
	sdist *File
	built string
}

func (c *candidate) String() string { return c.name + " " + c.version.String() }

// pin is a chosen candidate.
type pin struct {
	cand   *candidate
	extras []string // sorted
	deps   []string // names, sorted
}

// state is a partial solution. Maps are copied when the state is cloned;
// pins are immutable and edge slices are appended copy-on-write.
type state struct {
	pins  map[string]*pin
	edges map[string][]edge
}

func (s *state) clone() *state {
	return &state{pins: maps(s.pins), edges: maps(s.edges)}
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

type resolver struct {
	ctx         context.Context
	req         Request
	tags        *wheeltag.TagSet
	target      string
	py          pep440.Version
	projects    map[string]*project
	metas       map[string]*Metadata // by file URL
	sums        map[string]string    // by file URL, for files hashed on download
	sizes       map[string]int64
	constraints map[string][]edge
	hashes      map[string]map[string]bool
	rounds      int
	// backjumps counts the levels the search jumped over.
	backjumps int
	// nogoods are learned failures: sets of pinned versions that no
	// solution contains, indexed by each of their "name@version".
	nogoods map[string][]*nogood
}

// nogood is a set of pins (name -> version) that cannot be extended to a
// solution, with the top-level requirements it depends on and why.
type nogood struct {
	pins  map[string]string
	tops  map[int]bool
	cause *cause
}

// learn records that the pins of s named by failure's conflict set cannot
// be extended to a solution.
func (r *resolver) learn(s *state, failure *ResolutionError) {
	ng := &nogood{pins: map[string]string{}, tops: failure.tops, cause: failure.cause}
	for n := range failure.culprits {
		p := s.pins[n]
		if p == nil {
			return // not a pin of this state: learn nothing
		}
		ng.pins[n] = p.cand.version.String()
	}
	if r.nogoods == nil {
		r.nogoods = map[string][]*nogood{}
	}
	for n, v := range ng.pins {
		r.nogoods[n+"@"+v] = append(r.nogoods[n+"@"+v], ng)
	}
}

// known returns the failure of pinning c in s that a learned nogood
// already explains, or nil.
func (r *resolver) known(s *state, c *candidate) *ResolutionError {
	v := c.version.String()
	for _, ng := range r.nogoods[c.name+"@"+v] {
		match := true
		for n, nv := range ng.pins {
			if n == c.name {
				match = match && nv == v
				continue
			}
			if p := s.pins[n]; p == nil || p.cand.version.String() != nv {
				match = false
				break
			}
		}
		if match {
			// tops is shared: no failure's tops change once made.
			e := &ResolutionError{cause: ng.cause, culprits: make(map[string]bool, len(ng.pins)+1), tops: ng.tops}
			for n := range ng.pins {
				e.blame(n)
			}
			return e
		}
	}
	return nil
}

// Resolve chooses one wheel per required project so that every requirement
// (with its extras and markers evaluated for req.Env) is satisfied, trying
// versions newest first and backtracking on conflicts. It fails with a
// *ResolutionError when no solution exists, and with other errors on I/O
// problems, unknown projects or hash mismatches.
func Resolve(ctx context.Context, req Request) (Result, error) {
	tags, err := wheeltag.NewTargetTagSet(req.Target)
	if err != nil {
		return Result{}, fmt.Errorf("computing wheel tags for target %s: %w", req.Target, err)
	}
	py, err := pep440.Parse(req.Env.PythonFullVersion)
	if err != nil {
		return Result{}, fmt.Errorf("target Python version %q: %w", req.Env.PythonFullVersion, err)
	}
	if len(req.Indexes) == 0 {
		return Result{}, errors.New("resolving Python requirements: no index configured")
	}
	r := &resolver{
		ctx: ctx, req: req, tags: tags, target: req.Target.String(), py: py,
		projects:    map[string]*project{},
		metas:       map[string]*Metadata{},
		sums:        map[string]string{},
		sizes:       map[string]int64{},
		constraints: map[string][]edge{},
		hashes:      map[string]map[string]bool{},
	}
	if r.req.MaxRounds == 0 {
		r.req.MaxRounds = DefaultMaxRounds
	}
	s := &state{pins: map[string]*pin{}, edges: map[string][]edge{}}
	for _, c := range req.Constraints {
		ok, err := c.Marker.Evaluate(req.Env)
		if err != nil {
			return Result{}, fmt.Errorf("constraint %s (%s): %w", c.Requirement, c.Source, err)
		}
		r.addHashes(c)
		if ok {
			n := c.NormalizedName()
			r.constraints[n] = append(r.constraints[n], edge{req: c.Requirement, from: c.Source + ", a constraint"})
		}
	}
	for i, t := range req.Requirements {
		ok, err := t.Marker.Evaluate(req.Env)
		if err != nil {
			return Result{}, fmt.Errorf("requirement %s (%s): %w", t.Requirement, t.Source, err)
		}
		r.addHashes(t)
		if ok {
			n := t.NormalizedName()
			s.edges[n] = append(s.edges[n], edge{req: t.Requirement, from: t.Source, top: i + 1})
		}
	}
	final, err := r.solve(s)
	if err != nil {
		var rerr *ResolutionError
		if errors.As(err, &rerr) {
			r.explain(rerr)
		}
		return Result{}, err
	}
	return r.result(final)
}

func (r *resolver) addHashes(q Requirement) {
	if len(q.Hashes) == 0 {
		return
	}
	n := q.NormalizedName()
	if r.hashes[n] == nil {
		r.hashes[n] = map[string]bool{}
	}
	for _, h := range q.Hashes {
		r.hashes[n][strings.ToLower(h)] = true
	}
}

// allowedHashes returns the hashes a file of project n must match, or nil
// when any file will do.
func (r *resolver) allowedHashes(n string) map[string]bool {
	if h := r.hashes[n]; h != nil {
		return h
	}
	if r.req.RequireHashes {
		return map[string]bool{}
	}
	return nil
}

// solve extends s to a full solution, or explains why it cannot.
func (r *resolver) solve(s *state) (*state, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	// Choose the unpinned project with the fewest candidates (so that
	// dead ends show up at once), ties broken by name.
	var names []string
	for n := range s.edges {
		if s.pins[n] == nil {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return s, nil
	}
	sort.Strings(names)
	var best string
	var bestCands []*candidate
	for _, n := range names {
		cands, cerr := r.candidates(s, n)
		if cerr != nil {
			return nil, cerr
		}
		if best == "" || len(cands) < len(bestCands) {
			best, bestCands = n, cands
		}
		if len(cands) == 0 {
			break
		}
	}
	if len(bestCands) == 0 {
		return nil, r.explainEmpty(s, best)
	}
	// Conflict-directed backjumping: each failure carries the pinned
	// projects it depends on. When one does not depend on best, no other
	// version of best can help, and the search jumps back at once; when
	// every candidate fails, the failure depends on what each candidate's
	// failure depended on and on whoever required best.
	culprits := map[string]bool{}
	var tops map[int]bool
	var vers []pep440.Version
	var subs []*cause
	for _, c := range bestCands {
		r.rounds++
		if r.rounds > r.req.MaxRounds {
			return nil, fmt.Errorf("resolving Python requirements: gave up after trying %d candidates; pin some versions (e.g. %s==...) to narrow the search", r.req.MaxRounds, best)
		}
		var ns *state
		var err error
		var rerr *ResolutionError
		if k := r.known(s, c); k != nil {
			err = k
		} else {
			ns, err = r.pinCandidate(s, c)
		}
		if err != nil {
			if errors.As(err, &rerr) {
				rerr.blame(best) // pinning c failed: it depends on c
			}
		} else {
			var sol *state
			sol, err = r.solve(ns)
			if err == nil {
				return sol, nil
			}
		}
		if !errors.As(err, &rerr) {
			return nil, err
		}
		if !rerr.culprits[best] {
			r.backjumps++
			r.learn(s, rerr)
			return nil, rerr
		}
		for n := range rerr.culprits {
			if n != best {
				culprits[n] = true
			}
		}
		for t := range rerr.tops {
			if tops == nil {
				tops = map[int]bool{}
			}
			tops[t] = true
		}
		vers = append(vers, c.version)
		subs = append(subs, rerr.cause)
	}
	every := &cause{name: best, edges: r.allEdges(s, best), vers: vers, subs: subs}
	failure := &ResolutionError{cause: every, culprits: culprits, tops: tops}
	failure.blameEdges(every.edges...)
	r.learn(s, failure)
	return nil, failure
}

// pinCandidate returns s with c pinned and its dependencies added.
func (r *resolver) pinCandidate(s *state, c *candidate) (*state, error) {
	meta, err := r.metadata(c)
	if err != nil {
		return nil, err
	}
	if meta.RequiresPython.Len() > 0 && !meta.RequiresPython.Contains(r.py, true) {
		return nil, conflict("%s requires Python %s but the target is %s", c, meta.RequiresPython, r.py)
	}
	if mv, err := pep440.Parse(meta.Version); err != nil || pep508.NormalizeName(meta.Name) != c.name || !mv.Equal(c.version) {
		return nil, conflict("%s: its metadata says %s %s, which does not match the file name %s", c, meta.Name, meta.Version, c.file.Filename)
	}
	ns := s.clone()
	var extras []string
	for _, e := range ns.edges[c.name] {
		for _, x := range e.req.Extras {
			x = pep508.NormalizeName(x)
			if !slices.Contains(extras, x) {
				extras = append(extras, x)
			}
		}
	}
	sort.Strings(extras)
	p := &pin{cand: c}
	ns.pins[c.name] = p
	if err := r.addExtras(ns, c.name, meta, nil, extras); err != nil {
		return nil, err
	}
	return ns, nil
}

// addExtras records that the pinned project n gets the extras add (and its
// base dependencies when have is nil), adding their dependencies as edges.
func (r *resolver) addExtras(s *state, n string, meta *Metadata, have, add []string) error {
	old := s.pins[n]
	p := &pin{cand: old.cand, extras: slices.Clone(old.extras), deps: slices.Clone(old.deps)}
	for _, x := range add {
		if !slices.Contains(p.extras, x) {
			p.extras = append(p.extras, x)
		}
	}
	sort.Strings(p.extras)
	s.pins[n] = p
	deps, err := r.deps(p.cand, meta, have == nil, add)
	if err != nil {
		return err
	}
	for _, d := range deps {
		dn := d.NormalizedName()
		if !slices.Contains(p.deps, dn) {
			p.deps = append(p.deps, dn)
		}
	}
	sort.Strings(p.deps)
	for _, d := range deps {
		if err := r.addEdge(s, edge{req: d, from: p.cand.String(), parent: n}); err != nil {
			return err
		}
	}
	return nil
}

// deps returns c's requirements for the target: the base ones when base is
// set, and those that only the given extras bring.
func (r *resolver) deps(c *candidate, meta *Metadata, base bool, extras []string) ([]pep508.Requirement, error) {
	var out []pep508.Requirement
	for _, d := range meta.RequiresDist {
		inBase, err := d.Marker.Evaluate(r.req.Env)
		if err != nil {
			return nil, fmt.Errorf("evaluating the marker of %s's requirement %s: %w", c, d, err)
		}
		if inBase {
			if base {
				out = append(out, d)
			}
			continue
		}
		for _, x := range extras {
			ok, err := d.Marker.Evaluate(r.req.Env, x)
			if err != nil {
				return nil, fmt.Errorf("evaluating the marker of %s's requirement %s: %w", c, d, err)
			}
			if ok {
				out = append(out, d)
				break
			}
		}
	}
	return out, nil
}

// addEdge adds e to s, checking it against an existing pin (and adding
// the dependencies of extras it newly asks of that pin).
func (r *resolver) addEdge(s *state, e edge) error {
	n := e.req.NormalizedName()
	s.edges[n] = append(slices.Clip(s.edges[n]), e)
	p := s.pins[n]
	if p == nil {
		return nil
	}
	if !satisfies(p.cand, e.req) {
		var others []string
		for _, o := range append(slices.Clone(s.edges[n][:len(s.edges[n])-1]), r.constraints[n]...) {
			others = append(others, o.String())
		}
		f := conflict("%s requires %s, but %s was chosen for %s", e.from, e.req, p.cand, strings.Join(others, ", ")).blame(e.parent, n)
		f.cause.name, f.cause.clash, f.cause.pinned, f.cause.chosenFor = n, &e, p.cand.version, strings.Join(others, ", ")
		return f
	}
	var add []string
	for _, x := range e.req.Extras {
		x = pep508.NormalizeName(x)
		if !slices.Contains(p.extras, x) && !slices.Contains(add, x) {
			add = append(add, x)
		}
	}
	if len(add) == 0 {
		return nil
	}
	meta, err := r.metadata(p.cand)
	if err != nil {
		return err
	}
	return r.addExtras(s, n, meta, p.extras, add)
}

// satisfies reports whether c meets req; a pinned version satisfies a
// specifier even if it is a pre-release, as in pip.
func satisfies(c *candidate, req pep508.Requirement) bool {
	if req.URL != "" {
		return c.index == nil && sameURL(c.file.URL, req.URL)
	}
	return req.Specifier.Contains(c.version, true)
}

func sameURL(a, b string) bool {
	return stripFragment(a) == stripFragment(b)
}

func stripFragment(s string) string {
	s, _, _ = strings.Cut(stripURL(s), "#")
	return s
}

// allEdges returns the requirements and applicable constraints on n.
func (r *resolver) allEdges(s *state, n string) []edge {
	return append(slices.Clone(s.edges[n]), r.constraints[n]...)
}

// project returns the project page of n, fetching it once.
func (r *resolver) project(n string, why []edge) (*project, error) {
	if p, ok := r.projects[n]; ok {
		return p, nil
	}
	ix, files, err := r.req.Indexes.Find(r.ctx, n)
	if err != nil {
		if len(why) > 0 {
			return nil, fmt.Errorf("%s: %w", why[0], err)
		}
		return nil, err
	}
	p := buildProject(n, ix, files, r.tags, r.target, r.py, r.allowedHashes(n))
	r.projects[n] = p
	return p, nil
}

// candidates returns the candidates for n that satisfy every requirement
// and constraint on it, best first.
func (r *resolver) candidates(s *state, n string) ([]*candidate, error) {
	edges := r.allEdges(s, n)
	var direct string
	for _, e := range edges {
		if e.req.URL == "" {
			continue
		}
		if direct != "" && !sameURL(direct, e.req.URL) {
			return nil, nil // explained by explainEmpty
		}
		direct = e.req.URL
	}
	if direct != "" {
		c, err := r.directCandidate(n, direct)
		if err != nil {
			return nil, err
		}
		for _, e := range edges {
			if !satisfies(c, e.req) {
				return nil, nil
			}
		}
		return []*candidate{c}, nil
	}
	p, err := r.project(n, edges)
	if err != nil {
		return nil, err
	}
	pre := r.req.Prereleases == PrereleaseAllow
	for _, e := range edges {
		pre = pre || e.req.Specifier.Prereleases()
	}
	cands := r.filter(p, edges, pre, true)
	if len(cands) == 0 && !pre {
		cands = r.filter(p, edges, true, true)
	}
	return cands, nil
}

// filter returns the releases of p matching every edge, with their files
// (or, when usable is false, every matching release with a nil file).
func (r *resolver) filter(p *project, edges []edge, pre, usable bool) []*candidate {
	var out, fromSource []*candidate
	for _, rel := range p.releases {
		ok, yanked := true, false
		for _, e := range edges {
			if !e.req.Specifier.Contains(rel.version, pre) {
				ok = false
				break
			}
			yanked = yanked || pinned(e.req)
		}
		if !ok {
			continue
		}
		if !usable {
			out = append(out, &candidate{name: p.name, version: rel.version})
			continue
		}
		if f := rel.usable(yanked); f != nil {
			out = append(out, &candidate{name: p.name, version: rel.version, file: *f, index: p.index})
		} else if r.req.Builder != nil && rel.sdist != nil {
			fromSource = append(fromSource, &candidate{name: p.name, version: rel.version, index: p.index, sdist: rel.sdist})
		}
	}
	return append(out, fromSource...)
}

// explainEmpty says why project n has no candidate in s; the failure
// depends on whoever required n.
func (r *resolver) explainEmpty(s *state, n string) error {
	err := r.whyEmpty(s, n)
	var rerr *ResolutionError
	if errors.As(err, &rerr) {
		edges := r.allEdges(s, n)
		rerr.blameEdges(edges...)
		if rerr.culprits == nil {
			rerr.culprits = map[string]bool{}
		}
		rerr.cause.name, rerr.cause.edges = n, edges
	}
	return err
}

// whyEmpty explains why project n has no candidate in s.
func (r *resolver) whyEmpty(s *state, n string) error {
	edges := r.allEdges(s, n)
	reqs := edgeList(edges)
	var urls []string
	for _, e := range edges {
		if e.req.URL != "" && !slices.Contains(urls, stripFragment(e.req.URL)) {
			urls = append(urls, stripFragment(e.req.URL))
		}
	}
	if len(urls) > 1 {
		return conflict("%s is required from different URLs: %s", n, reqs)
	}
	if len(urls) == 1 {
		return conflict("the wheel %s does not satisfy %s", auth.RedactURL(urls[0]), reqs)
	}
	p := r.projects[n]
	if p == nil {
		return conflict("no candidates for %s", n)
	}
	pre := r.req.Prereleases == PrereleaseAllow
	for _, e := range edges {
		pre = pre || e.req.Specifier.Prereleases()
	}
	matching := r.filter(p, edges, pre, false)
	if len(matching) == 0 && !pre {
		matching = r.filter(p, edges, true, false)
	}
	if len(matching) > 0 {
		var why []string
		for i, c := range matching {
			if i == 3 {
				why = append(why, fmt.Sprintf("(and %d older versions)", len(matching)-3))
				break
			}
			for _, rel := range p.releases {
				if rel.version.Equal(c.version) {
					why = append(why, rel.why(n, false))
					break
				}
			}
		}
		return conflict("no installable wheel of %s satisfies %s: %s", n, reqs, strings.Join(why, "; "))
	}
	var avail []string
	for _, rel := range p.releases {
		avail = append(avail, rel.version.String())
	}
	if len(avail) > 10 {
		avail = append(avail[:10], "...")
	}
	what := "versions"
	if len(avail) == 0 {
		return conflict("%s has no files on %s (%s)", n, p.index.URL(), reqs)
	}
	if len(edges) == 1 {
		return conflict("no version of %s satisfies %s; available %s: %s", n, reqs, what, strings.Join(avail, ", "))
	}
	return conflict("no version of %s satisfies all of %s; available %s: %s", n, reqs, what, strings.Join(avail, ", "))
}

// edgeList names the requirements es, those made by the same requirer
// together: "c>=2 and c<3 (from a 1.0) and c<2 (from b 1.0)".
func edgeList(es []edge) string {
	var froms []string
	by := map[string][]string{}
	for _, e := range es {
		if _, ok := by[e.from]; !ok {
			froms = append(froms, e.from)
		}
		by[e.from] = appendNew(by[e.from], e.req.String())
	}
	var out []string
	for _, f := range froms {
		out = append(out, strings.Join(by[f], " and ")+" (from "+f+")")
	}
	return strings.Join(out, " and ")
}

// directCandidate returns the candidate of a "name @ URL" or wheel path
// requirement.
func (r *resolver) directCandidate(n, raw string) (*candidate, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("wheel URL %s: %w", auth.RedactURL(raw), err)
	}
	f := File{Filename: path.Base(u.Path)}
	if algo, sum, ok := strings.Cut(u.Fragment, "="); ok && algo == "sha256" {
		f.SHA256 = strings.ToLower(sum)
	}
	// Credentials in the URL are never kept (they would reach kiln.lock);
	// the download sends those of the index or ~/.netrc for the host.
	f.URL = stripURL(stripFragment(raw))
	fn, err := wheeltag.ParseFilename(f.Filename)
	if err != nil {
		return nil, fmt.Errorf("wheel %s: %w", auth.RedactURL(raw), err)
	}
	if fn.Name != n {
		return nil, fmt.Errorf("wheel %s is a wheel of %s, not of %s", auth.RedactURL(f.URL), fn.Name, n)
	}
	if _, ok := r.tags.Priority(fn); !ok {
		return nil, fmt.Errorf("wheel %s is not compatible with the target %s; use a wheel built for it", auth.RedactURL(f.URL), r.target)
	}
	return &candidate{name: n, version: fn.Version, file: f}, nil
}

// downloader returns the index used to fetch c.
func (r *resolver) downloader(c *candidate) *Index {
	if c.index != nil {
		return c.index
	}
	return r.req.Indexes[0]
}

// metadata returns c's parsed core metadata, fetching it once.
func (r *resolver) metadata(c *candidate) (*Metadata, error) {
	if m, ok := r.metas[c.file.URL]; ok {
		return m, nil
	}
	ix := r.downloader(c)
	var data []byte
	var err error
	if c.sdist != nil {
		if c.built == "" {
			b, berr := r.req.Builder.BuildWheel(r.ctx, c.index, c.name, c.version.String(), *c.sdist)
			if berr != nil {
				return nil, fmt.Errorf("building %s from %s: %w", c, c.sdist.Filename, berr)
			}
			c.built = b.Path
			c.file = File{Filename: b.Filename, URL: (&url.URL{Scheme: "file", Path: b.Path}).String(), SHA256: b.SHA256, Size: b.Size}
			r.sums[c.file.URL], r.sizes[c.file.URL] = b.SHA256, b.Size
		}
		data, err = wheelMetadata(c.built, c.file.Filename)
		if err == nil {
			m, perr := ParseMetadata(data)
			if perr != nil {
				return nil, fmt.Errorf("reading the metadata of %s (%s): %w", c, c.file.Filename, perr)
			}
			r.metas[c.file.URL] = m
			return m, nil
		}
	} else if c.index == nil {
		// Direct reference: download (and hash) the wheel itself.
		var p string
		p, err = ix.Download(r.ctx, c.file)
		if err == nil {
			err = r.recordFile(c, p)
		}
		if err == nil {
			data, err = wheelMetadata(p, c.file.Filename)
		}
	} else {
		data, err = ix.Metadata(r.ctx, c.file)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the metadata of %s: %w", c, err)
	}
	m, err := ParseMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("reading the metadata of %s (%s): %w", c, c.file.Filename, err)
	}
	r.metas[c.file.URL] = m
	return m, nil
}

// recordFile hashes a downloaded direct-reference wheel and checks it
// against the --hash values in hash-checking mode.
func (r *resolver) recordFile(c *candidate, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	r.sums[c.file.URL], r.sizes[c.file.URL] = sum, size
	if allowed := r.allowedHashes(c.name); allowed != nil && !allowed[sum] {
		return &HashMismatchError{What: c.file.Filename, URL: auth.RedactURL(c.file.URL), Got: sum, Want: strings.Join(sortedKeys(allowed), " or "), Expected: "--hash"}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// result turns a solution into a Result.
func (r *resolver) result(s *state) (Result, error) {
	var names []string
	for n := range s.pins {
		names = append(names, n)
	}
	sort.Strings(names)
	// Shortest requirement chains, breadth first from the top level.
	chains := map[string][]string{}
	var queue []string
	for _, n := range names {
		for _, e := range s.edges[n] {
			if e.parent == "" {
				chains[n] = []string{e.req.String()}
				queue = append(queue, n)
				break
			}
		}
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, v := range s.pins[u].deps {
			if _, done := chains[v]; done || s.pins[v] == nil {
				continue
			}
			for _, e := range s.edges[v] {
				if e.parent == u {
					chains[v] = append(slices.Clone(chains[u]), e.req.String())
					break
				}
			}
			queue = append(queue, v)
		}
	}
	var res Result
	for _, n := range names {
		p := s.pins[n]
		c := p.cand
		d := Distribution{
			Name: n, Version: c.version.String(),
			Filename: c.file.Filename, URL: c.file.URL, SHA256: c.file.SHA256, Size: c.file.Size,
			Extras: p.extras, Chain: chains[n], Dependencies: p.deps,
		}
		if c.index != nil {
			d.Index = c.index.base.String()
		}
		if d.SHA256 == "" {
			sum, ok := r.sums[c.file.URL]
			if !ok {
				pth, err := r.downloader(c).Download(r.ctx, c.file)
				if err != nil {
					return Result{}, fmt.Errorf("hashing %s: %w", c, err)
				}
				if err := r.recordFile(c, pth); err != nil {
					return Result{}, err
				}
				sum = r.sums[c.file.URL]
			}
			d.SHA256 = sum
		}
		if d.Size == 0 {
			d.Size = r.sizes[c.file.URL]
		}
		if c.sdist != nil {
			d.BuiltFrom = &File{Filename: c.sdist.Filename, URL: c.sdist.URL, SHA256: c.sdist.SHA256}
		}
		for _, e := range s.edges[n] {
			if e.parent == "" {
				d.Requested = true
			}
			if !slices.Contains(d.RequiredBy, e.from) {
				d.RequiredBy = append(d.RequiredBy, e.from)
			}
		}
		sort.Strings(d.RequiredBy)
		res.Distributions = append(res.Distributions, d)
	}
	return res, nil
}
