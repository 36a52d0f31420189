// Package layer builds image layers as deterministic tar streams from pinned
// inputs: host files (the code layer), Debian packages and wheels. A layer
// is described by a Source whose Key depends only on its inputs, so the cache
// can find a layer without building it.
package layer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// DefaultExcludes returns the patterns left out of every tree, applied before
// .dockerignore rules (which may re-include them with "!").
func DefaultExcludes() []string { return []string{"**/.git", "**/__pycache__", "**/*.pyc"} }

// Mapping places a host file or directory in the image. A directory's
// contents land in Dest; a file lands at Dest, or inside it when Dest ends
// in "/".
type Mapping struct {
	// Src is an absolute host path.
	Src string
	// Dest is an absolute path in the image.
	Dest string
}

// File is one entry of a layer made from host files.
type File struct {
	// Path is the entry's path in the image, without a leading slash.
	Path string
	// Src is the host file the content comes from ("" for directories).
	Src string
	// Mode holds the type bits and the normalised permissions.
	Mode fs.FileMode
	// Link is a symlink's target.
	Link string
	// Size is a regular file's length.
	Size int64
	// SHA256 is the hex SHA-256 of a regular file's content.
	SHA256 string
}

// InputError is a problem with a host file a mapping brings in, found
// before anything is built: a file that cannot go into an image as it is (a
// named pipe, a device, an unreadable file, a whiteout name, a symlink
// leading out of its tree) or a bad .dockerignore.
type InputError struct {
	// Mapping is the index of the mapping the file belongs to.
	Mapping int
	// Path is the host file, with ":LINE" for a .dockerignore line.
	Path string
	// Msg says what is wrong; Hint how to fix it.
	Msg  string
	Hint string
}

func (e *InputError) Error() string {
	if e.Hint == "" {
		return e.Path + ": " + e.Msg
	}
	return e.Path + ": " + e.Msg + " (" + e.Hint + ")"
}

// ignoreHint is the fix for a file that cannot go into an image.
const ignoreHint = "remove it, or leave it out with a .dockerignore line"

// Collect walks the mappings and returns the entries of their layer, sorted
// by path, with every parent directory present. .dockerignore files at the
// root of a mapped directory are honoured with Docker's pattern semantics.
// A symlink that resolves outside its tree (absolute, or climbing above the
// tree's root, also through other symlinks of the tree) fails, naming the
// link; so do files named like whiteouts (".wh.*"), sockets, named pipes,
// devices and unreadable files, each as an *InputError.
func Collect(ctx context.Context, mappings []Mapping) ([]File, error) {
	byPath := map[string]File{}
	add := func(f File) error {
		if prev, ok := byPath[f.Path]; ok && !(prev.Mode.IsDir() && f.Mode.IsDir()) && prev.Src != f.Src {
			return fmt.Errorf("collect: /%s comes from both %s and %s; map them to different destinations", f.Path, prev.Src, f.Src)
		}
		byPath[f.Path] = f
		return nil
	}
	for i, m := range mappings {
		if err := collectOne(ctx, i, m, add); err != nil {
			return nil, err
		}
	}
	return withParents(byPath), nil
}

// withParents returns the files with every parent directory added, sorted
// by path.
func withParents(byPath map[string]File) []File {
	for p := range byPath {
		for dir := path.Dir(p); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if _, ok := byPath[dir]; !ok {
				byPath[dir] = File{Path: dir, Mode: fs.ModeDir | 0o755}
			}
		}
	}
	files := make([]File, 0, len(byPath))
	for _, f := range byPath {
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files
}

// isWhiteout reports whether a file name would be read as an OCI whiteout.
func isWhiteout(name string) bool { return strings.HasPrefix(name, ".wh.") }

