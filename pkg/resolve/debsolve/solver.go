package debsolve

import (
	"fmt"
	"sort"
	"strings"

	"pault.ag/go/debian/version"
)

// goalKind says where a goal comes from.
type goalKind int

const (
	kindRequest goalKind = iota
	kindPre
	kindDep
	kindRec
)

// field returns the control field a goal comes from.
func (k goalKind) field() string {
	switch k {
	case kindPre:
		return "Pre-Depends"
	case kindDep:
		return "Depends"
	case kindRec:
		return "Recommends"
	}
	return "requested"
}

// goal is one thing to satisfy: a requested package or one relationship of
// a chosen package.
type goal struct {
	kind    goalKind
	rel     rel
	from    *cand
	target  Target
	reqOpts []*cand // for requests: candidates in order; an installed one means "keep it"
	reqNote string  // for requests: a note to add whatever is chosen
}

// selInfo records why a package was selected.
type selInfo struct {
	chain []string
	via   string
	head  int // agenda index of the goal that selected it
}

// negRef is one Conflicts or Breaks entry of a selected package.
type negRef struct {
	owner *cand
	n     neg
}

// failure is the most advanced dead end met so far.
type failure struct {
	head int
	err  *Error
}

// mark is a point to undo to.
type mark struct {
	trail, agenda, notes, added int
}

// option is one candidate for a goal.
type option struct {
	c    *cand
	note string
}

// solver is the state of one depth-first search with undo.
type solver struct {
	idx *index
	req Request

	selected map[string]*cand // by slot
	selName  map[string][]*cand
	selProv  map[string][]provRef
	selNegs  map[string][]negRef
	info     map[*cand]selInfo
	added    []*cand

	agenda []goal
	notes  []string
	trail  []func()

	steps, maxSteps int
	gaveUp          bool
	jump            int           // after a failure: the agenda index to go back to
	failSet         conflict      // after a failure: the choices that explain it
	keptBy          map[*cand]int // installed packages a request may replace: its agenda index
	best            *failure
}

func newSolver(idx *index, req Request) *solver {
	s := &solver{
		idx:      idx,
		req:      req,
		selected: map[string]*cand{},
		selName:  map[string][]*cand{},
		selProv:  map[string][]provRef{},
		selNegs:  map[string][]negRef{},
		info:     map[*cand]selInfo{},
		maxSteps: req.MaxSteps,
		jump:     -1,
		keptBy:   map[*cand]int{},
	}
	if s.maxSteps <= 0 {
		s.maxSteps = 200000
	}
	for _, c := range idx.installed {
		s.add(c, selInfo{head: -1})
	}
	s.trail = nil
	return s
}

func (s *solver) mark() mark {
	return mark{len(s.trail), len(s.agenda), len(s.notes), len(s.added)}
}

func (s *solver) undo(m mark) {
	for i := len(s.trail) - 1; i >= m.trail; i-- {
		s.trail[i]()
	}
	s.trail = s.trail[:m.trail]
	s.agenda = s.agenda[:m.agenda]
	s.notes = s.notes[:m.notes]
	s.added = s.added[:m.added]
}

// add selects c.
func (s *solver) add(c *cand, info selInfo) {
	slot := c.slot()
	s.selected[slot] = c
	s.selName[c.name] = append(s.selName[c.name], c)
	for _, p := range c.provides {
		s.selProv[p.name] = append(s.selProv[p.name], provRef{c, p})
	}
	for _, n := range c.negs {
		s.selNegs[n.a.name] = append(s.selNegs[n.a.name], negRef{c, n})
	}
	s.info[c] = info
	if !c.installed {
		s.added = append(s.added, c)
	}
	s.trail = append(s.trail, func() {
		delete(s.selected, slot)
		s.selName[c.name] = s.selName[c.name][:len(s.selName[c.name])-1]
		for i := len(c.provides) - 1; i >= 0; i-- {
			n := c.provides[i].name
			s.selProv[n] = s.selProv[n][:len(s.selProv[n])-1]
		}
		for i := len(c.negs) - 1; i >= 0; i-- {
			n := c.negs[i].a.name
			s.selNegs[n] = s.selNegs[n][:len(s.selNegs[n])-1]
		}
		delete(s.info, c)
	})
}

