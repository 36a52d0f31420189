package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/layer/wheelinstall"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/resolve/pylock"
	"github.com/kiln-build/kiln/pkg/resolve/pypi"
	"github.com/kiln-build/kiln/pkg/sandbox"
	"github.com/kiln-build/kiln/pkg/spec"
)

// StepProject is the step that installs the project itself.
const StepProject = "project"

// projectStep builds the wheel of the project in source_root (PEP 517, in
// the sandbox, network off) and installs it, not editable, into the
// virtualenv in a layer of its own after the dependencies: a code change
// rebuilds this layer, not the dependencies' (the layering uv's Docker
// guide recommends).
//
// Its key chains the earlier steps' keys with every file of source_root
// (path, mode, content hash), the sandbox format and the builder version.
type projectStep struct{}

func (projectStep) name() string { return StepProject }

// projectFiles returns the files of source_root as the build sees them
// (.dockerignore and the default excludes applied), under "src/".
func projectFiles(ctx context.Context, s *spec.Spec) ([]layer.File, error) {
	if s.SourceRoot == "" {
		return nil, &spec.Error{Pos: s.Position("install_project"), Key: "install_project", Msg: "needs source_root, the directory with the project's pyproject.toml", Hint: "set source_root: ., or remove install_project"}
	}
	if fi, err := os.Stat(filepath.Join(s.SourceRoot, "pyproject.toml")); err != nil || !fi.Mode().IsRegular() {
		return nil, &spec.Error{Pos: s.Position("install_project"), Key: "install_project", Msg: fmt.Sprintf("source_root %s has no pyproject.toml to build the project from", s.SourceRoot), Hint: "add a pyproject.toml with [build-system] and [project], or remove install_project"}
	}
	files, err := layer.Collect(ctx, []layer.Mapping{{Src: s.SourceRoot, Dest: "/src"}})
	if err != nil {
		return nil, &spec.Error{Pos: s.Position("source_root"), Key: "source_root", Msg: err.Error()}
	}
	return files, nil
}

func (projectStep) inputs(ctx context.Context, b *session) (map[string]string, bool, error) {
	s := b.p.Spec
	if !s.InstallProject {
		return nil, false, nil
	}
	if !wantsPython(s) {
		return nil, false, &spec.Error{Pos: s.Position("install_project"), Key: "install_project", Msg: "needs the project's dependencies installed: set requirements to its pyproject.toml (or a lock)", Hint: "add requirements: pyproject.toml"}
	}
	files, err := projectFiles(ctx, s)
	if err != nil {
		return nil, false, err
	}
	in := b.baseInputs()
	for _, st := range b.steps {
		in["step:"+st.name] = st.key // the interpreter, the venv, the build's indexes
	}
	for _, f := range files {
		in["file:/"+f.Path] = fmt.Sprintf("%o %s%s", uint32(f.Mode), f.SHA256, f.Link)
	}
	in["pip_index"] = urlsValue([]string{s.PipIndex})
	in["pip_extra_index_url"] = urlsValue(s.PipExtraIndexURL)
	in["sandbox"] = sandbox.FormatVersion
	in["builder"] = sdistBuilderVersion
	return in, true, nil
}

func (projectStep) pin(context.Context, *session) (*cache.Pins, error) { return nil, nil }

