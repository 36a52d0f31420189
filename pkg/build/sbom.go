package build

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specsv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/push"
	"github.com/kiln-build/kiln/pkg/resolve/aptrepo"
	"github.com/kiln-build/kiln/pkg/sbom"
	"github.com/kiln-build/kiln/pkg/spec"
)

// sbomDocument describes img from what the build knows: the parent (and
// the Debian packages its dpkg status lists as installed) and what each
// step pinned. The step records hold the pins, so a build of cache hits
// gives the same document.
func (b *session) sbomDocument(ctx context.Context, img v1.Image) (*sbom.Document, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	doc := &sbom.Document{
		Image:   sbom.Image{Name: b.p.Ref.Context().Name(), Digest: d.String()},
		Created: b.p.Epoch,
		Tool:    "kiln (" + sbomTool + ")",
	}
	if !b.parent.Scratch() {
		doc.Parent = &sbom.Image{Name: b.p.Spec.BaseImage, Digest: b.parent.Digest.DigestStr()}
		fsys, err := b.parentFS(ctx)
		if err != nil {
			return nil, fmt.Errorf("sbom: %w", err)
		}
		pkgs, distro, err := parentPackages(fsys)
		if err != nil {
			return nil, fmt.Errorf("sbom: the parent's dpkg status: %w", err)
		}
		doc.Packages, doc.Distro = pkgs, distro
	}
	for _, st := range b.steps {
		if st.pins == nil {
			continue
		}
		for _, deb := range st.pins.Debs {
			doc.Packages = append(doc.Packages, sbom.Package{Kind: sbom.Deb, Name: deb.Name, Version: deb.Version,
				Arch: deb.Architecture, SHA256: deb.SHA256, URL: withoutUserinfo(deb.URL)})
		}
		for _, w := range st.pins.Wheels {
			doc.Packages = append(doc.Packages, sbom.Package{Kind: sbom.PyPI, Name: w.Name, Version: w.Version,
				SHA256: w.SHA256, URL: withoutUserinfo(w.URL)})
		}
	}
	return doc, nil
}

// sbomTool names the SBOM's generator: the layer format says which kiln
// wrote the layers it lists.
const sbomTool = "layer format " + layer.FormatVersion

// parentPackages lists the Debian packages fsys's dpkg status has
// installed, and the distro for purls ("debian-12") from os-release.
func parentPackages(fsys fs.FS) ([]sbom.Package, string, error) {
	var distro string
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if b, err := fs.ReadFile(fsys, p); err == nil {
			distro = osReleaseDistro(b)
			break
		}
	}
	raw, err := fs.ReadFile(fsys, "var/lib/dpkg/status")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, distro, nil // not a Debian parent
	}
	if err != nil {
		return nil, distro, err
	}
	status, err := aptrepo.ParseStatus(bytes.NewReader(raw))
	if err != nil {
		return nil, distro, err
	}
	var out []sbom.Package
	for _, p := range status {
		if p.Installed() {
			out = append(out, sbom.Package{Kind: sbom.Deb, Name: p.Package, Version: p.Version, Arch: p.Architecture, FromParent: true})
		}
	}
	return out, distro, nil
}

// osReleaseDistro returns "ID-VERSION_ID" from an os-release file, or "".
func osReleaseDistro(b []byte) string {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			vals[k] = strings.Trim(v, `"'`)
		}
	}
	if vals["ID"] == "" || vals["VERSION_ID"] == "" {
		return ""
	}
	return vals["ID"] + "-" + vals["VERSION_ID"]
}

