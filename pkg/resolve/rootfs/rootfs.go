// Package rootfs reads the files kiln needs from a parent image's layers
// without extracting them: the merged tree's headers for every path, and
// the content of the few files a Select keeps (dpkg status, apt sources and
// keyrings, users and groups, the Python interpreter's build data).
//
// Lookups follow symlinks as the kernel would inside a chroot at the image
// root: absolute targets start at the root and ".." never climbs above it.
//
// Parent layers are untrusted input, but reading them is confined by
// construction: the tree lives in memory, nothing is written to disk, and
// no symlink is ever resolved against the host's file system. Read therefore
// accepts what a container runtime would unpack, and puts it where the
// runtime would: member names are cleaned against the image root ("/etc/x",
// "../../etc/x" and "./etc/x" are all "etc/x"), a member written through a
// symlink lands at the symlink's target inside the image (a -> /etc, then
// a/passwd, is etc/passwd), device nodes and FIFOs are kept as entries
// (real images have them in /dev), and .wh. whiteouts apply only to lower
// layers. Read fails, naming the layer and the last member read, only on
// what cannot be unpacked: a truncated or corrupt tar (including a size
// field that does not match the data), or a hard link whose target is in
// no layer. Kept content is bounded by the Select; the tree itself grows
// with the number of members (one small node each), which is not capped.
package rootfs

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// maxLinks bounds symlink resolution in one lookup, like the kernel's ELOOP
// limit.
const maxLinks = 40

// ErrLoop is returned (wrapped in an *fs.PathError) when resolving a path
// follows more than 40 symlinks.
var ErrLoop = errors.New("too many levels of symbolic links")

// ErrNotCaptured is returned (wrapped in an *fs.PathError) by ReadFile for a
// regular file whose content the Select did not keep, or kept only a part of.
var ErrNotCaptured = errors.New("content not kept by the selector")

// Entry describes one path of the merged tree, as its tar header did.
type Entry struct {
	// Path is the path as it was looked up, relative to the image root
	// ("etc/passwd"); "" is the root.
	Path string
	// Mode holds the type and permission bits. Hard links are reported as
	// the regular files they are.
	Mode fs.FileMode
	// UID and GID are the numeric owner.
	UID, GID int
	// Linkname is a symlink's target as stored ("usr/bin", "/lib/x").
	Linkname string
	// Size is a regular file's size in bytes.
	Size int64
}

// IsDir reports whether e is a directory.
func (e Entry) IsDir() bool { return e.Mode.IsDir() }

// IsRegular reports whether e is a regular file.
func (e Entry) IsRegular() bool { return e.Mode.IsRegular() }

// IsSymlink reports whether e is a symbolic link.
func (e Entry) IsSymlink() bool { return e.Mode&fs.ModeSymlink != 0 }

// Name returns the last element of e.Path.
func (e Entry) Name() string { return path.Base("/" + e.Path) }

// FS is the merged view of an image's layers. Its lookup methods are safe
// for concurrent use; FS is not modified after it is built.
type FS struct {
	root *node
}

// node is one path of the tree.
type node struct {
	e Entry // e.Path is the canonical path
	// data is the kept prefix of a regular file's content.
	data []byte
	// src says where a regular file's bytes are (only while reading).
	src srcRef
	// kids are a directory's children by name.
	kids map[string]*node
}

// srcRef locates a regular file's bytes: a layer and its member name.
type srcRef struct {
	layer int
	name  string
}

func newRoot() *node {
	return &node{e: Entry{Mode: fs.ModeDir | 0o755}, kids: map[string]*node{}}
}

// complete reports whether all of n's content is held.
func (n *node) complete() bool { return int64(len(n.data)) == n.e.Size }

// splitPath splits p into its non-empty components; leading "/" and "./"
// are dropped.
func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

// lookup resolves name from the root. Symlinks in all components but the
// last are followed; the last is followed when follow is set.
func (f *FS) lookup(op, name string, follow bool) (*node, error) {
	todo := splitPath(name)
	stack := []*node{f.root}
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := stack[len(stack)-1]
		if !cur.e.IsDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		n := cur.kids[c]
		if n == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if n.e.IsSymlink() && (len(todo) > 0 || follow) {
			links++
			if links > maxLinks {
				return nil, &fs.PathError{Op: op, Path: name, Err: ErrLoop}
			}
			if strings.HasPrefix(n.e.Linkname, "/") {
				stack = stack[:1]
			}
			todo = append(splitPath(n.e.Linkname), todo...)
			continue
		}
		stack = append(stack, n)
	}
	return stack[len(stack)-1], nil
}

