package deblayer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// manyPackages returns n .debs of a few hundred KiB each, their data.tar
// compressed in turn with xz, gzip, zstd and not at all.
func manyPackages(t *testing.T, n int) []Deb {
	t.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{17}))
	exts := []string{".xz", ".gz", ".zst", ""}
	var debs []Deb
	for i := range n {
		name := fmt.Sprintf("pkg%d", i)
		data := []ent{dir("./"), dir("./usr/"), dir("./usr/share/"), dir("./usr/share/" + name + "/")}
		for j := range 5 {
			// Half random (incompressible), half text.
			b := make([]byte, 16<<10+rng.IntN(64<<10))
			for k := range b {
				if k%2 == 0 {
					b[k] = byte(rng.Uint32())
				} else {
					b[k] = 'a' + byte(k%26)
				}
			}
			data = append(data, file(fmt.Sprintf("./usr/share/%s/f%d", name, j), string(b)))
		}
		// A file every package ships: the first one wins, the rest warn.
		data = append(data, file("./usr/share/common", name))
		control := strings.ReplaceAll(toolControl, "Package: tool", "Package: "+name)
		control = strings.ReplaceAll(control, "Installed-Size: 10", "Installed-Size: 1000")
		debs = append(debs, testPkg{control: control, data: data, dataExt: exts[i%len(exts)]}.build(t, name+".deb"))
	}
	return debs
}

func writeWith(t *testing.T, debs []Deb, opts Options) ([]byte, Report, error) {
	t.Helper()
	opts.Epoch = time.Unix(1234567890, 0)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	rep, err := Write(context.Background(), tw, Parent{Symlinks: mergedUsr()}, debs, opts)
	if err == nil {
		err = tw.Close()
	}
	return buf.Bytes(), rep, err
}

