package pep440

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Operator is a version comparison operator of a [Specifier].
type Operator string

// The PEP 440 comparison operators.
const (
	Compatible     Operator = "~="
	Equal          Operator = "=="
	NotEqual       Operator = "!="
	LessOrEqual    Operator = "<="
	GreaterOrEqual Operator = ">="
	Less           Operator = "<"
	Greater        Operator = ">"
	ArbitraryEqual Operator = "==="
)

// Specifier is a single version clause such as ">=1.0", "==1.2.*" or
// "~=2.2". The zero Specifier is not valid; use [ParseSpecifier].
type Specifier struct {
	op       Operator
	text     string  // the version as written, without surrounding space
	version  Version // parsed text (without ".*"); valid unless op is === and !parsed
	parsed   bool    // whether text parsed as a version
	wildcard bool    // == or != with a trailing ".*"
}

// InvalidSpecifierError reports a string that is not a PEP 440 specifier.
type InvalidSpecifierError struct {
	Input  string // the specifier, or the whole set, as given
	Clause string // the offending clause when Input is a set
	Reason string // why it is invalid
}

// Error implements error.
func (e *InvalidSpecifierError) Error() string {
	what := fmt.Sprintf("%q", e.Input)
	if e.Clause != "" && e.Clause != e.Input {
		what = fmt.Sprintf("%q in %q", e.Clause, e.Input)
	}
	return fmt.Sprintf("invalid version specifier %s: %s (write clauses like >=1.0, <2, ==1.4.*, ~=2.2, !=1.5 separated by commas)", what, e.Reason)
}

// scanOperator returns the operator at the start of s, longest first.
func scanOperator(s string) Operator {
	for _, op := range []Operator{ArbitraryEqual, Compatible, Equal, NotEqual, LessOrEqual, GreaterOrEqual, Less, Greater} {
		if strings.HasPrefix(s, string(op)) {
			return op
		}
	}
	return ""
}

// skipSpace returns the offset of the first non-space rune of s at or after i.
func skipSpace(s string, i int) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !isSpace(r) {
			break
		}
		i += n
	}
	return i
}

// scanSpecifier matches one specifier clause at the start of s exactly as
// packaging's Specifier regular expression does without anchors (operator,
// optional whitespace, version). It returns the parsed clause and the
// number of bytes matched, or a reason for the failure.
func scanSpecifier(s string) (Specifier, int, string) {
	op := scanOperator(s)
	if op == "" {
		return Specifier{}, 0, "expected an operator (~=, ==, !=, <=, >=, <, >, ===)"
	}
	i := skipSpace(s, len(op))
	if op == ArbitraryEqual {
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if isSpace(r) || r == ';' || r == ')' {
				break
			}
			j += n
		}
		sp := Specifier{op: op, text: s[i:j]}
		if v, err := Parse(sp.text); err == nil {
			sp.version, sp.parsed = v, true
		}
		return sp, j, ""
	}
	p := &vparser{in: s, s: asciiLower(s), pos: i}
	v, err := p.head()
	if err != nil {
		return Specifier{}, 0, fmt.Sprintf("expected a version after %s", op)
	}
	sp := Specifier{op: op, parsed: true}
	switch {
	case op == Compatible && len(v.release) < 2:
		return Specifier{}, 0, "~= needs at least two release numbers, as in ~=2.2 (meaning >=2.2, ==2.*)"
	case (op == Equal || op == NotEqual) && hasPrefixAt(p.s, p.pos, ".*"):
		p.pos += 2
		sp.wildcard = true
	default:
		if err := p.suffixes(&v); err != nil {
			return Specifier{}, 0, err.(*InvalidVersionError).Reason
		}
		if (op == Equal || op == NotEqual) && p.peek() == '+' {
			save := p.pos
			p.pos++
			if err := p.parseLocal(&v); err != nil {
				p.pos = save
				v.local = nil
			}
		}
	}
	sp.version = v
	sp.text = s[i:p.pos]
	return sp, p.pos, ""
}