// remove unselects the installed package o, to replace it.
func (s *solver) remove(o *cand) {
	slot := o.slot()
	oldName := s.selName[o.name]
	oldProv := map[string][]provRef{}
	oldNegs := map[string][]negRef{}
	s.selName[o.name] = without(oldName, func(c *cand) bool { return c == o })
	for _, p := range o.provides {
		if _, ok := oldProv[p.name]; !ok {
			oldProv[p.name] = s.selProv[p.name]
			s.selProv[p.name] = without(s.selProv[p.name], func(r provRef) bool { return r.c == o })
		}
	}
	for _, n := range o.negs {
		if _, ok := oldNegs[n.a.name]; !ok {
			oldNegs[n.a.name] = s.selNegs[n.a.name]
			s.selNegs[n.a.name] = without(s.selNegs[n.a.name], func(r negRef) bool { return r.owner == o })
		}
	}
	info := s.info[o]
	delete(s.selected, slot)
	delete(s.info, o)
	s.trail = append(s.trail, func() {
		s.selected[slot] = o
		s.info[o] = info
		s.selName[o.name] = oldName
		for k, v := range oldProv {
			s.selProv[k] = v
		}
		for k, v := range oldNegs {
			s.selNegs[k] = v
		}
	})
}

// without returns a new slice holding the elements of in that drop rejects.
func without[T any](in []T, drop func(T) bool) []T {
	out := make([]T, 0, len(in))
	for _, x := range in {
		if !drop(x) {
			out = append(out, x)
		}
	}
	return out
}

// archMatch reports whether c, or a virtual package c provides, may satisfy
// atom a of a relationship of from.
func (s *solver) archMatch(a atom, from, c *cand) bool {
	native := s.idx.native
	fromArch := native
	if from != nil && from.arch != "all" {
		fromArch = from.arch
	}
	if c.arch == "all" {
		return a.arch == "" || a.arch == "any" || a.arch == "native" || a.arch == native
	}
	switch a.arch {
	case "":
		return c.arch == fromArch || c.ma == "foreign"
	case "any":
		return c.arch == fromArch || c.ma == "allowed" || c.ma == "foreign"
	case "native":
		return c.arch == native
	}
	return c.arch == a.arch
}

// realMatch reports whether the package c satisfies a, ignoring arch.
func realMatch(a atom, c *cand) bool {
	return a.name == c.name && satisfies(c.ver, a.op, a.ver)
}

// provMatch reports whether a provided virtual package satisfies a,
// ignoring arch: an unversioned Provides only satisfies unversioned atoms.
func provMatch(a atom, p provide) bool {
	if a.op == "" {
		return true
	}
	return p.hasVer && satisfies(p.ver, a.op, a.ver)
}

// satisfiedAtom returns a selected package satisfying a, or nil.
func (s *solver) satisfiedAtom(a atom, from *cand) *cand {
	for _, c := range s.selName[a.name] {
		if realMatch(a, c) && s.archMatch(a, from, c) {
			return c
		}
	}
	for _, pr := range s.selProv[a.name] {
		if provMatch(a, pr.p) && s.archMatch(a, from, pr.c) {
			return pr.c
		}
	}
	return nil
}

// satisfied returns a selected package satisfying r, or nil.
func (s *solver) satisfied(r rel, from *cand) *cand {
	for _, a := range r.alts {
		if c := s.satisfiedAtom(a, from); c != nil {
			return c
		}
	}
	return nil
}

// options lists the universe packages that could satisfy g, in the order to
// try them, and explains atoms that nothing could satisfy.
func (s *solver) options(g *goal) ([]option, []string) {
	var opts []option
	var whys []string
	seen := map[*cand]bool{}
	for _, a := range g.rel.alts {
		n := 0
		for _, c := range s.idx.byName[a.name] {
			if realMatch(a, c) && s.archMatch(a, g.from, c) && !seen[c] {
				seen[c] = true
				opts = append(opts, option{c: c})
				n++
			}
		}
		var provs []*cand
		var names []string
		for _, pr := range s.idx.providers[a.name] {
			if provMatch(a, pr.p) && s.archMatch(a, g.from, pr.c) {
				if len(names) == 0 || names[len(names)-1] != pr.c.name {
					names = append(names, pr.c.name)
				}
				if !seen[pr.c] {
					seen[pr.c] = true
					provs = append(provs, pr.c)
				}
			}
		}
		for _, c := range provs {
			o := option{c: c}
			if n == 0 && len(names) > 1 {
				o.note = fmt.Sprintf("%s: chose %s among the packages providing %s (%s); name another one in apt_packages to use it instead", g.from.name, c.name, a.name, strings.Join(names, ", "))
			}
			opts = append(opts, o)
		}
		if n == 0 && len(names) == 0 {
			whys = append(whys, s.explainAtom(a, g.from))
		}
	}
	return opts, whys
}

