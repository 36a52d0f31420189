package hostile

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/pkg/build"
	"github.com/kiln-build/kiln/pkg/spec"
)

// checkContext unpacks a build context of the corpus (a trusted tar: it is
// the generator's) into a directory of its own and plans it as kiln name
// does: loaded, validated and hashed offline. The plan must fail with a
// *spec.Error (exit code 2) naming the case's entry, and never show the
// secret beside the context.
func checkContext(t *testing.T, c Case, data []byte) {
	t.Helper()
	root := t.TempDir()
	unpackTrusted(t, data, root)
	s, err := spec.Load(filepath.Join(root, ContextSpecDir, spec.DefaultFile))
	if err == nil {
		err = s.Validate()
	}
	if err == nil {
		_, err = build.NewPlan(context.Background(), s, build.PlanOptions{Epoch: time.Unix(0, 0)})
	}
	if err == nil {
		t.Fatalf("%s (%s) was accepted", c.File, c.What)
	}
	var se *spec.Error
	if !errors.As(err, &se) {
		t.Errorf("%s: error %q is not a spec error, so kiln would not exit 2", c.File, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, c.Entry) {
		t.Errorf("%s: error %q does not name %q", c.File, msg, c.Entry)
	}
	if strings.Contains(msg, ContextSecret) {
		t.Errorf("%s: error %q shows the secret", c.File, msg)
	}
}

// unpackTrusted writes the directories, files and symlinks of a tar the
// corpus generated into dir.
func unpackTrusted(t *testing.T, data []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o644)
			}
		default:
			t.Fatalf("%s: unexpected type %c in a context", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
