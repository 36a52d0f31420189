// Package pep508 parses PEP 508 dependency specifiers ("requirements") such
// as `torch[cuda]>=2.1,<3; python_version >= "3.9"` and evaluates their
// environment markers for a target interpreter, following pypa/packaging.
package pep508

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/kiln-build/kiln/pkg/pep440"
)

// Requirement is a parsed PEP 508 dependency specifier.
type Requirement struct {
	// Name is the project name as written; compare NormalizeName(Name).
	Name string
	// Extras are the requested extras as written, sorted and de-duplicated.
	Extras []string
	// Specifier constrains the version; it is empty for URL requirements.
	Specifier pep440.SpecifierSet
	// URL is the direct reference of `name @ url`, or "".
	URL string
	// Marker is the environment marker after ";", or nil.
	Marker *Marker
}

// ParseRequirement parses a PEP 508 dependency specifier.
func ParseRequirement(s string) (Requirement, error) {
	sc := &scanner{kind: "requirement", s: s}
	var r Requirement
	sc.ws()
	name, ok := sc.identifier()
	if !ok {
		return r, sc.errorf(sc.pos, "expected a package name (letters, digits, '-', '_', '.') at the start")
	}
	r.Name = name
	sc.ws()
	if err := sc.extras(&r); err != nil {
		return r, err
	}
	sc.ws()
	if sc.lit("@") {
		sc.ws()
		start := sc.pos
		for sc.pos < len(sc.s) && sc.s[sc.pos] != ' ' && sc.s[sc.pos] != '\t' {
			sc.pos++
		}
		if sc.pos == start {
			return r, sc.errorf(sc.pos, "expected a URL after @")
		}
		r.URL = sc.s[start:sc.pos]
		if msg := checkURL(r.URL); msg != "" {
			return r, sc.errorf(start, "%s", msg)
		}
		if sc.eof() {
			return r, nil
		}
		sc.ws()
		if sc.eof() {
			return r, nil
		}
		after := "URL and whitespace"
		if strings.Contains(r.URL, ";") {
			after += "; a ';' touching the URL is part of it, put a space before the marker's ';'"
		}
		if err := sc.requirementMarker(&r, start, after); err != nil {
			return r, err
		}
		return r, nil
	}
	specStart := sc.pos
	if err := sc.specifier(&r); err != nil {
		return r, err
	}
	sc.ws()
	if sc.eof() {
		return r, nil
	}
	after := "name and no valid version specifier"
	if r.Specifier.Len() > 0 {
		after = "version specifier"
	}
	return r, sc.requirementMarker(&r, specStart, after)
}

// MustParseRequirement is like [ParseRequirement] but panics on error.
func MustParseRequirement(s string) Requirement {
	r, err := ParseRequirement(s)
	if err != nil {
		panic(err)
	}
	return r
}

func (sc *scanner) requirementMarker(r *Requirement, start int, after string) error {
	if !sc.lit(";") {
		return sc.errorf(sc.pos, "expected end or ';' (after %s starting at position %d)", after, start)
	}
	g, err := sc.marker()
	if err != nil {
		if se, ok := err.(*SyntaxError); ok {
			se.Kind = "requirement"
		}
		return err
	}
	sc.ws()
	if !sc.eof() {
		return sc.errorf(sc.pos, "expected end of requirement, or 'and'/'or' followed by a marker comparison")
	}
	r.Marker = &Marker{expr: g}
	return nil
}