func collectOne(ctx context.Context, idx int, m Mapping, add func(File) error) error {
	inputErr := func(p, msg, hint string) error {
		return &InputError{Mapping: idx, Path: p, Msg: msg, Hint: hint}
	}
	fi, err := os.Lstat(m.Src)
	if err != nil {
		return fmt.Errorf("collect %s: %w", m.Src, err)
	}
	dest := strings.TrimPrefix(path.Clean("/"+m.Dest), "/")
	if !fi.IsDir() && strings.HasSuffix(m.Dest, "/") {
		dest = path.Join(dest, filepath.Base(m.Src))
	}
	for _, c := range strings.Split(dest, "/") {
		if isWhiteout(c) {
			return inputErr(m.Src, fmt.Sprintf("would land at /%s, a whiteout name (.wh.*) that deletes the parent image's files", dest), "choose another destination, or rename it")
		}
	}
	if !fi.IsDir() {
		if fi.Mode()&fs.ModeSymlink != 0 {
			return inputErr(m.Src, "a symlink cannot be copied on its own", "copy the file it points to")
		}
		f, err := hostFile(idx, m.Src, dest, fi)
		if err != nil {
			return err
		}
		return add(f)
	}
	patterns, err := readDockerignore(idx, filepath.Join(m.Src, ".dockerignore"))
	if err != nil {
		return err
	}
	pm, err := patternmatcher.New(append(DefaultExcludes(), patterns...))
	if err != nil {
		return inputErr(filepath.Join(m.Src, ".dockerignore"), err.Error(), "fix the pattern")
	}
	if dest != "" {
		if err := add(File{Path: dest, Mode: fs.ModeDir | 0o755}); err != nil {
			return err
		}
	}
	return filepath.WalkDir(m.Src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return inputErr(p, "unreadable: permission denied", "make it readable by the user running kiln, or leave it out with a .dockerignore line")
			}
			return fmt.Errorf("collect %s: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(m.Src, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return inputErr(filepath.Join(m.Src, ".dockerignore"), fmt.Sprintf("matching %s: %v", rel, err), "fix the pattern")
		}
		if excluded {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if isWhiteout(d.Name()) {
			return inputErr(p, "a whiteout name (.wh.*) would delete the parent image's files", "rename it, or leave it out with a .dockerignore line")
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("collect %s: %w", p, err)
		}
		target := path.Join(dest, rel)
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("collect %s: %w", p, err)
			}
			if err := linkInTree(m.Src, rel, link); err != nil {
				return inputErr(p, fmt.Sprintf("symlink to %q points outside %s: it %v", link, m.Src, err), "copy the file itself or use a relative link inside the tree")
			}
			return add(File{Path: target, Src: p, Mode: fs.ModeSymlink | 0o777, Link: link})
		}
		f, err := hostFile(idx, p, target, fi)
		if err != nil {
			return err
		}
		return add(f)
	})
}

// maxTreeLinks bounds symlink resolution inside a copied tree, like the
// kernel's ELOOP limit.
const maxTreeLinks = 40

// linkInTree resolves the symlink at rel (slash-separated, relative to the
// tree's root) with target link as the image would, following the tree's
// own symlinks, and fails when the result leaves the tree: an absolute
// target, a ".." above the root, or another link that does.
func linkInTree(root, rel, link string) error {
	if path.IsAbs(link) {
		return errors.New("is absolute")
	}
	var out []string
	if dir := path.Dir(rel); dir != "." {
		out = strings.Split(dir, "/")
	}
	todo := strings.Split(link, "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(out) == 0 {
				return errors.New("climbs above the tree")
			}
			out = out[:len(out)-1]
			continue
		}
		out = append(out, c)
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(strings.Join(out, "/"))))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue // a directory, a file, or nothing (a dangling link is kept)
		}
		next, err := os.Readlink(filepath.Join(root, filepath.FromSlash(strings.Join(out, "/"))))
		if err != nil {
			return fmt.Errorf("cannot be resolved: %w", err)
		}
		if hops++; hops > maxTreeLinks {
			return errors.New("goes through too many levels of symlinks")
		}
		if path.IsAbs(next) {
			return fmt.Errorf("goes through /%s, an absolute symlink", strings.Join(out, "/"))
		}
		out = out[:len(out)-1]
		todo = append(strings.Split(next, "/"), todo...)
	}
	return nil
}

// maxDockerignore bounds the size of a .dockerignore file.
const maxDockerignore = 1 << 20

// readDockerignore reads the patterns of a .dockerignore file (none when it
// does not exist). Every pattern is checked, so an error names the file,
// the line and the pattern: a NUL byte, invalid UTF-8 or a bad pattern
// fails. The file must be a regular file of at most 1 MiB.
func readDockerignore(idx int, file string) ([]string, error) {
	inputErr := func(p, msg, hint string) error {
		return &InputError{Mapping: idx, Path: p, Msg: msg, Hint: hint}
	}
	fi, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, fs.ErrPermission):
		return nil, inputErr(file, "unreadable: permission denied", "make it readable by the user running kiln")
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", file, err)
	case !fi.Mode().IsRegular():
		return nil, inputErr(file, "is "+DescribeType(fi.Mode())+", not a regular file", "make .dockerignore a regular file")
	case fi.Size() > maxDockerignore:
		return nil, inputErr(file, fmt.Sprintf("is %d bytes, more than the %d a .dockerignore may have", fi.Size(), maxDockerignore), "shorten it")
	}
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, inputErr(file, "unreadable: permission denied", "make it readable by the user running kiln")
		}
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDockerignore+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(data) > maxDockerignore {
		return nil, inputErr(file, fmt.Sprintf("is more than %d bytes", maxDockerignore), "shorten it")
	}
	var patterns []string
	for i, line := range strings.Split(string(data), "\n") {
		at := fmt.Sprintf("%s:%d", file, i+1)
		if strings.ContainsRune(line, 0) {
			return nil, inputErr(at, fmt.Sprintf("pattern %q contains a NUL byte", line), "remove it")
		}
		if !utf8.ValidString(line) {
			return nil, inputErr(at, fmt.Sprintf("pattern %q is not valid UTF-8", line), "write the pattern in UTF-8")
		}
		ps, err := ignorefile.ReadAll(strings.NewReader(line))
		if err != nil {
			return nil, inputErr(at, fmt.Sprintf("pattern %q: %v", line, err), "fix the pattern")
		}
		for _, p := range ps {
			if err := checkPattern(p); err != nil {
				return nil, inputErr(at, fmt.Sprintf("pattern %q: %v", strings.TrimSpace(line), err), "fix the pattern; see https://docs.docker.com/build/concepts/context/#dockerignore-files")
			}
		}
		patterns = append(patterns, ps...)
	}
	return patterns, nil
}

