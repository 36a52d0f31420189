package build

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/push"
)

// trustBuild plans s and runs it with o (a fresh cache when o.Cache is nil),
// returning the result and the log.
func trustBuild(t *testing.T, dir, yaml string, o Options) (*Result, string, error) {
	t.Helper()
	p, err := NewPlan(context.Background(), loadSpec(t, dir, yaml), PlanOptions{Epoch: time.Unix(0, 0)})
	must(t, err)
	if o.Cache == nil {
		o.Cache, err = cache.Open(t.TempDir())
		must(t, err)
	}
	if o.Publisher == nil {
		o.Publisher = push.NewRegistry()
	}
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), p, o)
	return res, log.String(), err
}

// TestTagWithoutSpecHashIsRebuilt builds with tags that do not carry the
// spec hash (tag_format: latest, image: repo:v1): a code change must push a
// new image under the same tag, and an unchanged spec must still be
// skipped.
func TestTagWithoutSpecHashIsRebuilt(t *testing.T) {
	reg := newRegistry(t)
	pushParent(t, reg.host+"/base:1", "amd64")
	for _, tc := range []struct{ name, naming string }{
		{"tag_format latest", "name: app\nregistry: " + reg.host + "\ntag_format: latest\n"},
		{"image with a tag", "image: " + reg.host + "/other:v1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := appDir(t)
			yaml := tc.naming + "base_image: " + reg.host + "/base:1\nsource_root: app\n"
			o := Options{CheckExists: true, UpdateCache: true}
			first, _, err := trustBuild(t, dir, yaml, o)
			must(t, err)
			same, log, err := trustBuild(t, dir, yaml, o)
			must(t, err)
			if !same.Skipped || same.Ref.DigestStr() != first.Ref.DigestStr() {
				t.Errorf("an unchanged spec was rebuilt (skipped=%v):\n%s", same.Skipped, log)
			}
			must(t, os.WriteFile(filepath.Join(dir, "app", "main.py"), []byte("print('changed')\n"), 0o644))
			changed, log, err := trustBuild(t, dir, yaml, o)
			must(t, err)
			if changed.Skipped || changed.Ref.DigestStr() == first.Ref.DigestStr() {
				t.Fatalf("a code change under a fixed tag kept the old image (skipped=%v):\n%s", changed.Skipped, log)
			}
			desc, err := remote.Head(changed.Ref.Context().Tag(tagStr(t, tc.naming)))
			must(t, err)
			if desc.Digest.String() != changed.Ref.DigestStr() {
				t.Errorf("the tag holds %s, want the new build %s", desc.Digest, changed.Ref.DigestStr())
			}
		})
	}
}

func tagStr(t *testing.T, naming string) string {
	t.Helper()
	if strings.Contains(naming, "tag_format: latest") {
		return "latest"
	}
	return "v1"
}
