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

// Collect walks the mappings and returns the entries of their layer, sorted
// by path, with every parent directory present. .dockerignore files at the
// root of a mapped directory are honoured with Docker's pattern semantics.
// A symlink that points outside its tree (absolute, or climbing above the
// tree's root) fails, naming the link.
func Collect(ctx context.Context, mappings []Mapping) ([]File, error) {
	byPath := map[string]File{}
	add := func(f File) error {
		if prev, ok := byPath[f.Path]; ok && !(prev.Mode.IsDir() && f.Mode.IsDir()) && prev.Src != f.Src {
			return fmt.Errorf("collect: /%s comes from both %s and %s; map them to different destinations", f.Path, prev.Src, f.Src)
		}
		byPath[f.Path] = f
		return nil
	}
	for _, m := range mappings {
		if err := collectOne(ctx, m, add); err != nil {
			return nil, err
		}
	}
	// Parent directories of every entry.
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
	return files, nil
}

func collectOne(ctx context.Context, m Mapping, add func(File) error) error {
	fi, err := os.Lstat(m.Src)
	if err != nil {
		return fmt.Errorf("collect %s: %w", m.Src, err)
	}
	dest := strings.TrimPrefix(path.Clean("/"+m.Dest), "/")
	if !fi.IsDir() {
		if strings.HasSuffix(m.Dest, "/") {
			dest = path.Join(dest, filepath.Base(m.Src))
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("collect %s: a symlink cannot be copied on its own; copy the file it points to", m.Src)
		}
		f, err := hostFile(m.Src, dest, fi)
		if err != nil {
			return err
		}
		return add(f)
	}
	patterns := DefaultExcludes()
	if data, err := os.ReadFile(filepath.Join(m.Src, ".dockerignore")); err == nil {
		ps, err := ignorefile.ReadAll(strings.NewReader(string(data)))
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(m.Src, ".dockerignore"), err)
		}
		patterns = append(patterns, ps...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", filepath.Join(m.Src, ".dockerignore"), err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("%s: bad .dockerignore pattern: %w", m.Src, err)
	}
	if dest != "" {
		if err := add(File{Path: dest, Mode: fs.ModeDir | 0o755}); err != nil {
			return err
		}
	}
	return filepath.WalkDir(m.Src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
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
			return fmt.Errorf("match %s: %w", p, err)
		}
		if excluded {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
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
			if path.IsAbs(link) || escapes(path.Join(path.Dir(rel), link)) {
				return fmt.Errorf("collect %s: symlink to %q points outside %s; copy the file itself or use a relative link inside the tree", p, link, m.Src)
			}
			return add(File{Path: target, Src: p, Mode: fs.ModeSymlink | 0o777, Link: link})
		}
		f, err := hostFile(p, target, fi)
		if err != nil {
			return err
		}
		return add(f)
	})
}

// escapes reports whether a cleaned relative path climbs above its root.
func escapes(rel string) bool {
	c := path.Clean(rel)
	return c == ".." || strings.HasPrefix(c, "../")
}

// hostFile describes a regular file or directory, hashing a file's content.
func hostFile(src, dest string, fi fs.FileInfo) (File, error) {
	switch {
	case fi.IsDir():
		return File{Path: dest, Src: src, Mode: fs.ModeDir | 0o755}, nil
	case fi.Mode().IsRegular():
		sum, n, err := hashFile(src)
		if err != nil {
			return File{}, err
		}
		return File{Path: dest, Src: src, Mode: NormalizeMode(fi.Mode()), Size: n, SHA256: sum}, nil
	}
	return File{}, fmt.Errorf("collect %s: %s files cannot go into an image; remove it or add it to .dockerignore", src, fi.Mode().Type())
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
