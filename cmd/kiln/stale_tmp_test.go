package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBuildRemovesStaleTemporaries starts kiln build on a cache holding
// temporaries: one whose writer was killed (unlocked, minutes old), one a
// running build is writing (locked, as old), one just created (not yet
// locked by its writer) and an old and a recent unfinished parent record.
// The build removes only the killed writer's file and the old record.
func TestBuildRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	specPath := filepath.Join(dir, "kiln.yaml")
	if err := os.WriteFile(specPath, []byte("name: app\nbase_image: scratch\ncopy: {src: /app/}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "main.py"), []byte("print(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(dir, "cache")
	old := time.Now().Add(-10 * time.Minute)
	files := []struct {
		path    string
		age     time.Time
		locked  bool
		removed bool
	}{
		{"tmp/layer-killed", old, false, true},
		{"tmp/layer-running", old, true, false},
		{"tmp/fetch-just-created", time.Now(), false, false},
		{"parents/.rootfs-killed", time.Now().Add(-2 * time.Hour), false, true},
		{"parents/.rootfs-recent", old, false, false},
	}
	for _, f := range files {
		p := filepath.Join(cacheDir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, f.age, f.age); err != nil {
			t.Fatal(err)
		}
		if f.locked {
			l, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := syscall.Flock(int(l.Fd()), syscall.LOCK_EX); err != nil {
				t.Fatal(err)
			}
		}
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"build", "-f", specPath, "--cache-dir", cacheDir, "--oci-layout", filepath.Join(dir, "out")}, &stdout, &stderr); code != 0 {
		t.Fatalf("kiln build: exit %d\n%s", code, stderr.String())
	}
	for _, f := range files {
		_, err := os.Stat(filepath.Join(cacheDir, f.path))
		if gone := os.IsNotExist(err); gone != f.removed {
			t.Errorf("%s: removed = %v, want %v", f.path, gone, f.removed)
		}
	}
	if !strings.Contains(stderr.String(), "removed 2 temporary files") {
		t.Errorf("the build did not say what it removed:\n%s", stderr.String())
	}
}
