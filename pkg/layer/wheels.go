package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/kiln-build/kiln/pkg/layer/wheelinstall"
)

// WheelFile is one downloaded, verified wheel to install.
type WheelFile struct {
	Name, Version, Filename, SHA256 string
	// Path is the verified file in the cache.
	Path string
	// Requested marks a top-level requirement (pip's REQUESTED file).
	Requested bool
}

// Wheels is a layer of wheels installed into a virtual environment, and
// optionally the environment's skeleton (pyvenv.cfg, bin/python links).
type Wheels struct {
	// Venv, when set, writes the environment's skeleton first.
	Venv *wheelinstall.VenvOptions
	// Scheme says where wheel files go.
	Scheme wheelinstall.Scheme
	// Wheels are installed in order (sorted by name by the caller).
	Wheels []WheelFile
	// Epoch is the modification time of every entry.
	Epoch time.Time
	// Desc describes the layer.
	Desc string
	// Installed is filled in by WriteTar.
	Installed []wheelinstall.Installed
}

// Key hashes the environment, the scheme, the wheels' hashes, the epoch
// and the format version.
func (l *Wheels) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00wheels\x00%d\x00", FormatVersion, l.Epoch.Unix())
	if v := l.Venv; v != nil {
		fmt.Fprintf(h, "venv\x00%s\x00%s\x00%s\x00%s\x00%t\x00", v.Prefix, v.PythonVersion, v.PythonFullVersion, v.Interpreter, v.NoSystemSitePackages)
	}
	s := l.Scheme
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00", s.Purelib, s.Platlib, s.Scripts, s.Headers, s.Data, s.Interpreter, s.PythonVersion)
	for _, w := range l.Wheels {
		fmt.Fprintf(h, "%s\x00%s\x00%t\x00", w.Filename, w.SHA256, w.Requested)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Description implements Source.
func (l *Wheels) Description() string { return l.Desc }

// WriteTar implements Source.
func (l *Wheels) WriteTar(ctx context.Context, tw *tar.Writer) error {
	dirs := map[string]bool{}
	if l.Venv != nil {
		v := *l.Venv
		v.Epoch, v.Dirs = l.Epoch, dirs
		if err := wheelinstall.WriteVenv(tw, v); err != nil {
			return fmt.Errorf("write the virtualenv: %w", err)
		}
	}
	for _, w := range l.Wheels {
		if err := l.install(ctx, tw, w, dirs); err != nil {
			return err
		}
	}
	return nil
}

func (l *Wheels) install(ctx context.Context, tw *tar.Writer, w WheelFile, dirs map[string]bool) error {
	f, err := os.Open(w.Path)
	if err != nil {
		return fmt.Errorf("install %s: %w", w.Filename, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("install %s: %w", w.Filename, err)
	}
	inst, err := wheelinstall.Install(ctx, tw, f, fi.Size(), w.Filename, l.Scheme, wheelinstall.Options{Epoch: l.Epoch, Requested: w.Requested, Dirs: dirs})
	if err != nil {
		return err
	}
	l.Installed = append(l.Installed, inst)
	return nil
}
