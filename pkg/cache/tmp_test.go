package cache

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRemoveStaleSparesALiveWriter runs RemoveStale (another build starting)
// in the middle of a long layer write whose temporary file looks old: the
// writer's lock keeps it, and the layer is stored.
func TestRemoveStaleSparesALiveWriter(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var res StaleResult
	info, err := c.BuildLayer(strings.Repeat("ab", 32), Compression{}, func(w io.Writer) error {
		w.Write([]byte("first half"))
		entries, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp"))
		if len(entries) != 1 {
			t.Fatalf("tmp holds %d files during the write, want 1", len(entries))
		}
		old := time.Now().Add(-time.Hour)
		os.Chtimes(filepath.Join(c.Dir(), "tmp", entries[0].Name()), old, old)
		var err error
		if res, err = c.RemoveStale(); err != nil {
			return err
		}
		_, err = w.Write([]byte("second half"))
		return err
	})
	if err != nil {
		t.Fatalf("the write around RemoveStale failed: %v", err)
	}
	if res.Removed != 0 {
		t.Errorf("RemoveStale removed %d files of a live writer", res.Removed)
	}
	if _, ok, _ := c.LookupLayer(strings.Repeat("ab", 32)); !ok {
		t.Errorf("the layer %s was not stored", info.Digest)
	}
	if entries, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp")); len(entries) != 0 {
		t.Errorf("temporaries left: %v", entries)
	}
}
