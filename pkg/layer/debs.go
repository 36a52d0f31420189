package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/kiln-build/kiln/pkg/layer/deblayer"
)

// DebFile is one .deb to install, verified against SHA256.
type DebFile struct {
	Name, Version, Architecture, SHA256 string
	// Path is the verified file in the cache; empty while Debs.Fetch has
	// not got it yet.
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
	// Fetch, when set, gets the packages whose Path is empty: WriteTar
	// calls it once, in a goroutine of its own, and it must call got for
	// each of them, in any order, as its file is ready (or failed), and
	// return once every call is made or ctx is done. WriteTar reads each
	// package as soon as it is ready, so decoding overlaps the downloads,
	// and a layer found in the cache downloads nothing.
	Fetch func(ctx context.Context, got func(i int, path string, err error)) error
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
	fetching := l.fetch(ctx)
	defer fetching.stop()
	for i, p := range l.Packages {
		name := fmt.Sprintf("%s_%s_%s.deb", p.Name, p.Version, p.Architecture)
		if p.Path == "" {
			debs = append(debs, deblayer.Deb{Name: name, Open: func(ctx context.Context) (io.ReaderAt, int64, error) {
				path, err := fetching.wait(ctx, i)
				if err != nil {
					return nil, 0, err
				}
				d, c, err := deblayer.OpenFile(path)
				if err != nil {
					return nil, 0, fmt.Errorf("open %s %s: %w", p.Name, p.Version, err)
				}
				fetching.closeLater(c)
				return d.R, d.Size, nil
			}})
			continue
		}
		d, c, err := deblayer.OpenFile(p.Path)
		if err != nil {
			return fmt.Errorf("open %s %s: %w", p.Name, p.Version, err)
		}
		d.Name = name
		debs = append(debs, d)
		fetching.closeLater(c)
	}
	rep, err := deblayer.Write(ctx, tw, l.Parent, debs, deblayer.Options{Epoch: l.Epoch, XZ: l.XZ, Unpacked: l.Unpacked})
	if err != nil {
		return err
	}
	l.Report = rep
	return nil
}

// debFetch is a Debs.Fetch under way: the paths (or errors) of the
// packages got so far, and the files WriteTar opened.
type debFetch struct {
	cancel context.CancelFunc
	done   chan struct{}
	ready  []chan struct{}
	paths  []string
	errs   []error
	err    error

	mu      sync.Mutex
	closers []io.Closer
}

// fetch starts l.Fetch when some package has no Path yet.
func (l *Debs) fetch(ctx context.Context) *debFetch {
	f := &debFetch{done: make(chan struct{}), ready: make([]chan struct{}, len(l.Packages)),
		paths: make([]string, len(l.Packages)), errs: make([]error, len(l.Packages))}
	for i := range f.ready {
		f.ready[i] = make(chan struct{})
	}
	missing := false
	for _, p := range l.Packages {
		missing = missing || p.Path == ""
	}
	if !missing || l.Fetch == nil {
		f.err = errors.New("the package was not downloaded")
		close(f.done)
		f.cancel = func() {}
		return f
	}
	ctx, f.cancel = context.WithCancel(ctx)
	once := make([]sync.Once, len(l.Packages))
	go func() {
		defer close(f.done)
		f.err = l.Fetch(ctx, func(i int, path string, err error) {
			if i < 0 || i >= len(f.ready) {
				return
			}
			once[i].Do(func() {
				f.paths[i], f.errs[i] = path, err
				close(f.ready[i])
			})
		})
		if f.err == nil {
			f.err = errors.New("the package was not downloaded")
		}
	}()
	return f
}

// wait returns package i's path once it is got.
func (f *debFetch) wait(ctx context.Context, i int) (string, error) {
	select {
	case <-f.ready[i]:
	case <-f.done:
		select {
		case <-f.ready[i]:
		default:
			return "", f.err // Fetch returned without getting i: its error says why
		}
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if errors.Is(f.errs[i], context.Canceled) && ctx.Err() == nil {
		// Canceled because another download failed: Fetch's error says
		// which.
		<-f.done
		return "", f.err
	}
	return f.paths[i], f.errs[i]
}

// closeLater keeps c to be closed by stop.
func (f *debFetch) closeLater(c io.Closer) {
	f.mu.Lock()
	f.closers = append(f.closers, c)
	f.mu.Unlock()
}

// stop cancels the downloads left, waits for Fetch to return and closes the
// files opened.
func (f *debFetch) stop() {
	f.cancel()
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.closers {
		c.Close()
	}
}
