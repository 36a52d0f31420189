package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestImageSpecKeys: flytekit ImageSpec's newer keys parse and validate
// as documented, and refuse what kiln cannot honour by name.
func TestImageSpecKeys(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{".netrc", "other.netrc/.netrc", "src/file.txt", "data/x", "app/main.py"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("machine idx.example login u password p\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		yaml  string
		err   string // a substring of the error; "" for none
		check func(t *testing.T, s *Spec)
	}{
		{"python_exec", "python_exec: /opt/venv/bin/python\n", "", func(t *testing.T, s *Spec) {
			if s.PythonExec != "/opt/venv/bin/python" {
				t.Errorf("PythonExec = %q", s.PythonExec)
			}
		}},
		{"python_exec relative", "python_exec: venv/bin/python\n", `kiln.yaml:2: python_exec: "venv/bin/python" is not an absolute path`, nil},

		{"source_copy_mode all", "source_root: app\nsource_copy_mode: all\n", "", copies(true)},
		{"source_copy_mode auto", "source_root: app\nsource_copy_mode: auto\n", "", copies(true)},
		{"source_copy_mode loaded modules", "source_root: app\nsource_copy_mode: LOADED_MODULES\n", "", copies(true)},
		{"source_copy_mode enum", "source_root: app\nsource_copy_mode: CopyFileDetection.ALL\n", "", copies(true)},
		{"source_copy_mode none", "source_root: app\nsource_copy_mode: none\n", "", copies(false)},
		{"source_copy_mode no_copy", "source_root: app\nsource_copy_mode: NO_COPY\n", "", copies(false)},
		{"source_copy_mode 3", "source_root: app\nsource_copy_mode: 3\n", "", copies(false)},
		{"source_copy_mode none without source_root", "source_copy_mode: none\n", "", copies(false)},
		{"source_copy_mode all without source_root", "source_copy_mode: all\n", `source_copy_mode: "all" copies files of source_root, which is not set`, nil},
		{"source_copy_mode unknown", "source_root: app\nsource_copy_mode: some\n", `source_copy_mode: "some" is not a source copy mode (write all, auto (loaded_modules) or none)`, nil},

		{"pip_extra_args mapped", "pip_extra_args: '--index-url https://a.example/simple --extra-index-url=https://b.example/simple --no-cache-dir --only-binary :all: -U --root-user-action ignore'\n", "", func(t *testing.T, s *Spec) {
			if s.PipIndex != "https://a.example/simple" || !reflect.DeepEqual(s.PipExtraIndexURL, []string{"https://b.example/simple"}) {
				t.Errorf("pip_extra_args gave pip_index %q, pip_extra_index_url %q", s.PipIndex, s.PipExtraIndexURL)
			}
			if err := s.Validate(); err != nil || len(s.PipExtraIndexURL) != 1 {
				t.Errorf("a second Validate: %v, pip_extra_index_url %q (folded twice?)", err, s.PipExtraIndexURL)
			}
		}},
		{"pip_extra_args -i", "pip_extra_args: -ihttps://c.example/simple\n", "", func(t *testing.T, s *Spec) {
			if s.PipIndex != "https://c.example/simple" {
				t.Errorf("-iURL gave pip_index %q", s.PipIndex)
			}
		}},
		{"pip_extra_args extra index beside pip_extra_index_url", "pip_extra_index_url: [https://a.example/simple]\npip_extra_args: --extra-index-url https://b.example/simple\n", "", func(t *testing.T, s *Spec) {
			if !reflect.DeepEqual(s.PipExtraIndexURL, []string{"https://a.example/simple", "https://b.example/simple"}) {
				t.Errorf("pip_extra_index_url = %q", s.PipExtraIndexURL)
			}
		}},
		{"pip_extra_args refused flag", "pip_extra_args: --no-cache-dir --no-deps\n", "kiln.yaml:2: pip_extra_args: --no-deps is not supported by kiln (kiln maps --index-url/-i", nil},
		{"pip_extra_args only-binary of one package", "pip_extra_args: --only-binary numpy\n", "--only-binary numpy: kiln installs wheels for every package", nil},
		{"pip_extra_args second index", "pip_index: https://a.example/simple\npip_extra_args: --index-url https://b.example/simple\n", "--index-url https://b.example/simple names a second index URL", nil},
		{"pip_extra_args missing value", "pip_extra_args: --index-url\n", "--index-url needs a value", nil},
		{"pip_extra_args a package", "pip_extra_args: requests\n", `"requests" is not a flag`, nil},
		{"pip_extra_args bad URL", "pip_extra_args: --index-url ftp://x/simple\n", "pip_index", nil},

		{"pip_secret_mounts tuple", "pip_secret_mounts: [[.netrc, /root/.netrc]]\n", "", func(t *testing.T, s *Spec) {
			if s.NetrcFile() != filepath.Join(dir, ".netrc") {
				t.Errorf("NetrcFile() = %q", s.NetrcFile())
			}
		}},
		{"pip_secret_mounts mapping", "pip_secret_mounts: {other.netrc/.netrc: /home/u/.netrc}\n", "", func(t *testing.T, s *Spec) {
			if s.NetrcFile() != filepath.Join(dir, "other.netrc/.netrc") {
				t.Errorf("NetrcFile() = %q", s.NetrcFile())
			}
		}},
		{"pip_secret_mounts not a netrc", "pip_secret_mounts: [[.netrc, /etc/pip.conf]]\n", "kiln.yaml:2: pip_secret_mounts: " + filepath.Join(dir, ".netrc") + " is mounted at /etc/pip.conf: kiln gives pip's secrets to its own index downloads, and reads only a .netrc", nil},
		{"pip_secret_mounts missing", "pip_secret_mounts: [[nope, /root/.netrc]]\n", filepath.Join(dir, "nope") + " is not a readable file", nil},
		{"pip_secret_mounts two", "pip_secret_mounts: [[.netrc, /root/.netrc], [other.netrc/.netrc, /home/.netrc]]\n", "a second .netrc", nil},
		{"pip_secret_mounts bad tuple", "pip_secret_mounts: [[.netrc]]\n", "pip_secret_mounts: must be", nil},

		{"builder kiln", "builder: kiln\n", "", nil},
		{"builder envd", "builder: envd\n", `kiln.yaml:2: builder: "envd" names another ImageSpec builder`, nil},
		{"builder default", "builder: default\n", `builder: "default" names another ImageSpec builder`, nil},

		{"builder_options", "builder_options:\n  apt_sources: ['deb http://deb.example/debian stable main']\n  commands_timeout: 1h\n  cache_from: reg.example/x:cache\n", "", func(t *testing.T, s *Spec) {
			if len(s.AptSources) != 1 || s.CommandsTimeout != "1h" || s.CacheFrom != "reg.example/x:cache" {
				t.Errorf("builder_options gave apt_sources %q, commands_timeout %q, cache_from %q", s.AptSources, s.CommandsTimeout, s.CacheFrom)
			}
			if p := s.Position("commands_timeout"); p.Line != 4 {
				t.Errorf("commands_timeout from builder_options is positioned at %v, want line 4", p)
			}
		}},
		{"builder_options unknown key", "builder_options: {apt_sorces: []}\n", `kiln.yaml:2: builder_options.apt_sorces: not a kiln key (did you mean "apt_sources"?)`, nil},
		{"builder_options nested builder", "builder_options: {builder: kiln}\n", "builder_options.builder: not a kiln key", nil},
		{"builder_options twice", "commands_timeout: 2h\nbuilder_options: {commands_timeout: 1h}\n", "kiln.yaml:3: builder_options.commands_timeout: set twice (first at line 2)", nil},
		{"builder_options before the key", "builder_options: {commands_timeout: 1h}\ncommands_timeout: 2h\n", "kiln.yaml:3: commands_timeout: set twice (first at line 2)", nil},
		{"builder_options alias beside its key", "builder_options: {parent_image: debian:trixie}\n", "builder_options.parent_image: set twice (first at line 1)", nil},
		{"builder_options not a mapping", "builder_options: [a]\n", "builder_options: must be a mapping of kiln keys", nil},
		{"builder_options bad value", "builder_options: {apt_install_recommends: maybe}\n", "apt_install_recommends: must be true or false", nil},

		{"runtime_packages", "runtime_packages: [numpy]\n", "kiln.yaml:2: runtime_packages: not supported yet (kiln installs packages when it builds the image and a kiln image installs nothing when it starts; list them in packages)", nil},

		{"copy list form", "copy: [src/file.txt, data, {app: /opt/app/}]\n", "", func(t *testing.T, s *Spec) {
			want := []Copy{{filepath.Join(dir, "src/file.txt"), "/root/src/file.txt"}, {filepath.Join(dir, "data"), "/root/data"}, {filepath.Join(dir, "app"), "/opt/app/"}}
			if !reflect.DeepEqual(s.Copy, want) {
				t.Errorf("copy = %+v, want %+v", s.Copy, want)
			}
		}},
		{"copy list form with ..", "copy: [../x]\n", `kiln.yaml:2: copy: "../x": an entry of the list form must be a relative path`, nil},
		{"copy list form absolute", "copy: [/etc/passwd]\n", `"/etc/passwd": an entry of the list form must be a relative path`, nil},
		{"copy list form not a path", "copy: [[a]]\n", "copy: must be", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", dir, []byte("base_image: scratch\n"+tc.yaml))
			if err == nil {
				err = s.Validate()
			}
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			if tc.check != nil && err == nil {
				tc.check(t, s)
			}
		})
	}
}

