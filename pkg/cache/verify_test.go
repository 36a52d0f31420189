package cache

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// flip overwrites 16 bytes in the middle of the file at p, keeping its size.
func flip(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	mid := len(data) / 2
	for i := mid; i < mid+16 && i < len(data); i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptEntriesAreRemoved flips bytes in cached blobs (a layer, a
// download) without changing their size: every lookup sees the damage,
// removes the entry with a warning naming it, and reports a miss, so the
// caller rebuilds or downloads again; a layer already handed out fails to
// read instead of yielding the corrupt bytes.
func TestCorruptEntriesAreRemoved(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// store puts a blob in the cache and returns its digest's hex.
		store func(t *testing.T, c *Cache) string
		// lookup asks for it again: ok reports a hit.
		lookup func(t *testing.T, c *Cache, fresh *Cache) bool
	}{
		{"layer via LookupLayer", func(t *testing.T, c *Cache) string {
			info, err := c.BuildLayer(strings.Repeat("cd", 32), Compression{}, func(w io.Writer) error {
				_, err := w.Write(bytes.Repeat([]byte("layer "), 1000))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return info.Digest.Hex
		}, func(t *testing.T, _, c *Cache) bool {
			_, ok, err := c.LookupLayer(strings.Repeat("cd", 32))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}},
		{"layer via LookupStep", func(t *testing.T, c *Cache) string {
			info, err := c.BuildLayer(strings.Repeat("ef", 32), Compression{}, func(w io.Writer) error {
				_, err := w.Write(bytes.Repeat([]byte("step "), 1000))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.RecordStep("r", Step{Name: "code", Key: strings.Repeat("12", 32), Layers: []StepLayer{{LayerInfo: info}}}); err != nil {
				t.Fatal(err)
			}
			return info.Digest.Hex
		}, func(t *testing.T, _, c *Cache) bool {
			_, ok, err := c.LookupStep(strings.Repeat("12", 32))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}},
		{"download via Has", func(t *testing.T, c *Cache) string {
			data := bytes.Repeat([]byte("a wheel "), 1000)
			if _, _, err := c.Fetch(ctx, "x.whl", sum(data), int64(len(data)), open(data)); err != nil {
				t.Fatal(err)
			}
			return sum(data)
		}, func(t *testing.T, _, c *Cache) bool {
			data := bytes.Repeat([]byte("a wheel "), 1000)
			_, ok := c.Has(sum(data), int64(len(data)))
			return ok
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			hexsum := tc.store(t, c)
			blob := c.BlobPath(mustHash(t, hexsum))
			flip(t, blob)
			// A later build: another process, which has hashed nothing yet.
			fresh, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			var warnings []string
			fresh.SetWarn(func(m string) { warnings = append(warnings, m) })
			if tc.lookup(t, c, fresh) {
				t.Fatal("a corrupt blob was trusted")
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], hexsum) || !strings.Contains(warnings[0], "corrupt") {
				t.Errorf("warnings %q: want one naming sha256:%s as corrupt", warnings, hexsum)
			}
			if _, err := os.Stat(blob); !os.IsNotExist(err) {
				t.Errorf("the corrupt blob is still in the cache (%v)", err)
			}
		})
	}
}

// TestFetchRefetchesACorruptFile corrupts a cached download: the next
// Fetch downloads it again, warns, and the cache then holds the right bytes.
func TestFetchRefetchesACorruptFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("a .deb "), 1000)
	p, _, err := c.Fetch(ctx, "x.deb", sum(data), int64(len(data)), open(data))
	if err != nil {
		t.Fatal(err)
	}
	flip(t, p)
	fresh, _ := Open(dir)
	var warnings []string
	fresh.SetWarn(func(m string) { warnings = append(warnings, m) })
	downloads := 0
	p, hit, err := fresh.Fetch(ctx, "x.deb", sum(data), int64(len(data)), func(ctx context.Context) (io.ReadCloser, error) {
		downloads++
		return open(data)(ctx)
	})
	if err != nil || hit || downloads != 1 {
		t.Fatalf("Fetch over a corrupt file = %v, hit %v, %d downloads; want one fresh download", err, hit, downloads)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
		t.Error("the cache still holds the corrupt bytes")
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "x.deb") {
		t.Errorf("warnings %q: want one naming x.deb", warnings)
	}
}

// TestCachedLayerFailsOnCorruptRead corrupts a layer after it was looked
// up: reading it fails at the end instead of passing the bytes on.
func TestCachedLayerFailsOnCorruptRead(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.BuildLayer(strings.Repeat("ab", 32), Compression{}, func(w io.Writer) error {
		_, err := w.Write(bytes.Repeat([]byte("x"), 5000))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l := c.Layer(info)
	for _, corrupt := range []bool{false, true} {
		if corrupt {
			flip(t, c.BlobPath(info.Digest))
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(rc)
		rc.Close()
		if corrupt && (err == nil || !strings.Contains(err.Error(), info.Digest.String())) {
			t.Errorf("reading a corrupt layer = %v; want an error naming %s", err, info.Digest)
		}
		if !corrupt && err != nil {
			t.Errorf("reading a good layer: %v", err)
		}
	}
}