// explainAtom says why no universe package satisfies a.
func (s *solver) explainAtom(a atom, from *cand) string {
	var parts []string
	for _, c := range s.selName[a.name] {
		if c.installed && s.archMatch(a, from, c) {
			parts = append(parts, fmt.Sprintf("installed %s does not satisfy %s", c.label(), a.text))
		}
	}
	real := s.idx.byName[a.name]
	provs := s.idx.providers[a.name]
	if len(real) == 0 && len(provs) == 0 {
		if len(parts) > 0 {
			return strings.Join(parts, "; ") + " and no other version is available"
		}
		if archs := s.idx.otherArch[a.name]; len(archs) > 0 {
			return fmt.Sprintf("%s exists only for %s, which is not an architecture of this build", a.name, strings.Join(archs, ", "))
		}
		return "no package provides " + a.text
	}
	if len(real) > 0 {
		var archOK []*cand
		var archs []string
		for _, c := range real {
			if s.archMatch(a, from, c) {
				archOK = append(archOK, c)
			} else {
				archs = appendUniq(archs, c.arch)
			}
		}
		if len(archOK) == 0 {
			parts = append(parts, fmt.Sprintf("%s is not available for this architecture (only for %s)", a.name, strings.Join(archs, ", ")))
		} else {
			var vs []string
			for _, c := range archOK {
				vs = appendUniq(vs, c.pkg.Version)
			}
			parts = append(parts, fmt.Sprintf("no version of %s satisfies %s (available: %s)", a.name, a.verTxt, strings.Join(limit(vs, 6), ", ")))
		}
	}
	if len(provs) > 0 {
		var unver, other []string
		for _, pr := range provs {
			switch {
			case !s.archMatch(a, from, pr.c):
				other = appendUniq(other, pr.c.name+":"+pr.c.arch)
			case !pr.p.hasVer:
				unver = appendUniq(unver, pr.c.name)
			default:
				other = appendUniq(other, fmt.Sprintf("%s (= %s)", pr.c.name, pr.p.ver))
			}
		}
		if len(unver) > 0 {
			parts = append(parts, fmt.Sprintf("%s is provided without a version by %s, which cannot satisfy the versioned %s", a.name, strings.Join(limit(unver, 6), ", "), a.text))
		}
		if len(other) > 0 {
			parts = append(parts, fmt.Sprintf("no package provides %s (only %s)", a.text, strings.Join(limit(other, 6), ", ")))
		}
	}
	return strings.Join(parts, "; ")
}

func appendUniq(xs []string, x string) []string {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}

func limit(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append(xs[:n:n], fmt.Sprintf("and %d more", len(xs)-n))
}

// describe names a selected package and why it is there.
func (s *solver) describe(c *cand) string {
	if c.installed {
		return "installed " + c.label()
	}
	if info, ok := s.info[c]; ok && len(info.chain) > 1 {
		return fmt.Sprintf("%s (needed by %s)", c.label(), strings.Join(info.chain[:len(info.chain)-1], " -> "))
	}
	return c.label() + " (requested)"
}

// check returns why c cannot join the current selection, or "", and the
// agenda index of the choice that blocks it (-1 when nothing chosen does).
func (s *solver) check(c *cand) (string, int) {
	if o := s.selected[c.slot()]; o != nil && o != c {
		if o.installed {
			return fmt.Sprintf("%s is installed in the base image and kiln never upgrades base image packages implicitly: add %s to apt_packages to upgrade it to %s, or use a newer base_image", o.label(), o.name, c.pkg.Version), s.culprit(o)
		}
		return fmt.Sprintf("%s cannot be chosen because %s was already chosen", c.label(), s.describe(o)), s.culprit(o)
	}
	if err := c.parse(); err != nil {
		return err.Error(), -1
	}
	for _, n := range c.negs {
		for _, d := range s.selName[n.a.name] {
			if d.name != c.name && negArch(n.a, d) && realMatch(n.a, d) {
				return fmt.Sprintf("%s cannot be installed: it declares %s: %s, which matches %s", c.label(), n.field, n.a.text, s.describe(d)), s.culprit(d)
			}
		}
		for _, pr := range s.selProv[n.a.name] {
			if pr.c.name != c.name && provMatch(n.a, pr.p) {
				return fmt.Sprintf("%s cannot be installed: it declares %s: %s, which %s provides", c.label(), n.field, n.a.text, s.describe(pr.c)), s.culprit(pr.c)
			}
		}
	}
	for _, nr := range s.selNegs[c.name] {
		if nr.owner.name != c.name && negArch(nr.n.a, c) && realMatch(nr.n.a, c) {
			return fmt.Sprintf("%s cannot be installed: %s declares %s: %s", c.label(), s.describe(nr.owner), nr.n.field, nr.n.a.text), s.culprit(nr.owner)
		}
	}
	for _, p := range c.provides {
		for _, nr := range s.selNegs[p.name] {
			if nr.owner.name != c.name && provMatch(nr.n.a, p) {
				return fmt.Sprintf("%s cannot be installed: %s declares %s: %s, which %s provides", c.label(), s.describe(nr.owner), nr.n.field, nr.n.a.text, c.name), s.culprit(nr.owner)
			}
		}
	}
	return "", -1
}

