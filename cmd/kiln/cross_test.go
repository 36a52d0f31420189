package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// releasePlatforms are the platforms make release builds; the test keeps
// each of them compiling (the sandbox is Linux-only, behind build tags).
var releasePlatforms = []struct{ goos, goarch string }{
	{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "arm64"}, {"darwin", "amd64"},
}

// TestCrossCompile builds kiln, with CGO_ENABLED=0 as make release does,
// for every release platform: macOS laptops build Linux images too.
func TestCrossCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles kiln for every release platform (slow on a cold build cache)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if _, err := os.Stat(goBin); err != nil {
			t.Skip("no go toolchain on PATH")
		}
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range releasePlatforms {
		t.Run(p.goos+"/"+p.goarch, func(t *testing.T) {
			if !strings.Contains(string(mk), p.goos+"/"+p.goarch) {
				t.Errorf("make release does not build %s/%s", p.goos, p.goarch)
			}
			out := filepath.Join(t.TempDir(), "kiln")
			cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, ".")
			cmd.Env = append(os.Environ(), "GOOS="+p.goos, "GOARCH="+p.goarch, "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOOS=%s GOARCH=%s go build ./cmd/kiln: %v\n%s", p.goos, p.goarch, err, b)
			}
			if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
				t.Errorf("no binary written: %v", err)
			}
		})
	}
}
