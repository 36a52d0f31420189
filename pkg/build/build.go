package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/bundle"
	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/push"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/sbom"
	"github.com/kiln-build/kiln/pkg/spec"
)

// Options configure a build.
type Options struct {
	// Auth gives registry credentials and transport.
	Auth auth.Options
	// Remote are the options of the build's one registry client (from
	// Auth.RemoteOptions or RemoteOptionsFor): the parent and cache_from
	// pulls and the cache-reference updates use them, and a Publisher made
	// from the same options shares their transport, retry policy and
	// Retry-After memory. Nil means made from Auth, once per build.
	Remote []remote.Option
	// Cache is the local cache.
	Cache *cache.Cache
	// Compression is how new layers are compressed.
	Compression cache.Compression
	// Publisher receives the image. Build pushes to the spec's registry only
	// through it: the caller decides the destinations.
	Publisher push.Interface
	// Force rebuilds even when the target tag already exists.
	Force bool
	// CheckExists asks the registry for the target tag first and skips the
	// build when it is there (ImageSpec's exist()).
	CheckExists bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Meter, if set, counts the bytes downloaded and the layer bytes
	// written while the build runs, for a live display.
	Meter *Meter
	// HTTPTransport fetches packages and indices; nil means
	// http.DefaultTransport.
	HTTPTransport http.RoundTripper
	// Refresh ignores every cache: inputs are resolved and layers rebuilt.
	Refresh bool
	// Explain logs, per step, its key's inputs and where its layers came
	// from, and for a miss which inputs changed.
	Explain bool
	// UpdateCache moves the default cache tag (<repository>:kiln-cache) to
	// the new image after a push, when the spec names no cache_from.
	UpdateCache bool
	// CacheTo also pushes the image, with its layer map, to this reference.
	CacheTo string
	// VerifyCache rebuilds every step that a cache (local or cache_from)
	// offers and fails, naming the step and both digests, when the layers
	// differ.
	VerifyCache bool
	// Bundle, for a --locked build, is where the parent and every file
	// the lock pins come from (kiln build --from-bundle): the build then
	// reaches nothing but the registry it pushes to, and pushes the
	// parent's layers there when it lacks them.
	Bundle *bundle.Bundle
	// SBOM is the format of the SBOM attached to the image (an OCI 1.1
	// referrer, where the Publisher is a push.Attacher); "" attaches none.
	// It needs the parent's dpkg status, read like the apt step's parent
	// files (once per parent, from the local cache after that).
	SBOM sbom.Format
	// LockLayers makes Lock also build every step from the pinned inputs
	// (no cache) and record its layers' digests in the lock (kiln lock
	// --with-layers), for --locked builds to check cache hits against.
	LockLayers bool
}

// Result is a finished build.
type Result struct {
	// Ref is the published reference with its digest.
	Ref name.Digest
	// Image is the built image (nil when the build was skipped, or built
	// for several platforms).
	Image v1.Image
	// Index, for a build of several platforms, lists each platform's
	// image.
	Index v1.ImageIndex
	// Skipped is true when the tag already existed and nothing was built.
	Skipped bool
	// Built, ReusedLocal and ReusedRemote count kiln's layers by origin.
	Built, ReusedLocal, ReusedRemote int
}

