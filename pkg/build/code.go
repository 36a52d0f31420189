package build

import (
	"context"
	"path"
	"strings"

	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
	"github.com/kiln-build/kiln/pkg/spec"
)

// codeLayer returns the code layer as it lands on the parent. When a copy
// destination lies outside /root, its entries are written through the
// parent's symlinked directories (bin/tool becomes usr/bin/tool on a
// merged-/usr parent, so the parent's /bin -> usr/bin symlink survives);
// only then are the parent's file headers read, once, cached by the
// parent's digest. The step key is computed from the rewritten entries, so
// it holds exactly what the layer took from the parent: where each
// directory resolves.
func (b *session) codeLayer(ctx context.Context) (*layer.Files, error) {
	code := b.p.Code
	if code == nil || b.parent.Scratch() || !copiesOutsideRoot(b.p.Spec) {
		return code, nil
	}
	fs, err := b.parentFS(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := layer.ThroughParent(code.Entries, parentDirs{fs})
	if err != nil {
		return nil, err
	}
	c := *code
	c.Entries = entries
	return &c, nil
}

// copiesOutsideRoot reports whether a copy entry lands outside /root, where
// the parent's directories may be symlinks (/root is assumed a directory).
func copiesOutsideRoot(s *spec.Spec) bool {
	for _, c := range s.Copy {
		d := path.Clean("/" + c.Dest)
		if d != "/root" && !strings.HasPrefix(d, "/root/") {
			return true
		}
	}
	return false
}

// parentDirs answers layer.ParentDirs from the parent's merged tree.
type parentDirs struct{ fs *rootfs.FS }

func (p parentDirs) RealDir(dir string) (string, bool) {
	e, err := p.fs.Stat(dir)
	if err != nil || !e.IsDir() {
		return "", false
	}
	real, err := p.fs.Realpath(dir)
	if err != nil {
		return "", false
	}
	return real, true
}
