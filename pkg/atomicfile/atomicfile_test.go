package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWrite: a finished write replaces the file with the given mode; a
// failed one leaves the old content and no temporary file.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "kiln.lock")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	tests := []struct {
		name     string
		fill     func(w io.Writer) error
		wantErr  error
		want     string
		wantPerm os.FileMode
	}{
		{"fill fails", func(w io.Writer) error { io.WriteString(w, "half"); return boom }, boom, "old", 0o600},
		{"written", func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, nil, "new", 0o644},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(p, Options{}, tc.fill)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Write = %v, want %v", err, tc.wantErr)
			}
			data, _ := os.ReadFile(p)
			fi, _ := os.Stat(p)
			if string(data) != tc.want || fi.Mode().Perm() != tc.wantPerm {
				t.Errorf("file %q mode %v, want %q %v", data, fi.Mode().Perm(), tc.want, tc.wantPerm)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("directory holds %d entries, want only the file (no temporary left)", len(ents))
			}
		})
	}
}
