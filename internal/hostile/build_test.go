package hostile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/internal/testenv"
	"github.com/kiln-build/kiln/pkg/build"
	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/push"
	"github.com/kiln-build/kiln/pkg/spec"
)

// pythonParent returns a one-layer bookworm-like parent with the files
// kiln's Python detection reads (no real interpreter).
func pythonParent(t *testing.T) []byte {
	t.Helper()
	elf := make([]byte, 8192)
	copy(elf, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(elf[16:], 2)
	binary.LittleEndian.PutUint16(elf[18:], 62) // x86-64
	sysconfig := "build_time_vars = {'ABIFLAGS': '',\n 'LDVERSION': '3.11',\n 'MULTIARCH': 'x86_64-linux-gnu',\n" +
		" 'SOABI': 'cpython-311-x86_64-linux-gnu',\n 'VERSION': '3.11',\n 'prefix': '/usr'}\n"
	b, err := buildTar([]tent{
		dir("usr/"), dir("usr/bin/"), dir("usr/lib/"), symlink("bin", "usr/bin"), symlink("lib", "usr/lib"),
		dir("etc/"), file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
		dir("var/"), dir("var/lib/"), dir("var/lib/dpkg/"),
		file("var/lib/dpkg/status", "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\nPackage: python3.11-minimal\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.11.2-6+deb12u6\n"),
		{name: "usr/bin/python3.11", typ: tar.TypeReg, data: elf},
		symlink("usr/bin/python3", "python3.11"),
		dir("usr/lib/python3.11/"), file("usr/lib/python3.11/_sysconfigdata__x86_64-linux-gnu.py", sysconfig),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startParent starts an in-process registry holding pythonParent and
// returns the registry's host and the parent's reference.
func startParent(t *testing.T) (host, base string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	parent := pythonParent(t)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(parent)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/debian/python3:bookworm")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return host, ref.String()

}

// TestHostileWheelBuild installs each hostile wheel of the corpus with
// build.Run from a local index, and checks the build fails naming the
// wheel and leaves no cached layer holding its files and nothing in the
// cache's tmp/.
func TestHostileWheelBuild(t *testing.T) {
	cases, err := Corpus()
	if err != nil {
		t.Fatal(err)
	}
	host, base := startParent(t)

	ran := 0
	for _, c := range cases {
		// Wheels the index can serve: the file name parses and METADATA is
		// readable, so resolution reaches the install.
		if c.Kind != Wheel || strings.HasPrefix(c.File, "truncated") {
			continue
		}
		ran++
		t.Run(c.File, func(t *testing.T) {
			dist, _, _ := strings.Cut(c.File, "-")
			wheels := t.TempDir()
			if err := os.WriteFile(filepath.Join(wheels, c.File), c.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			index := testenv.StartWheelIndex(t, wheels, testenv.WheelIndexOptions{})
			dir := t.TempDir()
			yaml := "name: hostile\nregistry: " + host + "\nbase_image: " + base + "\npackages: [" + dist + "]\npip_index: " + index.URL + "\n"
			log, err := runHostileBuild(t, dir, yaml)
			if err == nil {
				t.Fatalf("the build installed %s (%s)\n%s", c.File, c.What, log)
			}
			t.Logf("build error: %v", err)
			if !strings.Contains(err.Error(), c.File) {
				t.Errorf("build error %q does not name %s", err, c.File)
			}
			checkCacheClean(t, filepath.Join(dir, "cache"), "/"+dist+"/")
		})
	}
	if ran == 0 {
		t.Fatal("no hostile wheel in the corpus")
	}
}

// checkCacheClean fails if cacheDir's tmp/ holds anything or a cached
// blob is a gzip layer with an entry whose name contains marker.
func checkCacheClean(t *testing.T, cacheDir, marker string) {
	t.Helper()
	tmp, err := os.ReadDir(filepath.Join(cacheDir, "tmp"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range tmp {
		t.Errorf("partial cache entry left behind: tmp/%s", e.Name())
	}
	filepath.WalkDir(cacheDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			t.Error(err)
			return nil
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil // not a gzip layer
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err != nil {
				return nil
			}
			if strings.Contains(h.Name, marker) {
				t.Errorf("cached layer %s holds %s from the rejected archive", p, h.Name)
				return nil
			}
		}
	})
}

// TestHostileDebBuild installs each rejected .deb of the corpus with
// build.Run from a signed local apt repository, and checks the build fails
// naming it and leaves no cached layer of it and nothing in tmp/.
func TestHostileDebBuild(t *testing.T) {
	testenv.Require(t, "apt-ftparchive", "xz")
	cases, err := Corpus()
	if err != nil {
		t.Fatal(err)
	}
	debDir := t.TempDir()
	var debs []string
	var run []Case
	for _, c := range cases {
		// apt-ftparchive cannot index a truncated .deb.
		if c.Kind != Deb || c.Want != Reject || strings.HasPrefix(c.File, "truncated") {
			continue
		}
		p := filepath.Join(debDir, c.File)
		if err := os.WriteFile(p, c.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		debs = append(debs, p)
		run = append(run, c)
	}
	if len(run) == 0 {
		t.Fatal("no hostile .deb in the corpus")
	}
	repo := testenv.StartAptRepo(t, debs...)
	key, err := os.ReadFile(repo.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	host, base := startParent(t)
	for _, c := range run {
		t.Run(c.File, func(t *testing.T) {
			pkg, _, _ := strings.Cut(c.File, "_")
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(repo.KeyFile)), key, 0o644); err != nil {
				t.Fatal(err)
			}
			yaml := "name: hostile\nregistry: " + host + "\nbase_image: " + base + "\napt_packages: [" + pkg + "]\napt_sources:\n  - " + repo.Line + "\n"
			log, err := runHostileBuild(t, dir, yaml)
			if err == nil {
				t.Fatalf("the build installed %s (%s)\n%s", c.File, c.What, log)
			}
			t.Logf("build error: %v", err)
			if !strings.Contains(err.Error(), c.File) {
				t.Errorf("build error %q does not name %s", err, c.File)
			}
			checkCacheClean(t, filepath.Join(dir, "cache"), "dpkg/info/"+pkg+".")
		})
	}
}

// runHostileBuild builds the spec yaml in dir with the cache dir/cache and
// returns build.Run's log and error.
func runHostileBuild(t *testing.T, dir, yaml string) (string, error) {
	t.Helper()
	s, err := spec.Parse("kiln.yaml", dir, []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := build.NewPlan(ctx, s, build.PlanOptions{Epoch: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cache.Open(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	_, err = build.Run(ctx, p, build.Options{Cache: cc, Publisher: push.NewRegistry(), Force: true, Log: &log})
	return log.String(), err
}
