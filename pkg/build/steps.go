package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
)

// Step names, in image order: least to most often changed.
const (
	StepApt    = "apt_packages"
	StepPython = "packages"
	StepCode   = "code"
)

// CacheAnnotation is the manifest annotation in which kiln records, for each
// step of the build, its key, its inputs and its layers, so that the next
// build on a fresh machine can reuse those layers by digest from the
// registry (cache_from) without downloading them.
const CacheAnnotation = "dev.kiln.cache.v1"

// DefaultCacheTag is the tag in the target repository that kiln reads as
// its cache and moves to each new build when the spec names no cache_from.
const DefaultCacheTag = "kiln-cache"

// How a step's layers were obtained.
const (
	HowBuilt   = "built"
	HowLocal   = "reused from the local cache"
	HowRemote  = "reused from cache_from"
	HowSkipped = "found in the registry"
)

// step is one stage of the build with a key computed from its declared
// inputs, so a hit needs no resolution.
type step struct {
	name   string
	inputs map[string]string
	key    string
	// how says where the layers came from, once known; changed lists the
	// inputs that differ from the last build's, for a miss.
	how     string
	changed []string
	layers  []builtLayer
}

// newStep computes the key of a step from its inputs (sorted by name, each
// field NUL-terminated).
func newStep(name string, inputs map[string]string) *step {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", layer.FormatVersion, name)
	for _, k := range sortedKeys(inputs) {
		fmt.Fprintf(h, "%s\x00%s\x00", k, inputs[k])
	}
	return &step{name: name, inputs: inputs, key: hex.EncodeToString(h.Sum(nil))}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// hashValue reduces a value that may carry secrets or be long to a hash.
func hashValue(v string) string {
	s := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(s[:8])
}

// listValue joins a list for a step input.
func listValue(v []string) string { return strings.Join(v, "\n") }

// urlsValue gives index or mirror URLs without their user information.
// Nothing derived from a credential is part of a step's inputs, which are
// published in the image's cache annotation: a hash of a URL holding a
// password is recovered with a dictionary. Changing only a credential does
// not change what is installed, so it rightly keeps the key.
func urlsValue(urls []string) string {
	var shown []string
	for _, u := range urls {
		shown = append(shown, withoutUserinfo(u))
	}
	return listValue(shown)
}

// withoutUserinfo returns raw with the user information (everything
// before the last @ of its authority) removed, even when raw does not
// parse as a URL.
func withoutUserinfo(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User == nil {
			return raw
		}
		u.User = nil
		return u.String()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = authority[i+1:]
	}
	if hasPath {
		return scheme + "://" + authority + "/" + path
	}
	return scheme + "://" + authority
}

// baseInputs are the inputs every step shares.
func (b *session) baseInputs() map[string]string {
	m := map[string]string{
		"platform":    b.p.Spec.Platform,
		"epoch":       fmt.Sprint(b.p.Epoch.Unix()),
		"compression": b.o.Compression.String(),
	}
	if !b.parent.Scratch() {
		m["parent"] = b.parent.Digest.DigestStr()
	}
	return m
}

// remoteCache is what a cache image records: steps by key, with layers that
// can be mounted from its repository.
type remoteCache struct {
	ref   name.Reference
	steps map[string]remoteStep
	img   v1.Image
}

// remoteStep is one step in the CacheAnnotation.
type remoteStep struct {
	Name   string            `json:"name"`
	Key    string            `json:"key"`
	Inputs map[string]string `json:"inputs,omitempty"`
	Layers []remoteLayer     `json:"layers"`
}

type remoteLayer struct {
	Digest      string `json:"digest"`
	Description string `json:"description"`
	Kind        string `json:"kind"`
}

// cacheRef is the image kiln reads its remote cache from: cache_from, or
// the default cache tag in the target repository.
func (b *session) cacheRef() (name.Reference, bool) {
	s := b.p.Spec
	if s.CacheFrom != "" {
		ref, err := name.ParseReference(s.CacheFrom, b.o.Auth.NameOptions()...)
		if err != nil {
			return nil, false
		}
		return ref, true
	}
	if !s.HasRegistry() {
		return nil, false
	}
	return b.p.Ref.Context().Tag(DefaultCacheTag), true
}

// loadRemoteCache reads the cache image's manifest and config (never its
// layers). A missing cache image is no error: the first build has none.
func (b *session) loadRemoteCache(ctx context.Context) {
	if b.o.Refresh {
		return
	}
	ref, ok := b.cacheRef()
	if !ok {
		return
	}
	plat, err := b.p.Spec.TargetPlatform()
	if err != nil {
		return
	}
	img, err := remote.Image(ref, append(b.remoteOpts, remote.WithPlatform(*plat))...)
	if err != nil {
		if !IsNotFound(err) {
			b.o.logf("cache: cannot read %s (%v); building without it", ref, err)
		}
		return
	}
	m, err := img.Manifest()
	if err != nil {
		b.o.logf("cache: cannot read %s (%v); building without it", ref, err)
		return
	}
	var steps []remoteStep
	if raw := m.Annotations[CacheAnnotation]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &steps); err != nil {
			b.o.logf("cache: %s has an unreadable %s annotation; building without it", ref, CacheAnnotation)
			return
		}
	}
	rc := &remoteCache{ref: ref, steps: map[string]remoteStep{}, img: img}
	for _, st := range steps {
		rc.steps[st.Key] = st
	}
	b.remote = rc
	b.o.logf("cache: %s records %d steps", ref, len(steps))
}

