package pypi

import (
	"net/url"
	"strings"

	"github.com/kiln-build/kiln/pkg/auth"
)

// stripCredentials returns u without user information and a copy of the
// user information that was removed.
func stripCredentials(u *url.URL) (*url.URL, *url.Userinfo) {
	c := *u
	user := c.User
	c.User = nil
	return &c, user
}

// stripURL is stripCredentials for a string; unparseable input is returned
// redacted.
func stripURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return auth.RedactURL(raw)
	}
	s, _ := stripCredentials(u)
	return s.String()
}

// UserinfoEscapeHint explains a bad percent-escape in a URL's user
// information, without showing it.
const UserinfoEscapeHint = "the user name or password (before the @) has a bad percent-escape: a % must start %XX with two hex digits; write a literal % as %25 (and @ as %40, : as %3A, / as %2F)"

// BadUserinfoEscape reports whether rawURL fails to parse because of a bad
// percent-escape in its user information ("https://u:p%zz@host/").
func BadUserinfoEscape(rawURL string) bool {
	_, rest, ok := strings.Cut(strings.TrimSpace(rawURL), "://")
	if !ok {
		return false
	}
	authority, _, _ := strings.Cut(rest, "/")
	i := strings.LastIndex(authority, "@")
	if i < 0 {
		return false
	}
	return !validEscapes(authority[:i])
}

// validEscapes reports whether every % in s starts %XX.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		i += 2
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