// remoteOptions returns the options of the build's one registry client.
func (o *Options) remoteOptions(ctx context.Context) ([]remote.Option, error) {
	if o.Remote != nil {
		return o.Remote, nil
	}
	return o.Auth.RemoteOptions(ctx)
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Run builds the plan's image and publishes it: for a plan with several
// platforms, one image per platform and the image index that lists them.
func Run(ctx context.Context, p *Plan, o Options) (*Result, error) {
	start := time.Now()
	remoteOpts, err := o.remoteOptions(ctx)
	if err != nil {
		return nil, err
	}
	tag, ok := p.Ref.(name.Tag)
	if !ok {
		return nil, fmt.Errorf("publish %s: the image reference must be a tag, not a digest", p.Ref)
	}
	if o.CheckExists && !o.Force {
		d, found, err := existing(p, tag, remoteOpts)
		if err != nil {
			return nil, err
		}
		if found {
			o.logf("%s already exists; nothing to build (use --force to rebuild)", tag)
			return &Result{Ref: tag.Context().Digest(d.String()), Skipped: true}, nil
		}
	}
	var images []*platformImage
	for _, sub := range p.each() {
		if len(p.Platforms) > 0 {
			o.logf("platform %s:", sub.Spec.Platform)
		}
		pi, err := buildImage(ctx, sub, o, remoteOpts)
		if err != nil {
			if len(p.Platforms) > 0 {
				return nil, fmt.Errorf("platform %s: %w", sub.Spec.Platform, err)
			}
			return nil, err
		}
		images = append(images, pi)
	}
	var blobs []v1.Layer
	for _, pi := range images {
		blobs = append(blobs, pi.blobs...)
	}
	out := published{img: images[0].img}
	if len(p.Platforms) > 0 {
		if out.idx, err = index(p, images); err != nil {
			return nil, err
		}
		out.img = nil
	}
	ref, err := out.publish(ctx, o.Publisher, tag)
	if err != nil {
		return nil, err
	}
	if a, ok := o.Publisher.(push.Attacher); ok {
		for _, pi := range images {
			if pi.sbom == nil {
				continue
			}
			d, err := pi.img.Digest()
			if err != nil {
				return nil, err
			}
			if err := a.Attach(ctx, pi.sbom, ref.Context().Digest(d.String())); err != nil {
				return nil, err
			}
			o.logf("sbom: %s SBOM of %d packages attached to the %s image", o.SBOM, pi.listed, pi.plan.Spec.Platform)
		}
	}
	if err := images[0].b.updateCache(ctx, out, blobs); err != nil {
		return nil, err
	}
	res := &Result{Ref: ref, Image: out.img, Index: out.idx}
	for _, pi := range images {
		for _, st := range pi.b.steps {
			for range st.layers {
				switch st.how {
				case HowBuilt:
					res.Built++
				case HowLocal:
					res.ReusedLocal++
				case HowRemote:
					res.ReusedRemote++
				}
			}
		}
	}
	o.logf("layers: %d built, %d reused from the local cache, %d from cache_from; done in %.1fs",
		res.Built, res.ReusedLocal, res.ReusedRemote, time.Since(start).Seconds())
	return res, nil
}

// platformImage is one platform's built image, not yet published.
type platformImage struct {
	plan *Plan
	b    *session
	img  v1.Image
	// blobs are the pins blobs the image's cache annotation names.
	blobs []v1.Layer
	// sbom is the SBOM artifact to attach (nil for none), listing listed
	// packages.
	sbom   v1.Image
	listed int
}

// buildImage runs one platform's steps and assembles its image; the pins
// blobs are written to the target registry, nothing else is published.
func buildImage(ctx context.Context, p *Plan, o Options, remoteOpts []remote.Option) (*platformImage, error) {
	b, err := newSession(ctx, p, o, remoteOpts)
	if err != nil {
		return nil, err
	}
	if err := b.runSteps(ctx); err != nil {
		return nil, err
	}
	if o.Explain {
		b.explain()
	}
	img, err := assemble(b.parent, b.built, b.configDeltas(), p)
	if err != nil {
		return nil, err
	}
	// Large pins go into a blob beside the layers when the image goes to a
	// registry (where cache_from reads it back); elsewhere they stay inline.
	registry := p.Spec.HasRegistry()
	ann, blobs, err := b.annotation(registry)
	if err != nil {
		return nil, err
	}
	img = mutate.Annotations(img, map[string]string{CacheAnnotation: ann, SpecHashAnnotation: p.Hash}).(v1.Image)
	if registry {
		if err := b.writeBlobs(ctx, p.Ref.Context(), blobs); err != nil {
			return nil, err
		}
	}
	pi := &platformImage{plan: p, b: b, img: img, blobs: blobs}
	if o.SBOM != "" {
		if pi.sbom, pi.listed, err = b.sbomArtifact(ctx, img, o.SBOM); err != nil {
			return nil, err
		}
	}
	return pi, nil
}

// published is what a build publishes: one image, or (idx set) an image
// index of one image per platform.
type published struct {
	img v1.Image
	idx v1.ImageIndex
}

// publish sends the image or index to dest under tag.
func (pb published) publish(ctx context.Context, dest push.Interface, tag name.Tag) (name.Digest, error) {
	if pb.idx == nil {
		return dest.Publish(ctx, pb.img, tag)
	}
	ip, ok := dest.(push.IndexPublisher)
	if !ok {
		return name.Digest{}, fmt.Errorf("publish %s: the destination cannot hold an image index of several platforms", tag)
	}
	return ip.PublishIndex(ctx, pb.idx, tag)
}

// updateCache points the cache references at img: the default cache tag in
// the target repository (when the spec names no cache_from: TensorFlow
// Cloud's "the image is the cache"), and --cache-to.
func (b *session) updateCache(ctx context.Context, out published, blobs []v1.Layer) error {
	var refs []name.Reference
	if b.o.UpdateCache && b.p.Spec.CacheFrom == "" {
		if ref, ok := b.cacheRef(); ok {
			refs = append(refs, ref)
		}
	}
	if b.o.CacheTo != "" {
		ref, err := name.ParseReference(b.o.CacheTo, b.o.Auth.NameOptions()...)
		if err != nil {
			return fmt.Errorf("--cache-to %q: %w", b.o.CacheTo, err)
		}
		refs = append(refs, ref)
	}
	// Through the build's registry client and a pusher with the push's
	// retry policy: a flaky registry is retried here as for the push.
	pusher := push.NewRegistry(b.remoteOpts...).WithRetry(b.o.Auth.Retry)
	for _, ref := range refs {
		if err := b.writeBlobs(ctx, ref.Context(), blobs); err != nil {
			return fmt.Errorf("update the cache %s: %w", ref, err)
		}
		var err error
		opts := append([]remote.Option{remote.WithContext(ctx)}, b.remoteOpts...)
		switch tag, ok := ref.(name.Tag); {
		case ok:
			_, err = out.publish(ctx, pusher, tag)
		case out.idx != nil:
			err = remote.WriteIndex(ref, out.idx, opts...)
		default:
			err = remote.Write(ref, out.img, opts...)
		}
		if err != nil {
			return fmt.Errorf("update the cache %s: %w", ref, err)
		}
		b.o.logf("cache: %s now records this build", ref)
	}
	return nil
}

func resolveParent(ctx context.Context, p *Plan, a auth.Options, bd *bundle.Bundle, remoteOpts []remote.Option) (*resolve.Parent, error) {
	s := p.Spec
	if s.BaseImage == spec.Scratch {
		return resolve.ScratchParent(), nil
	}
	ref, err := name.ParseReference(s.BaseImage, a.NameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("base_image %q: %w", s.BaseImage, err)
	}
	plat, err := p.targetPlatform()
	if err != nil {
		return nil, err
	}
	if p.Lock != nil && bd != nil {
		d, err := v1.NewHash(p.Lock.Parent.Digest)
		if err != nil {
			return nil, fmt.Errorf("kiln.lock: parent digest %q: %w; regenerate it with kiln lock", p.Lock.Parent.Digest, err)
		}
		img, err := bd.Parent(d)
		if err != nil {
			return nil, err
		}
		return &resolve.Parent{Ref: ref, Digest: ref.Context().Digest(d.String()), Image: img}, nil
	}
	if p.Lock != nil {
		// --locked: the parent the lock pins, not whatever the tag is now.
		pinned, err := name.NewDigest(ref.Context().String()+"@"+p.Lock.Parent.Digest, a.NameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("kiln.lock: parent digest %q: %w; regenerate it with kiln lock", p.Lock.Parent.Digest, err)
		}
		par, err := resolve.ResolveParent(ctx, pinned, plat, remoteOpts...)
		if err != nil {
			return nil, err
		}
		par.Ref = ref
		return par, nil
	}
	return resolve.ResolveParent(ctx, ref, plat, remoteOpts...)
}

type builtLayer struct {
	layer v1.Layer
	desc  string
	kind  cache.LayerKind
	// overlay, when set, is reading the parent's files with this layer's
	// on top, from the tar as it was built.
	overlay *overlayTee
}

// buildLayer returns the cached layer for src's key, building it on a miss
// (always, under --refresh and --verify-cache).
func buildLayer(ctx context.Context, o Options, src layer.Source) (cache.LayerInfo, bool, error) {
	return buildLayerTee(ctx, o, src, nil)
}

// buildLayerTee is buildLayer that also writes the layer's tar to tee, when
// not nil, as it builds it; a layer found in the cache is not written.
func buildLayerTee(ctx context.Context, o Options, src layer.Source, tee *overlayTee) (cache.LayerInfo, bool, error) {
	if tee != nil {
		defer tee.finish(errors.New("the layer was not built"))
	}
	h := sha256.Sum256([]byte(src.Key() + "\x00" + o.Compression.String()))
	key := hex.EncodeToString(h[:])
	if !o.Refresh && !o.VerifyCache {
		if info, ok, err := o.Cache.LookupLayer(key); err != nil {
			return cache.LayerInfo{}, false, err
		} else if ok {
			return info, true, nil
		}
	}
	info, err := o.Cache.BuildLayer(key, o.Compression, func(w io.Writer) error {
		w, done := o.Meter.startLayer(src.Description(), w)
		defer done()
		if tee != nil {
			w = io.MultiWriter(w, tee)
		}
		tw := tar.NewWriter(w)
		if err := src.WriteTar(ctx, tw); err != nil {
			return fmt.Errorf("build layer %s: %w", src.Description(), err)
		}
		err := tw.Close()
		if tee != nil && err == nil {
			tee.finish(nil)
		}
		return err
	})
	if err != nil {
		return cache.LayerInfo{}, false, err
	}
	return info, false, nil
}

// IsNotFound reports whether err is a registry's "no such manifest".
func IsNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusNotFound
	}
	return false
}

