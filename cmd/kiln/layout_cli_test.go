package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOCILayoutRefusesNonLayout runs kiln build --oci-layout at the spec
// file and at a source directory: both are usage errors naming the path,
// and both are left untouched.
func TestOCILayoutRefusesNonLayout(t *testing.T) {
	dir := t.TempDir()
	specPath := filepath.Join(dir, "kiln.yaml")
	spec := "name: app\nbase_image: scratch\ncopy: {src: /app/}\n"
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.py"), []byte("print(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{specPath, src} {
		var stdout, stderr strings.Builder
		code := run([]string{"build", "-f", specPath, "--cache-dir", t.TempDir(), "--oci-layout", target}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), target) || !strings.Contains(stderr.String(), "not") {
			t.Errorf("kiln build --oci-layout %s: exit %d, stderr %q; want exit 2 naming the path", target, code, stderr.String())
		}
	}
	if got, _ := os.ReadFile(specPath); string(got) != spec {
		t.Errorf("the spec was replaced: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(src, "main.py")); string(got) != "print(1)\n" {
		t.Errorf("the source directory was replaced")
	}
}