// clean normalises a caller's path: "./etc//x", "/etc/x" -> "etc/x".
func clean(p string) string {
	c := path.Clean("/" + p)
	return strings.TrimPrefix(c, "/")
}

func (n *node) entryAs(p string) Entry {
	e := n.e
	e.Path = clean(p)
	return e
}

// LstatEntry returns the entry at name without following a final symlink.
// Like every method returning an Entry it also takes "/etc/passwd" and
// "./etc/passwd"; the io/fs methods (iofs.go) take io/fs paths only.
func (f *FS) LstatEntry(name string) (Entry, error) {
	n, err := f.lookup("lstat", name, false)
	if err != nil {
		return Entry{}, err
	}
	return n.entryAs(name), nil
}

// StatEntry returns the entry at name, following symlinks.
func (f *FS) StatEntry(name string) (Entry, error) {
	n, err := f.lookup("stat", name, true)
	if err != nil {
		return Entry{}, err
	}
	return n.entryAs(name), nil
}

// readlink returns the target of the symlink at name as stored.
func (f *FS) readlink(name string) (string, error) {
	n, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if !n.e.IsSymlink() {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.e.Linkname, nil
}

// Realpath returns the canonical path of name (all symlinks resolved),
// relative to the root.
func (f *FS) Realpath(name string) (string, error) {
	n, err := f.lookup("realpath", name, true)
	if err != nil {
		return "", err
	}
	return n.e.Path, nil
}

// ReadFile implements fs.ReadFileFS: the content of the regular file at
// name (an io/fs path), following symlinks. It fails with ErrNotCaptured
// if the Select the FS was read with did not keep all of it.
func (f *FS) ReadFile(name string) ([]byte, error) {
	if err := valid("read", name); err != nil {
		return nil, err
	}
	return f.readFile(name)
}

// readFile is ReadFile for any path lookup takes ("/etc/passwd").
func (f *FS) readFile(name string) ([]byte, error) {
	n, err := f.lookup("read", name, true)
	if err != nil {
		return nil, err
	}
	if !n.e.IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("not a regular file")}
	}
	if !n.complete() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotCaptured}
	}
	return slices.Clone(n.data), nil
}

// ReadHead returns the kept leading bytes of the regular file at name
// (at most max of them), following symlinks. It is for files the Select
// kept only the start of, such as an executable's ELF header; it fails with
// ErrNotCaptured if nothing of the file was kept.
func (f *FS) ReadHead(name string, max int) ([]byte, error) {
	n, err := f.lookup("read", name, true)
	if err != nil {
		return nil, err
	}
	if !n.e.IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("not a regular file")}
	}
	if len(n.data) == 0 && n.e.Size > 0 {
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotCaptured}
	}
	return slices.Clone(n.data[:min(max, len(n.data))]), nil
}

// ReadDirEntries returns the entries of the directory at name, following
// symlinks, sorted by name. Their paths are under name as given.
func (f *FS) ReadDirEntries(name string) ([]Entry, error) {
	n, err := f.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.e.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	dir := clean(name)
	out := make([]Entry, 0, len(n.kids))
	for _, k := range sortedKids(n) {
		out = append(out, k.entryAs(path.Join(dir, k.e.Name())))
	}
	return out, nil
}

func sortedKids(n *node) []*node {
	kids := make([]*node, 0, len(n.kids))
	for _, k := range n.kids {
		kids = append(kids, k)
	}
	slices.SortFunc(kids, func(a, b *node) int { return strings.Compare(a.e.Path, b.e.Path) })
	return kids
}

// TopLevelSymlinks returns the symlinks directly under the root by name,
// with their targets as stored: for a merged-/usr image
// {"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin"}.
func (f *FS) TopLevelSymlinks() map[string]string {
	out := map[string]string{}
	for name, k := range f.root.kids {
		if k.e.IsSymlink() {
			out[name] = k.e.Linkname
		}
	}
	return out
}

// Walk calls fn for every entry of the tree in lexical order, parents
// before children, without following symlinks. The root itself is not
// visited.
func (f *FS) Walk(fn func(e Entry) error) error {
	var walk func(n *node) error
	walk = func(n *node) error {
		for _, k := range sortedKids(n) {
			if err := fn(k.e); err != nil {
				return err
			}
			if k.e.IsDir() {
				if err := walk(k); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(f.root)
}