func (projectStep) layers(ctx context.Context, b *session) ([]layer.Source, error) {
	s := b.p.Spec
	files, err := projectFiles(ctx, s)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.SourceRoot, "pyproject.toml"))
	if err != nil {
		return nil, err
	}
	pp, err := pylock.ParsePyproject(filepath.Join(s.SourceRoot, "pyproject.toml"), data)
	if err != nil {
		return nil, &spec.Error{Pos: s.Position("install_project"), Key: "install_project", Msg: err.Error()}
	}
	if pp.Name == "" {
		return nil, &spec.Error{Pos: s.Position("install_project"), Key: "install_project", Msg: "the project's pyproject.toml has no [project] name", Hint: "add [project] name = \"...\""}
	}
	bs, err := buildSystemOf(data, "pyproject.toml")
	if err != nil {
		return nil, &spec.Error{Pos: s.Position("install_project"), Key: "install_project", Msg: err.Error()}
	}
	reqs, err := b.p.requirements()
	if err != nil {
		return nil, err
	}
	idx, err := b.indexes(reqs.opts)
	if err != nil {
		return nil, err
	}
	sb, err := b.newSdistBuilder(ctx, "project", idx)
	if err != nil {
		return nil, err
	}
	res, wheels, err := sb.buildRequirements(ctx, bs, "the project's pyproject.toml")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range res.Distributions {
		names = append(names, d.Name)
	}
	stage := func(root string) (string, error) {
		for _, f := range files {
			dst := filepath.Join(root, filepath.FromSlash(f.Path))
			switch {
			case f.Mode.IsDir():
				if err := os.MkdirAll(dst, 0o755); err != nil {
					return "", err
				}
			case f.Link != "":
				if err := os.Symlink(f.Link, dst); err != nil {
					return "", err
				}
			default:
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return "", err
				}
				if err := copyFile(f.Src, dst); err != nil {
					return "", err
				}
			}
		}
		return "/kiln-build/src", nil
	}
	built, err := sb.run(ctx, pp.Name, "", "source_root", stage, bs.backend, res.Distributions, wheels, names)
	if err != nil {
		return nil, fmt.Errorf("install_project: %w", err)
	}
	t := b.python
	pyver := fmt.Sprintf("%d.%d", t.Major, t.Minor)
	fnVersion := ""
	if parts := strings.Split(strings.TrimSuffix(built.Filename, ".whl"), "-"); len(parts) > 1 {
		fnVersion = parts[1]
	}
	return []layer.Source{&layer.Wheels{
		Scheme: wheelinstall.VenvScheme(strings.TrimPrefix(VenvPrefix, "/"), pyver),
		Wheels: []layer.WheelFile{{Name: pep508.NormalizeName(pp.Name), Version: fnVersion, Filename: built.Filename, SHA256: built.SHA256, Path: built.Path, Requested: true}},
		Epoch:  b.p.Epoch,
		Desc:   fmt.Sprintf("project %s (%s)", pp.Name, built.Filename),
	}}, nil
}

func (projectStep) resolution(*Plan) (map[string]string, error) { return nil, nil }

func (projectStep) config() *cache.ConfigDelta { return nil }

func (projectStep) warnings([]layer.Source) []string { return nil }

// buildRequirements resolves a build system's requirements as wheels for
// the target and downloads them.
func (sb *sdistBuilder) buildRequirements(ctx context.Context, bs buildSystem, what string) (pypi.Result, []string, error) {
	var reqs []pypi.Requirement
	for _, r := range bs.requires {
		pr, err := pep508.ParseRequirement(r)
		if err != nil {
			return pypi.Result{}, nil, fmt.Errorf("%s: build-system.requires %q: %w", what, r, err)
		}
		reqs = append(reqs, pypi.Requirement{Requirement: pr, Source: what + " build-system.requires"})
	}
	res, err := pypi.Resolve(ctx, pypi.Request{Requirements: reqs, Env: sb.env, Target: sb.target, Indexes: sb.idx})
	if err != nil {
		return pypi.Result{}, nil, fmt.Errorf("resolving the build requirements of %s (%s): %w", what, strings.Join(bs.requires, ", "), err)
	}
	var wheels []string
	for _, d := range res.Distributions {
		p, err := sb.idx[indexFor(sb.idx, d.URL)].Download(ctx, pypi.File{Filename: d.Filename, URL: d.URL, SHA256: d.SHA256, Size: d.Size})
		if err != nil {
			return pypi.Result{}, nil, fmt.Errorf("downloading build requirement %s: %w", d.Filename, err)
		}
		wheels = append(wheels, p)
	}
	return res, wheels, nil
}
