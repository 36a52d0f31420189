package auth

import (
	"net/url"
	"strings"
)

// Mask is what RedactURL and RedactSecret put in place of a secret. It is
// the mask Go's net/http uses in its own errors ("user:***@host"), so one
// message never shows two conventions.
const Mask = "***"

// RedactURL returns rawURL with its secret replaced by Mask, for logs and
// errors: the password of "https://user:password@host" and the token of
// "https://token@host" (the user name is kept when there is a password). A
// string that does not parse as a URL has everything before the last "@"
// of its authority hidden, so an unparseable URL never echoes a secret.
// Every message in kiln that shows an index, mirror or apt source URL goes
// through RedactURL.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		scheme, rest, ok := strings.Cut(rawURL, "://")
		if !ok {
			return rawURL
		}
		authority, path, hasPath := strings.Cut(rest, "/")
		i := strings.LastIndex(authority, "@")
		if i < 0 {
			return rawURL
		}
		out := scheme + "://" + Mask + "@" + authority[i+1:]
		if hasPath {
			out += "/" + path
		}
		return out
	}
	if u.User == nil {
		return rawURL
	}
	// url.URL.String percent-escapes "*" in user information, so write a
	// placeholder there and replace it afterwards.
	const placeholder = "kilnredacted"
	old, repl := placeholder+"@", Mask+"@"
	if _, ok := u.User.Password(); ok {
		name := u.User.Username()
		u.User = url.UserPassword(name, placeholder)
		old = url.UserPassword(name, placeholder).String() + "@"
		repl = url.User(name).String() + ":" + Mask + "@"
	} else {
		u.User = url.User(placeholder)
	}
	return strings.Replace(u.String(), old, repl, 1)
}

// RedactSecret returns s with every occurrence of secret replaced by Mask,
// for error text that may quote a credential (an empty secret changes
// nothing).
func RedactSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, Mask)
}