// SpecHashAnnotation is the manifest annotation in which kiln records the
// spec hash of every image it builds, so that a tag without the hash in it
// (tag_format: latest) can still be told up to date or stale.
const SpecHashAnnotation = "dev.kiln.spec-hash"

// existing reports whether tag already holds this plan's image, and its
// digest. A tag with the spec hash in it holds it when it exists at all (a
// HEAD on the manifest); any other tag only when its manifest records the
// same spec hash (SpecHashAnnotation): a tag such as latest that holds an
// older build is stale, and rebuilt.
func existing(p *Plan, tag name.Tag, opts []remote.Option) (v1.Hash, bool, error) {
	if tagHoldsHash(p, tag) && len(p.Platforms) == 0 {
		desc, err := remote.Head(tag, opts...)
		switch {
		case err == nil:
			return desc.Digest, true, nil
		case IsNotFound(err):
			return v1.Hash{}, false, nil
		}
		return v1.Hash{}, false, fmt.Errorf("check whether %s exists: %w", tag, err)
	}
	desc, err := remote.Get(tag, opts...)
	switch {
	case IsNotFound(err):
		return v1.Hash{}, false, nil
	case err != nil:
		return v1.Hash{}, false, fmt.Errorf("check whether %s exists: %w", tag, err)
	}
	if len(p.Platforms) > 0 {
		return existingIndex(p, tag, desc)
	}
	if !desc.MediaType.IsImage() {
		return v1.Hash{}, false, nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil || m.Annotations[SpecHashAnnotation] != p.Hash {
		return v1.Hash{}, false, nil
	}
	return desc.Digest, true, nil
}

// tagHoldsHash reports whether tag has p's spec hash in it.
func tagHoldsHash(p *Plan, tag name.Tag) bool { return strings.Contains(tag.TagStr(), p.Hash) }

// Exists asks the registry whether the plan's tag holds the plan's image: a
// HEAD on the manifest when the tag has the spec hash in it, else a look at
// the spec hash the manifest records. It returns an error when it cannot
// tell (auth, network), never a guess.
func Exists(ctx context.Context, p *Plan, a auth.Options) (bool, error) {
	opts, err := a.RemoteOptions(ctx)
	if err != nil {
		return false, err
	}
	tag, ok := p.Ref.(name.Tag)
	if !ok {
		_, err = remote.Head(p.Ref, opts...)
		switch {
		case err == nil:
			return true, nil
		case IsNotFound(err):
			return false, nil
		}
		return false, err
	}
	_, found, err := existing(p, tag, opts)
	return found, err
}