func copies(want bool) func(t *testing.T, s *Spec) {
	return func(t *testing.T, s *Spec) {
		if s.CopiesSource() != want {
			t.Errorf("CopiesSource() = %v, want %v", s.CopiesSource(), want)
		}
	}
}

// TestImageSpecKeysHash: the keys that do not change the image leave the
// spec hash as it is, and no secret's path or index credentials enter it.
func TestImageSpecKeysHash(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.netrc"), []byte("machine x login u password p\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	norm := func(yaml string) string {
		t.Helper()
		s, err := Parse("kiln.yaml", dir, []byte("base_image: scratch\nsource_root: app\n"+yaml))
		if err == nil {
			err = s.Validate()
		}
		if err != nil {
			t.Fatalf("%q: %v", yaml, err)
		}
		return string(s.Normalized())
	}
	base := norm("")
	for _, y := range []string{
		"builder: kiln\n",
		"source_copy_mode: all\n",
		"source_copy_mode: auto\n",
		"pip_secret_mounts: [[secret.netrc, /root/.netrc]]\n",
		"pip_extra_args: --no-cache-dir -U\n",
		"builder_options: {}\n",
	} {
		if got := norm(y); got != base {
			t.Errorf("%q changes the spec hash:\n%s\n%s", y, got, base)
		}
	}
	for _, y := range []string{"python_exec: /usr/bin/python3.11\n", "source_copy_mode: none\n", "pip_extra_args: --index-url https://idx.example/simple\n"} {
		if norm(y) == base {
			t.Errorf("%q does not change the spec hash", y)
		}
	}
	if got := norm("pip_secret_mounts: [[secret.netrc, /root/.netrc]]\n"); strings.Contains(got, "secret") || strings.Contains(got, "netrc") {
		t.Errorf("the normalised spec names the secret: %s", got)
	}
	if got := norm("pip_extra_args: --index-url https://u:pw@idx.example/simple\n"); strings.Contains(got, "pw") {
		t.Errorf("the normalised spec holds the index password: %s", got)
	}
}