// ParseSpecifier parses a single clause such as ">=1.0" or "== 1.2.*",
// accepting exactly what packaging.specifiers.Specifier accepts.
func ParseSpecifier(s string) (Specifier, error) {
	start := skipSpace(s, 0)
	sp, n, reason := scanSpecifier(s[start:])
	if reason == "" && skipSpace(s, start+n) != len(s) {
		reason = specTrailingReason(sp, s[start+n:])
	}
	if reason != "" {
		return Specifier{}, &InvalidSpecifierError{Input: s, Reason: reason}
	}
	return sp, nil
}

// specTrailingReason explains why text follows a clause.
func specTrailingReason(sp Specifier, rest string) string {
	rest = trimSpace(rest)
	switch {
	case strings.HasPrefix(rest, "+") && sp.op != Equal && sp.op != NotEqual:
		return fmt.Sprintf("a local version label (%s) is only allowed with == and !=", rest)
	case strings.HasPrefix(rest, ".*") && sp.op != Equal && sp.op != NotEqual:
		return "a .* wildcard is only allowed with == and !="
	case strings.HasPrefix(rest, ".*"):
		return "a .* wildcard must follow the release numbers directly, as in ==1.2.*"
	}
	return fmt.Sprintf("unexpected %q after %s%s", rest, sp.op, sp.text)
}

// MustParseSpecifier is like [ParseSpecifier] but panics on error.
func MustParseSpecifier(s string) Specifier {
	sp, err := ParseSpecifier(s)
	if err != nil {
		panic(err)
	}
	return sp
}

// Operator returns the clause's operator.
func (s Specifier) Operator() Operator { return s.op }

// Version returns the clause's version as written (including any ".*").
func (s Specifier) Version() string { return s.text }

// Wildcard reports whether the clause is a prefix match such as ==1.2.*.
func (s Specifier) Wildcard() bool { return s.wildcard }

// String returns the clause as operator followed by the version as written.
func (s Specifier) String() string { return string(s.op) + s.text }

// Prereleases reports whether the clause itself mentions a pre-release,
// which makes it accept pre-releases by default (packaging's
// Specifier.prereleases).
func (s Specifier) Prereleases() bool {
	switch s.op {
	case Equal, GreaterOrEqual, LessOrEqual, Compatible, ArbitraryEqual:
		return s.parsed && !s.wildcard && s.version.IsPrerelease()
	}
	return false
}

// Contains reports whether v satisfies the clause. Pre-releases (and
// development releases) are rejected unless prereleases is true; pass
// s.Prereleases() for packaging's default (prereleases=None) behaviour.
func (s Specifier) Contains(v Version, prereleases bool) bool {
	if v.IsPrerelease() && !prereleases {
		return false
	}
	return s.match(v)
}

// match applies the operator without the pre-release filter.
func (s Specifier) match(v Version) bool {
	spec := s.version
	switch s.op {
	case Compatible:
		prefix := spec.release[:len(spec.release)-1]
		return Compare(v.Public(), spec) >= 0 && prefixMatch(v, spec.epoch, prefix)
	case Equal:
		return s.equal(v)
	case NotEqual:
		return !s.equal(v)
	case LessOrEqual:
		return Compare(v.Public(), spec) <= 0
	case GreaterOrEqual:
		return Compare(v.Public(), spec) >= 0
	case Less:
		if Compare(v, spec) >= 0 {
			return false
		}
		if !spec.IsPrerelease() && v.IsPrerelease() && Compare(v.BaseVersion(), spec.BaseVersion()) == 0 {
			return false
		}
		return true
	case Greater:
		if Compare(v, spec) <= 0 {
			return false
		}
		if !spec.IsPostrelease() && v.IsPostrelease() && Compare(v.BaseVersion(), spec.BaseVersion()) == 0 {
			return false
		}
		if len(v.local) > 0 && Compare(v.BaseVersion(), spec.BaseVersion()) == 0 {
			return false
		}
		return true
	case ArbitraryEqual:
		return strings.ToLower(v.String()) == strings.ToLower(s.text)
	}
	return false
}

