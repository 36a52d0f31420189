package pep508

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SyntaxError reports a requirement or marker that does not follow the
// PEP 508 grammar, with the byte offset at which parsing failed.
type SyntaxError struct {
	Kind  string // "requirement" or "marker"
	Input string // the text being parsed
	Pos   int    // byte offset of the problem in Input
	Msg   string // what was expected or found
}

// Error implements error. The second line repeats the input with a caret
// under the offending position, as packaging does.
func (e *SyntaxError) Error() string {
	col := utf8.RuneCountInString(e.Input[:min(e.Pos, len(e.Input))])
	return fmt.Sprintf("invalid %s %q: %s at position %d\n    %s\n    %s^", e.Kind, e.Input, e.Msg, e.Pos, e.Input, strings.Repeat(" ", col))
}

// scanner is a cursor over PEP 508 text, with one matcher per token kind
// of packaging's tokenizer.
type scanner struct {
	kind string
	s    string
	pos  int
}

func (sc *scanner) errorf(pos int, format string, args ...any) error {
	return &SyntaxError{Kind: sc.kind, Input: sc.s, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (sc *scanner) eof() bool { return sc.pos >= len(sc.s) }

func (sc *scanner) peek() byte {
	if sc.pos < len(sc.s) {
		return sc.s[sc.pos]
	}
	return 0
}

// ws consumes [ \t]* and reports whether anything was consumed.
func (sc *scanner) ws() bool {
	start := sc.pos
	for sc.pos < len(sc.s) && (sc.s[sc.pos] == ' ' || sc.s[sc.pos] == '\t') {
		sc.pos++
	}
	return sc.pos > start
}

// lit consumes t if it is next.
func (sc *scanner) lit(t string) bool {
	if strings.HasPrefix(sc.s[sc.pos:], t) {
		sc.pos += len(t)
		return true
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isAlnum(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// boundary reports whether a regular-expression \b holds at offset i.
func (sc *scanner) boundary(i int) bool {
	before := i > 0 && isWordByte(sc.s[i-1])
	after := i < len(sc.s) && isWordByte(sc.s[i])
	return before != after
}

// keyword consumes the word w if it stands alone (\bw\b).
func (sc *scanner) keyword(w string) bool {
	if strings.HasPrefix(sc.s[sc.pos:], w) && sc.boundary(sc.pos) && sc.boundary(sc.pos+len(w)) {
		sc.pos += len(w)
		return true
	}
	return false
}

// identifier consumes a PEP 508 identifier: an ASCII letter or digit,
// optionally followed by letters, digits, "-", "_" and "." and ending in a
// letter or digit.
func (sc *scanner) identifier() (string, bool) {
	if sc.eof() || !isAlnum(sc.peek()) {
		return "", false
	}
	end := sc.pos
	for end < len(sc.s) && (isAlnum(sc.s[end]) || strings.IndexByte("-_.", sc.s[end]) >= 0) {
		end++
	}
	for !isAlnum(sc.s[end-1]) {
		end--
	}
	id := sc.s[sc.pos:end]
	sc.pos = end
	return id, true
}

// isSpace is Python's notion of whitespace (str.isspace).
func isSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// ValidName reports whether name is a valid PEP 508 distribution name.
func ValidName(name string) bool {
	sc := &scanner{s: name}
	id, ok := sc.identifier()
	return ok && id == name
}

// NormalizeName returns the PEP 503 normalised form of a project or extra
// name: lower case, with each run of "-", "_" and "." replaced by "-".
func NormalizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	inRun := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			if !inRun {
				b.WriteByte('-')
			}
			inRun = true
			continue
		}
		inRun = false
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	if !isASCII(name) {
		return strings.ToLower(b.String())
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
