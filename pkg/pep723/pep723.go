// Package pep723 reads the inline script metadata of PEP 723: a Python
// script's `# /// script` comment block, whose TOML content declares the
// script's dependencies and the Python versions it runs on.
//
// A block opens with a line `# /// TYPE`, holds lines that are `#` alone or
// start with `# `, and closes with `# ///`; blocks are found with the
// regular expression the PEP gives. Only the script type is read. Two
// script blocks are an error, as the PEP requires. Unlike the PEP, which
// has tools ignore an unclosed block, an opening `# /// script` line that
// no closing line follows is an error too: a script named for its
// metadata whose block is silently skipped would install nothing.
package pep723

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
)

// blockRE is the PEP's regular expression for a metadata block.
var blockRE = regexp.MustCompile(`(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$`)

// openRE matches a line that opens a script block.
var openRE = regexp.MustCompile(`(?m)^# /// script[ \t\r]*$`)

// Metadata is a script block's content.
type Metadata struct {
	// Dependencies are the script's requirements (PEP 508), as written.
	Dependencies []string
	// RequiresPython is the requires-python specifier set, empty when the
	// block has none.
	RequiresPython pep440.SpecifierSet
	// RequiresPythonText is requires-python as written.
	RequiresPythonText string
	// Line is the line of the block's opening `# /// script`, 1-based.
	Line int
}

// Error is a malformed script block.
type Error struct {
	// File names the script; Line is the line the error is on, 1-based.
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse reads the script block of the script data, named file in errors.
// A script without a block gives nil metadata and no error.
func Parse(file string, data []byte) (*Metadata, error) {
	content, start, err := scriptBlock(file, data)
	if err != nil || start < 0 {
		return nil, err
	}
	lineAt := func(off int) int { return bytes.Count(data[:off], []byte("\n")) + 1 }
	fail := func(off int, format string, args ...any) error {
		return &Error{File: file, Line: lineAt(off), Msg: fmt.Sprintf(format, args...)}
	}
	// Content line n is file line first+n-1.
	first := lineAt(start) + 1
	atLine := func(n int, format string, args ...any) error {
		return &Error{File: file, Line: first + n - 1, Msg: fmt.Sprintf(format, args...)}
	}
	var raw map[string]any
	_, err = toml.Decode(content, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if lines := strings.Split(content, "\n"); pe.Position.Line >= 1 && pe.Position.Line <= len(lines) && strings.HasPrefix(lines[pe.Position.Line-1], "///") {
				msg += "; this `# ///` line is inside the block, which runs to the last `# ///` line before a line that is not a comment: end the block there, and keep other blocks apart with a blank line"
			}
			return nil, atLine(pe.Position.Line, "the script block is not valid TOML: %s", msg)
		}
		return nil, fail(start, "the script block is not valid TOML: %v", err)
	}
	// The TOML decoder keeps no key positions: a top-level key is on the
	// first content line that assigns it or opens its table.
	lines := strings.Split(content, "\n")
	keyLine := func(key string) int {
		for i, l := range lines {
			l = strings.TrimSpace(l)
			for _, k := range []string{key, `"` + key + `"`, "'" + key + "'"} {
				if rest, ok := strings.CutPrefix(l, k); ok && strings.HasPrefix(strings.TrimSpace(rest), "=") {
					return first + i
				}
			}
			if strings.HasPrefix(l, "["+key) {
				return first + i
			}
		}
		return lineAt(start)
	}
	keyErr := func(key, format string, args ...any) error {
		return &Error{File: file, Line: keyLine(key), Msg: fmt.Sprintf(format, args...)}
	}
	m := &Metadata{Line: lineAt(start)}
	for key, v := range raw {
		switch key {
		case "dependencies":
			list, ok := v.([]any)
			if !ok {
				return nil, keyErr(key, "dependencies is %s, want an array of requirement strings", tomlType(v))
			}
			for i, d := range list {
				s, ok := d.(string)
				if !ok {
					return nil, keyErr(key, "dependencies[%d] is %s, want a requirement string such as \"requests<3\"", i, tomlType(d))
				}
				if _, err := pep508.ParseRequirement(s); err != nil {
					return nil, keyErr(key, "dependencies[%d] %q: %v", i, s, err)
				}
				m.Dependencies = append(m.Dependencies, s)
			}
		case "requires-python":
			s, ok := v.(string)
			if !ok {
				return nil, keyErr(key, "requires-python is %s, want a version specifier string such as \">=3.11\"", tomlType(v))
			}
			ss, err := pep440.ParseSpecifierSet(s)
			if err != nil {
				return nil, keyErr(key, "requires-python %q: %v", s, err)
			}
			m.RequiresPython, m.RequiresPythonText = ss, s
		case "tool":
			if _, ok := v.(map[string]any); !ok {
				return nil, keyErr(key, "tool is %s, want a table", tomlType(v))
			}
		default:
			return nil, keyErr(key, "unknown key %q: a script block holds dependencies, requires-python and [tool] tables", key)
		}
	}
	return m, nil
}

// scriptBlock returns the TOML content of the script block of data (each
// line without its "# " or "#") and the offset of its opening line, or -1
// when data has none.
func scriptBlock(file string, data []byte) (string, int, error) {
	lineAt := func(off int) int { return bytes.Count(data[:off], []byte("\n")) + 1 }
	fail := func(off int, format string, args ...any) error {
		return &Error{File: file, Line: lineAt(off), Msg: fmt.Sprintf(format, args...)}
	}
	typeIdx, contentIdx := blockRE.SubexpIndex("type"), blockRE.SubexpIndex("content")
	var block []int
	matched := map[int]bool{} // offsets of the opening lines of blocks
	for _, m := range blockRE.FindAllSubmatchIndex(data, -1) {
		matched[m[0]] = true
		if string(data[m[2*typeIdx]:m[2*typeIdx+1]]) != "script" {
			continue
		}
		if block != nil {
			return "", 0, fail(m[0], "a second `# /// script` block (the first is on line %d); PEP 723 allows one: merge them", lineAt(block[0]))
		}
		block = m
	}
	for _, m := range openRE.FindAllIndex(data, -1) {
		if !matched[m[0]] && (block == nil || m[0] < block[0] || m[0] >= block[1]) {
			return "", 0, fail(m[0], "`# /// script` opens a block that does not close: every line up to a closing `# ///` line must be `#` alone or start with `# `")
		}
	}
	if block == nil {
		return "", -1, nil
	}
	var content strings.Builder
	for _, line := range strings.SplitAfter(string(data[block[2*contentIdx]:block[2*contentIdx+1]]), "\n") {
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			content.WriteString(rest)
		} else {
			content.WriteString(strings.TrimPrefix(line, "#"))
		}
	}
	return content.String(), block[0], nil
}

// tomlType names the TOML type of a decoded value.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}
