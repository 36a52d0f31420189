package spec

import (
	"bytes"
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
	var b bytes.Buffer
	b.WriteString(`{"v":`)
	writeJSON(&b, hashVersion)
	for i := range fields {
		f := &fields[i]
		v, ok := f.contentValue(s)
		if !ok {
			continue
		}
		b.WriteByte(',')
		writeJSON(&b, f.key)
		b.WriteByte(':')
		writeJSON(&b, v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// contentValue returns what key f contributes to the spec hash of s, and
// false for a key that does not describe the image's content.
func (f *field) contentValue(s *Spec) (any, bool) {
	var v any
	switch {
	case f.str != nil:
		v = *f.str(s)
	case f.list != nil:
		v = *f.list(s)
	case f.kv != nil:
		v = *f.kv(s)
	case f.copy != nil:
		v = *f.copy(s)
	case f.flag != nil:
		v = *f.flag(s)
	}
	switch f.content {
	case contentValue:
		return v, true
	case contentPresence:
		return v != "", true
	case contentCopyDests:
		type copyDest struct {
			Dest string `json:"dest"`
		}
		var dests []copyDest
		for _, c := range s.Copy {
			dests = append(dests, copyDest{Dest: c.Dest})
		}
		return dests, true
	case contentURLs:
		if u, ok := v.(string); ok {
			return withoutUserinfo(u), true
		}
		return withoutUserinfos(v.([]string)), true
	case contentPlatform:
		return firstNonEmpty(v.(string), DefaultPlatform), true
	case contentIfSet:
		str, _ := v.(string)
		return v, str != ""
	case contentCommandsSetting:
		on, _ := v.(bool)
		return v, on && len(s.Commands) > 0
	case contentCopyMode:
		none := sourceCopyModes[normalMode(s.SourceCopyMode)] == SourceCopyNone
		return SourceCopyNone, none
	case contentPresenceIfSet:
		str, _ := v.(string)
		return true, str != ""
	case contentBoolIfSet:
		on, _ := v.(bool)
		return v, on
	case contentListIfSet:
		l, _ := v.([]string)
		return v, len(l) > 0
	case notContent:
		return nil, false
	}
	panic(fmt.Sprintf("spec: key %s does not say how it enters the spec hash", f.key))
}

func writeJSON(b *bytes.Buffer, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("spec: marshal normalised spec: %v", err)) // only strings, bools and slices: cannot fail
	}
	b.Write(data)
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