// sbomArtifact returns the SBOM of img, in format f, as an OCI artifact
// referring to img, and the number of packages it lists.
func (b *session) sbomArtifact(ctx context.Context, img v1.Image, f sbom.Format) (v1.Image, int, error) {
	doc, err := b.sbomDocument(ctx, img)
	if err != nil {
		return nil, 0, err
	}
	content, err := doc.Encode(f)
	if err != nil {
		return nil, 0, fmt.Errorf("sbom: %w", err)
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return nil, 0, err
	}
	art, err := push.Artifact(*desc, types.MediaType(f.MediaType()), content, f.FileName(), map[string]string{
		specsv1.AnnotationCreated: b.p.Epoch.UTC().Format("2006-01-02T15:04:05Z"),
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sbom: %w", err)
	}
	return art, len(doc.Packages), nil
}

// ErrNoSBOM is returned by FetchSBOM when the image has no SBOM of the
// format asked for attached.
var ErrNoSBOM = errors.New("no SBOM attached")

// FetchSBOM returns the SBOM in format f attached to the image the plan
// names (kiln sbom): the referrer of that type, found through the
// registry's referrers API or its referrers tag. For a plan of several
// platforms the image is the index's image for platform (os/arch[/variant]),
// "" meaning the spec's first platform.
func FetchSBOM(ctx context.Context, p *Plan, a auth.Options, f sbom.Format, platform string) ([]byte, error) {
	tag, ok := p.Ref.(name.Tag)
	if !ok {
		return nil, fmt.Errorf("sbom of %s: the image reference must be a tag", p.Ref)
	}
	opts, err := a.RemoteOptions(ctx)
	if err != nil {
		return nil, err
	}
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	desc, err := remote.Head(tag, opts...)
	if err != nil {
		return nil, fmt.Errorf("sbom of %s: %w", tag, err)
	}
	subject := tag.Context().Digest(desc.Digest.String())
	if desc.MediaType.IsIndex() {
		if subject, err = indexImageFor(ctx, p, subject, platform, opts); err != nil {
			return nil, err
		}
	} else if platform != "" && len(p.Platforms) > 0 {
		return nil, fmt.Errorf("sbom of %s: it is one image, not an index of %s", tag, p.Spec.Platform)
	}
	idx, err := remote.Referrers(subject, opts...)
	if err != nil {
		return nil, fmt.Errorf("sbom of %s: list its referrers: %w", subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("sbom of %s: list its referrers: %w", subject, err)
	}
	for _, m := range im.Manifests {
		art, err := remote.Image(tag.Context().Digest(m.Digest.String()), opts...)
		if err != nil {
			return nil, fmt.Errorf("sbom of %s: %w", subject, err)
		}
		am, err := art.Manifest()
		if err != nil {
			return nil, fmt.Errorf("sbom of %s: %w", subject, err)
		}
		if am.ArtifactType != f.MediaType() || len(am.Layers) != 1 {
			continue
		}
		l, err := art.LayerByDigest(am.Layers[0].Digest)
		if err != nil {
			return nil, fmt.Errorf("sbom of %s: %w", subject, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, fmt.Errorf("sbom of %s: %w", subject, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, maxSBOM+1))
		if err != nil {
			return nil, fmt.Errorf("sbom of %s: %w", subject, err)
		}
		if len(b) > maxSBOM {
			return nil, fmt.Errorf("sbom of %s: larger than %d MiB", subject, maxSBOM>>20)
		}
		return b, nil
	}
	return nil, fmt.Errorf("sbom of %s: %w (%s); build it with kiln build (SBOMs are on unless --sbom=false)", subject, ErrNoSBOM, f.MediaType())
}

// maxSBOM bounds the SBOM kiln sbom reads back.
const maxSBOM = 64 << 20

// indexImageFor returns the image the index ref lists for platform ("":
// the plan's first platform).
func indexImageFor(ctx context.Context, p *Plan, ref name.Digest, platform string, opts []remote.Option) (name.Digest, error) {
	if platform == "" {
		platform = strings.Split(p.Spec.Platform, ",")[0]
	}
	s := *p.Spec
	s.Platform = platform
	plats, err := s.Platforms()
	if err != nil || len(plats) != 1 {
		return name.Digest{}, fmt.Errorf("sbom of %s: platform %q: write one os/arch[/variant], e.g. linux/arm64", ref, platform)
	}
	idx, err := remote.Index(ref, opts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("sbom of %s: %w", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("sbom of %s: %w", ref, err)
	}
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil {
			continue
		}
		if samePlatform(*m.Platform, plats[0]) {
			return ref.Context().Digest(m.Digest.String()), nil
		}
		have = append(have, spec.PlatformString(*m.Platform))
	}
	return name.Digest{}, fmt.Errorf("sbom of %s: the index has no %s image (it has %s); name one with --image-platform", ref, platform, strings.Join(have, ", "))
}
