package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandsKeysCLI runs kiln name over specs with the commands keys:
// without commands they leave the tag alone; a bad value exits 2 naming the
// file, line and key; commands over scratch are refused (no shell).
func TestCommandsKeysCLI(t *testing.T) {
	dir := t.TempDir()
	name := func(yaml string, flags ...string) (int, string, string) {
		t.Helper()
		p := filepath.Join(dir, "kiln.yaml")
		if err := os.WriteFile(p, []byte("name: app\nbase_image: scratch\n"+yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr strings.Builder
		code := run(append([]string{"name", "-f", p}, flags...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, base, stderr := name("")
	if code != 0 {
		t.Fatalf("kiln name: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct {
		yaml  string
		flags []string
	}{
		{"commands_network: true\ncommands_after_code: true\ncommands_timeout: 2h\n", nil},
		{"commands: []\ncommands_network: true\n", nil},
		{"", []string{"--commands-network", "--commands-after-code", "--commands-timeout", "5m"}},
	} {
		if code, out, stderr := name(tc.yaml, tc.flags...); code != 0 || out != base {
			t.Errorf("kiln name with %q %v: exit %d, %q (%s); want %q, the tag without them", tc.yaml, tc.flags, code, out, stderr, base)
		}
	}
	for _, tc := range []struct {
		yaml  string
		flags []string
		want  []string
	}{
		{"commands_timeout: 30\n", nil, []string{"kiln.yaml:3: commands_timeout", `"30" is not a duration`, "30m"}},
		{"", []string{"--commands-timeout", "-1m"}, []string{"flag --commands-timeout: commands_timeout", "not a positive duration"}},
		{"commands:\n  - make\n  - ''\n", nil, []string{"kiln.yaml:5: commands[1]", "empty command"}},
		{"commands: [make]\n", nil, []string{"kiln.yaml:3: commands", "need /bin/sh", "scratch"}},
	} {
		code, out, stderr := name(tc.yaml, tc.flags...)
		if code != exitUsage || out != "" {
			t.Errorf("kiln name with %q %v: exit %d, stdout %q; want exit %d and nothing printed", tc.yaml, tc.flags, code, out, exitUsage)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("kiln name with %q %v: stderr %q does not contain %q", tc.yaml, tc.flags, stderr, w)
			}
		}
	}
}
