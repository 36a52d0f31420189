package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/resolve/pytarget"
)

// session carries one build's state from stage to stage: the resolved
// parent, the pinned inputs, the remote cache and the steps built so far.
type session struct {
	p          *Plan
	o          Options
	remoteOpts []remote.Option
	parent     *resolve.Parent
	in         inputs
	remote     *remoteCache
	steps      []*step
	built      []builtLayer
	// aptFallbackSaid is set once the build said why it emulates the
	// maintainer scripts.
	aptFallbackSaid bool
	// python is the target interpreter, once detected.
	python *pytarget.Target
}

func newSession(ctx context.Context, p *Plan, o Options, remoteOpts []remote.Option) (*session, error) {
	if err := checkLock(p); err != nil {
		return nil, err
	}
	o.Cache.SetWarn(func(msg string) { o.logf("warning: %s", msg) })
	if o.Bundle != nil {
		if p.Lock == nil {
			return nil, errors.New("a build from a bundle installs what its kiln.lock pins: add --locked")
		}
		if !o.Bundle.Matches(p.Lock) {
			return nil, errors.New("the bundle was written from another kiln.lock than this build's: write the bundle again with kiln bundle, or use the lock it holds")
		}
	}
	parent, err := resolveParent(ctx, p, o.Auth, o.Bundle, remoteOpts)
	if err != nil {
		return nil, err
	}
	if !parent.Scratch() {
		o.logf("parent %s resolved to %s", parent.Ref, parent.Digest.DigestStr())
	}
	// Index and apt requests are bounded and retried like registry ones
	// (see auth.RetryingFetchTransport): a server that never answers fails
	// the build, one flaky answer does not.
	if o.Bundle != nil {
		// Only the bundle serves files: nothing but the registry is reached.
		o.HTTPTransport = o.Bundle.Transport()
	}
	o.HTTPTransport = o.Meter.Transport(auth.RetryingFetchTransport(o.HTTPTransport, o.Auth.Fetch, o.Auth.Retry))
	b := &session{p: p, o: o, remoteOpts: remoteOpts, parent: parent}
	if o.Bundle != nil {
		if err := b.seedFromBundle(ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// configDeltas returns, in image order, what each step with layers
// contributes to the image config.
func (b *session) configDeltas() []*cache.ConfigDelta {
	var out []*cache.ConfigDelta
	for _, st := range b.steps {
		if st.config != nil && len(st.layers) > 0 {
			out = append(out, st.config)
		}
	}
	return out
}

// buildLayers builds each source through the per-layer cache.
func (b *session) buildLayers(ctx context.Context, srcs ...layer.Source) ([]builtLayer, []cache.LayerInfo, error) {
	var layers []builtLayer
	var infos []cache.LayerInfo
	for _, src := range srcs {
		if d, ok := src.(interface{ setBelow([]builtLayer) }); ok {
			d.setBelow(layers) // a layer made over the ones before it
		}
		tee, err := b.overlayTee(ctx, src, layers)
		if err != nil {
			return nil, nil, err
		}
		info, _, err := buildLayerTee(ctx, b.o, src, tee)
		var l v1.Layer
		if err == nil {
			l = b.o.Cache.Layer(info)
		}
		if tee != nil {
			tee.setLayer(l)
		}
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, builtLayer{layer: l, desc: src.Description(), kind: kindOf(src), overlay: tee})
		infos = append(infos, info)
	}
	return layers, infos, nil
}

// overlayTee starts reading the parent's files with src's layer on top as
// the layer is built, when the build will then look for Python in them:
// src is the first Debian packages' layer (detectPython reads the parent
// with those layers on top, and nothing else). below are the layers built
// before src in this step.
func (b *session) overlayTee(ctx context.Context, src layer.Source, below []builtLayer) (*overlayTee, error) {
	if _, ok := src.(*layer.Debs); !ok || b.python != nil || !needsPython(b.p.Spec) && !b.p.Spec.InstallProject {
		return nil, nil
	}
	for _, bl := range append(slices.Clone(b.built), below...) {
		if bl.kind == cache.KindDebs {
			return nil, nil
		}
	}
	fs, err := b.parentFS(ctx)
	if err != nil {
		return nil, err
	}
	return startOverlayTee(ctx, fs), nil
}

// kindOf says what src's layer holds.
func kindOf(src layer.Source) cache.LayerKind {
	switch src.(type) {
	case *layer.Debs, *aptConfigureLayer:
		return cache.KindDebs
	case *layer.Wheels:
		return cache.KindWheels
	case *commandsLayer:
		return cache.KindCommands
	}
	return cache.KindFiles
}

func jsonHash(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return "unencodable"
	}
	return hashValue(string(data))
}

// lock returns the lock pinning everything this session resolved.
func (b *session) lock() *lock.Lock {
	s := b.p.Spec
	l := &lock.Lock{
		Version:      lock.Version,
		Platform:     s.Platform,
		AptPackages:  s.AptPackages,
		Packages:     s.Packages,
		Requirements: b.in.requirements,
		Debs:         b.in.debs,
		Wheels:       b.in.wheels,
	}
	if b.parent.Scratch() {
		l.Parent = lock.Parent{Ref: "scratch", Digest: "scratch"}
	} else {
		l.Parent = lock.Parent{Ref: s.BaseImage, Digest: b.parent.Digest.DigestStr()}
	}
	return l
}

// Lock resolves every input of the plan and returns the lock that pins them:
// the build's loop stopped after pin. Debian packages are downloaded (the
// target Python may come from them, and is read from their files) but no
// layer is built or compressed; no image is assembled or pushed. With o.LockLayers every
// step is also built from the pinned inputs and its layers recorded.
func Lock(ctx context.Context, p *Plan, o Options) (*lock.Lock, error) {
	if len(p.Platforms) > 0 {
		l := &lock.Lock{Version: lock.Version, Platform: p.Spec.Platform}
		for _, sub := range p.Platforms {
			o.logf("platform %s:", sub.Spec.Platform)
			sl, err := Lock(ctx, sub, o)
			if err != nil {
				return nil, fmt.Errorf("platform %s: %w", sub.Spec.Platform, err)
			}
			l.Platforms = append(l.Platforms, sl)
		}
		return l, nil
	}
	remoteOpts, err := o.remoteOptions(ctx)
	if err != nil {
		return nil, err
	}
	q := *p
	q.Lock = nil
	b, err := newSession(ctx, &q, o, remoteOpts)
	if err != nil {
		return nil, err
	}
	if err := b.pinSteps(ctx); err != nil {
		return nil, err
	}
	l := b.lock()
	if l.Resolved, err = resolutions(&q); err != nil {
		return nil, err
	}
	if o.LockLayers {
		if err := lockLayers(ctx, p, o, remoteOpts, l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// lockLayers builds every step as `kiln build --locked` with l would, from
// the pinned inputs and with no cache (neither cache_from nor a cached
// step or layer), and records each step's key and layer digests in l.
func lockLayers(ctx context.Context, p *Plan, o Options, remoteOpts []remote.Option, l *lock.Lock) error {
	q := *p
	q.Lock = l
	o.Refresh = true
	b, err := newSession(ctx, &q, o, remoteOpts)
	if err != nil {
		return err
	}
	if err := b.runSteps(ctx); err != nil {
		return err
	}
	l.Steps = nil
	for _, st := range b.steps {
		l.Steps = append(l.Steps, lock.Step{Name: st.name, Key: st.key, Layers: digestsOf(st.layers)})
	}
	return nil
}
