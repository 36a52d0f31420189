// Package lock reads and writes kiln.lock: every input of a build pinned
// (the parent image's digest, each Debian package's and wheel's version,
// URL and SHA-256), so that `kiln build --locked` installs exactly that set
// without fetching any index, for example against an air-gapped mirror.
package lock

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/pkg/atomicfile"
)

// FileName is the lock file's name, next to the spec.
const FileName = "kiln.lock"

// Version is the lock format version.
const Version = 1

// Lock is a kiln.lock file.
type Lock struct {
	Version  int    `json:"version"`
	Platform string `json:"platform"`
	Parent   Parent `json:"parent,omitzero"`
	// AptPackages and Packages are what the spec asked for when the lock
	// was made; a spec that asks for something else makes the lock stale.
	AptPackages []string `json:"apt_packages,omitempty"`
	Packages    []string `json:"packages,omitempty"`
	// Requirements is the SHA-256 of the requirements files read.
	Requirements string  `json:"requirements,omitempty"`
	Debs         []Deb   `json:"debs,omitempty"`
	Wheels       []Wheel `json:"wheels,omitempty"`
	// Steps, written by kiln lock --with-layers, pin the layers each build
	// step gives from the pinned inputs (kiln's layers are reproducible):
	// kiln build --locked reuses a cached step (local or cache_from) only
	// when its layers are these.
	Steps []Step `json:"steps,omitempty"`
	// Resolved records, per step that resolves packages, the inputs that
	// shaped its resolution (platform, base_image, apt_sources, indexes,
	// requirements, ...) and their key: a --locked build whose spec gives
	// another key is refused as stale, naming the input that changed.
	Resolved []Resolution `json:"resolved,omitempty"`
	// Platforms, in a lock for several platforms, holds one lock per
	// platform, in the spec's order; such a lock pins nothing itself
	// (Parent and the lists above are empty) and Platform lists them all.
	Platforms []*Lock `json:"platforms,omitempty"`
}

// ForPlatform returns the pins of platform (os/arch[/variant], as the spec
// writes it): l itself when l is for that one platform, else the entry of
// l.Platforms for it. A lock without the platform's pins is stale.
func (l *Lock) ForPlatform(platform string) (*Lock, error) {
	if len(l.Platforms) == 0 {
		if l.Platform == platform {
			return l, nil
		}
		return nil, fmt.Errorf("kiln.lock is stale: it pins platform %s, but the spec builds %s; run kiln lock again", l.Platform, platform)
	}
	for _, p := range l.Platforms {
		if p.Platform == platform {
			return p, nil
		}
	}
	return nil, fmt.Errorf("kiln.lock is stale: it pins platforms %s, but not %s; run kiln lock again", l.Platform, platform)
}

// Resolution is what one step's resolution was made from.
type Resolution struct {
	// Step is the step's name.
	Step string `json:"step"`
	// Key is the hash of Inputs.
	Key string `json:"key"`
	// Inputs are the step's resolution inputs, by name (long or
	// credential-bearing values hashed, as in step keys).
	Inputs map[string]string `json:"inputs"`
}

// Step pins the layers of one build step.
type Step struct {
	// Name is the step's name: apt_packages, packages or code.
	Name string `json:"name"`
	// Key is the hash of the step's inputs, which a --locked build
	// computes again to find the step.
	Key string `json:"key"`
	// Layers are the digests of the step's layers, in image order.
	Layers []string `json:"layers"`
}

// Step returns the pinned step with the given key, if the lock has one.
func (l *Lock) Step(key string) (Step, bool) {
	for _, st := range l.Steps {
		if st.Key == key {
			return st, true
		}
	}
	return Step{}, false
}

// Parent pins the parent image.
type Parent struct {
	// Ref is the reference as the spec wrote it.
	Ref string `json:"ref"`
	// Digest is the platform image's manifest digest.
	Digest string `json:"digest"`
}

// Deb pins one Debian package, in installation order.
type Deb struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	SHA256       string `json:"sha256"`
	Size         int64  `json:"size"`
	URL          string `json:"url"`
}

// Wheel pins one wheel.
type Wheel struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Filename  string `json:"filename"`
	URL       string `json:"url"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size,omitempty"`
	Requested bool   `json:"requested,omitempty"`
	// BuiltFrom, for a wheel kiln built from a source distribution, is
	// that distribution. URL then names the wheel in the local cache of
	// the machine that built it: a --locked build on a machine whose
	// cache lacks the wheel builds it again from BuiltFrom and checks it
	// against SHA256.
	BuiltFrom *Sdist `json:"built_from,omitempty"`
}

// Sdist is a source distribution a wheel was built from.
type Sdist struct {
	Filename string `json:"filename"`
	URL      string `json:"url"`
	SHA256   string `json:"sha256,omitempty"`
	// Requires are the wheels of its build-system.requires that the wheel
	// was built with, so that building it again resolves nothing.
	Requires []Wheel `json:"requires,omitempty"`
}

