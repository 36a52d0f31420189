package wheeltag

import (
	"fmt"
	"strings"
)

// Libc identifies the C library of a Linux target.
type Libc string

// The supported C libraries.
const (
	Glibc Libc = "glibc"
	Musl  Libc = "musl"
)

// Target describes the interpreter and platform that wheels are chosen for.
type Target struct {
	// Implementation is the interpreter's short name: "cp" (CPython, the
	// default when empty) or another such as "pp", which needs ABIs.
	Implementation string
	// PythonMajor and PythonMinor give the language version, such as 3 and 11.
	PythonMajor, PythonMinor int
	// Debug marks a debug build of CPython (ABI flag "d").
	Debug bool
	// FreeThreaded marks a free-threaded CPython 3.13+ build (ABI flag "t").
	FreeThreaded bool
	// ABIs overrides the interpreter-specific ABI tags, most preferred first,
	// such as ["pypy310_pp73"]; "none" and "abi3" are added as appropriate.
	ABIs []string
	// Arch is the machine: x86_64, aarch64, i686, armv7l, ppc64le, s390x, ...
	Arch string
	// Libc is the C library, and LibcMajor.LibcMinor its version, such as
	// glibc 2.36 (Debian bookworm) or musl 1.2 (Alpine 3.19).
	Libc                 Libc
	LibcMajor, LibcMinor int
}

// String describes the target, as in "cp311-linux_x86_64-glibc2.36".
func (t Target) String() string {
	return fmt.Sprintf("%s-linux_%s-%s%d.%d", t.interpreter(), t.Arch, t.Libc, t.LibcMajor, t.LibcMinor)
}

func (t Target) impl() string {
	if t.Implementation == "" {
		return "cp"
	}
	return t.Implementation
}

func (t Target) interpreter() string {
	return fmt.Sprintf("%s%d%d", t.impl(), t.PythonMajor, t.PythonMinor)
}

// validate reports a Target that cannot produce tags.
func (t Target) validate() error {
	switch {
	case t.PythonMajor != 3 || t.PythonMinor < 3:
		return fmt.Errorf("target %s: python version %d.%d is unsupported, want 3.3 or later, such as 3.11", t, t.PythonMajor, t.PythonMinor)
	case t.Arch == "" || strings.ContainsAny(t.Arch, "-. "):
		return fmt.Errorf("target %s: architecture %q is invalid, want a machine name such as x86_64 or aarch64", t, t.Arch)
	case t.Libc != Glibc && t.Libc != Musl:
		return fmt.Errorf("target %s: libc %q is unknown, want %q or %q", t, t.Libc, Glibc, Musl)
	case t.LibcMajor < 0 || t.LibcMinor < 0:
		return fmt.Errorf("target %s: libc version %d.%d is invalid", t, t.LibcMajor, t.LibcMinor)
	case t.impl() != "cp" && len(t.ABIs) == 0:
		return fmt.Errorf("target %s: implementation %q needs explicit ABIs, such as [\"pypy310_pp73\"]", t, t.impl())
	case t.FreeThreaded && t.PythonMinor < 13:
		return fmt.Errorf("target %s: free-threaded builds exist only for Python 3.13 and later", t)
	}
	return nil
}

// Platforms returns the platform tags of the target, best first, as
// packaging's _linux_platforms computes them: manylinux_X_Y from the glibc
// version down to 2_17 (2_5 on x86_64 and i686) with the legacy aliases
// manylinux2014, manylinux2010 and manylinux1 after their equivalents, or
// musllinux_X_Y down to X_0, then linux_<arch>.
func (t Target) Platforms() []string {
	var out []string
	linux := "linux_" + t.Arch
	switch t.Libc {
	case Glibc:
		if !manylinuxArch(t.Arch) {
			break
		}
		oldest := 17
		if t.Arch == "x86_64" || t.Arch == "i686" {
			oldest = 5
		}
		// Compatibility across glibc major versions is assumed, with
		// packaging's guess of 50 as the last minor of an old major.
		for major := t.LibcMajor; major >= 2; major-- {
			top := 50
			if major == t.LibcMajor {
				top = t.LibcMinor
			}
			low := 0
			if major == 2 {
				low = oldest
			}
			for minor := top; minor >= low; minor-- {
				out = append(out, fmt.Sprintf("manylinux_%d_%d_%s", major, minor, t.Arch))
				if major == 2 {
					switch minor {
					case 17:
						out = append(out, "manylinux2014_"+t.Arch)
					case 12:
						out = append(out, "manylinux2010_"+t.Arch)
					case 5:
						out = append(out, "manylinux1_"+t.Arch)
					}
				}
			}
		}
	case Musl:
		for minor := t.LibcMinor; minor >= 0; minor-- {
			out = append(out, fmt.Sprintf("musllinux_%d_%d_%s", t.LibcMajor, minor, t.Arch))
		}
	}
	return append(out, linux)
}

