package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestBuildContext checks that every key naming host files the image takes
// stays inside the build context, symlinks resolved, and that --context
// widens it.
func TestBuildContext(t *testing.T) {
	top := t.TempDir()
	app := filepath.Join(top, "app")
	for _, d := range []string{"app/src", "app/real", "other"} {
		mustOK(t, os.MkdirAll(filepath.Join(top, d), 0o755))
	}
	for _, f := range []string{"secret", "app/data.txt", "app/req.txt", "app/key.asc", "other/key.asc"} {
		mustOK(t, os.WriteFile(filepath.Join(top, f), []byte("x"), 0o644))
	}
	mustOK(t, os.Symlink("../secret", filepath.Join(app, "leak")))
	mustOK(t, os.Symlink("/etc", filepath.Join(app, "etc")))
	mustOK(t, os.Symlink("real", filepath.Join(app, "srclink")))
	mustOK(t, os.Symlink("../other", filepath.Join(app, "outdir")))
	const base = "base_image: scratch\n"
	for _, tc := range []struct {
		name  string
		yaml  string
		flags []string
		want  []string // substrings of the error; nil: valid
	}{
		{name: "inside", yaml: "source_root: src\ncopy: {data.txt: /opt/}\nrequirements: req.txt\n"},
		{name: "absolute copy", yaml: "copy: {/etc/passwd: /opt/p}\n", want: []string{"kiln.yaml:2", "copy", "/etc/passwd", "outside the build context", app, "--context"}},
		{name: "climbing copy", yaml: "copy: {../secret: /opt/s}\n", want: []string{"kiln.yaml:2", "copy", filepath.Join(top, "secret"), "outside the build context"}},
		{name: "missing climbing copy", yaml: "copy: {../nothing: /opt/s}\n", want: []string{"copy", "outside the build context"}},
		{name: "symlink out", yaml: "copy: {leak: /opt/s}\n", want: []string{"copy", filepath.Join(app, "leak"), "resolves to " + filepath.Join(top, "secret"), "--context"}},
		{name: "through a symlinked dir", yaml: "copy: {etc/passwd: /opt/p}\n", want: []string{"copy", "resolves to /etc/passwd"}},
		{name: "source_root outside", yaml: "source_root: ..\n", want: []string{"source_root", "outside the build context"}},
		{name: "source_root symlink out", yaml: "source_root: outdir\n", want: []string{"kiln.yaml:2", "source_root", "resolves to " + filepath.Join(top, "other")}},
		{name: "source_root symlink in", yaml: "source_root: srclink\n"},
		{name: "source_root not a dir", yaml: "source_root: data.txt\n", want: []string{"source_root", "not a directory"}},
		{name: "missing", yaml: "copy: {nothing: /opt/s}\n", want: []string{"copy", "does not exist"}},
		{name: "requirements outside", yaml: "requirements: /etc/passwd\n", want: []string{"requirements", "/etc/passwd", "outside the build context"}},
		{name: "signed-by outside", yaml: "apt_sources: [\"deb [signed-by=../other/key.asc] http://127.0.0.1/debian bookworm main\"]\n", want: []string{"apt_sources", "signed-by", "outside the build context"}},
		{name: "signed-by absolute", yaml: "apt_sources: [\"deb [signed-by=/etc/passwd] http://127.0.0.1/debian bookworm main\"]\n", want: []string{"apt_sources", "/etc/passwd", "outside"}},
		{name: "signed-by inside", yaml: "apt_sources: [\"deb [signed-by=key.asc] http://127.0.0.1/debian bookworm main\"]\n"},
		{name: "flag copy outside", yaml: "", flags: []string{"--copy", filepath.Join(top, "secret") + ":/s"}, want: []string{"flag --copy", "outside the build context"}},
		{name: "context widens", yaml: "copy: {../secret: /opt/s, leak: /opt/l}\nsource_root: outdir\nrequirements: ../other/key.asc\n", flags: []string{"--context", top}},
		{name: "context narrows", yaml: "copy: {data.txt: /opt/}\n", flags: []string{"--context", filepath.Join(app, "src")}, want: []string{"copy", "outside the build context " + filepath.Join(app, "src") + ", given by --context"}},
		{name: "context missing", yaml: "", flags: []string{"--context", filepath.Join(top, "nope")}, want: []string{"flag --context", "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", app, []byte(base+tc.yaml))
			mustOK(t, err)
			s.File = "kiln.yaml"
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			fl := AddFlags(fs)
			mustOK(t, fs.Parse(tc.flags))
			mustOK(t, fl.Apply(s, top))
			err = s.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want an error with %q", tc.want)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Errorf("error %v is %T, want *spec.Error", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestSymlinkedSources checks that symlinked sources are resolved: the
// tree is read from the target, and a linked file keeps the link's name.
func TestSymlinkedSources(t *testing.T) {
	dir := t.TempDir()
	mustOK(t, os.MkdirAll(filepath.Join(dir, "real"), 0o755))
	mustOK(t, os.WriteFile(filepath.Join(dir, "model.bin"), []byte("x"), 0o644))
	mustOK(t, os.Symlink("real", filepath.Join(dir, "src")))
	mustOK(t, os.Symlink("model.bin", filepath.Join(dir, "latest.bin")))
	s, err := Parse("kiln.yaml", dir, []byte("base_image: scratch\nsource_root: src\ncopy: {latest.bin: /opt/}\n"))
	mustOK(t, err)
	mustOK(t, s.Validate())
	real, _ := filepath.EvalSymlinks(filepath.Join(dir, "real"))
	if s.SourceRoot != real {
		t.Errorf("SourceRoot = %s, want %s", s.SourceRoot, real)
	}
	if s.Copy[0].Dest != "/opt/latest.bin" || filepath.Base(s.Copy[0].Src) != "model.bin" {
		t.Errorf("Copy = %+v, want model.bin to /opt/latest.bin", s.Copy[0])
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