// culprit returns the agenda index of the choice that put d in the
// selection: where it was chosen, where a request kept it installed, or -1
// for an installed package nothing could have removed.
func (s *solver) culprit(d *cand) int {
	if d.installed {
		if h, ok := s.keptBy[d]; ok {
			return h
		}
		return -1
	}
	return s.info[d].head
}

// negArch reports whether a Conflicts or Breaks atom applies to the
// architecture of d.
func negArch(a atom, d *cand) bool {
	switch a.arch {
	case "", "any", "native":
		return true
	}
	return a.arch == d.arch || d.arch == "all"
}

// checkReplace returns why replacing the installed old by c breaks a
// dependency of another selected package that old satisfied, or "".
func (s *solver) checkReplace(old, c *cand) (string, int) {
	slots := make([]string, 0, len(s.selected))
	for k := range s.selected {
		slots = append(slots, k)
	}
	sort.Strings(slots)
	for _, k := range slots {
		d := s.selected[k]
		if d == c {
			continue
		}
		if err := d.parse(); err != nil {
			continue
		}
		for _, group := range [][]rel{d.pre, d.deps} {
			for _, r := range group {
				if !s.relSatisfiedBy(r, d, old) || s.satisfied(r, d) != nil {
					continue
				}
				return fmt.Sprintf("replacing %s by %s would break %s, which depends on %s", old.label(), c.pkg.Version, s.describe(d), r.text), s.culprit(d)
			}
		}
	}
	return "", -1
}

// relSatisfiedBy reports whether the package c satisfies r of from.
func (s *solver) relSatisfiedBy(r rel, from, c *cand) bool {
	for _, a := range r.alts {
		if realMatch(a, c) && s.archMatch(a, from, c) {
			return true
		}
		for _, p := range c.provides {
			if p.name == a.name && provMatch(a, p) && s.archMatch(a, from, c) {
				return true
			}
		}
	}
	return false
}

// fail records a dead end if it is the most advanced one so far.
func (s *solver) fail(head int, e *Error) {
	if s.best == nil || head > s.best.head {
		s.best = &failure{head: head, err: e}
	}
}

// pushDeps queues the relationships of the newly selected c.
func (s *solver) pushDeps(c *cand) {
	for _, r := range c.pre {
		s.agenda = append(s.agenda, goal{kind: kindPre, rel: r, from: c})
	}
	for _, r := range c.deps {
		s.agenda = append(s.agenda, goal{kind: kindDep, rel: r, from: c})
	}
	if s.req.InstallRecommends {
		for _, r := range c.recs {
			s.agenda = append(s.agenda, goal{kind: kindRec, rel: r, from: c})
		}
	}
}

// step counts one tried candidate and reports whether the budget is left.
func (s *solver) step() bool {
	s.steps++
	if s.steps > s.maxSteps {
		s.gaveUp = true
		return false
	}
	return true
}

// conflict is the set of agenda indices whose choices together explain a
// dead end, for conflict-directed backjumping.
type conflict map[int]struct{}

func (c conflict) add(h int) {
	if h >= 0 {
		c[h] = struct{}{}
	}
}

// failWith ends the frame at head: the choices in cs explain why it failed,
// so the search jumps back to the latest of them, skipping frames whose
// choices played no part.
func (s *solver) failWith(cs conflict) bool {
	s.jump = -1
	for h := range cs {
		s.jump = max(s.jump, h)
	}
	s.failSet = cs
	return false
}