// TestFlytekitSpecFile: a file with every ImageSpec key flytekit accepts
// today (and kiln's own keys under builder_options) validates unchanged.
func TestFlytekitSpecFile(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"requirements.txt", "app/main.py", "src/util.py", ".netrc"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const file = `name: flyte-app
python_version: "3.12"
builder: kiln
source_root: app
env: {A: "1"}
registry: localhost:5000
packages: [requests]
requirements: requirements.txt
apt_packages: [jq]
base_image: debian:bookworm-slim
platform: linux/amd64
pip_index: https://idx.example/simple
pip_extra_index_url: [https://extra.example/simple]
pip_secret_mounts: [[.netrc, /root/.netrc]]
pip_extra_args: --no-cache-dir --prefer-binary
entrypoint: [python3, /root/main.py]
commands: ["true"]
tag_format: "{spec_hash}-dev"
source_copy_mode: auto
copy: [src/util.py]
python_exec: /usr/bin/python3.11
builder_options:
  commands_timeout: 10m
  apt_install_recommends: false
`
	s, err := Parse("kiln.yaml", dir, []byte(file))
	if err == nil {
		err = s.Validate()
	}
	if err != nil {
		t.Fatalf("a flytekit ImageSpec file: %v", err)
	}
	if s.CommandsTimeout != "10m" || !s.CopiesSource() || s.Copy[0].Dest != "/root/src/util.py" || s.NetrcFile() == "" {
		t.Errorf("parsed %+v", s)
	}
}

// TestDefaultBase: without base_image the parent is the official
// python:<python_version>-slim-bookworm, 3.12 by default, from
// KILN_DEFAULT_BASE's registry or repository when set.
func TestDefaultBase(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, override string
		want, err            string
	}{
		{"unset", "name: x\n", "", "python:3.12-slim-bookworm", ""},
		{"python_version", "python_version: '3.11'\n", "", "python:3.11-slim-bookworm", ""},
		{"full python_version", "python_version: 3.11.4\n", "", "python:3.11.4-slim-bookworm", ""},
		{"registry host", "name: x\n", "127.0.0.1:5000", "127.0.0.1:5000/library/python:3.12-slim-bookworm", ""},
		{"repository", "python_version: '3.13'\n", "mirror.example/hub/python/", "mirror.example/hub/python:3.13-slim-bookworm", ""},
		{"base_image wins", "base_image: debian:bookworm\n", "127.0.0.1:5000", "debian:bookworm", ""},
		{"bad override", "name: x\n", "UPPER/Case", "", `kiln.yaml: base_image: KILN_DEFAULT_BASE="UPPER/Case" does not make an image reference`},
		{"bad python_version", "python_version: banana\n", "", "", `kiln.yaml:1: python_version: "banana" is not a Python version`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", t.TempDir(), []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			s.DefaultBase = tc.override
			err = s.Validate()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Validate: %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.BaseImage != tc.want {
				t.Errorf("base_image = %q, want %q", s.BaseImage, tc.want)
			}
			if got := s.BaseDefaulted; got == strings.Contains(tc.yaml, "base_image") {
				t.Errorf("BaseDefaulted = %v for %q", got, tc.yaml)
			}
		})
	}
}
