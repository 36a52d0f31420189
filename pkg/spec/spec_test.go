package spec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"unknown key with suggestion", "base_image: a\napt_pakages: [git]\n", []string{"kiln.yaml:2", "apt_pakages", "unknown key", `did you mean "apt_packages"`}},
		{"unknown key without suggestion", "zzzzzzzzzz: 1\n", []string{"kiln.yaml:1", "zzzzzzzzzz", "unknown key"}},
		{"list given a string", "base_image: a\npackages: flask\n", []string{"kiln.yaml:2", "packages", "must be a list of strings", `not "flask"`}},
		{"string given a list", "name: [a, b]\n", []string{"kiln.yaml:1", "name", "must be a string", "not a list"}},
		{"map given a list", "env: [A=1]\n", []string{"kiln.yaml:1", "env", "must be a mapping"}},
		{"nested value in list", "apt_packages:\n  - git\n  - {a: b}\n", []string{"kiln.yaml:3", "apt_packages", "must be a list"}},
		{"alias and key both set", "base_image: a\nparent_image: b\n", []string{"kiln.yaml:2", "parent_image", "set twice"}},
		{"bad yaml", "name: [\n", []string{"kiln.yaml", "not valid YAML"}},
		{"not a mapping", "- a\n- b\n", []string{"kiln.yaml:1", "must be a mapping"}},
		{"two documents", "name: a\n---\nname: b\n", []string{"more than one YAML document"}},
		{"duplicate env", "env:\n  A: 1\n  A: 2\n", []string{"kiln.yaml:3", "env.A", "set twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("kiln.yaml", dir, []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want an error", tc.yaml)
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

func TestParseValues(t *testing.T) {
	dir := t.TempDir()
	s, err := Parse("kiln.yaml", dir, []byte(`
name: app
parent_image: debian:bookworm
source_root: src
env:
  B: 2
  A: "x=y"
  DEBUG: true
copy:
  data/model.bin: /opt/model/
  - bad
`))
	if err == nil {
		t.Fatalf("a copy mapping followed by a list item parsed: %+v", s)
	}
	s, err = Parse("kiln.yaml", dir, []byte(`
name: app
parent_image: debian:bookworm
source_root: src
env:
  B: 2
  A: "x=y"
  DEBUG: true
copy:
  - data/model.bin: /opt/model/
  - /abs/file: /etc/file
entrypoint: []
cmd: ["python3", "main.py"]
python_version: 3.10
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.BaseImage != "debian:bookworm" {
		t.Errorf("parent_image alias: BaseImage = %q", s.BaseImage)
	}
	if want := filepath.Join(dir, "src"); s.SourceRoot != want {
		t.Errorf("SourceRoot = %q, want %q (relative to the spec's directory)", s.SourceRoot, want)
	}
	if want := []KV{{"B", "2"}, {"A", "x=y"}, {"DEBUG", "true"}}; !reflect.DeepEqual(s.Env, want) {
		t.Errorf("Env = %v, want %v (order kept, scalars as text)", s.Env, want)
	}
	if want := []Copy{{filepath.Join(dir, "data/model.bin"), "/opt/model/"}, {"/abs/file", "/etc/file"}}; !reflect.DeepEqual(s.Copy, want) {
		t.Errorf("Copy = %v, want %v", s.Copy, want)
	}
	if s.Entrypoint == nil || len(s.Entrypoint) != 0 {
		t.Errorf("entrypoint: [] must parse to an empty, non-nil list; got %#v", s.Entrypoint)
	}
	if s.PythonVersion != "3.10" {
		t.Errorf("python_version 3.10 (a YAML float) = %q, want the text 3.10", s.PythonVersion)
	}
	if got := s.Position("env"); got.Line != 5 {
		t.Errorf("Position(env) = %v, want line 5", got)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string // empty: valid
	}{
		{"minimal", "base_image: debian:bookworm\n", nil},
		{"scratch", "base_image: scratch\nsource_root: src\n", nil},

		{"bad base", "base_image: 'UPPER CASE:tag'\n", []string{"kiln.yaml:1", "base_image", "not a valid image reference"}},
		{"bad name", "base_image: a\nname: Bad_Name!\n", []string{"kiln.yaml:2", "name", "not a valid image name"}},
		{"bad platform", "base_image: a\nplatform: amd64\n", []string{"kiln.yaml:2", "platform", "os/arch"}},
		{"non-linux platform", "base_image: a\nplatform: windows/amd64\n", []string{"platform", "only linux"}},
		{"platform listed twice", "base_image: a\nplatform: [linux/amd64, linux/arm64, linux/amd64]\n", []string{"kiln.yaml:2", "platform", "linux/amd64 is listed twice"}},
		{"empty platform entry", "base_image: a\nplatform: linux/amd64,,linux/arm64\n", []string{"platform", "empty entry"}},
		{"bad platform in a list", "base_image: a\nplatform: [linux/amd64, arm64]\n", []string{"platform", `"arm64" is not a platform`}},
		{"missing source_root", "base_image: a\nsource_root: nope\n", []string{"kiln.yaml:2", "source_root", "does not exist"}},
		{"source_root is a file", "base_image: a\nsource_root: file.txt\n", []string{"source_root", "not a directory"}},
		{"copy to relative dest", "base_image: a\ncopy: {file.txt: etc/x}\n", []string{"copy", "not absolute"}},
		{"copy of missing file", "base_image: a\ncopy: {nope.txt: /etc/x}\n", []string{"kiln.yaml:2", "copy", "does not exist"}},
		{"relative workdir", "base_image: a\nworkdir: app\n", []string{"workdir", "absolute"}},
		{"bad tag_format", "base_image: a\ntag_format: '{hash}-dev'\n", []string{"tag_format", "unknown placeholder {hash}"}},
		{"tag_format with bad chars", "base_image: a\ntag_format: 'a b'\n", []string{"tag_format", "valid tag"}},
		{"unsupported key", "base_image: a\ncuda: '12.1'\n", []string{"kiln.yaml:2", "cuda", "not supported yet", "CUDA parent image"}},
		{"unsupported but empty", "base_image: a\npackages: []\n", nil},
		{"bad registry", "base_image: a\nregistry: 'no spaces allowed'\n", []string{"registry", "not a valid registry"}},
		{"missing registry_config", "base_image: a\nregistry_config: nope.json\n", []string{"registry_config", "does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", dir, []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want an error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestFlagsOverride(t *testing.T) {
	dir := t.TempDir()
	s, err := Parse("kiln.yaml", dir, []byte("base_image: a\nenv: {A: '1', B: '2'}\npackages: [x]\nentrypoint: [sh]\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fl := AddFlags(fs)
	if err := fs.Parse([]string{"--parent-image", "b", "--env", "B=3", "--env", "C=4=5", "--packages", "y>=1,<2", "--packages", "z", "--entrypoint", `["python3","/root/main.py"]`, "--source-root", "rel", "--copy", "f.txt:/etc/f"}); err != nil {
		t.Fatal(err)
	}
	cwd := "/work/dir"
	if err := fl.Apply(s, cwd); err != nil {
		t.Fatal(err)
	}
	if s.BaseImage != "b" {
		t.Errorf("--parent-image: BaseImage = %q, want b", s.BaseImage)
	}
	if want := []KV{{"A", "1"}, {"B", "3"}, {"C", "4=5"}}; !reflect.DeepEqual(s.Env, want) {
		t.Errorf("Env = %v, want %v (flags merge over the file)", s.Env, want)
	}
	if want := []string{"y>=1,<2", "z"}; !reflect.DeepEqual(s.Packages, want) {
		t.Errorf("Packages = %v, want %v (no splitting on commas)", s.Packages, want)
	}
	if want := []string{"python3", "/root/main.py"}; !reflect.DeepEqual(s.Entrypoint, want) {
		t.Errorf("Entrypoint = %v, want %v", s.Entrypoint, want)
	}
	if s.SourceRoot != "/work/dir/rel" {
		t.Errorf("SourceRoot = %q, want it relative to the working directory", s.SourceRoot)
	}
	if want := []Copy{{"/work/dir/f.txt", "/etc/f"}}; !reflect.DeepEqual(s.Copy, want) {
		t.Errorf("Copy = %v, want %v", s.Copy, want)
	}
	if p := s.Position("env"); p.Flag != "env" {
		t.Errorf("Position(env) = %v, want the flag", p)
	}

	for _, bad := range [][]string{
		{"--entrypoint", "python3 main.py"},
		{"--env", "NOVALUE"},
		{"--copy", "nodest"},
		{"--base-image", "x", "--parent-image", "y"},
	} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fl := AddFlags(fs)
		if err := fs.Parse(bad); err != nil {
			t.Fatal(err)
		}
		err := fl.Apply(&Spec{}, cwd)
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("flags %v: error %v, want a *spec.Error", bad, err)
		}
	}
}

func TestReferenceAndTag(t *testing.T) {
	for _, tc := range []struct {
		s    Spec
		want string
	}{
		{Spec{Name: "app", Registry: "localhost:5000"}, "localhost:5000/app:HASH"},
		{Spec{Name: "app", Registry: "ghcr.io/org/", TagFormat: "{spec_hash}-dev"}, "ghcr.io/org/app:HASH-dev"},
		{Spec{Name: "app", Registry: "r.example", Image: "other.example/x/y:v1"}, "other.example/x/y:v1"},
		{Spec{Image: "other.example/x/y"}, "other.example/x/y:HASH"},
		{Spec{Image: "localhost:5000/y"}, "localhost:5000/y:HASH"},
	} {
		ref, err := tc.s.Reference("HASH")
		if err != nil {
			t.Fatal(err)
		}
		if ref.String() != tc.want {
			t.Errorf("Reference(%+v) = %s, want %s", tc.s, ref, tc.want)
		}
	}
	if (&Spec{Image: "app:1"}).HasRegistry() {
		t.Error("image app:1 names no registry")
	}
	if !(&Spec{Image: "localhost:5000/app"}).HasRegistry() {
		t.Error("image localhost:5000/app names a registry")
	}
}

func TestNormalizedIgnoresHostPathsAndDestinations(t *testing.T) {
	a := Spec{Name: "a", Registry: "r1", SourceRoot: "/home/alice/src", BaseImage: "x", Copy: []Copy{{"/home/alice/f", "/etc/f"}}}
	b := Spec{Name: "b", Registry: "r2", SourceRoot: "/builds/123/src", BaseImage: "x", Copy: []Copy{{"/builds/123/f", "/etc/f"}}}
	if string(a.Normalized()) != string(b.Normalized()) {
		t.Errorf("normalised specs differ only in host paths and destinations:\n%s\n%s", a.Normalized(), b.Normalized())
	}
	c := b
	c.Env = []KV{{"A", "1"}}
	if string(c.Normalized()) == string(b.Normalized()) {
		t.Error("env must change the normalised spec")
	}
}

func TestDefaultName(t *testing.T) {
	for in, want := range map[string]string{"/x/hello": "hello", "/x/My App_2": "my-app-2", "/": "kiln-image"} {
		if got := defaultName(in); got != want {
			t.Errorf("defaultName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPlatforms: the platform key takes one platform, a comma-separated
// string or a YAML list; each spelling of one set gives the same key value
// (and so the same tag), in the order written.
func TestPlatforms(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
		n                int
	}{
		{"default", "base_image: a\n", "linux/amd64", 1},
		{"one", "base_image: a\nplatform: linux/arm64/v8\n", "linux/arm64/v8", 1},
		{"comma-separated", "base_image: a\nplatform: linux/amd64,linux/arm64\n", "linux/amd64,linux/arm64", 2},
		{"comma and spaces", "base_image: a\nplatform: 'linux/amd64, linux/arm64'\n", "linux/amd64,linux/arm64", 2},
		{"list", "base_image: a\nplatform: [linux/amd64, linux/arm64]\n", "linux/amd64,linux/arm64", 2},
		{"block list", "base_image: a\nplatform:\n  - linux/arm64\n  - linux/amd64\n", "linux/arm64,linux/amd64", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", t.TempDir(), []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			if s.Platform != tc.want {
				t.Errorf("platform = %q, want %q", s.Platform, tc.want)
			}
			ps, err := s.Platforms()
			if err != nil || len(ps) != tc.n {
				t.Fatalf("Platforms() = %v, %v; want %d", ps, err, tc.n)
			}
			one := s.ForPlatform(ps[len(ps)-1])
			if _, err := one.TargetPlatform(); err != nil {
				t.Errorf("ForPlatform(%v).TargetPlatform: %v", ps[len(ps)-1], err)
			}
			if s.Platform != tc.want {
				t.Errorf("ForPlatform changed the spec: %q", s.Platform)
			}
			if tc.n > 1 {
				if _, err := s.TargetPlatform(); err == nil {
					t.Error("TargetPlatform of a spec for several platforms succeeded")
				}
			}
		})
	}
}

// TestPlatformListOfMaps: a platform list must hold strings.
func TestPlatformListOfMaps(t *testing.T) {
	_, err := Parse("kiln.yaml", t.TempDir(), []byte("base_image: a\nplatform: [{os: linux}]\n"))
	if err == nil || !strings.Contains(err.Error(), "kiln.yaml:2") || !strings.Contains(err.Error(), "a string or a list of strings") {
		t.Errorf("Parse: %v, want an error at kiln.yaml:2 asking for strings", err)
	}
}
