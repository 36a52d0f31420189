package deblayer

import (
	"fmt"
	"path"
	"strings"
)

// maxSymlinkHops bounds symlink resolution, like the kernel's ELOOP limit.
const maxSymlinkHops = 40

// cleanMember validates and normalises a data.tar member name or hard
// link target: "./usr/bin/x" becomes "usr/bin/x", the root becomes "".
func cleanMember(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path %q", name)
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("path %q contains a NUL byte", name)
	}
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("path %q has a \"..\" component", name)
		}
		parts = append(parts, c)
	}
	return strings.Join(parts, "/"), nil
}

// resolver maps shipped paths to layer paths by following the symlinked
// directories of the parent (merged /usr) and of the layer itself.
type resolver struct {
	// links maps a layer path ("bin") to its symlink target ("usr/bin" or
	// "/usr/bin").
	links map[string]string
}

// resolve follows symlinks in every component of p except the last one
// unless full is set, and returns the resulting root-relative path. It
// fails if a symlink leads above the root.
func (r *resolver) resolve(p string, full bool) (string, error) {
	return r.resolveOwn(p, full, nil)
}

// resolveOwn is resolve, failing when p passes through one of the symlinks
// in own (layer paths).
func (r *resolver) resolveOwn(p string, full bool, own map[string]bool) (string, error) {
	todo := strings.Split(p, "/")
	var last string
	if !full {
		last = todo[len(todo)-1]
		todo = todo[:len(todo)-1]
	}
	var out []string
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(out) == 0 {
				return "", fmt.Errorf("path %q leads outside the image root through a symlink", p)
			}
			out = out[:len(out)-1]
			continue
		}
		cand := strings.Join(append(out[:len(out):len(out)], c), "/")
		t, ok := r.links[cand]
		if !ok {
			out = append(out, c)
			continue
		}
		if own[cand] {
			return "", fmt.Errorf("path %q goes through the symlink /%s the same package ships", p, cand)
		}
		hops++
		if hops > maxSymlinkHops {
			return "", fmt.Errorf("path %q: too many levels of symlinks", p)
		}
		if strings.HasPrefix(t, "/") {
			out = nil
		}
		todo = append(strings.Split(t, "/"), todo...)
	}
	if !full {
		out = append(out, last)
	}
	return strings.Join(out, "/"), nil
}

// escapes reports whether a symlink at linkPath with target would point
// above the root.
func escapes(linkPath, target string) bool {
	if strings.HasPrefix(target, "/") {
		return false
	}
	depth := strings.Count(linkPath, "/") // components of the directory
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// parentDirs returns the ancestors of p, outermost first: "a/b/c" gives
// "a", "a/b".
func parentDirs(p string) []string {
	var out []string
	for d := path.Dir(p); d != "." && d != "/" && d != ""; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}
