package build

import (
	"context"
	"encoding/json"
	"fmt"

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
	// python is the target interpreter, once detected.
	python *pytarget.Target
}

func newSession(ctx context.Context, p *Plan, o Options, remoteOpts []remote.Option) (*session, error) {
	if err := checkLock(p); err != nil {
		return nil, err
	}
	o.Cache.SetWarn(func(msg string) { o.logf("warning: %s", msg) })
	parent, err := resolveParent(ctx, p, o.Auth, remoteOpts)
	if err != nil {
		return nil, err
	}
	if !parent.Scratch() {
		o.logf("parent %s resolved to %s", parent.Ref, parent.Digest.DigestStr())
	}
	// Index and apt requests are bounded like registry ones (see
	// auth.FetchTransport): a server that never answers fails the build.
	o.HTTPTransport = auth.FetchTransport(o.HTTPTransport, o.Auth.Fetch)
	return &session{p: p, o: o, remoteOpts: remoteOpts, parent: parent}, nil
}

// runSteps builds (or reuses) every step's layers, in image order.
func (b *session) runSteps(ctx context.Context) error {
	b.loadRemoteCache(ctx)
	if err := b.aptStep(ctx); err != nil {
		return err
	}
	if err := b.pythonStep(ctx); err != nil {
		return err
	}
	return b.codeStep(ctx)
}

// buildLayers builds each source through the per-layer cache.
func (b *session) buildLayers(ctx context.Context, srcs ...layer.Source) ([]builtLayer, []cache.LayerInfo, error) {
	var layers []builtLayer
	var infos []cache.LayerInfo
	for _, src := range srcs {
		info, _, err := buildLayer(ctx, b.o, src)
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, builtLayer{layer: b.o.Cache.Layer(info), desc: src.Description(), kind: kindOf(src)})
		infos = append(infos, info)
	}
	return layers, infos, nil
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

// aptStep installs the Debian packages.
func (b *session) aptStep(ctx context.Context) error {
	if !wantsDebs(b.p) {
		return nil
	}
	s := b.p.Spec
	in := b.baseInputs()
	in["apt_packages"] = listValue(s.AptPackages)
	in["apt_sources"] = hashValue(listValue(s.AptSources))
	in["apt_install_recommends"] = fmt.Sprint(s.AptInstallRecommends)
	if b.p.Lock != nil {
		in["lock"] = jsonHash(b.p.Lock.Debs)
	}
	st := newStep(StepApt, in)
	if hit, err := b.reuse(st); err != nil || hit {
		return err
	}
	if err := b.pinDebs(ctx); err != nil {
		return err
	}
	fs, err := b.parentFS(ctx)
	if err != nil {
		return err
	}
	dl, err := debLayer(ctx, b.o, b.parent, fs, b.in.debs, b.p)
	if err != nil {
		return err
	}
	layers, infos, err := b.buildLayers(ctx, dl)
	if err != nil {
		return err
	}
	for _, w := range dl.Report.Warnings {
		b.o.logf("apt: warning: %s", w)
	}
	for _, pr := range dl.Report.Packages {
		for _, w := range pr.Warnings {
			b.o.logf("apt: warning: %s: %s", pr.Name, w)
		}
	}
	return b.record(st, layers, infos)
}

// pythonStep installs the wheels into the virtualenv (and checks
// python_version).
func (b *session) pythonStep(ctx context.Context) error {
	s := b.p.Spec
	if !needsPython(s) {
		return nil
	}
	if !wantsPython(s) {
		_, err := b.detectPython(ctx)
		return err
	}
	digest, err := requirementsDigest(s)
	if err != nil {
		return err
	}
	in := b.baseInputs()
	for _, st := range b.steps {
		if st.name == StepApt {
			in["apt_step"] = st.key // the interpreter may come from apt_packages
		}
	}
	in["packages"] = listValue(s.Packages)
	in["requirements"] = digest
	in["pip_index"] = urlsValue([]string{s.PipIndex})
	in["pip_extra_index_url"] = urlsValue(s.PipExtraIndexURL)
	in["python_version"] = s.PythonVersion
	if b.p.LocalWheels != "" {
		in["local_wheels"] = b.p.LocalWheels // their content, not only their names
	}
	if b.p.Lock != nil {
		in["lock"] = jsonHash(b.p.Lock.Wheels)
	}
	st := newStep(StepPython, in)
	if hit, err := b.reuse(st); err != nil || hit {
		return err
	}
	srcs, err := b.wheelSources(ctx)
	if err != nil {
		return err
	}
	layers, infos, err := b.buildLayers(ctx, srcs...)
	if err != nil {
		return err
	}
	return b.record(st, layers, infos)
}

// codeStep ships source_root and copy. Its key does not depend on the
// parent, so a new parent does not rebuild the code layer, unless a copy
// lands outside /root: there the parent's directory symlinks decide where
// files go (see codeThroughParent), so the parent's digest is in the key.
func (b *session) codeStep(ctx context.Context) error {
	code := b.p.Code
	if code == nil {
		return nil
	}
	in := map[string]string{
		"epoch":       fmt.Sprint(b.p.Epoch.Unix()),
		"compression": b.o.Compression.String(),
	}
	for _, f := range code.Entries {
		in["file:/"+f.Path] = fmt.Sprintf("%o %s%s", uint32(f.Mode), f.SHA256, f.Link)
	}
	through := b.throughParent()
	if through {
		in["parent"] = b.parent.Digest.DigestStr() // its directory symlinks place the files
	}
	st := newStep(StepCode, in)
	if hit, err := b.reuse(st); err != nil || hit {
		return err
	}
	if through {
		var err error
		if code, err = b.codeThroughParent(ctx, code); err != nil {
			return err
		}
	}
	layers, infos, err := b.buildLayers(ctx, code)
	if err != nil {
		return err
	}
	return b.record(st, layers, infos)
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

// Lock resolves every input of the plan and returns the lock that pins them.
// Debian packages are downloaded and their layer built (the target Python may
// come from them); no image is assembled or pushed. With o.LockLayers every
// step is also built from the pinned inputs and its layers recorded.
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
	if err := b.aptStep(ctx); err != nil {
		return nil, err
	}
	if err := b.pinDebs(ctx); err != nil {
		return nil, err
	}
	if err := b.pinWheels(ctx); err != nil {
		return nil, err
	}
	l := b.lock()
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