// Marshal encodes l canonically (indented JSON, a trailing newline).
func (l *Lock) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Digest is the SHA-256 of the canonical encoding; it is part of the image
// tag of a --locked build.
func (l *Lock) Digest() (string, error) {
	b, err := l.Marshal()
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// Read reads and checks the lock file at path.
func Read(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read lock %s: no such file; run kiln lock first", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read lock %s: %w", path, err)
	}
	return parse(path, data)
}

// Parse checks and decodes a lock file's content (as Read does a file's).
func Parse(data []byte) (*Lock, error) { return parse(FileName, data) }

// parse decodes data, read from path (for errors), and checks it.
func parse(path string, data []byte) (*Lock, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("read lock %s: %w; regenerate it with kiln lock", path, err)
	}
	if l.Version != Version {
		return nil, fmt.Errorf("read lock %s: version %d, this kiln reads version %d; regenerate it with kiln lock", path, l.Version, Version)
	}
	if len(l.Platforms) == 0 {
		if err := check(path, &l); err != nil {
			return nil, err
		}
		return &l, nil
	}
	if l.Parent != (Parent{}) || len(l.Debs)+len(l.Wheels)+len(l.Steps)+len(l.Resolved) > 0 {
		return nil, fmt.Errorf("read lock %s: a lock for several platforms pins each in platforms, and nothing beside; regenerate it with kiln lock", path)
	}
	var names []string
	for i, p := range l.Platforms {
		if p == nil || p.Platform == "" || strings.Contains(p.Platform, ",") || len(p.Platforms) > 0 {
			return nil, fmt.Errorf("read lock %s: platforms[%d] is not the lock of one platform; regenerate it with kiln lock", path, i)
		}
		if err := check(path+" ("+p.Platform+")", p); err != nil {
			return nil, err
		}
		names = append(names, p.Platform)
	}
	if strings.Join(names, ",") != l.Platform {
		return nil, fmt.Errorf("read lock %s: platform %q, but platforms holds %s; regenerate it with kiln lock", path, l.Platform, strings.Join(names, ","))
	}
	return &l, nil
}

// check checks the lock of one platform, read from path.
func check(path string, l *Lock) error {
	if l.Parent.Digest == "" {
		return fmt.Errorf("read lock %s: no parent digest; regenerate it with kiln lock", path)
	}
	if err := checkPins(path, l); err != nil {
		return err
	}
	for _, d := range l.Debs {
		if d.Name == "" || len(d.SHA256) != 64 || d.URL == "" {
			return fmt.Errorf("read lock %s: package %q lacks a name, sha256 or url; regenerate it with kiln lock", path, d.Name)
		}
	}
	for _, w := range l.Wheels {
		if w.Name == "" || len(w.SHA256) != 64 || w.URL == "" || w.Filename == "" {
			return fmt.Errorf("read lock %s: wheel %q lacks a name, filename, sha256 or url; regenerate it with kiln lock", path, w.Name)
		}
		if sd := w.BuiltFrom; sd != nil {
			if sd.Filename == "" || sd.URL == "" || (sd.SHA256 != "" && !validSHA256(sd.SHA256)) {
				return fmt.Errorf("read lock %s: wheel %q: built_from lacks a filename or url, or has a malformed sha256; regenerate it with kiln lock", path, w.Name)
			}
			for _, r := range sd.Requires {
				if r.Name == "" || !validSHA256(r.SHA256) || r.URL == "" || r.Filename == "" || r.BuiltFrom != nil {
					return fmt.Errorf("read lock %s: wheel %q: build requirement %q lacks a name, filename, sha256 or url, or is itself built; regenerate it with kiln lock", path, w.Name, r.Name)
				}
			}
		}
	}
	for _, st := range l.Steps {
		if st.Name == "" || !validSHA256(st.Key) {
			return fmt.Errorf("read lock %s: step %q lacks a name or a key; regenerate it with kiln lock --with-layers", path, st.Name)
		}
		for _, d := range st.Layers {
			if hexPart, ok := strings.CutPrefix(d, "sha256:"); !ok || !validSHA256(hexPart) {
				return fmt.Errorf("read lock %s: step %q: layer %q is not a sha256 digest; regenerate it with kiln lock --with-layers", path, st.Name, d)
			}
		}
	}
	return nil
}

// Write writes l to path through a temporary file renamed into place.
func Write(path string, l *Lock) error {
	l.Version = Version
	b, err := l.Marshal()
	if err != nil {
		return fmt.Errorf("write lock %s: %w", path, err)
	}
	err = atomicfile.Write(path, atomicfile.Options{Pattern: "." + filepath.Base(path) + ".tmp-"}, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("write lock %s: %w", path, err)
	}
	return nil
}
