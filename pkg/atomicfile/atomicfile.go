// Package atomicfile writes files so that readers see the old content or
// the new, never a part: the content goes to a temporary file beside the
// target, which is renamed over it once complete.
package atomicfile

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Options configure Write.
type Options struct {
	// Pattern is the temporary file's name pattern (see os.CreateTemp);
	// empty means "." + the target's base name + ".tmp-*", which readers
	// of the directory can tell from finished files and clean up.
	Pattern string
	// Perm is the finished file's permission bits; zero means 0o644.
	Perm fs.FileMode
}

// Write writes path with what fill writes: into a temporary file in
// path's directory, closed, given o.Perm and renamed to path. When fill or
// any step fails, path is left as it was, the temporary file is removed
// and the error returned as it is (callers say what they were writing).
func Write(path string, o Options, fill func(w io.Writer) error) error {
	pattern := o.Pattern
	if pattern == "" {
		pattern = "." + filepath.Base(path) + ".tmp-*"
	}
	perm := o.Perm
	if perm == 0 {
		perm = 0o644
	}
	f, err := os.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), perm); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
