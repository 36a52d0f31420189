package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/kiln-build/kiln/pkg/layer/deblayer"
)

// DebFile is one downloaded, verified .deb to install.
type DebFile struct {
	Name, Version, Architecture, SHA256 string
	// Path is the verified file in the cache.
	Path string
}

// Debs is a layer of Debian packages installed over a parent: their files,
// the dpkg database, and the effects of their maintainer scripts.
type Debs struct {
	// ParentDigest is the parent image's digest: the layer rewrites the
	// parent's dpkg status, passwd and alternatives, so it depends on it.
	ParentDigest string
	// Parent is what the layer must respect of the parent.
	Parent deblayer.Parent
	// Packages are the .debs in installation order.
	Packages []DebFile
	// Epoch is the modification time of every entry.
	Epoch time.Time
	// XZ is the path of an xz(1) program to decompress data.tar.xz
	// members with, faster than the built-in decoder; "" means the
	// built-in decoder. The layer's bytes do not depend on it, so it is
	// not part of the key.
	XZ string
	// Unpacked leaves the packages unpacked but not configured, for
	// dpkg --configure to configure (see deblayer.Options.Unpacked).
	Unpacked bool
	// Report is filled in by WriteTar.
	Report deblayer.Report
}

// Key hashes the parent digest, the packages' SHA-256 sums in order, the
// epoch and the format version.
func (l *Debs) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00debs\x00%s\x00%d\x00", FormatVersion, l.ParentDigest, l.Epoch.Unix())
	if l.Unpacked {
		fmt.Fprintf(h, "unpacked\x00")
	}
	for _, p := range l.Packages {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", p.Name, p.Version, p.Architecture, p.SHA256)
	}
	// The parent files the layer merges with, in a stable order.
	names := make([]string, 0, len(l.Parent.Files))
	for n := range l.Parent.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := sha256.Sum256(l.Parent.Files[n])
		fmt.Fprintf(h, "%s\x00%x\x00", n, s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Description implements Source.
func (l *Debs) Description() string {
	return fmt.Sprintf("apt_packages (%d Debian packages)", len(l.Packages))
}

// WriteTar implements Source.
func (l *Debs) WriteTar(ctx context.Context, tw *tar.Writer) error {
	var debs []deblayer.Deb
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, p := range l.Packages {
		d, c, err := deblayer.OpenFile(p.Path)
		if err != nil {
			return fmt.Errorf("open %s %s: %w", p.Name, p.Version, err)
		}
		d.Name = fmt.Sprintf("%s_%s_%s.deb", p.Name, p.Version, p.Architecture)
		debs = append(debs, d)
		closers = append(closers, c)
	}
	rep, err := deblayer.Write(ctx, tw, l.Parent, debs, deblayer.Options{Epoch: l.Epoch, XZ: l.XZ, Unpacked: l.Unpacked})
	if err != nil {
		return err
	}
	l.Report = rep
	return nil
}
