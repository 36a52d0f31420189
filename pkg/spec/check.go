package spec

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// HashLen is the number of hex digits of the spec hash in a tag.
const HashLen = 32

// The distribution spec's limits: a tag is at most 128 characters, and a
// repository name (with its registry) at most 255.
const (
	maxTagLen  = 128
	maxRepoLen = 255
)

// pythonVersion is python_version's form: 3, 3.11 or 3.11.4.
var pythonVersion = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+){0,2}$`)

// domainComponent is one label of a registry host name, lowercase.
var domainComponent = regexp.MustCompile(`^(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$`)

// entryPos is where entry i of list key was written, or where the key was
// set when the entry's line is not known (a flag).
func (s *Spec) entryPos(key string, i int) Pos {
	if p, ok := s.pos[fmt.Sprintf("%s[%d]", key, i)]; ok {
		return p
	}
	return s.Position(key)
}

// mapPos is where entry k of mapping key was written, or where the key was
// set.
func (s *Spec) mapPos(key, k string) Pos {
	if p, ok := s.pos[key+"."+k]; ok {
		return p
	}
	return s.Position(key)
}

// checkNUL refuses a NUL byte in any value: neither the image config nor
// the kernel (an environment, argv, a path) can carry one.
func (s *Spec) checkNUL() error {
	const hint = "remove the NUL byte (\\0)"
	has := func(v string) bool { return strings.IndexByte(v, 0) >= 0 }
	for i := range fields {
		f := &fields[i]
		switch f.kind {
		case kindString:
			if v := *f.str(s); has(v) {
				return s.errorf(f.key, hint, "%q contains a NUL byte", v)
			}
		case kindList, kindArgv:
			for j, v := range *f.list(s) {
				if has(v) {
					return &Error{Pos: s.entryPos(f.key, j), Key: fmt.Sprintf("%s[%d]", f.key, j), Msg: fmt.Sprintf("%q contains a NUL byte", v), Hint: hint}
				}
			}
		case kindMap:
			for _, kv := range *f.kv(s) {
				switch {
				case has(kv.Key):
					return &Error{Pos: s.mapPos(f.key, kv.Key), Key: f.key, Msg: fmt.Sprintf("name %q contains a NUL byte", kv.Key), Hint: hint}
				case has(kv.Value):
					return &Error{Pos: s.mapPos(f.key, kv.Key), Key: f.key + "." + kv.Key, Msg: fmt.Sprintf("value %q contains a NUL byte", kv.Value), Hint: hint}
				}
			}
		case kindCopy:
			for j, c := range *f.copy(s) {
				if has(c.Src) || has(c.Dest) {
					return &Error{Pos: s.entryPos(f.key, j), Key: f.key, Msg: fmt.Sprintf("%q: %q contains a NUL byte", c.Src, c.Dest), Hint: hint}
				}
			}
		}
	}
	return nil
}

// checkRegistry checks the registry key, host[:port][/namespace], against
// the reference grammar. It returns what is wrong and the fix, or "".
func checkRegistry(r string) (msg, hint string) {
	if strings.Contains(r, "://") {
		return "a registry is a host, not a URL", "write the host without the scheme, e.g. ghcr.io/org or localhost:5000"
	}
	if strings.Contains(r, "//") || strings.HasPrefix(r, "/") {
		return "it has an empty path component (//)", "write one / between the host and each namespace, e.g. localhost:5000/team"
	}
	host, ns, _ := strings.Cut(strings.TrimSuffix(r, "/"), "/")
	if msg, hint := checkHost(host); msg != "" {
		return msg, hint
	}
	if ns != "" && !repoComponent.MatchString(ns) {
		return fmt.Sprintf("namespace %q is not lowercase letters, digits and . _ - separators", ns), "write a namespace such as org or team/ml"
	}
	return "", ""
}

// checkReference checks what go-containerregistry lets through in an image
// reference: the registry host (as checkHost) and empty or upper-case path
// components. It returns what is wrong and the fix, or "".
func checkReference(ref string) (msg, hint string) {
	repo, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	path := repo
	if first, rest, ok := strings.Cut(repo, "/"); ok && (first == "localhost" || strings.ContainsAny(first, ".:")) {
		if msg, hint := checkHost(first); msg != "" {
			return msg, hint
		}
		path = rest
	}
	if !repoComponent.MatchString(path) {
		return fmt.Sprintf("repository %q is not lowercase path components separated by single slashes", path), "write a reference like registry.example/team/app:tag"
	}
	if len(repo) > maxRepoLen {
		return fmt.Sprintf("the repository is %d characters long; image names are at most %d", len(repo), maxRepoLen), "shorten it"
	}
	return "", ""
}

// checkHost checks a registry host[:port] against the reference grammar:
// lowercase domain components (or an IPv4 address, or an IPv6 one in
// brackets) and a port from 1 to 65535. It returns what is wrong and the
// fix, or "".
func checkHost(h string) (msg, hint string) {
	host, port, hasPort := h, "", false
	if strings.HasPrefix(h, "[") {
		end := strings.Index(h, "]")
		if end < 0 || !strings.Contains(h[1:end], ":") || net.ParseIP(h[1:end]) == nil {
			return fmt.Sprintf("host %q is not an IPv6 address in brackets", h), "write e.g. [::1]:5000"
		}
		host = h[:end+1]
		if rest := h[end+1:]; rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return fmt.Sprintf("host %q has %q after the address", h, rest), "write e.g. [::1]:5000"
			}
			port, hasPort = rest[1:], true
		}
	} else if i := strings.LastIndex(h, ":"); i >= 0 {
		host, port, hasPort = h[:i], h[i+1:], true
	}
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
			return fmt.Sprintf("port %q is not a number from 1 to 65535", port), "write host:port with a port such as 5000, or leave the port out"
		}
	}
	if host == "" {
		return "no host name", "write a host such as ghcr.io or localhost:5000"
	}
	if strings.HasPrefix(host, "[") {
		return "", ""
	}
	if host != strings.ToLower(host) {
		return fmt.Sprintf("host %q has upper-case letters", host), fmt.Sprintf("write it in lower case, %s", strings.ToLower(h))
	}
	for _, c := range strings.Split(host, ".") {
		if !domainComponent.MatchString(c) {
			return fmt.Sprintf("host %q is not a host name: each dot-separated part is letters, digits and inner hyphens", host), "write a host such as ghcr.io or localhost:5000"
		}
	}
	return "", ""
}