// manylinuxArch reports whether packaging offers manylinux tags for arch
// (armv7l and i686 assume a hard-float or i386 interpreter respectively).
func manylinuxArch(arch string) bool {
	switch arch {
	case "x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x":
		return true
	}
	return false
}

// cpythonABIs returns the interpreter-specific ABIs of a CPython target.
func (t Target) cpythonABIs() []string {
	v := fmt.Sprintf("%d%d", t.PythonMajor, t.PythonMinor)
	threading, debug, pymalloc := "", "", ""
	if t.Debug {
		debug = "d"
	}
	if t.FreeThreaded {
		threading = "t"
	}
	var abis []string
	if t.PythonMinor < 8 {
		pymalloc = "m"
	} else if t.Debug {
		abis = append(abis, "cp"+v+threading)
	}
	return append([]string{"cp" + v + threading + debug + pymalloc}, abis...)
}

// Tags returns every tag the target accepts, most preferred first, exactly
// as packaging.tags.sys_tags() orders them on that interpreter: the
// interpreter's own ABIs on each platform, then abi3, then none, then
// abi3 of older CPython 3.x versions, then pyXY/py3 on each platform,
// then cpXY-none-any and pyXY-none-any down to py30-none-any.
func (t Target) Tags() ([]Tag, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	platforms := t.Platforms()
	interp := t.interpreter()
	var tags []Tag
	add := func(i, a string) {
		for _, p := range platforms {
			tags = append(tags, Tag{i, a, p})
		}
	}
	if t.impl() == "cp" {
		abis := t.ABIs
		if len(abis) == 0 {
			abis = t.cpythonABIs()
		}
		for _, a := range abis {
			if a != "abi3" && a != "none" {
				add(interp, a)
			}
		}
		abi3 := t.PythonMinor >= 2 && !t.FreeThreaded
		if abi3 {
			add(interp, "abi3")
		}
		add(interp, "none")
		if abi3 {
			for minor := t.PythonMinor - 1; minor >= 2; minor-- {
				add(fmt.Sprintf("cp%d%d", t.PythonMajor, minor), "abi3")
			}
		}
	} else {
		seenNone := false
		for _, a := range t.ABIs {
			add(interp, a)
			seenNone = seenNone || a == "none"
		}
		if !seenNone {
			add(interp, "none")
		}
	}
	pys := []string{fmt.Sprintf("py%d%d", t.PythonMajor, t.PythonMinor), fmt.Sprintf("py%d", t.PythonMajor)}
	for minor := t.PythonMinor - 1; minor >= 0; minor-- {
		pys = append(pys, fmt.Sprintf("py%d%d", t.PythonMajor, minor))
	}
	for _, py := range pys {
		add(py, "none")
	}
	switch t.impl() {
	case "cp":
		tags = append(tags, Tag{interp, "none", "any"})
	case "pp":
		tags = append(tags, Tag{fmt.Sprintf("pp%d", t.PythonMajor), "none", "any"})
	}
	for _, py := range pys {
		tags = append(tags, Tag{py, "none", "any"})
	}
	return tags, nil
}

// TagSet ranks wheels against an ordered list of supported tags.
type TagSet struct {
	tags  []Tag
	index map[Tag]int
}

// NewTagSet returns a TagSet for tags, most preferred first; the first
// occurrence of a duplicate wins.
func NewTagSet(tags []Tag) *TagSet {
	s := &TagSet{tags: append([]Tag(nil), tags...), index: make(map[Tag]int, len(tags))}
	for i, t := range tags {
		if _, ok := s.index[t]; !ok {
			s.index[t] = i
		}
	}
	return s
}

// NewTargetTagSet returns the TagSet of t.Tags().
func NewTargetTagSet(t Target) (*TagSet, error) {
	tags, err := t.Tags()
	if err != nil {
		return nil, err
	}
	return NewTagSet(tags), nil
}

// Tags returns a copy of the ordered tags.
func (s *TagSet) Tags() []Tag { return append([]Tag(nil), s.tags...) }

// Supports reports whether tag is in the set.
func (s *TagSet) Supports(tag Tag) bool {
	_, ok := s.index[tag]
	return ok
}

// Priority returns the index of the best of f's tags in the set (lower is
// better, as pip ranks wheels) and whether f is installable at all.
func (s *TagSet) Priority(f Filename) (int, bool) {
	best, ok := 0, false
	for _, t := range f.Tags {
		if i, found := s.index[t]; found && (!ok || i < best) {
			best, ok = i, true
		}
	}
	return best, ok
}
