package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPruneMaxSize runs kiln cache prune with sizes that overflow, are
// negative or malformed: each is a usage error naming --max-size, and the
// cache keeps its blob. Valid sizes are accepted.
func TestPruneMaxSize(t *testing.T) {
	for _, tc := range []struct {
		size string
		code int
		want string
	}{
		{"8388608T", exitUsage, "too large"},
		{"9223372036854775808", exitUsage, "too large"},
		{"99999999999999999999G", exitUsage, "too large"},
		{"-1", exitUsage, "not a size"},
		{"-5G", exitUsage, "not a size"},
		{"+5G", exitUsage, "not a size"},
		{"1.5G", exitUsage, "not a size"},
		{"G", exitUsage, "not a size"},
		{"10X", exitUsage, "not a size"},
		{"", exitUsage, "give a size"},
		{"8388607T", exitOK, "removed 0 files"},
		{"1G", exitOK, "removed 0 files"},
		{"4096", exitOK, "removed 0 files"},
	} {
		t.Run(tc.size, func(t *testing.T) {
			dir := t.TempDir()
			blob := filepath.Join(dir, "blobs", "sha256", strings.Repeat("a", 64))
			if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(blob, make([]byte, 1024), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr strings.Builder
			code := run([]string{"cache", "prune", "--cache-dir", dir, "--max-size", tc.size}, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("kiln cache prune --max-size %q: exit %d, want %d (stderr %q)", tc.size, code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) || (tc.code == exitUsage && !strings.Contains(stderr.String(), "--max-size")) {
				t.Errorf("stderr %q: want %q (and, for an error, the flag's name)", stderr.String(), tc.want)
			}
			if _, err := os.Stat(blob); err != nil {
				t.Errorf("the cache lost its blob: %v", err)
			}
		})
	}
}
