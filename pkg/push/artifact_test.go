package push

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/internal/testenv"
)

// attachSBOM publishes a random image to dest and attaches an artifact
// to it, returning the image's digest reference and the artifact.
func attachSBOM(t *testing.T, dest Interface, tag name.Tag) (name.Digest, v1.Image) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := dest.Publish(context.Background(), img, tag)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	art, err := Artifact(*desc, "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`), "sbom.spdx.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dest.(Attacher).Attach(context.Background(), art, ref); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	return ref, art
}

// TestAttachRegistry: the artifact is a referrer of the image (the
// in-process registry has the referrers API) with the SBOM as its layer.
func TestAttachRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	tag, err := name.NewTag(strings.TrimPrefix(srv.URL, "http://") + "/app:1")
	if err != nil {
		t.Fatal(err)
	}
	ref, art := attachSBOM(t, Multi(NewRegistry()), tag)
	idx, err := remote.Referrers(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	artDigest, _ := art.Digest()
	// (ggcr's registry lists the config's media type as the artifact type,
	// not the manifest's artifactType: the manifest is checked below.)
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != artDigest {
		t.Fatalf("referrers of %s: %+v, want the SPDX artifact %s", ref, im.Manifests, artDigest)
	}
	got, err := remote.Image(ref.Context().Digest(artDigest.String()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := got.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject == nil || m.Subject.Digest.String() != ref.DigestStr() || m.Config.MediaType != types.OCIEmptyJSON || m.ArtifactType != "application/spdx+json" {
		t.Errorf("artifact manifest: subject %+v, config %s, artifactType %q", m.Subject, m.Config.MediaType, m.ArtifactType)
	}
	l, err := got.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != `{"spdxVersion":"SPDX-2.3"}` {
		t.Errorf("artifact content %q", b)
	}
}

// TestAttachLayout: the artifact's manifest joins the layout's index
// beside the image, with its artifact type, and the layout reads back.
func TestAttachLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	tag, _ := name.NewTag("example.invalid/app:1")
	ref, art := attachSBOM(t, &Layout{Dir: dir}, tag)
	p, im := testenv.LayoutIndex(t, dir)
	artDigest, _ := art.Digest()
	if len(im.Manifests) != 2 || im.Manifests[0].Digest.String() != ref.DigestStr() || im.Manifests[1].Digest != artDigest || im.Manifests[1].ArtifactType != "application/spdx+json" {
		t.Errorf("index.json lists %+v, want the image then the artifact", im.Manifests)
	}
	if _, err := p.Image(artDigest); err != nil {
		t.Errorf("the artifact does not read back from the layout: %v", err)
	}
	// Attaching again changes nothing.
	if err := (&Layout{Dir: dir}).Attach(context.Background(), art, ref); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	var again v1.IndexManifest
	if err := json.Unmarshal(raw, &again); err != nil || len(again.Manifests) != 2 {
		t.Errorf("a second Attach: %v, %d manifests", err, len(again.Manifests))
	}
}
