package spec

import (
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/pkg/pep723"
	"github.com/kiln-build/kiln/pkg/resolve/pylock"
)

// maxScript bounds the script a spec's script key names.
const maxScript = 16 << 20

// validateScript checks the script key: a regular file under the build
// context whose PEP 723 block, if any, is well formed, and not combined
// with a lock file (a lock is installed as pinned: nothing can be added).
func (s *Spec) validateScript() error {
	if s.Script == "" {
		return nil
	}
	real, err := s.Confine("script", s.Script)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(real); err == nil && !fi.Mode().IsRegular() {
		return s.errorf("script", "name a Python file", "%s is not a regular file", s.Script)
	}
	if s.Requirements != "" && pylock.KindOf(s.Requirements).IsLock() {
		return s.errorf("script", "list the script's dependencies in the project and lock it again, or drop requirements", "cannot add the script's dependencies to %s, which is installed as pinned", filepath.Base(s.Requirements))
	}
	_, err = s.ScriptMetadata()
	return err
}

// ScriptMetadata reads the PEP 723 block of the script key's file: nil
// when the key is unset or the script has no block. A malformed block is
// an *Error naming the script's file and line.
func (s *Spec) ScriptMetadata() (*pep723.Metadata, error) {
	if s.Script == "" {
		return nil, nil
	}
	f, err := os.Open(s.Script)
	if err != nil {
		return nil, s.errorf("script", "check the path; relative paths are relative to the spec file's directory", "%v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxScript+1))
	if err != nil {
		return nil, s.errorf("script", "make it readable", "read %s: %v", s.Script, err)
	}
	if len(data) > maxScript {
		return nil, s.errorf("script", "name a single-file script; ship larger code with source_root", "%s is larger than %d MiB", s.Script, maxScript>>20)
	}
	m, err := pep723.Parse(s.Script, data)
	var pe *pep723.Error
	if errors.As(err, &pe) {
		return nil, s.errorf("script", "see PEP 723: the block opens with `# /// script`, holds `#` or `# `-prefixed TOML lines and closes with `# ///`", "%v", err)
	}
	if err != nil {
		return nil, s.errorf("script", "", "%s: %v", s.Script, err)
	}
	return m, nil
}

// ScriptPath is where the image holds the script key's file: under /root
// at its path below source_root when source_root ships it, else at
// /root/NAME. It is "" when the key is unset.
func (s *Spec) ScriptPath() string {
	if s.Script == "" {
		return ""
	}
	if rel, ok := s.scriptInSource(); ok {
		return path.Join("/root", filepath.ToSlash(rel))
	}
	return path.Join("/root", filepath.Base(s.Script))
}

// ScriptCopy reports whether the script must be copied into the image on
// its own (source_root does not ship it), and from where on the host.
func (s *Spec) ScriptCopy() (string, bool) {
	if s.Script == "" {
		return "", false
	}
	if _, ok := s.scriptInSource(); ok {
		return "", false
	}
	return s.Script, true
}

// scriptInSource returns the script's path below source_root when
// source_root is copied and holds it.
func (s *Spec) scriptInSource() (string, bool) {
	if !s.CopiesSource() {
		return "", false
	}
	script := s.Script
	if real, err := filepath.EvalSymlinks(script); err == nil {
		script = real
	}
	root := s.SourceRoot
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	rel, err := filepath.Rel(root, script)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}
