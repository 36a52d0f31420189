package deblayer

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// benchDebs opens the .deb files in $KILN_BENCH_DEBS (a directory, for
// example one filled by apt-get download), sorted by name.
func benchDebs(b *testing.B) ([]Deb, int64) {
	b.Helper()
	dir := os.Getenv("KILN_BENCH_DEBS")
	if dir == "" {
		b.Skip("set KILN_BENCH_DEBS to a directory of real .deb files (apt-get download ...)")
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil || len(names) == 0 {
		b.Fatalf("no .deb files in %s: %v", dir, err)
	}
	sort.Strings(names)
	var debs []Deb
	var size int64
	for _, n := range names {
		d, c, err := OpenFile(n)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		debs = append(debs, d)
		size += d.Size
	}
	return debs, size
}

// BenchmarkWriteRealDebs writes one layer of every .deb in
// $KILN_BENCH_DEBS to a discarding tar.Writer: the decoding and checking
// Write does, without compression. The cases decode one package at a time
// with the built-in xz decoder (what kiln did before decoding ahead), then
// ahead on GOMAXPROCS workers, then ahead with xz(1).
func BenchmarkWriteRealDebs(b *testing.B) {
	debs, size := benchDebs(b)
	xzPath, _ := exec.LookPath("xz")
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"serial", Options{Workers: 1}},
		{"ahead", Options{}},
		{"ahead-xz1", Options{XZ: xzPath}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.name == "ahead-xz1" && xzPath == "" {
				b.Skip("no xz(1) on PATH")
			}
			b.SetBytes(size)
			b.ReportAllocs()
			bc.opts.Epoch = time.Unix(1234567890, 0)
			for b.Loop() {
				tw := tar.NewWriter(io.Discard)
				if _, err := Write(context.Background(), tw, Parent{Symlinks: mergedUsr()}, debs, bc.opts); err != nil {
					b.Fatal(err)
				}
				if err := tw.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