// reuse looks st up in the local cache, then in the remote cache, and on a
// hit appends its layers to the image. It reports whether it hit.
func (b *session) reuse(st *step) (bool, error) {
	if b.o.Refresh {
		return false, nil
	}
	if rec, ok, err := b.o.Cache.LookupStep(st.key); err != nil {
		return false, err
	} else if ok {
		for _, l := range rec.Layers {
			st.layers = append(st.layers, builtLayer{layer: b.o.Cache.Layer(l.LayerInfo), desc: l.Description, kind: l.Kind})
		}
		st.how = HowLocal
		b.finish(st)
		return true, nil
	}
	if b.remote != nil {
		if rs, ok := b.remote.steps[st.key]; ok {
			var layers []builtLayer
			for _, rl := range rs.Layers {
				h, err := v1.NewHash(rl.Digest)
				if err != nil {
					layers = nil
					break
				}
				l, err := b.remote.img.LayerByDigest(h)
				if err != nil {
					layers = nil
					break
				}
				layers = append(layers, builtLayer{layer: l, desc: rl.Description, kind: rl.Kind})
			}
			if layers != nil {
				st.layers = layers
				st.how = HowRemote
				b.finish(st)
				return true, nil
			}
		}
	}
	return false, nil
}

// record stores a built step in the local cache and appends its layers.
func (b *session) record(st *step, layers []builtLayer, infos []cache.LayerInfo) error {
	st.layers = layers
	st.how = HowBuilt
	rec := cache.Step{Name: st.name, Key: st.key, Inputs: st.inputs}
	for i, l := range layers {
		rec.Layers = append(rec.Layers, cache.StepLayer{LayerInfo: infos[i], Description: l.desc, Kind: l.kind})
	}
	if last, ok := b.lastStep(st.name); ok {
		st.changed = diffInputs(last, st.inputs)
	}
	if err := b.o.Cache.RecordStep(b.scope(), rec); err != nil {
		return err
	}
	b.finish(st)
	return nil
}

// lastStep is the previous build's step of this name: from the remote cache
// when there is one, else from the local cache.
func (b *session) lastStep(name string) (map[string]string, bool) {
	if b.remote != nil {
		for _, rs := range b.remote.steps {
			if rs.Name == name && rs.Inputs != nil {
				return rs.Inputs, true
			}
		}
	}
	if st, ok := b.o.Cache.LastStep(b.scope(), name); ok {
		return st.Inputs, true
	}
	return nil, false
}

// scope names the image for "last step" records.
func (b *session) scope() string { return b.p.Ref.Context().String() }

func (b *session) finish(st *step) {
	b.steps = append(b.steps, st)
	b.built = append(b.built, st.layers...)
	for _, l := range st.layers {
		d, _ := l.layer.Digest()
		size, _ := l.layer.Size()
		b.o.logf("layer %s: %s, %s (%s)", l.desc, shortDigest(d), HumanBytes(size), st.how)
	}
}

func shortDigest(d v1.Hash) string {
	s := d.String()
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

// diffInputs lists the inputs whose values differ between two builds.
func diffInputs(old, cur map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(cur) {
		if ov, ok := old[k]; !ok {
			out = append(out, k+" (new)")
		} else if ov != cur[k] {
			out = append(out, k)
		}
	}
	for _, k := range sortedKeys(old) {
		if _, ok := cur[k]; !ok {
			out = append(out, k+" (removed)")
		}
	}
	return out
}

// annotation encodes the build's steps for CacheAnnotation. Code inputs
// (one per file) are left out when there are many of them.
func (b *session) annotation() (string, error) {
	var out []remoteStep
	for _, st := range b.steps {
		rs := remoteStep{Name: st.name, Key: st.key}
		if len(st.inputs) <= 200 {
			rs.Inputs = st.inputs
		}
		for _, l := range st.layers {
			d, err := l.layer.Digest()
			if err != nil {
				return "", err
			}
			rs.Layers = append(rs.Layers, remoteLayer{Digest: d.String(), Description: l.desc, Kind: l.kind})
		}
		out = append(out, rs)
	}
	data, err := json.Marshal(out)
	return string(data), err
}

// explain prints, per step, its key's inputs, where its layers came from and,
// for a miss, which inputs changed since the last build.
func (b *session) explain() {
	for _, st := range b.steps {
		b.o.logf("explain: %s (key %s): %s", st.name, st.key[:12], st.how)
		for _, k := range sortedKeys(st.inputs) {
			if st.name == StepCode && strings.HasPrefix(k, "file:") {
				continue
			}
			b.o.logf("explain:   %s = %s", k, oneLine(st.inputs[k]))
		}
		if st.name == StepCode {
			n := 0
			for k := range st.inputs {
				if strings.HasPrefix(k, "file:") {
					n++
				}
			}
			b.o.logf("explain:   %d files", n)
		}
		if st.how == HowBuilt {
			switch {
			case st.changed == nil:
				b.o.logf("explain:   miss: no earlier build of this step is known")
			case len(st.changed) == 0:
				b.o.logf("explain:   miss: same inputs as the last build, but its layers are gone (pruned, or --refresh)")
			default:
				b.o.logf("explain:   miss: changed since the last build: %s", strings.Join(st.changed, ", "))
			}
		}
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", ", ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
