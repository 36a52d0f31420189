// Package pep440 implements Python package versions and version specifiers
// as defined by PEP 440, with the parsing, normalisation and comparison
// semantics of the reference implementation, pypa/packaging.
//
// Versions are parsed with [Parse] and compared with [Compare] or
// [Version.Compare]. Specifiers such as ">=1.0,!=1.3.*" are parsed with
// [ParseSpecifierSet] and tested with [SpecifierSet.Contains].
package pep440

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Version is a parsed PEP 440 version. The zero Version is "0".
//
// A Version is immutable; the slices returned by its methods are copies.
type Version struct {
	epoch   uint64
	release []uint64
	pre     preRelease
	post    optNum
	dev     optNum
	local   []localPart
}

// preRelease is a pre-release segment; label is "" when absent.
type preRelease struct {
	label string // "a", "b" or "rc"
	n     uint64
}

// optNum is an optional number.
type optNum struct {
	n  uint64
	ok bool
}

// localPart is one dot-separated component of a local version label.
type localPart struct {
	s     string // lower-case alphanumeric text when !isNum
	n     uint64
	isNum bool
}

// InvalidVersionError reports a string that is not a PEP 440 version.
type InvalidVersionError struct {
	Input  string // the string given to Parse
	Pos    int    // byte offset at which parsing failed
	Reason string // what was expected at Pos
}

// Error implements error.
func (e *InvalidVersionError) Error() string {
	return fmt.Sprintf("invalid PEP 440 version %q: %s at offset %d (versions look like 1.2.3, 1!2.0rc1, 2.0.post1.dev3+local.7)", e.Input, e.Reason, e.Pos)
}

// MustParse is like [Parse] but panics if s is not a valid version. It is
// intended for constants in programs and tests.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// isSpace reports whether r is whitespace as Python's str.isspace (and the
// \s regular expression class in Unicode mode) defines it.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// trimSpace strips Python whitespace from both ends of s.
func trimSpace(s string) string { return strings.TrimFunc(s, isSpace) }

// Parse parses a PEP 440 version, accepting every spelling that
// packaging.version.Version accepts: surrounding whitespace, a leading "v",
// any letter case, alternative pre-release spellings (alpha, beta, c, pre,
// preview), implicit numbers, "-N" post releases, rev/r, and "-", "_" or "."
// separators. The result's String method gives the normalised form.
func Parse(s string) (Version, error) {
	p := &vparser{in: s}
	start := len(s) - len(strings.TrimLeftFunc(s, isSpace))
	end := len(strings.TrimRightFunc(s, isSpace))
	if start >= end {
		return Version{}, &InvalidVersionError{Input: s, Pos: 0, Reason: "empty version"}
	}
	p.s = asciiLower(s[:end])
	p.pos = start
	v, err := p.parse(true)
	if err != nil {
		return Version{}, err
	}
	if p.pos != end {
		return Version{}, p.fail("unexpected text")
	}
	return v, nil
}

// asciiLower lower-cases ASCII letters only, keeping byte offsets intact.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// vparser is a cursor over a lower-cased version string.
type vparser struct {
	in  string // original input, for errors
	s   string // lower-cased input
	pos int
}

func (p *vparser) fail(reason string) error {
	return &InvalidVersionError{Input: p.in, Pos: p.pos, Reason: reason}
}

