package build

import (
	"context"
	"path"
	"strings"

	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
	"github.com/kiln-build/kiln/pkg/spec"
)

// throughParent reports whether the code layer must be written through
// the parent's directory symlinks: when a copy lands outside /root (where
// merged /usr has /bin -> usr/bin) and there is a parent.
func (b *session) throughParent() bool {
	return b.p.Code != nil && !b.parent.Scratch() && copiesOutsideRoot(b.p.Spec)
}

// codeThroughParent rewrites the code layer's entries through the parent's
// symlinked directories: bin/tool becomes usr/bin/tool on a merged-/usr
// parent, so the parent's /bin -> usr/bin symlink survives. It reads the
// parent's file headers (once, cached by the parent's digest), so it runs
// only for a step the caches do not have; the step key holds the parent's
// digest, which decides the result.
func (b *session) codeThroughParent(ctx context.Context, code *layer.Files) (*layer.Files, error) {
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
	e, err := p.fs.StatEntry(dir)
	if err != nil || !e.IsDir() {
		return "", false
	}
	real, err := p.fs.Realpath(dir)
	if err != nil {
		return "", false
	}
	return real, true
}
