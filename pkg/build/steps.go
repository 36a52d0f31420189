package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
)

// Step names, in image order: least to most often changed.
const (
	StepApt      = "apt_packages"
	StepPython   = "packages"
	StepCommands = "commands"
	StepCode     = "code"
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
	// offered are the layers a cache offered for the step, kept to compare
	// with the rebuilt ones under --verify-cache; offeredBy says which cache.
	offered   []builtLayer
	offeredBy string
	// pins and warnings are what the step's record holds besides its
	// layers: what it installed and what building it warned about.
	pins     *cache.Pins
	warnings []string
	config   *cache.ConfigDelta
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

// PinsMediaType is the media type of the blob that holds a step's pins
// (cache.Pins as JSON) when they are too large for CacheAnnotation.
const PinsMediaType = "application/vnd.kiln.pins.v1+json"

// maxInlinePins is the size of a step's pins, as JSON, above which the
// annotation refers to them by digest, so that it stays small.
const maxInlinePins = 4 << 10

// maxPinsBlob bounds the pins blob kiln reads back from a cache image.
const maxPinsBlob = 16 << 20

// remoteCache is what a cache image records: the step records (the same
// cache.Step as the local cache) by key, with layers that can be mounted
// from its repository.
type remoteCache struct {
	ref   name.Reference
	steps map[string]cache.Step
	img   v1.Image
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
	plat, err := b.p.targetPlatform()
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
	var steps []cache.Step
	if raw := m.Annotations[CacheAnnotation]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &steps); err != nil {
			b.o.logf("cache: %s has an unreadable %s annotation; building without it", ref, CacheAnnotation)
			return
		}
	}
	rc := &remoteCache{ref: ref, steps: map[string]cache.Step{}, img: img}
	for _, st := range steps {
		rc.steps[st.Key] = st
	}
	b.remote = rc
	b.o.logf("cache: %s records %d steps", ref, len(steps))
}

// reuse looks st up in the local cache, then in the remote cache, and on a
// hit appends its layers to the image. It reports whether it hit. A hit is
// taken only if it passes accept (kiln.lock's pinned layers, --verify-cache).
func (b *session) reuse(ctx context.Context, st *step) (bool, error) {
	if b.o.Refresh {
		return false, nil
	}
	if rec, ok, err := b.o.Cache.LookupStep(st.key); err != nil {
		return false, err
	} else if ok {
		var layers []builtLayer
		for _, l := range rec.Layers {
			layers = append(layers, builtLayer{layer: b.o.Cache.Layer(l.LayerInfo), desc: l.Description, kind: l.Kind})
		}
		if b.accept(st, layers, HowLocal) {
			st.layers = layers
			st.how = HowLocal
			st.pins, st.warnings = rec.Pins, rec.Warnings
			b.printWarnings(st)
			b.finish(st)
			return true, nil
		}
		return false, nil
	}
	if b.remote != nil {
		if rs, ok := b.remote.steps[st.key]; ok {
			layers, err := b.remoteLayers(rs)
			if err != nil {
				b.o.logf("cache: warning: step %s from cache_from: %v; building the step", st.name, err)
				return false, nil
			}
			if b.accept(st, layers, HowRemote) {
				pins, err := b.remotePins(ctx, rs)
				if err != nil {
					b.o.logf("cache: warning: step %s from cache_from: %v; building the step", st.name, err)
					return false, nil
				}
				st.layers = layers
				st.how = HowRemote
				st.pins, st.warnings = pins, rs.Warnings
				b.printWarnings(st)
				b.finish(st)
				return true, nil
			}
		}
	}
	return false, nil
}

// remoteLayers returns the cache image's layers that rs names, checking
// that each is one of the image's layers and that the registry has its
// blob: an annotation naming anything else is not used.
func (b *session) remoteLayers(rs cache.Step) ([]builtLayer, error) {
	m, err := b.remote.img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.remote.ref, err)
	}
	var layers []builtLayer
	for _, rl := range rs.Layers {
		h := rl.Digest
		inManifest := false
		for _, d := range m.Layers {
			inManifest = inManifest || d.Digest == h
		}
		if !inManifest {
			return nil, fmt.Errorf("%s records layer %s, which is not one of its layers", b.remote.ref, h)
		}
		l, err := b.remote.img.LayerByDigest(h)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", b.remote.ref, h, err)
		}
		diffID, err := l.DiffID()
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", b.remote.ref, h, err)
		}
		if rl.DiffID != (v1.Hash{}) && rl.DiffID != diffID {
			return nil, fmt.Errorf("%s records layer %s with diffID %s, but its config says %s", b.remote.ref, h, rl.DiffID, diffID)
		}
		if ok, err := partial.Exists(l); err != nil || !ok {
			if err == nil {
				err = errors.New("no such blob")
			}
			return nil, fmt.Errorf("%s records layer %s, which the registry cannot serve (%v)", b.remote.ref, h, err)
		}
		layers = append(layers, builtLayer{layer: l, desc: rl.Description, kind: rl.Kind})
	}
	return layers, nil
}

