package build

import (
	"context"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
)

// pythonStep installs the wheels into the virtualenv (and checks
// python_version).
type pythonStep struct{}

func (pythonStep) name() string { return StepPython }

func (pythonStep) inputs(_ context.Context, b *session) (map[string]string, bool, error) {
	s := b.p.Spec
	if !needsPython(s) {
		return nil, false, nil
	}
	if !wantsPython(s) {
		return nil, true, nil // python_version only: checked when pinned
	}
	reqs, err := b.p.requirements()
	if err != nil {
		return nil, false, err
	}
	digest := reqs.digest
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
	return in, true, nil
}

func (pythonStep) pin(ctx context.Context, b *session) (*cache.Pins, error) {
	if err := b.pinWheels(ctx); err != nil {
		return nil, err
	}
	if !wantsPython(b.p.Spec) {
		return nil, nil
	}
	return &cache.Pins{Wheels: b.in.wheels}, nil
}

func (pythonStep) layers(ctx context.Context, b *session) ([]layer.Source, error) {
	return b.wheelSources(ctx)
}

func (pythonStep) resolution(p *Plan) (map[string]string, error) {
	s := p.Spec
	if !wantsPython(s) {
		return nil, nil
	}
	reqs, err := p.requirements()
	if err != nil {
		return nil, err
	}
	digest := reqs.digest
	in := map[string]string{
		"platform":            s.Platform,
		"base_image":          s.BaseImage,
		"apt_packages":        listValue(s.AptPackages), // they may bring the interpreter
		"packages":            listValue(s.Packages),
		"requirements":        digest,
		"pip_index":           urlsValue([]string{s.PipIndex}),
		"pip_extra_index_url": urlsValue(s.PipExtraIndexURL),
		"python_version":      s.PythonVersion,
	}
	if p.LocalWheels != "" {
		in["local_wheels"] = p.LocalWheels
	}
	return in, nil
}

// config: the virtualenv is the image's Python (VIRTUAL_ENV, and its bin
// first on PATH).
func (pythonStep) config() *cache.ConfigDelta {
	return &cache.ConfigDelta{Env: []string{"VIRTUAL_ENV=" + VenvPrefix}, PathPrepend: []string{VenvPrefix + "/bin"}}
}

func (pythonStep) warnings([]layer.Source) []string { return nil }
