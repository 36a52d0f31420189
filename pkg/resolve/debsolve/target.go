package debsolve

import (
	"fmt"
	"strings"

	"pault.ag/go/debian/version"
)

// Target is one requested package, parsed from apt-get syntax by
// ParseTarget.
type Target struct {
	// Name is the package name.
	Name string
	// Arch is the requested architecture, or "" for the native one.
	Arch string
	// Version is the pinned version, or "" for the highest available. A
	// trailing "*" makes it a prefix.
	Version string
}

// String returns the target in apt-get syntax.
func (t Target) String() string {
	s := t.Name
	if t.Arch != "" {
		s += ":" + t.Arch
	}
	if t.Version != "" {
		s += "=" + t.Version
	}
	return s
}

// matches reports whether v satisfies the target's version pin.
func (t Target) matches(v string) bool {
	if t.Version == "" {
		return true
	}
	if p, ok := strings.CutSuffix(t.Version, "*"); ok {
		return strings.HasPrefix(v, p)
	}
	return v == t.Version
}

// ParseTarget parses "name", "name=version", "name:arch" or
// "name:arch=version", as apt-get install accepts them.
func ParseTarget(s string) (Target, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return Target{}, fmt.Errorf("empty package name in apt_packages; remove the empty entry")
	}
	var t Target
	rest := in
	release, hasRelease := "", false
	if i := strings.IndexByte(rest, '='); i >= 0 {
		t.Version = strings.TrimSpace(rest[i+1:])
		rest = strings.TrimSpace(rest[:i])
		if t.Version == "" {
			return Target{}, fmt.Errorf("package %q: empty version after '='; write name=version or just name", s)
		}
		v := strings.TrimSuffix(t.Version, "*")
		if strings.ContainsAny(v, "* \t") {
			return Target{}, fmt.Errorf("package %q: invalid version %q: only a single trailing '*' is allowed", s, t.Version)
		}
		if v != "" && !strings.HasSuffix(t.Version, "*") {
			if _, err := version.Parse(v); err != nil {
				return Target{}, fmt.Errorf("package %q: invalid version %q: %v", s, t.Version, err)
			}
		}
		if strings.TrimLeft(v, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+~:-") != "" {
			return Target{}, fmt.Errorf("package %q: invalid version %q: Debian versions are letters, digits and . + ~ : -", s, t.Version)
		}
	} else if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest, release, hasRelease = rest[:i], rest[i+1:], true
	}
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		t.Arch = rest[i+1:]
		rest = rest[:i]
		if !validArch(t.Arch) {
			return Target{}, fmt.Errorf("package %q: invalid architecture %q: write name:arch with an architecture such as amd64 or i386", s, t.Arch)
		}
	}
	if !validName(rest) {
		return Target{}, fmt.Errorf("package %q: invalid package name %q: Debian package names are at least two characters of lower case letters, digits, '+', '-' and '.', starting with a letter or digit", s, rest)
	}
	// name/release is apt-get syntax, refused only once the name is
	// valid: "jq; rm -rf /" is no release selection.
	if hasRelease {
		if !validRelease(release) {
			return Target{}, fmt.Errorf("package %q: %q after '/' is not a release name; write name or name=version", s, release)
		}
		return Target{}, fmt.Errorf("package %q: selecting a release with /release is not supported; pin a version with name=version instead", s)
	}
	t.Name = rest
	return t, nil
}

// validRelease reports whether r looks like a suite or codename
// (bookworm-backports, stable).
func validRelease(r string) bool {
	return r != "" && strings.TrimLeft(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-_~") == ""
}

// validName reports whether n is a valid Debian package name.
func validName(n string) bool {
	if len(n) < 2 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// validArch reports whether a looks like a Debian architecture name.
func validArch(a string) bool {
	if a == "" {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
