package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/pkg/spec"
)

// TestReadmeDocumentsEverything keeps the README's tables complete: every
// spec key and every flag of kiln build must appear there.
func TestReadmeDocumentsEverything(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, key := range spec.Keys() {
		if !strings.Contains(readme, "| `"+key+"` |") {
			t.Errorf("README has no table row for spec key %q", key)
		}
	}
	c, _ := newBuildFlags(io.Discard)
	c.fs.VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(readme, "--"+f.Name) {
			t.Errorf("README does not mention flag --%s", f.Name)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Usage"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"build", "a.yaml", "b.yaml"}, exitUsage, `unexpected argument "b.yaml"`},
		{[]string{"build", "no-such-spec.yaml"}, exitUsage, "no-such-spec.yaml: no such spec file or directory"},
		{[]string{"build", "--compression", "lz4", "--base-image", "scratch"}, exitUsage, "unknown compression"},
		{[]string{"name", "-f", "/nonexistent/kiln.yaml"}, exitUsage, "spec file not found"},
		{[]string{"--help"}, exitOK, "Usage"},
	} {
		var stdout, stderr strings.Builder
		if code := run(tc.args, &stdout, &stderr); code != tc.code {
			t.Errorf("kiln %v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("kiln %v: stderr %q does not contain %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("kiln %v printed on stdout: %q", tc.args, stdout.String())
		}
	}
}
