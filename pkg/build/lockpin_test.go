package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/resolve"
	"github.com/kiln-build/kiln/pkg/spec"
)

// TestLockedDownloadMismatchNamesTheLock (E10): with --locked, the expected
// hash of a download comes from kiln.lock, so a file that does not match
// (a tampered lock) is blamed on kiln.lock, not on the index or mirror.
func TestLockedDownloadMismatchNamesTheLock(t *testing.T) {
	served := []byte("the file the mirror serves")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(served)
	}))
	t.Cleanup(srv.Close)
	other := sha256.Sum256([]byte("what the tampered lock pins"))
	pinned := hex.EncodeToString(other[:])
	newCache := func(t *testing.T) *cache.Cache {
		c, err := cache.Open(t.TempDir())
		must(t, err)
		return c
	}

	t.Run("deb", func(t *testing.T) {
		debs := []lock.Deb{{Name: "jq", Version: "1.6-2.1", Architecture: "amd64", SHA256: pinned, Size: int64(len(served)), URL: srv.URL + "/pool/jq.deb"}}
		// The layer downloads its packages as it is built.
		build := func(p *Plan) error {
			dl, err := debLayer(context.Background(), Options{Cache: newCache(t)}, &resolve.Parent{}, fstest.MapFS{}, debs, p)
			if err != nil {
				return err
			}
			return dl.WriteTar(context.Background(), tar.NewWriter(io.Discard))
		}
		err := build(&Plan{Lock: &lock.Lock{Debs: debs}})
		if err == nil || !strings.Contains(err.Error(), "does not match the sha256 kiln.lock pins") || strings.Contains(err.Error(), "index") {
			t.Errorf("locked deb download = %v, want an error naming kiln.lock as the source of the hash", err)
		}
		if err == nil || !strings.Contains(err.Error(), "regenerate it with kiln lock") {
			t.Errorf("locked deb download = %v, want the fix (kiln lock)", err)
		}
		// Without a lock, the pin came from the index: blame it.
		err = build(&Plan{})
		if err == nil || !strings.Contains(err.Error(), "index") {
			t.Errorf("unlocked deb download = %v, want an error naming the index", err)
		}
	})

	t.Run("wheel", func(t *testing.T) {
		wheels := []lock.Wheel{{Name: "flask", Version: "3.0", Filename: "flask-3.0-py3-none-any.whl", URL: srv.URL + "/files/flask-3.0-py3-none-any.whl", SHA256: pinned, Size: int64(len(served))}}
		b := &session{
			p:  &Plan{Spec: &spec.Spec{PipIndex: srv.URL + "/simple"}, Lock: &lock.Lock{Wheels: wheels}},
			o:  Options{Cache: newCache(t)},
			in: inputs{wheels: wheels},
		}
		_, err := b.downloadWheels(context.Background())
		if err == nil || !strings.Contains(err.Error(), "does not match the sha256 kiln.lock pins") || strings.Contains(err.Error(), "the index") {
			t.Errorf("locked wheel download = %v, want an error naming kiln.lock as the source of the hash", err)
		}
	})
}

// TestLockedBuiltWheelNeedsItsInputs: a --locked build whose cache lacks a
// wheel kiln.lock pins as built from an sdist builds it again only from
// what the lock pins; a lock without the sdist's sha256 or its build
// requirements (made by an older kiln) is refused before any build,
// naming the package and the fix.
func TestLockedBuiltWheelNeedsItsInputs(t *testing.T) {
	sdist, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "fixtures", "sdists", "pep518-3.0.tar.gz"))
	must(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(sdist)
	}))
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(sdist)
	sdistSum := hex.EncodeToString(sum[:])
	wheel := func(sd *lock.Sdist) lock.Wheel {
		return lock.Wheel{Name: "pep518", Version: "3.0", Filename: "pep518-3.0-py3-none-any.whl", URL: "file:///elsewhere/cache/blobs/sha256/x", SHA256: strings.Repeat("e", 64), Size: 10, BuiltFrom: sd}
	}
	for _, tc := range []struct {
		name string
		sd   *lock.Sdist
		want string
	}{
		{"no sdist sha256", &lock.Sdist{Filename: "pep518-3.0.tar.gz", URL: srv.URL + "/files/pep518-3.0.tar.gz"},
			"kiln.lock pins pep518 3.0 as built from pep518-3.0.tar.gz but not the sdist's sha256"},
		{"no build requirements", &lock.Sdist{Filename: "pep518-3.0.tar.gz", URL: srv.URL + "/files/pep518-3.0.tar.gz", SHA256: sdistSum},
			"kiln.lock pins pep518 3.0 as built from pep518-3.0.tar.gz but not its build requirements (simplewheel==2.0, setuptools, wheel)"},
		{"another sdist", &lock.Sdist{Filename: "pep518-3.0.tar.gz", URL: srv.URL + "/files/pep518-3.0.tar.gz", SHA256: strings.Repeat("d", 64)},
			"does not match the sha256 kiln.lock pins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.Open(t.TempDir())
			must(t, err)
			wheels := []lock.Wheel{wheel(tc.sd)}
			b := &session{
				p:  &Plan{Spec: &spec.Spec{PipIndex: srv.URL + "/simple"}, Lock: &lock.Lock{Wheels: wheels}},
				o:  Options{Cache: c},
				in: inputs{wheels: wheels},
			}
			_, err = b.downloadWheels(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("downloadWheels = %v, want an error with %q", err, tc.want)
			}
			if err != nil && tc.sd.SHA256 == sdistSum && !strings.Contains(err.Error(), "regenerate the lock with kiln lock") {
				t.Errorf("downloadWheels = %v, want the fix (kiln lock)", err)
			}
		})
	}
}