func (p *vparser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isSep(c byte) bool   { return c == '-' || c == '_' || c == '.' }

// digits consumes a run of ASCII digits and returns its value.
func (p *vparser) digits() (uint64, bool, error) {
	start := p.pos
	for p.pos < len(p.s) && isDigit(p.s[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(p.s[start:p.pos], 10, 64)
	if err != nil {
		p.pos = start
		return 0, false, p.fail("number too large")
	}
	return n, true, nil
}

// hasPrefixAt reports whether s has word w at offset i.
func hasPrefixAt(s string, i int, w string) bool {
	return i <= len(s) && strings.HasPrefix(s[i:], w)
}

// matchWord returns the first of words found at offset i, longest first.
func matchWord(s string, i int, words []string) string {
	for _, w := range words {
		if hasPrefixAt(s, i, w) {
			return w
		}
	}
	return ""
}

var (
	preWords  = []string{"alpha", "a", "beta", "b", "preview", "pre", "rc", "c"}
	postWords = []string{"post", "rev", "r"}
	devWords  = []string{"dev"}
)

// normPre maps a pre-release spelling to its normal form.
func normPre(w string) string {
	switch w {
	case "alpha":
		return "a"
	case "beta":
		return "b"
	case "c", "pre", "preview":
		return "rc"
	}
	return w
}

// head parses [v][N!]N(.N)* and stops.
func (p *vparser) head() (Version, error) {
	var v Version
	if p.peek() == 'v' {
		p.pos++
	}
	n, ok, err := p.digits()
	if err != nil {
		return v, err
	}
	if !ok {
		return v, p.fail("expected a release number")
	}
	if p.peek() == '!' {
		p.pos++
		v.epoch = n
		if n, ok, err = p.digits(); err != nil {
			return v, err
		}
		if !ok {
			return v, p.fail("expected a release number after the epoch")
		}
	}
	v.release = append(v.release, n)
	for p.peek() == '.' && p.pos+1 < len(p.s) && isDigit(p.s[p.pos+1]) {
		p.pos++
		if n, _, err = p.digits(); err != nil {
			return v, err
		}
		v.release = append(v.release, n)
	}
	return v, nil
}

// parse parses everything after leading whitespace: [v][N!]N(.N)*[pre][post][dev][+local].
// allowLocal is false when the caller forbids a local segment.
func (p *vparser) parse(allowLocal bool) (Version, error) {
	v, err := p.head()
	if err != nil {
		return v, err
	}
	if err := p.suffixes(&v); err != nil {
		return v, err
	}
	if allowLocal && p.peek() == '+' {
		p.pos++
		if err := p.parseLocal(&v); err != nil {
			return v, err
		}
	}
	return v, nil
}

// labelled parses [-_.]? word [-_.]? N? for the first of words found, and
// reports whether one was.
func (p *vparser) labelled(words []string) (word string, n uint64, ok bool, err error) {
	i := p.pos
	if i < len(p.s) && isSep(p.s[i]) {
		i++
	}
	w := matchWord(p.s, i, words)
	if w == "" {
		return "", 0, false, nil
	}
	p.pos = i + len(w)
	if isSep(p.peek()) {
		p.pos++
	}
	n, _, err = p.digits()
	return w, n, err == nil, err
}

// suffixes parses the optional pre, post and dev segments.
func (p *vparser) suffixes(v *Version) error {
	// Pre-release: [-_.]? label [-_.]? N?
	if w, n, ok, err := p.labelled(preWords); err != nil {
		return err
	} else if ok {
		v.pre = preRelease{label: normPre(w), n: n}
	}
	// Post-release: -N | [-_.]? (post|rev|r) [-_.]? N?
	if p.peek() == '-' && p.pos+1 < len(p.s) && isDigit(p.s[p.pos+1]) {
		p.pos++
		n, _, err := p.digits()
		if err != nil {
			return err
		}
		v.post = optNum{n, true}
	} else if _, n, ok, err := p.labelled(postWords); err != nil {
		return err
	} else if ok {
		v.post = optNum{n, true}
	}
	// Dev release: [-_.]? dev [-_.]? N?
	if _, n, ok, err := p.labelled(devWords); err != nil {
		return err
	} else if ok {
		v.dev = optNum{n, true}
	}
	return nil
}

func isAlnum(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'z') }

// parseLocal parses [a-z0-9]+([-_.][a-z0-9]+)*.
func (p *vparser) parseLocal(v *Version) error {
	for {
		start := p.pos
		for p.pos < len(p.s) && isAlnum(p.s[p.pos]) {
			p.pos++
		}
		if p.pos == start {
			return p.fail("expected a letter or digit in the local version label")
		}
		part := p.s[start:p.pos]
		lp := localPart{s: part}
		if strings.Trim(part, "0123456789") == "" {
			n, err := strconv.ParseUint(part, 10, 64)
			if err != nil {
				p.pos = start
				return p.fail("number too large")
			}
			lp = localPart{n: n, isNum: true}
		}
		v.local = append(v.local, lp)
		if isSep(p.peek()) && p.pos+1 < len(p.s) && isAlnum(p.s[p.pos+1]) {
			p.pos++
			continue
		}
		return nil
	}
}

// String returns the normalised form of v, as packaging's str(Version)
// does: "1!2.0rc1.post2.dev3+ubuntu.1".
func (v Version) String() string {
	var b strings.Builder
	if v.epoch != 0 {
		b.WriteString(strconv.FormatUint(v.epoch, 10))
		b.WriteByte('!')
	}
	b.WriteString(v.Public().releaseString())
	v.writeSuffixes(&b)
	if l := v.Local(); l != "" {
		b.WriteByte('+')
		b.WriteString(l)
	}
	return b.String()
}

func (v Version) releaseString() string {
	if len(v.release) == 0 {
		return "0"
	}
	parts := make([]string, len(v.release))
	for i, n := range v.release {
		parts[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(parts, ".")
}

func (v Version) writeSuffixes(b *strings.Builder) {
	if v.pre.label != "" {
		b.WriteString(v.pre.label)
		b.WriteString(strconv.FormatUint(v.pre.n, 10))
	}
	if v.post.ok {
		b.WriteString(".post")
		b.WriteString(strconv.FormatUint(v.post.n, 10))
	}
	if v.dev.ok {
		b.WriteString(".dev")
		b.WriteString(strconv.FormatUint(v.dev.n, 10))
	}
}

// Epoch returns the epoch, 0 when none was given.
func (v Version) Epoch() uint64 { return v.epoch }

// Release returns a copy of the release segment, e.g. [1 2 0] for "1.2.0".
func (v Version) Release() []uint64 {
	if len(v.release) == 0 {
		return []uint64{0}
	}
	return append([]uint64(nil), v.release...)
}

// Pre returns the normalised pre-release label ("a", "b" or "rc") and
// number, and whether v has a pre-release segment.
func (v Version) Pre() (label string, n uint64, ok bool) {
	return v.pre.label, v.pre.n, v.pre.label != ""
}

// Post returns the post-release number and whether v has one.
func (v Version) Post() (uint64, bool) { return v.post.n, v.post.ok }

// Dev returns the development-release number and whether v has one.
func (v Version) Dev() (uint64, bool) { return v.dev.n, v.dev.ok }

// Local returns the normalised local version label ("ubuntu.1"), or "".
func (v Version) Local() string {
	if len(v.local) == 0 {
		return ""
	}
	parts := make([]string, len(v.local))
	for i, lp := range v.local {
		if lp.isNum {
			parts[i] = strconv.FormatUint(lp.n, 10)
		} else {
			parts[i] = lp.s
		}
	}
	return strings.Join(parts, ".")
}

// Public returns v without its local version label.
func (v Version) Public() Version {
	v.local = nil
	return v
}

// BaseVersion returns the epoch and release segment of v only, as
// packaging's Version.base_version does.
func (v Version) BaseVersion() Version {
	return Version{epoch: v.epoch, release: v.release}
}

// IsPrerelease reports whether v is a pre-release or a development release.
func (v Version) IsPrerelease() bool { return v.pre.label != "" || v.dev.ok }

// IsPostrelease reports whether v has a post-release segment.
func (v Version) IsPostrelease() bool { return v.post.ok }

// IsDevrelease reports whether v has a development-release segment.
func (v Version) IsDevrelease() bool { return v.dev.ok }

// Major returns the first release component.
func (v Version) Major() uint64 { return v.component(0) }

// Minor returns the second release component, 0 if absent.
func (v Version) Minor() uint64 { return v.component(1) }

// Micro returns the third release component, 0 if absent.
func (v Version) Micro() uint64 { return v.component(2) }

func (v Version) component(i int) uint64 {
	if i < len(v.release) {
		return v.release[i]
	}
	return 0
}

// Equal reports whether v and w compare equal (1.0 == 1.0.0 == v1.0).
func (v Version) Equal(w Version) bool { return Compare(v, w) == 0 }

// Compare returns -1, 0 or +1 as v sorts before, equal to or after w.
func (v Version) Compare(w Version) int { return Compare(v, w) }

// Compare returns -1, 0 or +1 as a sorts before, equal to or after b in PEP
// 440 order: epoch, release (trailing zeros ignored), then dev < pre < final
// < post, and finally local labels, where a version without a local label
// sorts before one with it.
func Compare(a, b Version) int {
	if c := cmpU(a.epoch, b.epoch); c != 0 {
		return c
	}
	if c := cmpRelease(a.release, b.release); c != 0 {
		return c
	}
	if c := cmpPre(a, b); c != 0 {
		return c
	}
	// post: absent sorts lowest.
	if c := cmpOpt(a.post, b.post, -1); c != 0 {
		return c
	}
	// dev: absent sorts highest.
	if c := cmpOpt(a.dev, b.dev, +1); c != 0 {
		return c
	}
	return cmpLocal(a.local, b.local)
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpRelease(a, b []uint64) int {
	n := max(len(a), len(b))
	for i := 0; i < n; i++ {
		var x, y uint64
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := cmpU(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// preKey ranks the pre-release segment as packaging's _cmpkey does:
// dev-only versions first, then a < b < rc, then versions with no pre.
func preKey(v Version) (rank int, n uint64) {
	switch {
	case v.pre.label == "" && !v.post.ok && v.dev.ok:
		return 0, 0
	case v.pre.label == "":
		return 4, 0
	case v.pre.label == "a":
		return 1, v.pre.n
	case v.pre.label == "b":
		return 2, v.pre.n
	default:
		return 3, v.pre.n
	}
}

func cmpPre(a, b Version) int {
	ra, na := preKey(a)
	rb, nb := preKey(b)
	if c := cmpU(uint64(ra), uint64(rb)); c != 0 {
		return c
	}
	return cmpU(na, nb)
}

// cmpOpt compares optional numbers; absent sorts at absentSign infinity.
func cmpOpt(a, b optNum, absentSign int) int {
	switch {
	case !a.ok && !b.ok:
		return 0
	case !a.ok:
		return absentSign
	case !b.ok:
		return -absentSign
	}
	return cmpU(a.n, b.n)
}

func cmpLocal(a, b []localPart) int {
	if len(a) == 0 || len(b) == 0 {
		return cmpU(uint64(len(a)), uint64(len(b)))
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		switch {
		case x.isNum && y.isNum:
			if c := cmpU(x.n, y.n); c != 0 {
				return c
			}
		case x.isNum:
			return 1
		case y.isNum:
			return -1
		default:
			if c := strings.Compare(x.s, y.s); c != 0 {
				return c
			}
		}
	}
	return cmpU(uint64(len(a)), uint64(len(b)))
}