// childFailed undoes to m after the subtree below head failed, and reports
// whether the frame at head should try its next option; if so the reasons
// of the failure are merged into acc.
func (s *solver) childFailed(m mark, head int, acc conflict) bool {
	s.undo(m)
	if s.gaveUp || s.jump < head {
		// The failure does not depend on this frame's choice: another
		// option would fail the same way.
		return false
	}
	for h := range s.failSet {
		if h != head {
			acc.add(h)
		}
	}
	return true
}

// run satisfies the goals from agenda index head on, depth first, and
// reports whether it succeeded. On success the selection holds a solution;
// on failure s.jump and s.failSet say why.
func (s *solver) run(head int) bool {
	for head < len(s.agenda) {
		g := &s.agenda[head]
		if g.kind == kindRequest {
			return s.runRequest(head)
		}
		if s.satisfied(g.rel, g.from) != nil {
			head++
			continue
		}
		return s.runGoal(head)
	}
	return true
}

// runGoal tries each option of the relationship goal at head.
func (s *solver) runGoal(head int) bool {
	g := s.agenda[head]
	opts, whys := s.options(&g)
	from := s.info[g.from]
	chain := append(append([]string(nil), from.chain...), g.rel.text)
	acc := conflict{}
	acc.add(from.head)
	var rejects []string
	tried := false
	for _, o := range opts {
		if !s.step() {
			return false
		}
		if r, k := s.check(o.c); r != "" {
			rejects = append(rejects, r)
			acc.add(k)
			continue
		}
		tried = true
		m := s.mark()
		c := o.c
		cchain := append(append([]string(nil), from.chain...), c.name)
		s.add(c, selInfo{chain: cchain, via: g.kind.field() + ": " + g.rel.text, head: head})
		if o.note != "" {
			s.notes = append(s.notes, o.note)
		}
		s.pushDeps(c)
		if s.run(head + 1) {
			return true
		}
		if !s.childFailed(m, head, acc) {
			return false
		}
	}
	reason := strings.Join(append(whys, rejects...), "; ")
	if g.kind == kindRec {
		m := s.mark()
		s.notes = append(s.notes, fmt.Sprintf("skipped %s Recommends: %s: %s", g.from.name, g.rel.text, orDefault(reason, "every candidate failed further down")))
		if s.run(head + 1) {
			return true
		}
		if !s.childFailed(m, head, acc) {
			return false
		}
		return s.failWith(acc)
	}
	if !tried {
		s.fail(head, &Error{Chain: chain, Reason: reason})
	}
	return s.failWith(acc)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// runRequest tries each candidate of the requested package at head.
func (s *solver) runRequest(head int) bool {
	g := s.agenda[head]
	var rejects []string
	acc := conflict{}
	tried := false
	for _, c := range g.reqOpts {
		if !s.step() {
			return false
		}
		m := s.mark()
		if g.reqNote != "" {
			s.notes = append(s.notes, g.reqNote)
		}
		if c.installed {
			n := fmt.Sprintf("%s is already installed", c.label())
			if len(rejects) > 0 {
				n += "; not upgraded: " + strings.Join(rejects, "; ")
			}
			s.notes = append(s.notes, n)
			tried = true
			if s.run(head + 1) {
				return true
			}
			if !s.childFailed(m, head, acc) {
				return false
			}
			continue
		}
		old := s.selected[c.slot()]
		if old != nil && !old.installed {
			old = nil
		}
		if old != nil {
			s.remove(old)
		}
		if r, k := s.check(c); r != "" {
			rejects = append(rejects, r)
			acc.add(k)
			s.undo(m)
			continue
		}
		s.add(c, selInfo{chain: []string{c.name}, via: "requested", head: head})
		if old != nil {
			if r, k := s.checkReplace(old, c); r != "" {
				rejects = append(rejects, r)
				acc.add(k)
				s.undo(m)
				continue
			}
			verb := "upgrading"
			if version.Compare(c.ver, old.ver) < 0 {
				verb = "downgrading"
			}
			s.notes = append(s.notes, fmt.Sprintf("%s installed %s from %s to %s as requested", verb, c.name, old.pkg.Version, c.pkg.Version))
		}
		tried = true
		s.pushDeps(c)
		if s.run(head + 1) {
			return true
		}
		if !s.childFailed(m, head, acc) {
			return false
		}
	}
	if !tried {
		s.fail(head, &Error{Chain: []string{g.target.String()}, Reason: strings.Join(rejects, "; ")})
	}
	return s.failWith(acc)
}

// requestGoal builds the goal for a requested package, failing early when
// nothing could ever satisfy it.
func (s *solver) requestGoal(t Target) (goal, error) {
	g := goal{kind: kindRequest, target: t}
	wantArch := func(c *cand) bool {
		if t.Arch == "" {
			return c.arch == s.idx.native || c.arch == "all"
		}
		return c.arch == t.Arch || (c.arch == "all" && t.Arch == s.idx.native)
	}
	all := s.idx.byName[t.Name]
	var cs []*cand
	for _, c := range all {
		if wantArch(c) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 && t.Arch == "" {
		// apt installs a foreign package when it is the only one there is.
		cs = all
	}
	var inst *cand
	for _, c := range s.selName[t.Name] {
		if c.installed && (wantArch(c) || t.Arch == "") {
			inst = c
			break
		}
	}
	if len(cs) == 0 && inst == nil {
		if len(all) > 0 {
			var archs []string
			for _, c := range all {
				archs = appendUniq(archs, c.arch)
			}
			return g, &Error{Chain: []string{t.String()}, Reason: fmt.Sprintf("%s is not available for %s (only for %s); request one of those architectures with %s:ARCH and add it to the foreign architectures", t.Name, orDefault(t.Arch, s.idx.native), strings.Join(archs, ", "), t.Name)}
		}
		var names []string
		var pcs []*cand
		for _, pr := range s.idx.providers[t.Name] {
			if wantArch(pr.c) && (len(names) == 0 || names[len(names)-1] != pr.c.name) {
				names = append(names, pr.c.name)
			}
		}
		if archs := s.idx.otherArch[t.Name]; len(names) == 0 && len(archs) > 0 {
			return g, &Error{Chain: []string{t.String()}, Reason: fmt.Sprintf("%s exists only for %s, which is not an architecture of this build; add it to the foreign architectures and request %s:%s", t.Name, strings.Join(archs, ", "), t.Name, archs[0])}
		}
		if len(names) == 0 {
			return g, &Error{Chain: []string{t.String()}, Reason: fmt.Sprintf("unknown package %q: it is in none of the package lists; check the spelling in apt_packages, or add the repository that has it", t.Name)}
		}
		if len(names) > 1 {
			return g, &Error{Chain: []string{t.String()}, Reason: fmt.Sprintf("%s is a virtual package provided by %s; name the one to install in apt_packages", t.Name, strings.Join(limit(names, 10), ", "))}
		}
		if t.Version != "" {
			return g, &Error{Chain: []string{t.String()}, Reason: fmt.Sprintf("%s is a virtual package provided only by %s and cannot be pinned; request %s=VERSION instead", t.Name, names[0], names[0])}
		}
		for _, c := range s.idx.byName[names[0]] {
			if wantArch(c) {
				pcs = append(pcs, c)
			}
		}
		g.target = Target{Name: names[0], Arch: t.Arch}
		g.reqOpts = pcs
		g.reqNote = fmt.Sprintf("%s is a virtual package; installing %s, its only provider", t.Name, names[0])
		for _, c := range s.selName[names[0]] {
			if c.installed {
				g.reqOpts = []*cand{c}
				break
			}
		}
		return g, nil
	}
	var pinned []*cand
	for _, c := range cs {
		if t.matches(c.pkg.Version) {
			pinned = append(pinned, c)
		}
	}
	switch {
	case inst != nil && t.Version != "" && t.matches(inst.pkg.Version):
		g.reqOpts = []*cand{inst}
	case inst != nil && t.Version == "":
		for _, c := range cs {
			if version.Compare(c.ver, inst.ver) > 0 {
				g.reqOpts = append(g.reqOpts, c)
			}
		}
		g.reqOpts = append(g.reqOpts, inst)
	case len(pinned) == 0:
		var vs []string
		for _, c := range cs {
			vs = appendUniq(vs, c.pkg.Version)
		}
		extra := ""
		if inst != nil {
			extra = fmt.Sprintf(" (installed: %s)", inst.pkg.Version)
		}
		return g, &Error{Chain: []string{t.String()}, Reason: fmt.Sprintf("version %s of %s is not available; available: %s%s; change the pin in apt_packages", t.Version, t.Name, strings.Join(limit(vs, 10), ", "), extra)}
	default:
		g.reqOpts = pinned
	}
	return g, nil
}

// result builds the Result of a successful search.
func (s *solver) result() Result {
	var r Result
	for _, c := range s.order() {
		info := s.info[c]
		r.Install = append(r.Install, Step{Package: *c.pkg, Chain: info.chain, Via: info.via})
	}
	r.Notes = append(append(r.Notes, s.idx.notes...), s.notes...)
	return r
}
