package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/resolve/pylock"
	"github.com/kiln-build/kiln/pkg/resolve/pypi"
	"github.com/kiln-build/kiln/pkg/resolve/pytarget"
	"github.com/kiln-build/kiln/pkg/spec"
)

// maxProjectFile bounds a pyproject.toml or lock file read.
const maxProjectFile = 64 << 20

// readProjectFile reads a file the requirements key names (or the
// pyproject.toml beside a poetry.lock), confined to the build context.
func readProjectFile(s *spec.Spec, p string) ([]byte, error) {
	real, err := s.InContext(p)
	if err != nil {
		return nil, fmt.Errorf("%w (keep it under the build context, or name a wider one with --context DIR)", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file; name a file", p)
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProjectFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxProjectFile {
		return nil, fmt.Errorf("%s is larger than %d MiB", p, maxProjectFile>>20)
	}
	return data, nil
}

// projectRequirements reads a pyproject.toml or a lock file named by the
// spec's requirements key: the requirements of a pyproject.toml (its
// dependencies, the spec's extras and groups) as lines to resolve, or a
// parsed lock to install as pinned. The digest covers what was read.
func projectRequirements(s *spec.Spec, kind pylock.Kind) (*requirements, error) {
	fail := func(err error) (*requirements, error) {
		return nil, &spec.Error{Pos: s.Position("requirements"), Key: "requirements", Msg: err.Error()}
	}
	data, err := readProjectFile(s, s.Requirements)
	if err != nil {
		return fail(err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "kind=%s\x00extras=%s\x00groups=%s\x00", kind, strings.Join(s.Extras, ","), strings.Join(s.Groups, ","))
	writeDigest := func(b []byte) { fmt.Fprintf(h, "%d\x00", len(b)); h.Write(b) }
	writeDigest(data)
	r := &requirements{kind: kind}
	switch kind {
	case pylock.KindPyproject:
		pp, err := pylock.ParsePyproject(s.Requirements, data)
		if err != nil {
			return fail(err)
		}
		reqs, err := pp.Requirements(s.Extras, s.Groups)
		if err != nil {
			return fail(err)
		}
		dir := filepath.Dir(s.Requirements)
		for _, q := range reqs {
			pr, err := pypi.ParseRequirement(q.Text, dir)
			if err != nil {
				return fail(fmt.Errorf("%s: %q: %w", q.Source, q.Text, err))
			}
			r.lines = append(r.lines, pypi.Line{Requirement: pypi.Requirement{Requirement: pr, Source: q.Source}, File: s.Requirements})
		}
	case pylock.KindPylock:
		r.lock, err = pylock.ParsePylock(s.Requirements, data)
	case pylock.KindUV:
		r.lock, err = pylock.ParseUV(s.Requirements, data)
	case pylock.KindPoetry:
		ppPath := filepath.Join(filepath.Dir(s.Requirements), "pyproject.toml")
		ppData, rerr := readProjectFile(s, ppPath)
		if rerr != nil {
			return fail(fmt.Errorf("poetry.lock needs the project's pyproject.toml beside it: %w", rerr))
		}
		writeDigest(ppData)
		pp, perr := pylock.ParsePyproject(ppPath, ppData)
		if perr != nil {
			return fail(perr)
		}
		r.lock, err = pylock.ParsePoetry(s.Requirements, data, pp)
	}
	if err != nil {
		return fail(err)
	}
	if r.lock != nil && len(s.Packages) > 0 {
		return nil, &spec.Error{Pos: s.Position("packages"), Key: "packages", Msg: fmt.Sprintf("cannot be combined with the lock %s, which pins every package", filepath.Base(s.Requirements)), Hint: "add the packages to the project and lock again, or drop packages"}
	}
	r.digest = hex.EncodeToString(h.Sum(nil))
	return r, nil
}

// pinLocked takes the wheels from the lock file named by requirements, for
// the target t: no resolution. With pip_index set, or for a lock that
// gives no URLs (poetry.lock), each file is found on the index by its name
// and must have the lock's sha256 there.
func (b *session) pinLocked(ctx context.Context, reqs *requirements, t *pytarget.Target) error {
	s := b.p.Spec
	env, err := pep508.LinuxCPython(t.Version, t.Arch)
	if err != nil {
		return fmt.Errorf("requirements: the target python %q: %w", t.Version, err)
	}
	wt := wheelTarget(t)
	tags, err := wheeltagSet(wt)
	if err != nil {
		return err
	}
	pins, err := reqs.lock.Install(pylock.Target{Env: env, Tags: tags, Name: wt.String(), Extras: s.Extras, Groups: s.Groups})
	if err != nil {
		return &spec.Error{Pos: s.Position("requirements"), Key: "requirements", Msg: err.Error()}
	}
	remap := s.PipIndex != "" || len(s.PipExtraIndexURL) > 0
	idxs := map[string]pypi.Indexes{}
	indexesFor := func(lockIndex string) (pypi.Indexes, error) {
		key := lockIndex
		if remap {
			key = "\x00spec"
		}
		if ix, ok := idxs[key]; ok {
			return ix, nil
		}
		var ix pypi.Indexes
		var err error
		if remap {
			ix, err = b.indexes(pypi.Options{})
		} else {
			ix, err = pypi.NewIndexes(lockIndex, nil, pypi.IndexOptions{Client: fetchClient(b.o), Store: b.o.Cache})
		}
		if err != nil {
			return nil, err
		}
		idxs[key] = ix
		return ix, nil
	}
	b.in.wheels = []lock.Wheel{}
	for _, p := range pins {
		w := lock.Wheel{Name: p.Name, Version: p.Version, Filename: p.File.Filename, URL: p.File.URL, SHA256: p.File.SHA256, Size: p.File.Size, Requested: p.Requested}
		if remap || w.URL == "" {
			ix, err := indexesFor(p.Index)
			if err != nil {
				return err
			}
			f, err := findLocked(ctx, ix, p)
			if err != nil {
				return fmt.Errorf("requirements: %s: %w", filepath.Base(s.Requirements), err)
			}
			w.URL = f.URL
			if w.Size == 0 {
				w.Size = f.Size
			}
		}
		b.in.wheels = append(b.in.wheels, w)
	}
	b.o.logf("python: %d distributions pinned by %s", len(b.in.wheels), filepath.Base(s.Requirements))
	return nil
}

// findLocked finds a locked wheel on the indexes by file name, checking
// the index's sha256 (when it gives one) against the lock's.
func findLocked(ctx context.Context, ix pypi.Indexes, p pylock.Pin) (pypi.File, error) {
	found, files, err := ix.Find(ctx, p.Name)
	if err != nil {
		return pypi.File{}, fmt.Errorf("finding %s %s (%s) on the index: %w", p.Name, p.Version, p.File.Filename, err)
	}
	for _, f := range files {
		if f.Filename != p.File.Filename {
			continue
		}
		if f.SHA256 != "" && !strings.EqualFold(f.SHA256, p.File.SHA256) {
			return pypi.File{}, fmt.Errorf("%s on %s has sha256 %s, but the lock says %s: the index serves another file under that name; fix the index or lock again", f.Filename, found.URL(), f.SHA256, p.File.SHA256)
		}
		return f, nil
	}
	return pypi.File{}, fmt.Errorf("%s %s: the index %s has no file %s, which the lock pins; serve it there (a mirror must keep the file names) or lock again against that index", p.Name, p.Version, found.URL(), p.File.Filename)
}
