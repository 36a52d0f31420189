package build

import (
	"context"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
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
}

// stepKinds are the build's steps, in image order: least to most often
// changed.
var stepKinds = []stepKind{aptStep{}, pythonStep{}, codeStep{}}

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
	if hit, err := b.reuse(st); err != nil || hit {
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
		b.o.logf("%s", w)
	}
	return b.record(st, layers, infos)
}
