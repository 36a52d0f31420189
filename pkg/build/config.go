package build

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specsv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/spec"
)

// DefaultWorkdir is ImageSpec's convention: the code lands in /root, which
// is also the working directory and on PYTHONPATH.
const DefaultWorkdir = "/root"

// assemble stacks the built layers on the parent and writes the config:
// env merged over the parent's, entrypoint/cmd, workdir, user, labels,
// history, a fixed creation time and the base-image annotations.
func assemble(parent *resolve.Parent, layers []builtLayer, deltas []*cache.ConfigDelta, p *Plan) (v1.Image, error) {
	s := p.Spec
	base := parent.Image
	mf, err := base.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read parent manifest: %w", err)
	}
	docker := mf.MediaType == types.DockerManifestSchema2
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read parent config: %w", err)
	}
	cf = cf.DeepCopy()

	// History must have one non-empty entry per parent layer for tools that
	// pair them up; a parent built without history gets placeholders.
	nonEmpty := 0
	for _, h := range cf.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(cf.RootFS.DiffIDs) {
		cf.History = nil
		for range cf.RootFS.DiffIDs {
			cf.History = append(cf.History, v1.History{Created: cf.Created, CreatedBy: "parent layer"})
		}
	}
	base, err = mutate.ConfigFile(base, cf)
	if err != nil {
		return nil, fmt.Errorf("copy parent config: %w", err)
	}

	created := v1.Time{Time: p.Epoch}
	var adds []mutate.Addendum
	for _, l := range layers {
		add := mutate.Addendum{
			Layer:   l.layer,
			History: v1.History{Created: created, CreatedBy: "kiln: " + l.desc, Comment: "kiln"},
		}
		if docker {
			if mt, _ := l.layer.MediaType(); mt == types.OCILayer {
				add.MediaType = types.DockerLayer
			}
		}
		adds = append(adds, add)
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}

	cf, err = img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cf = cf.DeepCopy()
	plat, err := p.targetPlatform()
	if err != nil {
		return nil, err
	}
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Created = created
	c := &cf.Config
	c.Env = mergeEnv(c.Env, s)
	for _, d := range deltas {
		c.Env = applyDelta(c.Env, s, d)
	}
	c.WorkingDir = DefaultWorkdir
	if s.Workdir != "" {
		c.WorkingDir = s.Workdir
	}
	if s.Script != "" && s.Entrypoint == nil && s.Cmd == nil {
		// The script is the default program.
		c.Entrypoint, c.Cmd = []string{"python3", s.ScriptPath()}, nil
	}
	if s.Entrypoint != nil {
		c.Entrypoint = nilIfEmpty(s.Entrypoint)
		if s.Cmd == nil {
			c.Cmd = nil // as in a Dockerfile, a new ENTRYPOINT drops the parent's CMD
		}
	}
	if s.Cmd != nil {
		c.Cmd = nilIfEmpty(s.Cmd)
	}
	if s.User != "" {
		c.User = s.User
	}
	if len(s.Labels) > 0 {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range s.Labels {
			c.Labels[kv.Key] = kv.Value
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	if !parent.Scratch() {
		img = mutate.Annotations(img, map[string]string{
			specsv1.AnnotationBaseImageName:   parent.Ref.Context().Name() + tagSuffix(parent),
			specsv1.AnnotationBaseImageDigest: parent.Digest.DigestStr(),
		}).(v1.Image)
	}
	return img, nil
}

func tagSuffix(p *resolve.Parent) string {
	if t, ok := p.Ref.(interface{ TagStr() string }); ok {
		return ":" + t.TagStr()
	}
	return ""
}

// mergeEnv sets the spec's env over the parent's, in place for names the
// parent has (so PATH stays unless overridden), and adds PYTHONPATH=/root
// (ahead of any parent PYTHONPATH) unless the spec sets PYTHONPATH.
func mergeEnv(parent []string, s *spec.Spec) []string {
	env := append([]string{}, parent...)
	set := func(k, v string) { env = setEnv(env, k, v) }
	if _, ok := s.EnvValue("PYTHONPATH"); !ok {
		pp := DefaultWorkdir
		for _, e := range parent {
			if v, ok := strings.CutPrefix(e, "PYTHONPATH="); ok && v != "" {
				pp += ":" + v
			}
		}
		set("PYTHONPATH", pp)
	}
	for _, kv := range s.Env {
		set(kv.Key, kv.Value)
	}
	return env
}

// setEnv sets k to v in env: in place when env has k, else appended.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// applyDelta applies a step's config delta to env: each variable set
// (replaced, or appended when env lacks it) unless the spec sets it, and
// the directories put first on PATH (unless the spec sets PATH itself; a
// default PATH when env has none).
func applyDelta(env []string, s *spec.Spec, d *cache.ConfigDelta) []string {
	if d == nil {
		return env
	}
	env = append([]string{}, env...)
	var appended []string
	for _, kv := range d.Env {
		k, _, _ := strings.Cut(kv, "=")
		found := false
		for i, e := range env {
			if name, _, _ := strings.Cut(e, "="); name == k {
				found = true
				if _, userSet := s.EnvValue(k); !userSet {
					env[i] = kv
				}
			}
		}
		if !found {
			appended = append(appended, kv)
		}
	}
	if len(d.PathPrepend) > 0 {
		prefix := strings.Join(d.PathPrepend, ":")
		for i, e := range env {
			if val, ok := strings.CutPrefix(e, "PATH="); ok {
				if _, userSet := s.EnvValue("PATH"); !userSet {
					env[i] = "PATH=" + prefix + ":" + val
				}
			}
		}
	}
	env = append(env, appended...)
	if len(d.PathPrepend) > 0 && !hasPath(env) {
		env = append(env, "PATH="+strings.Join(d.PathPrepend, ":")+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return env
}

func hasPath(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return true
		}
	}
	return false
}

func nilIfEmpty(v []string) []string {
	if len(v) == 0 {
		return nil
	}
	return append([]string{}, v...)
}