// checkPattern fails for a pattern patternmatcher would reject, when it is
// created or when it is first used.
func checkPattern(p string) error {
	pm, err := patternmatcher.New([]string{p})
	if err != nil {
		return err
	}
	if _, err := pm.MatchesOrParentMatches("x"); err != nil {
		return err
	}
	return nil
}

// DescribeType names a file's type for messages: "a named pipe".
func DescribeType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsRegular():
		return "a regular file"
	}
	return "an irregular file"
}

// hostFile describes a regular file or directory, hashing a file's content.
func hostFile(idx int, src, dest string, fi fs.FileInfo) (File, error) {
	switch {
	case fi.IsDir():
		return File{Path: dest, Src: src, Mode: fs.ModeDir | 0o755}, nil
	case fi.Mode().IsRegular():
		sum, n, err := hashFile(src)
		if errors.Is(err, fs.ErrPermission) {
			return File{}, &InputError{Mapping: idx, Path: src, Msg: "unreadable: permission denied", Hint: "make it readable by the user running kiln, or leave it out with a .dockerignore line"}
		}
		if err != nil {
			return File{}, err
		}
		return File{Path: dest, Src: src, Mode: NormalizeMode(fi.Mode()), Size: n, SHA256: sum}, nil
	}
	return File{}, &InputError{Mapping: idx, Path: src, Msg: "is " + DescribeType(fi.Mode()) + ", which cannot go into an image", Hint: ignoreHint}
}

// NormalizeMode returns 0755 for executables and 0644 for other files, so
// that a layer does not depend on the umask it was checked out with, and
// everything is readable by all users (the seed doc's g+rX,o+rX).
func NormalizeMode(m fs.FileMode) fs.FileMode {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ParentDirs answers, for the parent image, where a directory really is:
// RealDir returns the canonical path (no leading slash, every symlink
// followed inside the image) of dir when dir is a directory of the parent,
// and false when the parent has no directory there.
type ParentDirs interface {
	RealDir(dir string) (string, bool)
}

// ThroughParent rewrites the entries' paths through the parent's
// symlinked directories, as a container runtime writes through them: on a
// merged-/usr parent (/bin -> usr/bin) an entry bin/tool becomes
// usr/bin/tool, and no bin/ directory is emitted that would replace the
// parent's symlink in the merged tree. A directory entry lands where the
// parent's directory (or symlink to one) resolves; any other entry keeps its
// name inside its resolved directory. Two entries that land on the same path
// fail, naming both.
func ThroughParent(files []File, parent ParentDirs) ([]File, error) {
	resolved := map[string]string{"": ""}
	var resolveDir func(dir string) string
	resolveDir = func(dir string) string {
		if dir == "." || dir == "/" {
			dir = ""
		}
		if r, ok := resolved[dir]; ok {
			return r
		}
		cand := path.Join(resolveDir(path.Dir(dir)), path.Base(dir))
		if real, ok := parent.RealDir(cand); ok {
			cand = real
		}
		resolved[dir] = cand
		return cand
	}
	byPath := map[string]File{}
	for _, f := range files {
		if f.Mode.IsDir() {
			f.Path = resolveDir(f.Path)
			if f.Path == "" {
				continue // the image root itself
			}
		} else {
			f.Path = path.Join(resolveDir(path.Dir(f.Path)), path.Base(f.Path))
		}
		if prev, ok := byPath[f.Path]; ok {
			if prev.Mode.IsDir() && f.Mode.IsDir() {
				if prev.Src == "" {
					byPath[f.Path] = f
				}
				continue
			}
			return nil, fmt.Errorf("collect: /%s comes from both %s and %s through the parent image's symlinks; map them to different destinations", f.Path, firstNonEmpty(prev.Src, "a directory"), firstNonEmpty(f.Src, "a directory"))
		}
		byPath[f.Path] = f
	}
	return withParents(byPath), nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
