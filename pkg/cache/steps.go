package cache

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-build/kiln/pkg/lock"
)

// LayerKind says what a layer holds. Its values are stable: they are
// stored in step records and in the dev.kiln.cache.v1 annotation.
type LayerKind string

// The layer kinds.
const (
	// KindDebs is a layer of Debian packages.
	KindDebs LayerKind = "debs"
	// KindWheels is a layer of installed wheels (and the virtualenv).
	KindWheels LayerKind = "wheels"
	// KindFiles is a layer of files from the build context.
	KindFiles LayerKind = "files"
	// KindCommands is what the spec's commands changed, run in the sandbox.
	KindCommands LayerKind = "commands"
)

// Pins are what a step installs, as pinned: the Debian packages or the
// wheels, as kiln.lock would record them.
type Pins struct {
	Debs   []lock.Deb   `json:"debs,omitempty"`
	Wheels []lock.Wheel `json:"wheels,omitempty"`
}

// StepLayer is one layer a build step produced.
type StepLayer struct {
	LayerInfo
	// Description says what the layer holds (it becomes history).
	Description string `json:"description"`
	// Kind says what the layer holds.
	Kind LayerKind `json:"kind"`
}

// Step records what a build step with a given key produced: its layers and
// the inputs that made up the key, so a later miss can say which changed.
type Step struct {
	// Name is the step's name ("apt_packages", "packages", "code").
	Name string `json:"name"`
	// Key is the hash of Inputs.
	Key string `json:"key"`
	// Inputs are the key's inputs, by name.
	Inputs map[string]string `json:"inputs,omitempty"`
	// Layers are the step's layers, in image order.
	Layers []StepLayer `json:"layers"`
	// Pins are what the step installed (none for a step that pins
	// nothing), so that a hit knows them without resolving.
	Pins *Pins `json:"pins,omitempty"`
	// Warnings are the lines building the step's layers warned with; a
	// hit prints them again, so they are never lost to the cache.
	Warnings []string `json:"warnings,omitempty"`
	// Config is what the step contributes to the image config.
	Config *ConfigDelta `json:"config,omitempty"`
	// PinsBlob is set only where the record is published in an image's
	// dev.kiln.cache.v1 annotation and its Pins are too large for it: the
	// digest of a blob in the image's repository holding Pins as JSON
	// (Pins is then nil).
	PinsBlob string `json:"pins_blob,omitempty"`
}

// ConfigDelta is what a step contributes to the image config. A variable
// the spec's env sets is left as the spec sets it.
type ConfigDelta struct {
	// Env are K=V variables set (replacing the parent's).
	Env []string `json:"env,omitempty"`
	// PathPrepend are directories put first on PATH.
	PathPrepend []string `json:"path_prepend,omitempty"`
}

func (c *Cache) stepPath(key string) string {
	return filepath.Join(c.root, "steps", key[:2], key+".json")
}

func (c *Cache) lastPath(scope, name string) string {
	return filepath.Join(c.root, "last", safeName(scope)+"."+safeName(name)+".json")
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// LookupStep returns the step recorded under key if every one of its layer
// blobs is present.
func (c *Cache) LookupStep(key string) (Step, bool, error) {
	var st Step
	if ok, err := c.readRecord(c.stepPath, key, &st); !ok || err != nil || st.Key != key {
		return Step{}, false, err
	}
	for _, l := range st.Layers {
		if !c.present(l.LayerInfo) {
			return Step{}, false, nil
		}
	}
	return st, true, nil
}

// RecordStep records st under st.Key, and as the last step of its name in
// scope (for explaining the next miss).
func (c *Cache) RecordStep(scope string, st Step) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("cache: record step: %w", err)
	}
	for _, p := range []string{c.stepPath(st.Key), c.lastPath(scope, st.Name)} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("cache: record step: %w", err)
		}
		if err := c.writeAtomic(p, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return err
		}
	}
	return nil
}

// LastStep returns the step of the given name last recorded in scope.
func (c *Cache) LastStep(scope, name string) (Step, bool) {
	data, err := os.ReadFile(c.lastPath(scope, name))
	if err != nil {
		return Step{}, false
	}
	var st Step
	if json.Unmarshal(data, &st) != nil {
		return Step{}, false
	}
	return st, true
}

// touch marks a blob as used, for pruning by least recent use.
func (c *Cache) touch(p string) {
	now := time.Now()
	os.Chtimes(p, now, now)
}
