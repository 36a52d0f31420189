package build

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/resolve/pytarget"
)

// session carries one build's state from stage to stage: the resolved
// parent, the pinned inputs and the layers built so far.
type session struct {
	p          *Plan
	o          Options
	remoteOpts []remote.Option
	parent     *resolve.Parent
	in         *inputs
	built      []builtLayer
	// python is the target interpreter, once detected.
	python *pytarget.Target
}

func newSession(ctx context.Context, p *Plan, o Options, remoteOpts []remote.Option) (*session, error) {
	parent, err := resolveParent(ctx, p, o.Auth, remoteOpts)
	if err != nil {
		return nil, err
	}
	if !parent.Scratch() {
		o.logf("parent %s resolved to %s", parent.Ref, parent.Digest.DigestStr())
	}
	return &session{p: p, o: o, remoteOpts: remoteOpts, parent: parent}, nil
}

// pin resolves the Debian packages (or takes them from the lock) and builds
// their layer, which later stages may need to look into.
func (b *session) pin(ctx context.Context) error {
	in, err := resolveInputs(ctx, b.p, b.o, b.parent)
	if err != nil {
		return err
	}
	b.in = in
	if len(in.debs) == 0 {
		return nil
	}
	dl, err := debLayer(ctx, b.o, b.parent, in.fs, in.debs, b.p)
	if err != nil {
		return err
	}
	return b.add(ctx, dl)
}

// add builds src through the cache and appends it to the image's layers.
func (b *session) add(ctx context.Context, src layer.Source) error {
	l, reused, err := buildLayer(ctx, b.o, src)
	if err != nil {
		return err
	}
	d, _ := l.Digest()
	how := "built"
	if reused {
		how = "reused from local cache"
	}
	b.o.logf("layer %s: %s (%s)", src.Description(), d.String()[:19], how)
	if dl, ok := src.(*layer.Debs); ok && !reused {
		for _, w := range dl.Report.Warnings {
			b.o.logf("apt: warning: %s", w)
		}
		for _, pr := range dl.Report.Packages {
			for _, w := range pr.Warnings {
				b.o.logf("apt: warning: %s: %s", pr.Name, w)
			}
		}
	}
	b.built = append(b.built, builtLayer{layer: l, desc: src.Description(), kind: kindOf(src)})
	return nil
}

func kindOf(src layer.Source) string {
	switch src.(type) {
	case *layer.Debs:
		return "debs"
	case *layer.Wheels:
		return "wheels"
	}
	return "files"
}

// lock returns the lock pinning everything this session resolved.
func (b *session) lock() *lock.Lock {
	s := b.p.Spec
	l := &lock.Lock{
		Version:     lock.Version,
		Platform:    s.Platform,
		AptPackages: s.AptPackages,
		Packages:    s.Packages,
		Debs:        b.in.debs,
		Wheels:      b.in.wheels,
	}
	if b.in.requirements != "" {
		l.Requirements = b.in.requirements
	}
	if b.parent.Scratch() {
		l.Parent = lock.Parent{Ref: "scratch", Digest: "scratch"}
	} else {
		l.Parent = lock.Parent{Ref: s.BaseImage, Digest: b.parent.Digest.DigestStr()}
	}
	return l
}

// Lock resolves every input of the plan and returns the lock that pins them.
// Debian packages are downloaded (the target Python may come from them);
// no image is assembled or pushed.
func Lock(ctx context.Context, p *Plan, o Options) (*lock.Lock, error) {
	remoteOpts, err := o.Auth.RemoteOptions(ctx)
	if err != nil {
		return nil, err
	}
	q := *p
	q.Lock = nil
	b, err := newSession(ctx, &q, o, remoteOpts)
	if err != nil {
		return nil, err
	}
	if err := b.pin(ctx); err != nil {
		return nil, err
	}
	if err := b.pinWheels(ctx); err != nil {
		return nil, err
	}
	if b.in.wheels == nil && len(p.Spec.Packages) > 0 {
		return nil, fmt.Errorf("lock: internal error: packages were not resolved")
	}
	return b.lock(), nil
}