// accept decides whether a cache hit for st, offered by how (HowLocal or
// HowRemote), is used. When kiln.lock pins the step's layers (kiln lock
// --with-layers) only those layers are, and cache_from is not used for a
// step the lock does not pin. Under --verify-cache nothing is: the offer is
// kept to compare with the rebuilt step. A refused offer is logged.
func (b *session) accept(st *step, layers []builtLayer, how string) bool {
	from := "the local cache"
	if how == HowRemote {
		from = "cache_from"
	}
	if b.p.Lock != nil && len(b.p.Lock.Steps) > 0 {
		pinned, ok := b.p.Lock.Step(st.key)
		switch {
		case !ok && how == HowRemote:
			b.o.logf("cache: step %s from cache_from is not pinned by kiln.lock (its inputs changed since kiln lock --with-layers); rebuilding", st.name)
			return false
		case ok:
			if have, want, differ := compareLayers(digestsOf(layers), pinned.Layers); differ {
				b.o.logf("cache: step %s from %s has layer %s, kiln.lock says %s; rebuilding", st.name, from, have, want)
				return false
			}
		}
	}
	if b.o.VerifyCache {
		st.offered, st.offeredBy = layers, from
		return false
	}
	return true
}

// digestsOf returns the layers' digests.
func digestsOf(layers []builtLayer) []string {
	out := make([]string, len(layers))
	for i, l := range layers {
		d, err := l.layer.Digest()
		if err != nil {
			out[i] = "(unknown: " + err.Error() + ")"
			continue
		}
		out[i] = d.String()
	}
	return out
}

