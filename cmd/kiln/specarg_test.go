package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/sandbox"
)

// TestSpecArgument: the spec is a positional argument (a file or a
// directory holding kiln.yaml) of every command that reads one, -f still
// names it, and naming it twice, or something missing, is a usage error
// naming the input.
func TestSpecArgument(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, name string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("base_image: scratch\nname: "+name+"\ntag_format: fixed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("proj/other.yaml", "from-file")
	write("proj/kiln.yaml", "from-dir")
	proj := filepath.Join(dir, "proj")
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"file argument", []string{"name", file}, exitOK, "from-file:fixed", ""},
		{"directory argument", []string{"name", proj}, exitOK, "from-dir:fixed", ""},
		{"directory with a slash", []string{"name", proj + "/"}, exitOK, "from-dir:fixed", ""},
		{"argument after flags", []string{"name", "--tag-format", "other", file}, exitOK, "from-file:other", ""},
		{"-f kept", []string{"name", "-f", file}, exitOK, "from-file:fixed", ""},
		{"both", []string{"name", "-f", file, proj}, exitUsage, "", "both -f " + file + " and the argument " + proj + " name a spec; give one of them"},
		{"two arguments", []string{"name", file, proj}, exitUsage, "", `unexpected argument "` + proj + `"`},
		{"missing file", []string{"name", filepath.Join(dir, "nope.yaml")}, exitUsage, "", filepath.Join(dir, "nope.yaml") + ": no such spec file or directory"},
		{"directory without kiln.yaml", []string{"name", empty}, exitUsage, "", empty + ": the directory holds no kiln.yaml"},
		{"lock: missing", []string{"lock", filepath.Join(dir, "nope")}, exitUsage, "", "no such spec file or directory"},
		{"exists: missing", []string{"exists", filepath.Join(dir, "nope")}, exitUsage, "", "no such spec file or directory"},
		{"build: both", []string{"build", "-f", file, file}, exitUsage, "", "give one of them"},
		{"sbom: missing", []string{"sbom", filepath.Join(dir, "nope")}, exitUsage, "", "no such spec file or directory"},
		{"bundle: missing", []string{"bundle", "-o", filepath.Join(dir, "b"), filepath.Join(dir, "nope")}, exitUsage, "", "no such spec file or directory"},
		{"exists: directory, no registry", []string{"exists", proj}, exitUsage, "", "names no registry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(append(tc.args, "--cache-dir", t.TempDir()), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("kiln %v: exit %d, want %d\n%s", tc.args, code, tc.code, stderr.String())
			}
			if tc.stdout != "" && !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("kiln %v: stdout %q, want it to contain %q", tc.args, stdout.String(), tc.stdout)
			}
			if tc.stderr != "" && !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("kiln %v: stderr %q does not contain %q", tc.args, stderr.String(), tc.stderr)
			}
		})
	}
}

// TestVersion: kiln version and kiln --version print kiln's version and
// the layer and sandbox format versions, on stdout.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr strings.Builder
		if code := run(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("kiln %v: exit %d\n%s", args, code, stderr.String())
		}
		out := stdout.String()
		for _, w := range []string{"kiln ", "layer format: " + layer.FormatVersion, "sandbox format: " + sandbox.FormatVersion} {
			if !strings.Contains(out, w) {
				t.Errorf("kiln %v: stdout %q does not contain %q", args, out, w)
			}
		}
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"version", "extra"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), `unexpected argument "extra"`) {
		t.Errorf("kiln version extra: exit %d, stderr %q", code, stderr.String())
	}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "kiln (devel)\n"},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, true, "kiln v1.2.3\n"},
		{"commit", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, true, "kiln (devel) (commit 0123456789ab-dirty)\n"},
	} {
		if got := versionText(tc.info, tc.ok); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: versionText = %q, want it to start with %q", tc.name, got, tc.want)
		}
	}
}
