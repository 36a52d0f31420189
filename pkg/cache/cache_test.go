package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func open(data []byte) Opener {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func TestFetch(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := []byte("a .deb, say")
	for _, tc := range []struct {
		name    string
		serve   []byte
		size    int64
		wantErr []string
	}{
		{"wrong content", []byte("tampered .deb"), 0, []string{"sha256 mismatch", sum([]byte("tampered .deb")), sum(data)}},
		{"too long", append(append([]byte{}, data...), 'x'), int64(len(data)), []string{"bytes", sum(data)}},
		{"too short", data[:3], int64(len(data)), []string{"got 3 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.Fetch(ctx, "x.deb", sum(data), tc.size, open(tc.serve))
			if err == nil {
				t.Fatal("Fetch accepted a file that is not the promised one")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, err := os.Stat(c.BlobPath(mustHash(t, sum(data)))); !errors.Is(err, os.ErrNotExist) {
				t.Error("a rejected download was cached")
			}
		})
	}
	p, hit, err := c.Fetch(ctx, "x.deb", sum(data), int64(len(data)), open(data))
	if err != nil || hit {
		t.Fatalf("Fetch = %v, hit %v", err, hit)
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, data) {
		t.Errorf("cached %q", got)
	}
	_, hit, err = c.Fetch(ctx, "x.deb", sum(data), int64(len(data)), func(context.Context) (io.ReadCloser, error) {
		t.Error("a cached file was downloaded again")
		return nil, errors.New("no")
	})
	if err != nil || !hit {
		t.Errorf("second Fetch = %v, hit %v; want a hit", err, hit)
	}
	if entries, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp")); len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestBuildLayerAndLookup(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("ab", 32)
	if _, ok, err := c.LookupLayer(key); ok || err != nil {
		t.Fatalf("LookupLayer on an empty cache = %v, %v", ok, err)
	}
	// A write that fails leaves nothing a later build trusts.
	_, err = c.BuildLayer(key, Compression{}, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return errors.New("killed")
	})
	if err == nil {
		t.Fatal("BuildLayer ignored the write error")
	}
	if _, ok, _ := c.LookupLayer(key); ok {
		t.Fatal("a failed build left a cache entry")
	}
	for _, comp := range []Compression{{}, {Algorithm: "zstd"}} {
		info, err := c.BuildLayer(key+comp.algorithm(), comp, func(w io.Writer) error {
			_, err := w.Write([]byte("tar bytes"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := c.LookupLayer(key + comp.algorithm())
		if err != nil || !ok || got != info {
			t.Fatalf("LookupLayer = %+v, %v, %v; want %+v", got, ok, err, info)
		}
		l := c.Layer(info)
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "tar bytes" {
			t.Errorf("%s: uncompressed %q", comp, b)
		}
		if info.DiffID.Hex != sum([]byte("tar bytes")) {
			t.Errorf("%s: diffID %s is not the sha256 of the uncompressed bytes", comp, info.DiffID)
		}
		// A truncated blob is a miss, not a trusted entry.
		os.Truncate(c.BlobPath(info.Digest), 3)
		if _, ok, _ := c.LookupLayer(key + comp.algorithm()); ok {
			t.Errorf("%s: a truncated blob was trusted", comp)
		}
	}
}

func mustHash(t *testing.T, hexsum string) (h v1.Hash) {
	t.Helper()
	h.Algorithm, h.Hex = "sha256", hexsum
	return h
}
