package build

import (
	"context"
	"fmt"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
)

// codeStep ships source_root and copy. Its key does not depend on the
// parent, so a new parent does not rebuild the code layer, unless a copy
// lands outside /root: there the parent's directory symlinks decide where
// files go (see codeThroughParent), so the parent's digest is in the key.
type codeStep struct{}

func (codeStep) name() string { return StepCode }

func (codeStep) inputs(_ context.Context, b *session) (map[string]string, bool, error) {
	code := b.p.Code
	if code == nil {
		return nil, false, nil
	}
	in := map[string]string{
		"epoch":       fmt.Sprint(b.p.Epoch.Unix()),
		"compression": b.o.Compression.String(),
	}
	for _, f := range code.Entries {
		in["file:/"+f.Path] = fmt.Sprintf("%o %s%s", uint32(f.Mode), f.SHA256, f.Link)
	}
	if b.throughParent() {
		in["parent"] = b.parent.Digest.DigestStr() // its directory symlinks place the files
	}
	return in, true, nil
}

func (codeStep) pin(context.Context, *session) (*cache.Pins, error) { return nil, nil }

func (codeStep) layers(ctx context.Context, b *session) ([]layer.Source, error) {
	code := b.p.Code
	if b.throughParent() {
		var err error
		if code, err = b.codeThroughParent(ctx, code); err != nil {
			return nil, err
		}
	}
	return []layer.Source{code}, nil
}

func (codeStep) resolution(*Plan) (map[string]string, error) { return nil, nil }

func (codeStep) config() *cache.ConfigDelta { return nil }

func (codeStep) warnings([]layer.Source) []string { return nil }
