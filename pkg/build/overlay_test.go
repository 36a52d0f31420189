package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
)

// tarOf is a tar of regular files and symlinks (a "->" prefix), in order.
func tarOf(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e[0], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e[1]))}
		if target, ok := bytes.CutPrefix([]byte(e[1]), []byte("->")); ok {
			h = &tar.Header{Name: e[0], Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: string(target)}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e[1]))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listing is every path of fs with what it holds.
func listing(t *testing.T, fs *rootfs.FS) []string {
	t.Helper()
	var out []string
	err := fs.Walk(func(e rootfs.Entry) error {
		data, _ := fs.ReadFile(e.Path)
		out = append(out, e.Path+" "+e.Mode.String()+" "+string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOverlayTee checks that the tee reads the same files as reading the
// built layer does, also when that takes a second pass (a link read after
// the file it makes kept), and that it never fails the writer.
func TestOverlayTee(t *testing.T) {
	ctx := context.Background()
	parent, err := rootfs.ReadTars(ctx, rootfs.DefaultSelect, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarOf(t, [2]string{"var/lib/dpkg/status", "Package: base-files\n"}))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	layerTar := tarOf(t,
		[2]string{"usr/share/conf/real.conf", "kept through etc/"},
		[2]string{"usr/lib/libblas.so.3", "big library"},
		[2]string{"usr/bin/python3.11", "\x7fELF..."},
		[2]string{"etc/conf.conf", "->/usr/share/conf/real.conf"},
		[2]string{"etc/alternatives/libblas.so.3", "->/usr/lib/libblas.so.3"},
		[2]string{"var/lib/dpkg/status", "Package: base-files\n\nPackage: python3.11\n"},
	)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		t.Fatal(err)
	}
	want, err := parent.Overlay(ctx, detectSelect, layer.Uncompressed)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := want.ReadFile("usr/lib/libblas.so.3"); len(data) != 0 {
		t.Errorf("detectSelect keeps a file only a link in etc/alternatives leads to: %q", data)
	}

	tee := startOverlayTee(ctx, parent)
	// Written in small pieces, as a tar writer does.
	for b := layerTar; len(b) > 0; b = b[min(len(b), 100):] {
		if n, err := tee.Write(b[:min(len(b), 100)]); err != nil || n != min(len(b), 100) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	tee.finish(nil)
	tee.setLayer(layer)
	got, err := tee.result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := got.ReadFile("etc/conf.conf"); string(data) != "kept through etc/" {
		t.Errorf("etc/conf.conf through the tee = %q; the second pass did not read it", data)
	}
	if a, b := listing(t, got), listing(t, want); !slices.Equal(a, b) {
		t.Errorf("tee read:\n%q\nthe layer:\n%q", a, b)
	}

	// A tar cut short: writes still succeed, result says why.
	cut := startOverlayTee(ctx, parent)
	if _, err := cut.Write(layerTar[:700]); err != nil {
		t.Fatal(err)
	}
	cut.finish(errors.New("the build failed"))
	cut.setLayer(nil)
	if _, err := cut.result(ctx); err == nil {
		t.Error("result of a cut tar is not an error")
	}

	// A reader that stopped (garbage is no tar): the writer goes on.
	junk := startOverlayTee(ctx, parent)
	for range 100 {
		if _, err := junk.Write(bytes.Repeat([]byte{0xff}, 4096)); err != nil {
			t.Fatalf("Write after the reader stopped: %v", err)
		}
	}
	junk.finish(nil)
	junk.setLayer(nil)
	if _, err := junk.result(ctx); err == nil {
		t.Error("result of garbage is not an error")
	}
}
