// Package wheeltag parses wheel filenames and computes, for a target
// interpreter and platform, the ordered list of compatible wheel tags, as
// packaging.utils.parse_wheel_filename and packaging.tags.sys_tags do.
//
// Tags are computed for the TARGET image (say CPython 3.11 on glibc 2.36
// x86_64) from a [Target] description, never from the host.
package wheeltag

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
)

// Tag is one (interpreter, ABI, platform) triple such as
// cp311-cp311-manylinux_2_17_x86_64. Fields are lower case.
type Tag struct {
	Interpreter string
	ABI         string
	Platform    string
}

// String returns "interpreter-abi-platform".
func (t Tag) String() string { return t.Interpreter + "-" + t.ABI + "-" + t.Platform }

// ParseTag expands a compressed tag set such as "py2.py3-none-any" into its
// tags, lower-cased, in the order they are written.
func ParseTag(s string) ([]Tag, error) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return nil, fmt.Errorf("wheel tag %q: want interpreter-abi-platform, such as py3-none-any", s)
	}
	var tags []Tag
	seen := map[Tag]bool{}
	for _, i := range strings.Split(parts[0], ".") {
		for _, a := range strings.Split(parts[1], ".") {
			for _, p := range strings.Split(parts[2], ".") {
				t := Tag{strings.ToLower(i), strings.ToLower(a), strings.ToLower(p)}
				if !seen[t] {
					seen[t] = true
					tags = append(tags, t)
				}
			}
		}
	}
	return tags, nil
}

// BuildTag is a wheel's optional build number, such as "1" or "2abc".
type BuildTag struct {
	Number uint64 // leading digits
	Suffix string // the rest
	Set    bool   // whether the filename had a build tag
}

// Less reports whether b sorts before o; an absent build tag sorts first.
func (b BuildTag) Less(o BuildTag) bool {
	switch {
	case b.Set != o.Set:
		return !b.Set
	case b.Number != o.Number:
		return b.Number < o.Number
	}
	return b.Suffix < o.Suffix
}

// Filename is a parsed wheel filename:
// {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl.
type Filename struct {
	Name    string         // PEP 503 normalised project name
	Version pep440.Version // project version
	Build   BuildTag       // optional build tag
	Tags    []Tag          // expanded compatibility tags
}

// InvalidFilenameError reports a file name that is not a valid wheel name.
type InvalidFilenameError struct {
	Filename string
	Reason   string
}

// Error implements error.
func (e *InvalidFilenameError) Error() string {
	return fmt.Sprintf("invalid wheel filename %q: %s (wheels are named name-version[-build]-python-abi-platform.whl, such as numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl)", e.Filename, e.Reason)
}

// ParseFilename parses a wheel filename with the validation of
// packaging.utils.parse_wheel_filename: a ".whl" extension, four or five
// dash-separated parts, a project name of word characters, dots and single
// underscores, a PEP 440 version and a build tag starting with a digit.
func ParseFilename(filename string) (Filename, error) {
	bad := func(format string, args ...any) (Filename, error) {
		return Filename{}, &InvalidFilenameError{Filename: filename, Reason: fmt.Sprintf(format, args...)}
	}
	stem, ok := strings.CutSuffix(filename, ".whl")
	if !ok {
		return bad("the extension must be .whl")
	}
	parts := strings.Split(stem, "-")
	if len(parts) != 5 && len(parts) != 6 {
		return bad("want 5 or 6 dash-separated parts, found %d", len(parts))
	}
	name := parts[0]
	if strings.Contains(name, "__") || !isNameChars(name) {
		return bad("project name %q may contain only letters, digits, '.' and single '_'", name)
	}
	var f Filename
	f.Name = pep508.NormalizeName(name)
	v, err := pep440.Parse(parts[1])
	if err != nil {
		return bad("version %q is not a PEP 440 version", parts[1])
	}
	f.Version = v
	if len(parts) == 6 {
		b := parts[2]
		i := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == 0 {
			return bad("build tag %q must start with a digit", b)
		}
		n, err := strconv.ParseUint(b[:i], 10, 64)
		if err != nil {
			return bad("build number %q is too large", b[:i])
		}
		f.Build = BuildTag{Number: n, Suffix: b[i:], Set: true}
	}
	tags, err := ParseTag(strings.Join(parts[len(parts)-3:], "-"))
	if err != nil {
		return bad("%v", err)
	}
	f.Tags = tags
	return f, nil
}

// isNameChars reports whether s matches Python's ^[\w\d._]*$.
func isNameChars(s string) bool {
	for _, r := range s {
		if !(r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r)) {
			return false
		}
	}
	return true
}