func (s Specifier) equal(v Version) bool {
	if s.wildcard {
		return prefixMatch(v, s.version.epoch, s.version.release)
	}
	if len(s.version.local) == 0 {
		v = v.Public()
	}
	return Compare(v, s.version) == 0
}

// prefixMatch reports whether v's epoch is epoch and its release segment,
// padded with zeros, starts with prefix.
func prefixMatch(v Version, epoch uint64, prefix []uint64) bool {
	if v.epoch != epoch {
		return false
	}
	for i, n := range prefix {
		if v.component(i) != n {
			return false
		}
	}
	return true
}

// canonicalKey identifies clauses that packaging treats as duplicates.
func (s Specifier) canonicalKey() string {
	if !s.parsed {
		return string(s.op) + s.text
	}
	v := s.version
	if s.op != Compatible {
		r := v.release
		for len(r) > 1 && r[len(r)-1] == 0 {
			r = r[:len(r)-1]
		}
		v.release = r
	}
	k := string(s.op) + v.String()
	if s.wildcard {
		k += ".*"
	}
	return k
}

// SpecifierSet is a comma-separated conjunction of clauses such as
// ">=1.0,!=1.3.*,<2". The zero SpecifierSet is empty and matches every
// final release.
type SpecifierSet struct {
	specs []Specifier
}

// ParseSpecifierSet parses a comma-separated list of clauses. Empty clauses
// are ignored, so "" is the empty set; duplicate clauses are dropped.
func ParseSpecifierSet(s string) (SpecifierSet, error) {
	var set SpecifierSet
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = trimSpace(part)
		if part == "" {
			continue
		}
		sp, err := ParseSpecifier(part)
		if err != nil {
			e := err.(*InvalidSpecifierError)
			return SpecifierSet{}, &InvalidSpecifierError{Input: s, Clause: part, Reason: e.Reason}
		}
		if k := sp.canonicalKey(); !seen[k] {
			seen[k] = true
			set.specs = append(set.specs, sp)
		}
	}
	return set, nil
}

// MustParseSpecifierSet is like [ParseSpecifierSet] but panics on error.
func MustParseSpecifierSet(s string) SpecifierSet {
	set, err := ParseSpecifierSet(s)
	if err != nil {
		panic(err)
	}
	return set
}

// Specifiers returns a copy of the set's clauses in parse order.
func (s SpecifierSet) Specifiers() []Specifier { return append([]Specifier(nil), s.specs...) }

// Len returns the number of clauses.
func (s SpecifierSet) Len() int { return len(s.specs) }

// String returns the clauses sorted and joined by commas, as packaging does.
func (s SpecifierSet) String() string {
	parts := make([]string, len(s.specs))
	for i, sp := range s.specs {
		parts[i] = sp.String()
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// And returns the conjunction of s and o.
func (s SpecifierSet) And(o SpecifierSet) SpecifierSet {
	out := SpecifierSet{}
	seen := map[string]bool{}
	for _, sp := range append(append([]Specifier(nil), s.specs...), o.specs...) {
		if k := sp.canonicalKey(); !seen[k] {
			seen[k] = true
			out.specs = append(out.specs, sp)
		}
	}
	return out
}

// Prereleases reports whether any clause mentions a pre-release. It is
// packaging's SpecifierSet.prereleases with None read as false, so
// s.Contains(v, s.Prereleases()) is packaging's s.contains(v).
func (s SpecifierSet) Prereleases() bool {
	for _, sp := range s.specs {
		if sp.Prereleases() {
			return true
		}
	}
	return false
}

// Contains reports whether v satisfies every clause. Pre-releases are
// rejected unless prereleases is true.
func (s SpecifierSet) Contains(v Version, prereleases bool) bool {
	if v.IsPrerelease() && !prereleases {
		return false
	}
	for _, sp := range s.specs {
		if !sp.match(v) {
			return false
		}
	}
	return true
}

// Allows is Contains with packaging's default pre-release policy:
// pre-releases match only when a clause mentions one.
func (s SpecifierSet) Allows(v Version) bool { return s.Contains(v, s.Prereleases()) }
