package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/lock"
)

// stepKind is one kind of build step. The build runs every kind in
// stepKinds, in order, through the same loop (runStep):
//
//	inputs -> key -> reuse (local cache, then cache_from) -> pin -> layers -> build -> record
//
// A new kind of step is a new file beside step_apt.go, step_python.go and
// step_code.go, and one line in stepKinds.
type stepKind interface {
	// name is the step's name, as records and --explain show it.
	name() string
	// inputs returns the step's declared inputs, from which its key is
	// computed, and whether the step runs for this build at all. A step
	// that runs with no inputs (nil) has no key and no layers: it is only
	// pinned (the python_version check).
	inputs(ctx context.Context, b *session) (in map[string]string, run bool, err error)
	// pin resolves what the step installs (or takes it from kiln.lock) and
	// returns it, nil when the step pins nothing.
	pin(ctx context.Context, b *session) (*cache.Pins, error)
	// layers describes the layers the step produces from its pins.
	layers(ctx context.Context, b *session) ([]layer.Source, error)
	// warnings returns the warning lines building srcs gave.
	warnings(srcs []layer.Source) []string
	// config is what the step, when it has layers, contributes to the
	// image config (nil for nothing).
	config() *cache.ConfigDelta
	// resolution returns the inputs that shape what pin resolves, nil for
	// a step that resolves nothing; kiln.lock records them, and a
	// --locked build whose spec gives others is refused as stale.
	resolution(p *Plan) (map[string]string, error)
}

// stepKinds are the build's steps, in image order: least to most often
// changed.
// The commands run before the code (so that a code change does not run
// them again) unless commands_after_code puts them after it.
var stepKinds = []stepKind{aptStep{}, pythonStep{}, projectStep{}, commandsStep{}, codeStep{}, commandsStep{afterCode: true}}

// runSteps builds (or reuses) every step's layers, in image order.
func (b *session) runSteps(ctx context.Context) error {
	b.loadRemoteCache(ctx)
	for _, k := range stepKinds {
		if err := b.runStep(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// runStep runs one step: its key, a cache hit if there is one, else pin,
// build and record.
func (b *session) runStep(ctx context.Context, k stepKind) error {
	in, run, err := k.inputs(ctx, b)
	if err != nil || !run {
		return err
	}
	if in == nil {
		_, err := k.pin(ctx, b)
		return err
	}
	st := newStep(k.name(), in)
	st.config = k.config()
	if hit, err := b.reuse(ctx, st); err != nil || hit {
		return err
	}
	pins, err := k.pin(ctx, b)
	if err != nil {
		return err
	}
	srcs, err := k.layers(ctx, b)
	if err != nil {
		return err
	}
	layers, infos, err := b.buildLayers(ctx, srcs...)
	if err != nil {
		return err
	}
	st.pins = pins
	st.warnings = k.warnings(srcs)
	for _, w := range st.warnings {
		b.logWarning(w, "")
	}
	return b.record(st, layers, infos)
}

// pinSteps runs the loop up to pin, for kiln lock: no step is looked up in
// a cache and no layer is built.
func (b *session) pinSteps(ctx context.Context) error {
	for _, k := range stepKinds {
		_, run, err := k.inputs(ctx, b)
		if err != nil {
			return err
		}
		if !run {
			continue
		}
		if _, err := k.pin(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// resolutions returns what each step's resolution is made from, with its
// key, for kiln.lock.
func resolutions(p *Plan) ([]lock.Resolution, error) {
	var out []lock.Resolution
	for _, k := range stepKinds {
		in, err := k.resolution(p)
		if err != nil {
			return nil, err
		}
		if in != nil {
			out = append(out, lock.Resolution{Step: k.name(), Key: resolutionKey(k.name(), in), Inputs: in})
		}
	}
	return out, nil
}

// resolutionKey hashes a step's resolution inputs (sorted by name, each
// field NUL-terminated). Unlike a step key it does not hold the layer
// format version: a new layer format does not make a lock stale.
func resolutionKey(name string, in map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", name)
	for _, k := range sortedKeys(in) {
		fmt.Fprintf(h, "%s\x00%s\x00", k, in[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkResolutions fails when kiln.lock was resolved from other inputs
// than the spec gives now, naming the inputs that changed. A lock that
// records no resolutions (made by an older kiln) is not checked here.
func checkResolutions(p *Plan) error {
	if p.Lock == nil || len(p.Lock.Resolved) == 0 {
		return nil
	}
	cur, err := resolutions(p)
	if err != nil {
		return err
	}
	recorded := map[string]lock.Resolution{}
	for _, r := range p.Lock.Resolved {
		recorded[r.Step] = r
	}
	for _, r := range cur {
		old, ok := recorded[r.Step]
		if !ok {
			return fmt.Errorf("kiln.lock is stale: it resolved no step %s, which the spec now has; run kiln lock again", r.Step)
		}
		if old.Key != r.Key {
			changed := diffInputs(old.Inputs, r.Inputs)
			if len(changed) == 0 {
				changed = []string{"its inputs"}
			}
			return fmt.Errorf("kiln.lock is stale: %s changed since it was made (step %s); run kiln lock again", strings.Join(changed, ", "), r.Step)
		}
		delete(recorded, r.Step)
	}
	for _, old := range p.Lock.Resolved {
		if _, ok := recorded[old.Step]; ok {
			return fmt.Errorf("kiln.lock is stale: it resolved step %s, which the spec no longer has; run kiln lock again", old.Step)
		}
	}
	return nil
}