// extras = ( "[" WS? (identifier (WS? "," WS? identifier)*)? WS? "]" )?
func (sc *scanner) extras(r *Requirement) error {
	open := sc.pos
	if !sc.lit("[") {
		return nil
	}
	sc.ws()
	seen := map[string]bool{}
	add := func(e string) {
		if !seen[e] {
			seen[e] = true
			r.Extras = append(r.Extras, e)
		}
	}
	if e, ok := sc.identifier(); ok {
		add(e)
		for {
			sc.ws()
			if _, ok := (&scanner{s: sc.s, pos: sc.pos}).identifier(); ok {
				return sc.errorf(sc.pos, "expected a comma between extra names")
			}
			if !sc.lit(",") {
				break
			}
			sc.ws()
			e, ok := sc.identifier()
			if !ok {
				return sc.errorf(sc.pos, "expected an extra name after the comma")
			}
			add(e)
		}
	}
	sc.ws()
	if !sc.lit("]") {
		return sc.errorf(sc.pos, "expected ']' to close the extras list opened at position %d", open)
	}
	sort.Strings(r.Extras)
	return nil
}

// specifier = "(" WS? many WS? ")" | many, where many is a comma-separated
// list of clauses whose extent follows packaging's tokenizer.
func (sc *scanner) specifier(r *Requirement) error {
	open := sc.pos
	paren := sc.lit("(")
	if paren {
		sc.ws()
	}
	start := sc.pos
	for {
		n := clauseLen(sc.s[sc.pos:])
		if n == 0 {
			break
		}
		sc.pos += n
		sc.ws()
		if !sc.lit(",") {
			break
		}
		sc.ws()
	}
	text := sc.s[start:sc.pos]
	set, err := pep440.ParseSpecifierSet(text)
	if err != nil {
		return sc.errorf(start, "%v", err)
	}
	r.Specifier = set
	if paren {
		sc.ws()
		if !sc.lit(")") {
			return sc.errorf(sc.pos, "expected ')' to close the '(' at position %d", open)
		}
	}
	return nil
}

// clauseLen returns the length of the version clause at the start of s:
// an operator, optional whitespace, then the characters a version can
// contain (anything but whitespace, ';' and ')' for ===). It is 0 when s
// does not start with an operator.
func clauseLen(s string) int {
	var op string
	for _, o := range []string{"===", "~=", "==", "!=", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(s, o) {
			op = o
			break
		}
	}
	if op == "" {
		return 0
	}
	i := len(op)
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !isSpace(r) {
			break
		}
		i += n
	}
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if op == "===" {
			if isSpace(r) || r == ';' || r == ')' {
				break
			}
		} else if r >= utf8.RuneSelf || !(isAlnum(byte(r)) || strings.ContainsRune(".*+!_-", r)) {
			break
		}
		i += n
	}
	return i
}

// checkURL applies packaging's checks to a direct reference: file URLs
// must be in the form file://host/path, anything else needs a scheme and a
// host. It returns "" or the problem.
func checkURL(u string) string {
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || scheme == "" || !validScheme(scheme) {
		return "expected an absolute URL with a scheme, such as https://host/pkg.whl or file:///path/pkg.whl"
	}
	if strings.EqualFold(scheme, "file") {
		if !strings.HasPrefix(rest, "//") || strings.HasSuffix(rest, "?") || strings.HasSuffix(rest, "#") {
			return "expected a file URL in the form file:///absolute/path"
		}
		return ""
	}
	if !strings.HasPrefix(rest, "//") {
		return "expected a URL with a host, such as https://host/path"
	}
	host := rest[2:]
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if host == "" {
		return "expected a URL with a host, such as https://host/path"
	}
	return ""
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if i == 0 && !letter {
			return false
		}
		if !letter && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// String returns the requirement in packaging's normal form:
// name[extras]specifiers@ url ; marker.
func (r Requirement) String() string {
	var b strings.Builder
	b.WriteString(r.Name)
	if len(r.Extras) > 0 {
		b.WriteString("[" + strings.Join(r.Extras, ",") + "]")
	}
	b.WriteString(r.Specifier.String())
	if r.URL != "" {
		b.WriteString("@ " + r.URL)
		if r.Marker != nil {
			b.WriteString(" ")
		}
	}
	if r.Marker != nil {
		b.WriteString("; " + r.Marker.String())
	}
	return b.String()
}

// NormalizedName returns NormalizeName(r.Name).
func (r Requirement) NormalizedName() string { return NormalizeName(r.Name) }
