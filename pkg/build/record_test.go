package build

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/lock"
)

// TestRemoteMapIsTheStepRecord checks that the dev.kiln.cache.v1 map holds
// the same cache.Step records as the local cache, pins included: small
// pins inline, large ones in a blob of the image's repository referred to
// by digest (the annotation stays small), and that a reader of the cache
// image (a fresh runner) gets the pins and warnings back from either.
func TestRemoteMapIsTheStepRecord(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	few := &cache.Pins{Debs: []lock.Deb{{Name: "tzdata", Version: "2025a-1", Architecture: "all", URL: "http://deb.example/pool/t/tzdata.deb", SHA256: strings.Repeat("a", 64), Size: 1}}}
	many := &cache.Pins{}
	for i := 0; i < 200; i++ {
		many.Wheels = append(many.Wheels, lock.Wheel{Name: fmt.Sprintf("pkg%03d", i), Version: "1.0", Filename: fmt.Sprintf("pkg%03d-1.0-py3-none-any.whl", i), URL: "https://files.example/pkg.whl", SHA256: strings.Repeat("b", 64)})
	}
	for _, tc := range []struct {
		name      string
		pins      *cache.Pins
		wantBlobs int
	}{
		{"small pins inline", few, 0},
		{"large pins in a blob", many, 1},
		{"no pins", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := random.Layer(256, "application/vnd.oci.image.layer.v1.tar+gzip")
			must(t, err)
			st := newStep(StepPython, map[string]string{"requirements": "x"})
			st.layers = []builtLayer{{layer: l, desc: "wheels", kind: cache.KindWheels}}
			st.pins, st.warnings = tc.pins, []string{"warning: something"}
			st.config = &cache.ConfigDelta{Env: []string{"VIRTUAL_ENV=/opt/venv"}}
			b := &session{steps: []*step{st}}

			ann, blobs, err := b.annotation(true)
			must(t, err)
			if len(blobs) != tc.wantBlobs {
				t.Fatalf("annotation gave %d blobs, want %d", len(blobs), tc.wantBlobs)
			}
			if len(ann) > 2*maxInlinePins {
				t.Errorf("annotation is %d bytes; large pins must go into a blob", len(ann))
			}
			var recs []cache.Step
			must(t, json.Unmarshal([]byte(ann), &recs))
			if len(recs) != 1 || recs[0].Key != st.key || recs[0].Layers[0].Kind != cache.KindWheels || recs[0].Config == nil || !reflect.DeepEqual(recs[0].Warnings, st.warnings) {
				t.Fatalf("annotation records %+v", recs)
			}
			if d, _ := l.Digest(); recs[0].Layers[0].Digest != d {
				t.Errorf("layer digest %s, want %s", recs[0].Layers[0].Digest, d)
			}

			// Publish the image and its blobs, then read them as a fresh
			// runner does.
			repo, err := name.NewRepository(reg.host + "/app")
			must(t, err)
			img, err := mutate.AppendLayers(empty.Image, l)
			must(t, err)
			img = mutate.Annotations(img, map[string]string{CacheAnnotation: ann}).(v1.Image)
			must(t, b.writeBlobs(ctx, repo, blobs))
			must(t, remote.Write(repo.Tag("kiln-cache"), img))

			fresh := &session{remote: &remoteCache{ref: repo.Tag("kiln-cache"), img: img}}
			if _, err := fresh.remoteLayers(recs[0]); err != nil {
				t.Fatalf("remoteLayers: %v", err)
			}
			pins, err := fresh.remotePins(ctx, recs[0])
			must(t, err)
			if !reflect.DeepEqual(pins, tc.pins) {
				t.Errorf("pins from the cache image = %+v, want %+v", pins, tc.pins)
			}
		})
	}
}

// TestRemotePinsBlobMissing checks that a record naming a pins blob the
// registry does not have is an error (the step is then rebuilt), not a hit
// without pins.
func TestRemotePinsBlobMissing(t *testing.T) {
	reg := newRegistry(t)
	repo, err := name.NewRepository(reg.host + "/app")
	must(t, err)
	b := &session{remote: &remoteCache{ref: repo.Tag("kiln-cache"), img: empty.Image}}
	_, err = b.remotePins(context.Background(), cache.Step{Name: StepPython, PinsBlob: "sha256:" + strings.Repeat("0", 64)})
	if err == nil || !strings.Contains(err.Error(), "read the pins") {
		t.Errorf("remotePins of a missing blob: %v, want an error", err)
	}
}
