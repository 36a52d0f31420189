package spec

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// hashVersion changes whenever the normalised form changes, so that a new
// kiln never reuses a tag computed by an older one for different content.
const hashVersion = "kiln-spec-v1"

// Normalized returns a canonical encoding of every key that affects the
// image's content. Host paths are left out (the files they name are hashed by
// content instead), and so are keys that only say where the image goes
// (registry, name, image, tag_format, cache_from, registry_config).
func (s *Spec) Normalized() []byte {
	s = s.emptyAsAbsent()
	type copyDest struct {
		Dest string `json:"dest"`
	}
	var copies []copyDest
	for _, c := range s.Copy {
		copies = append(copies, copyDest{Dest: c.Dest})
	}
	norm := struct {
		Version          string     `json:"v"`
		BaseImage        string     `json:"base_image"`
		Platform         string     `json:"platform"`
		Env              []KV       `json:"env"`
		SourceRoot       bool       `json:"source_root"`
		Copy             []copyDest `json:"copy"`
		Entrypoint       []string   `json:"entrypoint"`
		Cmd              []string   `json:"cmd"`
		Workdir          string     `json:"workdir"`
		User             string     `json:"user"`
		Labels           []KV       `json:"labels"`
		PythonVersion    string     `json:"python_version"`
		Packages         []string   `json:"packages"`
		Requirements     bool       `json:"requirements"`
		PipIndex         string     `json:"pip_index"`
		PipExtraIndexURL []string   `json:"pip_extra_index_url"`
		AptPackages      []string   `json:"apt_packages"`
		AptSources       []string   `json:"apt_sources"`
		AptRecommends    bool       `json:"apt_install_recommends"`
		Commands         []string   `json:"commands"`
		// The commands' settings count only with commands, and are left
		// out when off, so that they change no tag of a spec without
		// commands. The time limit changes no content and is left out.
		CommandsNetwork   bool `json:"commands_network,omitempty"`
		CommandsAfterCode bool `json:"commands_after_code,omitempty"`
	}{
		Version:          hashVersion,
		BaseImage:        s.BaseImage,
		Platform:         firstNonEmpty(s.Platform, DefaultPlatform),
		Env:              s.Env,
		SourceRoot:       s.SourceRoot != "",
		Copy:             copies,
		Entrypoint:       s.Entrypoint,
		Cmd:              s.Cmd,
		Workdir:          s.Workdir,
		User:             s.User,
		Labels:           s.Labels,
		PythonVersion:    s.PythonVersion,
		Packages:         s.Packages,
		Requirements:     s.Requirements != "",
		PipIndex:         withoutUserinfo(s.PipIndex),
		PipExtraIndexURL: withoutUserinfos(s.PipExtraIndexURL),
		AptPackages:      s.AptPackages,
		AptSources:       s.AptSources,
		AptRecommends:    s.AptInstallRecommends,
		Commands:         s.Commands,
	}
	if len(s.Commands) > 0 {
		norm.CommandsNetwork = s.CommandsNetwork
		norm.CommandsAfterCode = s.CommandsAfterCode
	}
	b, err := json.Marshal(norm)
	if err != nil {
		panic(fmt.Sprintf("spec: marshal normalised spec: %v", err)) // only strings and slices: cannot fail
	}
	return b
}

// withoutUserinfo returns u without its user information: the tag is
// published, and nothing derived from a credential may be (a hash of a URL
// holding a password is recovered with a dictionary).
func withoutUserinfo(u string) string {
	pu, err := url.Parse(u)
	if err != nil || pu.User == nil {
		return u
	}
	pu.User = nil
	return pu.String()
}

func withoutUserinfos(us []string) []string {
	if us == nil {
		return nil
	}
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, withoutUserinfo(u))
	}
	return out
}

// Tag formats the image tag from the spec hash using tag_format.
func (s *Spec) Tag(specHash string) string {
	if s.TagFormat == "" {
		return specHash
	}
	return strings.ReplaceAll(s.TagFormat, "{spec_hash}", specHash)
}

// Reference returns the image reference for the given spec hash: `image`
// when set (with the computed tag added when it has none), else
// registry/name:tag. Without a registry the reference has no host and is
// only used to name local outputs. opts are passed to the name parser (for
// example name.Insecure).
func (s *Spec) Reference(specHash string, opts ...name.Option) (name.Reference, error) {
	tag := s.Tag(specHash)
	if s.Image != "" {
		ref, err := name.ParseReference(s.Image, opts...)
		if err != nil {
			return nil, s.errorf("image", "write a reference like registry.example/repo:tag", "%q: %v", s.Image, err)
		}
		if hasExplicitTagOrDigest(s.Image) {
			return ref, nil
		}
		return ref.Context().Tag(tag), nil
	}
	repo := s.Name
	if s.Registry != "" {
		repo = strings.TrimSuffix(s.Registry, "/") + "/" + s.Name
	}
	if _, err := name.NewRepository(repo, opts...); err != nil {
		return nil, s.errorf("name", "check name and registry", "%q is not a valid repository: %v", repo, err)
	}
	t, err := name.NewTag(repo+":"+tag, opts...)
	if err != nil {
		return nil, s.errorf("tag_format", fmt.Sprintf("tags are at most %d letters, digits, _ . and -", maxTagLen), "the tag %q (%d characters) is not a valid tag: %v", tag, len(tag), err)
	}
	return t, nil
}

// HasRegistry reports whether the spec names a registry to push to.
func (s *Spec) HasRegistry() bool {
	if s.Registry != "" {
		return true
	}
	if s.Image == "" {
		return false
	}
	first, _, ok := strings.Cut(s.Image, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// hasExplicitTagOrDigest reports whether a reference string names a tag or
// digest (a ':' after the last '/', or an '@').
func hasExplicitTagOrDigest(ref string) bool {
	if strings.Contains(ref, "@") {
		return true
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	return strings.Contains(last, ":")
}

// emptyAsAbsent returns s, or a copy of it whose lists and mappings given
// as [] or {} are nil: an empty one means what an absent one does, and must
// hash the same. Entrypoint and cmd are kept: for them [] ("clear the
// parent's") differs from absent ("keep it").
func (s *Spec) emptyAsAbsent() *Spec {
	c := *s
	for i := range fields {
		f := &fields[i]
		switch f.kind {
		case kindList:
			if l := f.list(&c); *l != nil && len(*l) == 0 {
				*l = nil
			}
		case kindMap:
			if m := f.kv(&c); *m != nil && len(*m) == 0 {
				*m = nil
			}
		case kindCopy:
			if cp := f.copy(&c); *cp != nil && len(*cp) == 0 {
				*cp = nil
			}
		}
	}
	return &c
}
