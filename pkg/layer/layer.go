package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kiln-build/kiln/pkg/layer/tarheader"
)

// FormatVersion is part of every layer key: bump it whenever the bytes a
// Source writes for the same inputs change.
const FormatVersion = "kiln-layer-v3"

// Source is one layer to build: its Key names its inputs, WriteTar writes
// its uncompressed tar stream. Two Sources with the same Key write the same
// bytes.
type Source interface {
	// Key is a stable hash of everything the layer's bytes depend on.
	Key() string
	// Description says what the layer holds, for history and logs.
	Description() string
	// WriteTar writes the layer's entries to tw (the caller closes tw).
	WriteTar(ctx context.Context, tw *tar.Writer) error
}

// Files is a layer made of host files, such as the code layer.
type Files struct {
	// Entries are the layer's entries, sorted by path (as Collect returns).
	Entries []File
	// Epoch is the modification time of every entry.
	Epoch time.Time
	// Desc is the layer's description.
	Desc string
}

// Key hashes the entries' paths, types, modes, link targets and content
// hashes, each field ended by a NUL so that no two lists share a key
// ("a/bc" and "ab/c" differ), plus the epoch and the format version.
func (l *Files) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00files\x00%d\x00", FormatVersion, l.Epoch.Unix())
	for _, f := range l.Entries {
		fmt.Fprintf(h, "%s\x00%o\x00%s\x00%s\x00", f.Path, uint32(f.Mode), f.Link, f.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Description implements Source.
func (l *Files) Description() string { return l.Desc }

// WriteTar implements Source. A file whose content no longer matches the
// hash taken by Collect fails: the layer would not match its key.
func (l *Files) WriteTar(ctx context.Context, tw *tar.Writer) error {
	for _, f := range l.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr := &tar.Header{Name: f.Path, Mode: int64(f.Mode.Perm())}
		switch {
		case f.Mode.IsDir():
			hdr.Typeflag = tar.TypeDir
		case f.Mode&os.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = f.Link
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = f.Size
		}
		if err := tw.WriteHeader(tarheader.Normalize(hdr, l.Epoch)); err != nil {
			return fmt.Errorf("write /%s: %w", f.Path, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyVerified(tw, f); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyVerified(w io.Writer, f File) error {
	in, err := os.Open(f.Src)
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Src, err)
	}
	defer in.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(in, f.Size))
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Src, err)
	}
	if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("read %s: the file changed while kiln was building; run the build again", f.Src)
	}
	return nil
}