// compareLayers compares two lists of layer digests and, when they differ,
// returns the first pair that does ("none" for a missing layer).
func compareLayers(have, want []string) (string, string, bool) {
	for i := 0; i < len(have) || i < len(want); i++ {
		h, w := "none", "none"
		if i < len(have) {
			h = have[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if h != w {
			return h, w, true
		}
	}
	return "", "", false
}

// VerifyError is a --verify-cache failure: rebuilding a step that a cache
// offered gave other layers.
type VerifyError struct {
	// Step is the step's name; From is the cache that offered it.
	Step, From string
	// Cached and Rebuilt are the first layer digests that differ.
	Cached, Rebuilt string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("--verify-cache: step %s from %s has layer %s, but rebuilding it gives %s; the cache does not hold what its inputs build (corrupt or poisoned): do not use it", e.Step, e.From, e.Cached, e.Rebuilt)
}

// record stores a built step in the local cache and appends its layers. A
// step a cache offered under --verify-cache must have given the same
// layers; a step kiln.lock pins that gives others is reported.
func (b *session) record(st *step, layers []builtLayer, infos []cache.LayerInfo) error {
	st.layers = layers
	st.how = HowBuilt
	if st.offeredBy != "" {
		if cached, rebuilt, differ := compareLayers(digestsOf(st.offered), digestsOf(layers)); differ {
			return &VerifyError{Step: st.name, From: st.offeredBy, Cached: cached, Rebuilt: rebuilt}
		}
		b.o.logf("cache: step %s from %s verified: rebuilt, same layers", st.name, st.offeredBy)
	}
	if b.p.Lock != nil {
		if pinned, ok := b.p.Lock.Step(st.key); ok {
			if built, want, differ := compareLayers(digestsOf(layers), pinned.Layers); differ {
				b.o.logf("warning: step %s built layer %s, kiln.lock says %s: the inputs do not rebuild what kiln lock --with-layers built (another kiln version?)", st.name, built, want)
			}
		}
	}
	rec := st.record(infos)
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

// printWarnings prints again the warnings a reused step's record holds:
// what a step warned about is never dropped by the cache.
func (b *session) printWarnings(st *step) {
	for _, w := range st.warnings {
		b.logWarning(w, " ("+st.how+")")
	}
}

// explainPrefix starts a step warning line that only --explain prints:
// the details behind a grouped warning.
const explainPrefix = "explain:"

// logWarning prints a step's warning line, with suffix; a line for
// --explain only when it is on.
func (b *session) logWarning(w, suffix string) {
	if strings.HasPrefix(w, explainPrefix) {
		if b.o.Explain {
			b.o.logf("%s", w)
		}
		return
	}
	b.o.logf("%s%s", w, suffix)
}

// warningCount is the number of warnings in lines, details for --explain
// left out.
func warningCount(lines []string) int {
	n := 0
	for _, w := range lines {
		if !strings.HasPrefix(w, explainPrefix) {
			n++
		}
	}
	return n
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

// record is st's result as the local cache and the remote map store it,
// its layers described by infos.
func (st *step) record(infos []cache.LayerInfo) cache.Step {
	rec := cache.Step{Name: st.name, Key: st.key, Inputs: st.inputs, Pins: st.pins, Warnings: st.warnings, Config: st.config}
	for i, l := range st.layers {
		rec.Layers = append(rec.Layers, cache.StepLayer{LayerInfo: infos[i], Description: l.desc, Kind: l.kind})
	}
	return rec
}

// remoteInfos describes layers as the remote map records them: by digest
// only, since the image's manifest and config hold the rest (and the
// manifest's media types may differ from the local cache's).
func remoteInfos(layers []builtLayer) ([]cache.LayerInfo, error) {
	infos := make([]cache.LayerInfo, len(layers))
	for i, l := range layers {
		d, err := l.layer.Digest()
		if err != nil {
			return nil, err
		}
		infos[i].Digest = d
	}
	return infos, nil
}

// annotation encodes the build's step records for CacheAnnotation: the
// same cache.Step as the local cache holds, its layers by digest, with
// code inputs (one per file) left out when there are many of them. With blobs (the image goes
// to a registry), pins larger than maxInlinePins are moved into a blob,
// returned for the caller to upload into every repository the image is
// written to, and referred to by digest.
func (b *session) annotation(blobs bool) (string, []v1.Layer, error) {
	var out []cache.Step
	var extra []v1.Layer
	for _, st := range b.steps {
		infos, err := remoteInfos(st.layers)
		if err != nil {
			return "", nil, err
		}
		rec := st.record(infos)
		if len(rec.Inputs) > 200 {
			rec.Inputs = nil
		}
		if rec.Pins != nil && blobs {
			data, err := json.Marshal(rec.Pins)
			if err != nil {
				return "", nil, err
			}
			if len(data) > maxInlinePins {
				l := static.NewLayer(data, PinsMediaType)
				d, err := l.Digest()
				if err != nil {
					return "", nil, err
				}
				rec.Pins, rec.PinsBlob = nil, d.String()
				extra = append(extra, l)
			}
		}
		out = append(out, rec)
	}
	data, err := json.Marshal(out)
	return string(data), extra, err
}

// remotePins returns the pins of a step record from the cache image: from
// the record, or from the blob it refers to in the cache's repository.
func (b *session) remotePins(ctx context.Context, rs cache.Step) (*cache.Pins, error) {
	if rs.PinsBlob == "" {
		return rs.Pins, nil
	}
	ref := b.remote.ref.Context().Digest(rs.PinsBlob)
	if _, err := v1.NewHash(rs.PinsBlob); err != nil {
		return nil, fmt.Errorf("%s records pins %q, which is not a digest", b.remote.ref, rs.PinsBlob)
	}
	l, err := remote.Layer(ref, append([]remote.Option{remote.WithContext(ctx)}, b.remoteOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("read the pins %s: %w", ref, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("read the pins %s: %w", ref, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxPinsBlob+1))
	if err != nil {
		return nil, fmt.Errorf("read the pins %s: %w", ref, err)
	}
	if len(data) > maxPinsBlob {
		return nil, fmt.Errorf("read the pins %s: more than %d bytes", ref, maxPinsBlob)
	}
	var pins cache.Pins
	if err := json.Unmarshal(data, &pins); err != nil {
		return nil, fmt.Errorf("read the pins %s: %w", ref, err)
	}
	return &pins, nil
}

// writeBlobs uploads blobs (the pins the annotation refers to) into repo,
// through the build's registry client; a blob already there is skipped.
func (b *session) writeBlobs(ctx context.Context, repo name.Repository, blobs []v1.Layer) error {
	for _, l := range blobs {
		if err := remote.WriteLayer(repo, l, append([]remote.Option{remote.WithContext(ctx)}, b.remoteOpts...)...); err != nil {
			d, _ := l.Digest()
			return fmt.Errorf("upload the pins %s to %s: %w", d, repo, err)
		}
	}
	return nil
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
		// What the step's record holds besides its key: on a hit these
		// come from the record, not from resolving again.
		if st.pins != nil {
			b.o.logf("explain:   pinned: %d Debian packages, %d wheels", len(st.pins.Debs), len(st.pins.Wheels))
		}
		if st.name == StepCommands && st.inputs["network"] == "true" {
			b.o.logf("explain:   not reproducible: commands_network gives the commands the host's network, so the layer depends on what it answered")
		}
		if n := warningCount(st.warnings); n > 0 {
			b.o.logf("explain:   %d warnings (printed above)", n)
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
