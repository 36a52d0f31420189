package spec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/pflag"
)

// TestValidateHostile: values an adversarial probe found passing
// validation (or blamed on the wrong key) fail at validation, offline, with
// the file, line and key and the fix.
func TestValidateHostile(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("a", 97)
	digest := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error; empty: valid
	}{
		// E1: the tag tag_format makes, with its 32-digit hash, is at most 128.
		{"tag_format too long", "base_image: a\ntag_format: '" + long + "{spec_hash}'\n", []string{"kiln.yaml:2: tag_format", "129 characters", "at most 128", "at most 96 characters besides {spec_hash}"}},
		{"tag_format just fits", "base_image: a\ntag_format: '" + long[:96] + "{spec_hash}'\n", nil},
		{"tag_format starting with a dot", "base_image: a\ntag_format: '.{spec_hash}'\n", []string{"kiln.yaml:2: tag_format", "does not make a valid tag"}},
		// E2: the digest of the image to build cannot be chosen.
		{"image with a digest", "base_image: a\nimage: reg.example/x@" + digest + "\n", []string{"kiln.yaml:2: image", "names a digest", "give a tag", "reg.example/x:v1", "or none"}},
		{"image with a tag and a digest", "base_image: a\nimage: reg.example/x:v1@" + digest + "\n", []string{"kiln.yaml:2: image", "names a digest"}},
		{"image with a tag", "base_image: a\nimage: reg.example/x:v1\n", nil},
		{"base_image with a digest", "base_image: reg.example/x@" + digest + "\n", nil},
		// E3: the reference grammar's rules for registries.
		{"registry port out of range", "base_image: a\nregistry: localhost:99999\n", []string{"kiln.yaml:2: registry", `port "99999"`, "1 to 65535"}},
		{"registry port zero", "base_image: a\nregistry: localhost:0\n", []string{"registry", `port "0"`}},
		{"registry empty port", "base_image: a\nregistry: 'localhost:'\n", []string{"registry", `port ""`}},
		{"registry signed port", "base_image: a\nregistry: localhost:+500\n", []string{"registry", `port "+500"`}},
		{"registry empty path component", "base_image: a\nregistry: localhost:5000//x\n", []string{"kiln.yaml:2: registry", "empty path component", "one /"}},
		{"registry trailing double slash", "base_image: a\nregistry: localhost:5000//\n", []string{"registry", "empty path component"}},
		{"registry upper-case host", "base_image: a\nregistry: LOCALHOST:5000\n", []string{"kiln.yaml:2: registry", "upper-case", "lower case, localhost:5000"}},
		{"registry URL", "base_image: a\nregistry: https://ghcr.io/org\n", []string{"registry", "not a URL", "without the scheme"}},
		{"registry bad host label", "base_image: a\nregistry: -bad.example\n", []string{"registry", "not a host name"}},
		{"registry upper-case namespace", "base_image: a\nregistry: ghcr.io/Org\n", []string{"registry", `namespace "Org"`}},
		{"registry with a trailing slash", "base_image: a\nregistry: ghcr.io/org/\n", nil},
		{"registry IPv6", "base_image: a\nregistry: '[::1]:5000'\n", nil},
		{"registry IPv6 bad port", "base_image: a\nregistry: '[::1]:70000'\n", []string{"registry", `port "70000"`}},
		{"image upper-case host", "base_image: a\nimage: LOCALHOST:5000/x\n", []string{"kiln.yaml:2: image", "upper-case"}},
		{"image empty path component", "base_image: a\nimage: localhost:5000//x\n", []string{"kiln.yaml:2: image", `repository "/x"`}},
		{"base_image port out of range", "base_image: localhost:99999/x\n", []string{"kiln.yaml:1: base_image", `port "99999"`}},
		{"cache_from empty path component", "base_image: a\ncache_from: localhost:5000/x//y:c\n", []string{"kiln.yaml:2: cache_from", "x//y"}},
		{"repository too long", "base_image: a\nregistry: r.example/" + strings.Repeat("n", 250) + "\nname: app\n", []string{"name", "at most 255"}},
		// E9: apt package entries follow Debian's grammar.
		{"apt shell injection", "base_image: a\napt_packages:\n  - jq\n  - 'jq; rm -rf /'\n", []string{"kiln.yaml:4: apt_packages[1]", `"jq; rm -rf /"`, "invalid package name"}},
		{"apt bad version", "base_image: a\napt_packages: ['jq=1.6;ls']\n", []string{"kiln.yaml:2: apt_packages[0]", "invalid version"}},
		{"apt bad version prefix", "base_image: a\napt_packages: ['jq=$(id)*']\n", []string{"apt_packages[0]", "invalid version"}},
		{"apt release", "base_image: a\napt_packages: [jq/bookworm-backports]\n", []string{"apt_packages[0]", "/release is not supported", "name=version"}},
		{"apt upper case", "base_image: a\napt_packages: [JQ]\n", []string{"apt_packages[0]", "invalid package name"}},
		{"apt good forms", "base_image: a\napt_packages: [jq, 'vim=2:9.0.1378-2', 'libc6:amd64', 'g++=4:12*']\n", nil},
		// E11: PEP 508 requirements and python_version, offline.
		{"bad requirement", "base_image: a\npackages:\n  - flask\n  - bad name!!\n", []string{"kiln.yaml:4: packages[1]", `"bad name!!"`, "flask>=3"}},
		{"bad requirement marker", "base_image: a\npackages: ['flask; python_version >']\n", []string{"kiln.yaml:2: packages[0]"}},
		{"empty requirement", "base_image: a\npackages: [flask, ' ']\n", []string{"kiln.yaml:2: packages[1]", "empty requirement"}},
		{"good requirements", "base_image: a\npackages: ['flask>=3', 'requests[socks]; python_version > \"3.8\"']\n", nil},
		{"python_version banana", "base_image: a\npython_version: banana\n", []string{"kiln.yaml:2: python_version", `"banana"`, `"3.11"`}},
		{"python_version four parts", "base_image: a\npython_version: 3.11.4.1\n", []string{"python_version", "not a Python version"}},
		{"python_version forms", "base_image: a\npython_version: '3'\n", nil},
		{"python_version full", "base_image: a\npython_version: 3.11.4\n", nil},
		// D8: NUL bytes, '=' and empty names.
		{"NUL in an env value", "base_image: a\nenv:\n  A: ok\n  B: \"x\\0y\"\n", []string{"kiln.yaml:4: env.B", "NUL"}},
		{"NUL in an env name", "base_image: a\nenv: {\"A\\0B\": x}\n", []string{"kiln.yaml:2: env", "NUL"}},
		{"= in an env name", "base_image: a\nenv:\n  A: b\n  C=D: x\n", []string{"kiln.yaml:4: env", `"C=D"`, "no '='"}},
		{"empty env name", "base_image: a\nenv: {'': x}\n", []string{"env", `"" is not a valid variable name`}},
		{"NUL in a label", "base_image: a\nlabels: {a: \"x\\0\"}\n", []string{"kiln.yaml:2: labels.a", "NUL"}},
		{"NUL in a label name", "base_image: a\nlabels: {\"a\\0\": x}\n", []string{"labels", "NUL"}},
		{"NUL in the entrypoint", "base_image: a\nentrypoint: [sh, \"-c\\0x\"]\n", []string{"kiln.yaml:2: entrypoint[1]", "NUL"}},
		{"NUL in user", "base_image: a\nuser: \"root\\0\"\n", []string{"kiln.yaml:2: user", "NUL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", dir, []byte(tc.yaml))
			if err == nil {
				err = s.Validate()
			}
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("%q: %v", tc.yaml, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%q is valid, want an error containing %q", tc.yaml, tc.want)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Errorf("error %v is %T, want *spec.Error (exit code 2)", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestEntryPositionsFromFlags: an entry a flag replaced is blamed on the
// flag, not on the file's line for the entry it replaced.
func TestEntryPositionsFromFlags(t *testing.T) {
	s, err := Parse("kiln.yaml", t.TempDir(), []byte("base_image: a\napt_packages:\n  - jq\nenv:\n  A: b\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fl := AddFlags(fs)
	if err := fs.Parse([]string{"--apt-packages", "bad;name", "--env", "C=x\x00"}); err != nil {
		t.Fatal(err)
	}
	if err := fl.Apply(s, "/"); err != nil {
		t.Fatal(err)
	}
	err = s.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "flag --env: env.C") {
		t.Errorf("Validate = %v, want the NUL in --env C blamed on the flag", err)
	}
	s.Env = nil
	err = s.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "flag --apt-packages: apt_packages[0]") {
		t.Errorf("Validate = %v, want the bad --apt-packages entry blamed on the flag", err)
	}
}

// TestReferenceBlamesTagFormat: a tag that is not valid is tag_format's
// fault, not name's (E1), even without Validate.
func TestReferenceBlamesTagFormat(t *testing.T) {
	s := &Spec{Name: "app", Registry: "localhost:5000", TagFormat: strings.Repeat("a", 100) + "{spec_hash}"}
	_, err := s.Reference(strings.Repeat("0", HashLen))
	var se *Error
	if !errors.As(err, &se) || se.Key != "tag_format" || !strings.Contains(err.Error(), "132 characters") {
		t.Errorf("Reference = %v, want an error on tag_format naming the tag's length", err)
	}
}

// TestAliasesAndMergeKeys: YAML aliases and merge keys resolve as yaml.v3
// resolves them (E4), with the positions of the values' own lines.
func TestAliasesAndMergeKeys(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		check      func(t *testing.T, s *Spec)
	}{
		{"alias in a list", "apt_packages: [&a jq, curl, *a]\n", func(t *testing.T, s *Spec) {
			if want := []string{"jq", "curl", "jq"}; !reflect.DeepEqual(s.AptPackages, want) {
				t.Errorf("AptPackages = %v, want %v", s.AptPackages, want)
			}
		}},
		{"alias as a key's value", "labels: &l {a: b}\nenv: *l\ncmd: &c [x]\nentrypoint: *c\n", func(t *testing.T, s *Spec) {
			if want := []KV{{"a", "b"}}; !reflect.DeepEqual(s.Env, want) {
				t.Errorf("Env = %v, want %v", s.Env, want)
			}
			if want := []string{"x"}; !reflect.DeepEqual(s.Entrypoint, want) {
				t.Errorf("Entrypoint = %v, want %v", s.Entrypoint, want)
			}
		}},
		{"merge key, own keys win", "labels: &base {A: '1', B: '2'}\nenv:\n  <<: *base\n  B: own\n  C: '3'\n", func(t *testing.T, s *Spec) {
			if want := []KV{{"A", "1"}, {"B", "own"}, {"C", "3"}}; !reflect.DeepEqual(s.Env, want) {
				t.Errorf("Env = %v, want %v", s.Env, want)
			}
		}},
		{"merge of several, first wins", "env:\n  <<: [{A: first}, {A: second, B: b}]\n", func(t *testing.T, s *Spec) {
			if want := []KV{{"A", "first"}, {"B", "b"}}; !reflect.DeepEqual(s.Env, want) {
				t.Errorf("Env = %v, want %v", s.Env, want)
			}
		}},
		{"nested merges", "labels: &a {A: a}\ncmd: []\nenv:\n  <<: {<<: *a, B: b}\n", func(t *testing.T, s *Spec) {
			if want := []KV{{"A", "a"}, {"B", "b"}}; !reflect.DeepEqual(s.Env, want) {
				t.Errorf("Env = %v, want %v", s.Env, want)
			}
		}},
		{"merge at the top", "<<: {base_image: scratch, name: merged}\nname: own\n", func(t *testing.T, s *Spec) {
			if s.BaseImage != "scratch" || s.Name != "own" {
				t.Errorf("BaseImage, Name = %q, %q; want scratch, own", s.BaseImage, s.Name)
			}
		}},
		{"merge in copy", "copy:\n  <<: &c {a.txt: /opt/a}\n  b.txt: /opt/b\n", func(t *testing.T, s *Spec) {
			if want := []Copy{{filepath.Join(dir, "a.txt"), "/opt/a"}, {filepath.Join(dir, "b.txt"), "/opt/b"}}; !reflect.DeepEqual(s.Copy, want) {
				t.Errorf("Copy = %v, want %v", s.Copy, want)
			}
		}},
		{"a quoted << is a key", "labels: {'<<': x}\n", func(t *testing.T, s *Spec) {
			if want := []KV{{"<<", "x"}}; !reflect.DeepEqual(s.Labels, want) {
				t.Errorf("Labels = %v, want %v", s.Labels, want)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", dir, []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}

	// Errors name the line where the offending value is written.
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"aliased bad entry", "base_image: a\nlabels: &l\n  ok: x\n  'A=B': y\nenv: *l\n", []string{"kiln.yaml:4: env", `"A=B"`}},
		{"merged bad entry", "base_image: a\nlabels: &l\n  'A=B': y\nenv:\n  <<: *l\n", []string{"kiln.yaml:3: env", `"A=B"`}},
		{"aliased bad list item", "base_image: a\napt_packages:\n  - &p 'x;y'\nconda_channels: []\ncmd: [*p]\napt_sources: []\n", []string{"kiln.yaml:3: apt_packages[0]"}},
		{"alias to a list inside a list", "cmd: &c [a]\nentrypoint: [*c]\n", []string{"kiln.yaml:1: entrypoint", "must be a list of strings, not a list"}},
		{"merge of a scalar", "env:\n  <<: x\n", []string{"kiln.yaml:2", "merge key", "mapping"}},
		{"merge of itself", "env: &e {<<: *e}\n", []string{"kiln.yaml:1", "merges the mapping that contains it"}},
		{"list of itself", "cmd: &x [*x]\n", []string{"kiln.yaml:1: cmd", "not a list"}},
		{"set twice beside a merge", "env:\n  <<: {A: 1}\n  B: 1\n  B: 2\n", []string{"kiln.yaml:4: env.B", "set twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", dir, []byte(tc.yaml))
			if err == nil {
				err = s.Validate()
			}
			if err == nil {
				t.Fatalf("%q is valid, want an error containing %q", tc.yaml, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestAliasExpansionBounded: a "billion laughs" spec, each level merging
// the one before ten times, costs what its text does (each mapping is
// resolved once, its keys once); and past maxAliasExpansion values reached
// through aliases a spec fails instead of exhausting memory or time.
func TestAliasExpansionBounded(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("copy:\n  - &l0 {")
	for i := range 100 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "f%d: /d", i)
	}
	b.WriteString("}\n")
	for lvl := 1; lvl <= 9; lvl++ {
		fmt.Fprintf(&b, "  - &l%d {<<: [%s]}\n", lvl, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", lvl-1), 10), ", "))
	}
	s, err := Parse("kiln.yaml", dir, []byte(b.String()))
	if err != nil {
		t.Fatalf("nine levels of ten merges: %v", err)
	}
	if len(s.Copy) != 1000 {
		t.Errorf("ten mappings of the same 100 keys gave %d copy entries, want 1000", len(s.Copy))
	}

	// Twelve levels: more merged values than the bound.
	for lvl := 10; lvl <= 12; lvl++ {
		fmt.Fprintf(&b, "  - &l%d {<<: [%s]}\n", lvl, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", lvl-1), 10), ", "))
	}
	if _, err := Parse("kiln.yaml", dir, []byte(b.String())); err == nil || !strings.Contains(err.Error(), "aliases and merge keys") {
		t.Errorf("twelve levels of ten merges: %v, want an error saying the aliases expand too far", err)
	}
	many := "cmd: [&a x]\nentrypoint: [" + strings.Repeat("*a, ", maxAliasExpansion) + "*a]\n"
	if _, err := Parse("kiln.yaml", dir, []byte(many)); err == nil || !strings.Contains(err.Error(), "kiln.yaml:2") || !strings.Contains(err.Error(), "aliases and merge keys") {
		t.Errorf("%d aliases: %v, want an error at line 2 saying the aliases expand too far", maxAliasExpansion+1, err)
	}
}

// TestEmptyListsHashLikeAbsent: every list or mapping key given as [] or {}
// gives the tag an absent one does; entrypoint and cmd, where [] clears the
// parent's, do not.
func TestEmptyListsHashLikeAbsent(t *testing.T) {
	dir := t.TempDir()
	base, err := Parse("kiln.yaml", dir, []byte("base_image: scratch\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		empty := map[kind]string{kindList: "[]", kindArgv: "[]", kindMap: "{}", kindCopy: "{}"}[f.kind]
		if empty == "" {
			continue
		}
		t.Run(f.key, func(t *testing.T) {
			s, err := Parse("kiln.yaml", dir, []byte("base_image: scratch\n"+f.key+": "+empty+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			same := string(s.Normalized()) == string(base.Normalized())
			if f.kind == kindArgv && same {
				t.Errorf("%s: %s (clear the parent's) hashes like an absent %s (keep it)", f.key, empty, f.key)
			}
			if f.kind != kindArgv && !same {
				t.Errorf("%s: %s hashes unlike an absent %s:\n%s\n%s", f.key, empty, f.key, s.Normalized(), base.Normalized())
			}
		})
	}
}

// TestLoadRefusesDevicesAndHugeFiles (H4): the spec file is a regular file
// or a pipe of at most MaxFileSize bytes, symlinks followed.
func TestLoadRefusesDevicesAndHugeFiles(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("name: x\n"+strings.Repeat("#", MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/dev/zero", []string{"/dev/zero: is a character device", "--file"}},
		{link, []string{link + ": is a character device (through the symlink to /dev/zero)"}},
		{dir, []string{dir + ": is a directory"}},
		{big, []string{big + ": larger than 1024 KiB"}},
		{filepath.Join(dir, "missing.yaml"), []string{"spec file not found"}},
	} {
		_, err := Load(tc.path)
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("Load(%s) = %v, want a *spec.Error", tc.path, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Load(%s): error %q does not contain %q", tc.path, err, w)
			}
		}
	}
	ok := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(ok, []byte("name: x\n"+strings.Repeat("#", MaxFileSize-10)), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Load(ok); err != nil || s.Name != "x" {
		t.Errorf("Load of a file just under the bound = %v, %v", s, err)
	}
}

// TestLoadContextFIFO (H3): a spec that is a FIFO is read when someone
// writes it, and reading one nobody writes stops when the context is done.
func TestLoadContextFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "kiln.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadContext(ctx, fifo); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadContext on a FIFO nobody writes, context cancelled = %v, want context.Canceled", err)
	}

	written := filepath.Join(dir, "written.yaml")
	if err := syscall.Mkfifo(written, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.OpenFile(written, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		f.WriteString("name: piped\nbase_image: scratch\n")
		f.Close()
	}()
	s, err := LoadContext(context.Background(), written)
	if err != nil || s.Name != "piped" {
		t.Errorf("LoadContext on a written FIFO = %+v, %v", s, err)
	}
}
