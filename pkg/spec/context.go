package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/pkg/resolve/aptrepo"
)

// The build context, as Docker's: every host file a spec pulls into the
// image (source_root, copy, requirements with its -r/-c includes, local
// wheels in packages and requirements files, and apt_sources signed-by key
// files) must lie inside one directory, with symlinks resolved, so that a
// spec from an untrusted pull request cannot bake ~/.docker/config.json or
// /etc/shadow into an image CI pushes. The context is the spec file's
// directory (the current directory without a spec file); --context DIR
// widens (or narrows) it explicitly.

// contextHint is the fix for a path outside the build context.
const contextHint = "keep the files the image needs under the build context, or name a wider one with --context DIR"

// ContextDir returns the build context: the --context directory, else the
// spec's directory.
func (s *Spec) ContextDir() string {
	if s.Context != "" {
		return s.Context
	}
	return s.Dir
}

// describeContext says which directory the context is and why, for errors.
func (s *Spec) describeContext() string {
	switch {
	case s.Context != "":
		return fmt.Sprintf("%s, given by --context", s.Context)
	case s.File != "":
		return fmt.Sprintf("%s, the spec file's directory", s.Dir)
	}
	return fmt.Sprintf("%s, the current directory", s.Dir)
}

// InContext resolves the host path p (absolute, or relative to the spec's
// directory) with every symlink followed and returns the result, or an
// error naming p and the context when p, or what it resolves to, lies
// outside the build context. A path that does not exist is checked
// lexically and reported as missing. The error names no key: callers add
// it (Confine does).
func (s *Spec) InContext(p string) (string, error) {
	root, err := s.contextRoot()
	if err != nil {
		return "", err
	}
	abs := s.abs(p)
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if !within(root, filepath.Clean(abs)) && !within(filepath.Clean(s.ContextDir()), filepath.Clean(abs)) {
			return "", fmt.Errorf("%s is outside the build context %s", abs, s.describeContext())
		}
		if errors.Is(err, fs.ErrNotExist) {
			return "", notExist(abs + " does not exist")
		}
		return "", fmt.Errorf("%s: %w", abs, err)
	}
	if !within(root, real) {
		if real != filepath.Clean(abs) {
			return "", fmt.Errorf("%s resolves to %s, outside the build context %s", abs, real, s.describeContext())
		}
		return "", fmt.Errorf("%s is outside the build context %s", abs, s.describeContext())
	}
	return real, nil
}

// Confine is InContext for the value of key, failing with an *Error that
// names where key was set, the path and the fix.
func (s *Spec) Confine(key, p string) (string, error) {
	real, err := s.InContext(p)
	if err == nil {
		return real, nil
	}
	var se *Error
	if errors.As(err, &se) {
		return "", err
	}
	hint := contextHint
	if errors.Is(err, fs.ErrNotExist) {
		hint = "check the path; relative paths are relative to the spec file's directory"
	}
	return "", s.errorf(key, hint, "%v", err)
}

// contextRoot returns the context directory with its symlinks resolved.
func (s *Spec) contextRoot() (string, error) {
	dir := s.ContextDir()
	real, err := filepath.EvalSymlinks(dir)
	if err == nil {
		var fi os.FileInfo
		if fi, err = os.Stat(real); err == nil && !fi.IsDir() {
			err = errors.New("not a directory")
		}
	}
	if err != nil {
		if s.Context != "" {
			return "", &Error{Pos: Pos{Flag: "context"}, Key: "context", Msg: fmt.Sprintf("%s: %v", dir, err), Hint: "name an existing directory"}
		}
		return "", fmt.Errorf("the build context %s: %w", dir, err)
	}
	return real, nil
}

// within reports whether p is root or below it (both clean and absolute).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// validateContext confines the keys that name host files to the build
// context: source_root (resolved, so a symlinked source_root works),
// copy sources (resolved), requirements and apt_sources signed-by key
// files. Local wheels and requirements includes are confined when the
// requirements are read (pkg/build), through InContext.
func (s *Spec) validateContext() error {
	if s.Context != "" {
		if _, err := s.contextRoot(); err != nil {
			return err
		}
	}
	if s.SourceRoot != "" {
		real, err := s.Confine("source_root", s.SourceRoot)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(real); err == nil && !fi.IsDir() {
			return s.errorf("source_root", "name a directory", "%s is not a directory", s.SourceRoot)
		}
		s.SourceRoot = real
	}
	for i, c := range s.Copy {
		real, err := s.Confine("copy", c.Src)
		if err != nil {
			return err
		}
		if fi, err := os.Lstat(c.Src); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			// A symlinked source is copied as what it points to, under
			// the link's own name.
			if ri, err := os.Stat(real); err == nil && !ri.IsDir() && strings.HasSuffix(c.Dest, "/") {
				s.Copy[i].Dest = c.Dest + filepath.Base(c.Src)
			}
			s.Copy[i].Src = real
		}
	}
	if s.Requirements != "" {
		if _, err := s.Confine("requirements", s.Requirements); err != nil {
			return err
		}
	}
	return s.confineAptKeys()
}

// confineAptKeys confines the host key files apt_sources entries name in
// signed-by. Entries that do not parse are left to the apt resolver, which
// reports them.
func (s *Spec) confineAptKeys() error {
	for i, entry := range s.AptSources {
		var srcs []aptrepo.Source
		var err error
		label := fmt.Sprintf("apt_sources[%d]", i)
		if strings.HasPrefix(strings.TrimSpace(entry), "Types:") || strings.Contains(strings.SplitN(entry, "\n", 2)[0], "Types:") {
			srcs, err = aptrepo.ParseDeb822Sources(label, []byte(entry))
		} else {
			srcs, err = aptrepo.ParseSourcesList(label, []byte(entry))
		}
		if err != nil {
			continue
		}
		for _, src := range srcs {
			sb := strings.TrimSpace(src.SignedBy)
			if sb == "" || strings.HasPrefix(sb, "-----BEGIN PGP") {
				continue
			}
			for _, p := range strings.FieldsFunc(sb, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
				if _, err := s.InContext(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					var se *Error
					if errors.As(err, &se) {
						return err
					}
					return s.errorf("apt_sources", contextHint, "%s: signed-by key file %v", label, err)
				}
			}
		}
	}
	return nil
}

// notExist is an error that is fs.ErrNotExist, with its own message.
type notExist string

func (e notExist) Error() string { return string(e) }
func (e notExist) Unwrap() error { return fs.ErrNotExist }