// TestWriteSameBytesWhateverTheWorkers checks that decoding ahead, in
// memory or spilled to disk, with any number of workers, writes the bytes
// and report of decoding one package at a time.
func TestWriteSameBytesWhateverTheWorkers(t *testing.T) {
	debs := manyPackages(t, 12)
	want, wantRep, err := writeWith(t, debs, Options{Workers: 1, DecodeMemory: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if len(wantRep.Packages) != 12 || len(wantRep.Packages[11].Warnings) != 1 {
		t.Fatalf("report %+v: want 12 packages, the last warning about usr/share/common", wantRep.Packages)
	}
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"2 workers", Options{Workers: 2}},
		{"8 workers", Options{Workers: 8}},
		{"8 workers, all spilled", Options{Workers: 8, DecodeMemory: -1}},
		{"3 workers, 2 MiB of memory", Options{Workers: 3, DecodeMemory: 2 << 20}},
		{"default", Options{}},
		{"xz(1)", Options{XZ: "xz"}},
		{"xz(1), 2 workers, all spilled", Options{Workers: 2, XZ: "xz", DecodeMemory: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.XZ != "" {
				xz, err := exec.LookPath(tc.opts.XZ)
				if err != nil {
					t.Skip("no xz(1) on PATH")
				}
				tc.opts.XZ = xz
			}
			tc.opts.TempDir = t.TempDir()
			got, rep, err := writeWith(t, debs, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("layer differs from the one-worker layer (%d bytes, want %d)", len(got), len(want))
			}
			if fmt.Sprint(rep) != fmt.Sprint(wantRep) {
				t.Errorf("report differs:\n%+v\nwant\n%+v", rep, wantRep)
			}
			if left, _ := os.ReadDir(tc.opts.TempDir); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// TestWriteAheadErrors checks that a corrupt package is reported by name
// whatever was decoded ahead of it, and that nothing is left in TempDir.
func TestWriteAheadErrors(t *testing.T) {
	debs := manyPackages(t, 10)
	// Corrupt the data.tar.xz of pkg4 in the middle: the ar structure
	// and control.tar are fine, decoding fails part way.
	bad := make([]byte, debs[4].Size)
	debs[4].R.ReadAt(bad, 0)
	start := bytes.Index(bad, []byte("data.tar.xz")) + 60
	for i := start + (len(bad)-start)/2; i < start+(len(bad)-start)/2+64; i++ {
		bad[i] ^= 0x55
	}
	debs[4] = Deb{Name: "pkg4.deb", R: bytes.NewReader(bad), Size: int64(len(bad))}
	xzPath, _ := exec.LookPath("xz")
	for _, tc := range []struct {
		workers int
		xz      string
	}{{1, ""}, {2, ""}, {8, ""}, {1, xzPath}, {8, xzPath}} {
		t.Run(fmt.Sprintf("%d workers, xz %q", tc.workers, tc.xz), func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := writeWith(t, debs, Options{Workers: tc.workers, DecodeMemory: -1, TempDir: dir, XZ: tc.xz})
			if err == nil || !strings.HasPrefix(err.Error(), "unpack pkg4.deb: ") {
				t.Errorf("Write: %v, want a read error in pkg4.deb's data.tar.xz", err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// TestWriteAheadCanceled checks that a canceled Write returns the
// context's error and stops its workers.
func TestWriteAheadCanceled(t *testing.T) {
	debs := manyPackages(t, 8)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tw := tar.NewWriter(&bytes.Buffer{})
	if _, err := Write(ctx, tw, Parent{}, debs, Options{Workers: 4}); err != context.Canceled {
		t.Errorf("Write with a canceled context: %v, want context.Canceled", err)
	}
}

// TestWriteAheadBomb checks that a data.tar far larger than its
// Installed-Size is refused, naming the package, when it is decoded ahead.
func TestWriteAheadBomb(t *testing.T) {
	control := strings.ReplaceAll(toolControl, "Installed-Size: 10", "Installed-Size: 1")
	bomb := testPkg{control: control, dataExt: ".zst", data: []ent{
		dir("./"), dir("./usr/"), file("./usr/zeros", strings.Repeat("\x00", 80<<20)),
	}}.build(t, "bomb.deb")
	debs := append(manyPackages(t, 3), bomb)
	for _, workers := range []int{1, 4} {
		_, _, err := writeWith(t, debs, Options{Workers: workers, TempDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "unpack bomb.deb") || !strings.Contains(err.Error(), "decompression bomb") {
			t.Errorf("%d workers: Write: %v, want bomb.deb refused as a decompression bomb", workers, err)
		}
	}
}

// TestWriteOpensLate checks that archives given by Open (still
// downloading when Write starts, ready in any order) give the bytes of
// archives open from the start, and that an Open failure is reported for
// its package.
func TestWriteOpensLate(t *testing.T) {
	debs := manyPackages(t, 10)
	want, _, err := writeWith(t, debs, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	late := func(fail int) []Deb {
		ready := make([]chan struct{}, len(debs))
		out := make([]Deb, len(debs))
		for i, d := range debs {
			ready[i] = make(chan struct{})
			out[i] = Deb{Name: d.Name, Open: func(ctx context.Context) (io.ReaderAt, int64, error) {
				select {
				case <-ready[i]:
				case <-ctx.Done():
					return nil, 0, ctx.Err()
				}
				if i == fail {
					return nil, 0, errors.New("GET pkg: 503 Service Unavailable")
				}
				return d.R, d.Size, nil
			}}
		}
		go func() {
			// The last first: Write must wait, in order, for each.
			for i := len(ready) - 1; i >= 0; i-- {
				time.Sleep(time.Millisecond)
				close(ready[i])
			}
		}()
		return out
	}
	got, _, err := writeWith(t, late(-1), Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("layer of archives opened late differs (%d bytes, want %d)", len(got), len(want))
	}
	_, _, err = writeWith(t, late(6), Options{Workers: 2})
	if err == nil || !strings.Contains(err.Error(), "pkg6.deb") || !strings.Contains(err.Error(), "503") {
		t.Errorf("Write with a failed Open: %v, want the failure, named by package", err)
	}
}
