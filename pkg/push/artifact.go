package push

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specsv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// emptyJSON is the OCI empty descriptor's content, the config of an
// artifact that has none.
var emptyJSON = []byte("{}")

// Artifact returns an OCI 1.1 artifact: an image manifest of artifactType
// mediaType whose one layer is content (titled title), with the empty
// config, and whose subject is the image described by subject. Publish it
// with an Attacher.
func Artifact(subject v1.Descriptor, mediaType types.MediaType, content []byte, title string, annotations map[string]string) (v1.Image, error) {
	blob := static.NewLayer(content, mediaType)
	blobDigest, err := blob.Digest()
	if err != nil {
		return nil, err
	}
	empty := static.NewLayer(emptyJSON, types.OCIEmptyJSON)
	emptyDigest, err := empty.Digest()
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  string(mediaType),
		Config:        v1.Descriptor{MediaType: types.OCIEmptyJSON, Digest: emptyDigest, Size: int64(len(emptyJSON)), Data: emptyJSON},
		Layers: []v1.Descriptor{{
			MediaType: mediaType, Digest: blobDigest, Size: int64(len(content)),
			Annotations: map[string]string{specsv1.AnnotationTitle: title},
		}},
		Subject:     &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("artifact: %w", err)
	}
	return partial.CompressedToImage(&artifact{manifest: raw, blob: blob, blobDigest: blobDigest, config: empty, configDigest: emptyDigest})
}

// artifact is the partial.CompressedImageCore behind Artifact.
type artifact struct {
	manifest     []byte
	blob         v1.Layer
	blobDigest   v1.Hash
	config       v1.Layer
	configDigest v1.Hash
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyJSON, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	switch h {
	case a.blobDigest:
		return a.blob, nil
	case a.configDigest:
		return a.config, nil
	}
	return nil, fmt.Errorf("artifact: no blob %s", h)
}
