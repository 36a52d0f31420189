package pylock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/wheeltag"
)

// target returns a CPython 3.<minor> glibc 2.36 target on arch.
func target(t *testing.T, minor int, arch string) Target {
	t.Helper()
	wt := wheeltag.Target{PythonMajor: 3, PythonMinor: minor, ABIs: []string{"cp3" + string(rune('0'+minor/10)) + string(rune('0'+minor%10))}, Arch: arch, Libc: wheeltag.Glibc, LibcMajor: 2, LibcMinor: 36}
	tags, err := wheeltag.NewTargetTagSet(wt)
	if err != nil {
		t.Fatal(err)
	}
	env, err := pep508.LinuxCPython("3."+itoa(minor)+".2", arch)
	if err != nil {
		t.Fatal(err)
	}
	return Target{Env: env, Tags: tags, Name: wt.String()}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return string(rune('0'+n/10)) + string(rune('0'+n%10))
}

func names(pins []Pin) string {
	var out []string
	for _, p := range pins {
		s := p.Name + "==" + p.Version
		if p.Requested {
			s += "*"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// readLock parses a lock of the testdata by its kind.
func readLock(t *testing.T, path string) *Lock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var l *Lock
	switch KindOf(path) {
	case KindPylock:
		l, err = ParsePylock(path, data)
	case KindUV:
		l, err = ParseUV(path, data)
	case KindPoetry:
		pd, rerr := os.ReadFile(filepath.Join(filepath.Dir(path), "pyproject.toml"))
		if rerr != nil {
			t.Fatal(rerr)
		}
		pp, perr := ParsePyproject(filepath.Join(filepath.Dir(path), "pyproject.toml"), pd)
		if perr != nil {
			t.Fatal(perr)
		}
		l, err = ParsePoetry(path, data, pp)
	default:
		t.Fatalf("%s is not a lock", path)
	}
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return l
}

// The flask, requests and pydantic closure of the fixture wheels (what
// every real lock of the demo project must install on Linux).
const base = "annotated-types==0.7.0 blinker==1.9.0 certifi==2026.5.20 charset-normalizer==3.4.7 click==8.4.0 flask==3.1.3* idna==3.13 itsdangerous==2.2.0 jinja2==3.1.6 markupsafe==3.0.3 pydantic==2.13.4* pydantic-core==2.46.4 requests==2.34.2* typing-extensions==4.15.0 typing-inspection==0.4.2 urllib3==2.7.0 werkzeug==3.1.8"

func TestInstallRealLocks(t *testing.T) {
	for _, tc := range []struct {
		name, path     string
		extras, groups []string
		want           string
	}{
		// pip 25.1's pip lock: flat, every package unconditional.
		{"pip", "testdata/pip/pylock.toml", nil, nil, strings.NewReplacer("*", "", "pydantic-core==2.46.4", "pydantic-core==2.46.4 pyyaml==6.0.3").Replace(base)},
		{"poetry", "testdata/poetry/poetry.lock", nil, nil, base},
		{"poetry extra", "testdata/poetry/poetry.lock", []string{"yaml"}, nil, strings.Replace(base, "pydantic-core==2.46.4", "pydantic-core==2.46.4 pyyaml==6.0.3*", 1)},
		{"poetry group", "testdata/poetry/poetry.lock", nil, []string{"fast"}, strings.Replace(base, "markupsafe==3.0.3", "markupsafe==3.0.3 orjson==3.8.3*", 1)},
		{"uv", "testdata/uv/uv.lock", nil, nil, base},
		{"uv extra and group", "testdata/uv/uv.lock", []string{"YAML"}, []string{"fast"}, strings.NewReplacer("markupsafe==3.0.3", "markupsafe==3.0.3 orjson==3.8.3*", "pydantic-core==2.46.4", "pydantic-core==2.46.4 pyyaml==6.0.3*").Replace(base)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := readLock(t, tc.path)
			tg := target(t, 11, "x86_64")
			tg.Extras, tg.Groups = tc.extras, tc.groups
			pins, err := l.Install(tg)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(pins); got != tc.want {
				t.Errorf("installs\n %s\nwant\n %s", got, tc.want)
			}
			for _, p := range pins {
				if len(p.File.SHA256) != 64 || !strings.HasSuffix(p.File.Filename, ".whl") {
					t.Errorf("%s: file %+v lacks a wheel name or sha256", p.Name, p.File)
				}
				if l.Kind != KindPoetry && !strings.HasPrefix(p.File.URL, "http://127.0.0.1:38613/files/") {
					t.Errorf("%s: URL %q is not the lock's", p.Name, p.File.URL)
				}
				if l.Kind == KindPoetry && (p.File.URL != "" || p.Index != "http://127.0.0.1:38613/simple") {
					t.Errorf("%s: poetry pin has URL %q index %q; want no URL and the source's index", p.Name, p.File.URL, p.Index)
				}
			}
		})
	}
}

func TestInstallCoverage(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		minor      int
		arch       string
		want       []string
	}{
		{"uv on aarch64", "testdata/uv/uv.lock", 11, "aarch64", []string{"does not cover the target cp311-linux_aarch64", "no wheel of charset-normalizer 3.4.7 fits", "no wheel of markupsafe 3.0.3 fits", "pydantic-core 2.46.4"}},
		{"poetry on 3.10", "testdata/poetry/poetry.lock", 10, "x86_64", []string{"it is for Python <4.0,>=3.11, the target has 3.10.2"}},
		{"uv on 3.10", "testdata/uv/uv.lock", 10, "x86_64", []string{"it is for Python >=3.11"}},
		{"pip on 3.12", "testdata/pip/pylock.toml", 12, "x86_64", []string{"no wheel of markupsafe 3.0.3 fits (the lock has MarkupSafe-3.0.3-cp311-cp311-manylinux_2_17_x86_64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := readLock(t, tc.path)
			_, err := l.Install(target(t, tc.minor, tc.arch))
			var ce *CoverageError
			if !errors.As(err, &ce) {
				t.Fatalf("Install: %v, want a *CoverageError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, data string
		want             string
	}{
		{"pylock version", "pylock.toml", `lock-version = "2.0"`, `lock-version "2.0" is not 1.x`},
		{"pylock none", "pylock.toml", `created-by = "x"`, "no lock-version"},
		{"pylock bad toml", "pylock.toml", `lock-version = `, "not valid TOML"},
		{"pylock bad hash", "pylock.toml", "lock-version = \"1.0\"\n[[packages]]\nname = \"a\"\nversion = \"1\"\n[[packages.wheels]]\nurl = \"https://x/a-1-py3-none-any.whl\"\nhashes = {sha256 = \"zz\"}\n", "is not 64 hex digits"},
		{"pylock no url", "pylock.toml", "lock-version = \"1.0\"\n[[packages]]\nname = \"a\"\nversion = \"1\"\n[[packages.wheels]]\nname = \"a-1-py3-none-any.whl\"\n", "neither url nor path"},
		{"pylock bad marker", "pylock.toml", "lock-version = \"1.0\"\n[[packages]]\nname = \"a\"\nversion = \"1\"\nmarker = \"python_version >>\"\n", "marker"},
		{"uv version", "uv.lock", "version = 2\n", "kiln reads uv.lock version 1"},
		{"uv no root", "uv.lock", "version = 1\n[[package]]\nname = \"a\"\nversion = \"1\"\nsource = { registry = \"https://x/simple\" }\n", "no project in the lock"},
		{"uv bad hash", "uv.lock", "version = 1\n[[package]]\nname = \"a\"\nversion = \"1\"\nsource = { registry = \"https://x/simple\" }\nwheels = [{ url = \"https://x/a-1-py3-none-any.whl\", hash = \"md5\" }]\n", "want sha256:<hex>"},
		{"poetry version", "poetry.lock", "[metadata]\nlock-version = \"9.0\"\n", "lock-version \"9.0\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch KindOf(tc.file) {
			case KindPylock:
				_, err = ParsePylock(tc.file, []byte(tc.data))
			case KindUV:
				_, err = ParseUV(tc.file, []byte(tc.data))
			case KindPoetry:
				_, err = ParsePoetry(tc.file, []byte(tc.data), &Pyproject{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestInstallSelection covers markers, extras, groups, versions and
// sources on small locks.
func TestInstallSelection(t *testing.T) {
	const sum = "0000000000000000000000000000000000000000000000000000000000000000"
	wheel := func(n string) string {
		return "[[packages.wheels]]\nurl = \"https://x/" + n + "\"\nhashes = {sha256 = \"" + sum + "\"}\n"
	}
	pkg := func(name, version, marker string, wheels ...string) string {
		s := "[[packages]]\nname = \"" + name + "\"\nversion = \"" + version + "\"\n"
		if marker != "" {
			s += "marker = \"" + marker + "\"\n"
		}
		for _, w := range wheels {
			s += wheel(w)
		}
		return s
	}
	uvRoot := "version = 1\n[[package]]\nname = \"app\"\nversion = \"0\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"a\" }, { name = \"b\", marker = \"sys_platform == 'win32'\" }, { name = \"c\", version = \"2.0\" }, { name = \"app\", extra = [\"x\"] }]\n[package.optional-dependencies]\nx = [{ name = \"d\", extra = [\"e\"] }]\n[package.dev-dependencies]\ndev = [{ name = \"f\" }]\n"
	uvPkg := func(name, version, src string, deps string, optional string) string {
		s := "[[package]]\nname = \"" + name + "\"\nversion = \"" + version + "\"\nsource = " + src + "\n"
		if deps != "" {
			s += "dependencies = [" + deps + "]\n"
		}
		s += "wheels = [{ url = \"https://x/" + name + "-" + version + "-py3-none-any.whl\", hash = \"sha256:" + sum + "\" }]\n"
		if optional != "" {
			s += "[package.optional-dependencies]\n" + optional + "\n"
		}
		return s
	}
	reg := `{ registry = "https://x/simple" }`
	for _, tc := range []struct {
		name, file, data string
		extras, groups   []string
		want, wantErr    string
	}{
		{"pylock markers", "pylock.toml", "lock-version = \"1.0\"\n" +
			pkg("a", "1", "", "a-1-py3-none-any.whl") +
			pkg("b", "1", "sys_platform == 'win32'", "b-1-py3-none-any.whl") +
			pkg("c", "1", "python_version < '3.11'", "c-1-py3-none-any.whl") +
			pkg("c", "2", "python_version >= '3.11'", "c-2-cp311-cp311-manylinux_2_17_x86_64.whl", "c-2-py3-none-any.whl"), nil, nil, "a==1 c==2", ""},
		{"pylock picks the best wheel", "pylock.toml", "lock-version = \"1.0\"\n" +
			pkg("c", "2", "", "c-2-py3-none-any.whl", "c-2-cp311-cp311-manylinux_2_17_x86_64.whl"), nil, nil, "c==2 (c-2-cp311-cp311-manylinux_2_17_x86_64.whl)", ""},
		{"pylock extras and groups", "pylock.toml", "lock-version = \"1.0\"\nextras = [\"x\"]\ndependency-groups = [\"dev\", \"docs\"]\ndefault-groups = [\"dev\"]\n" +
			pkg("a", "1", "'x' in extras", "a-1-py3-none-any.whl") +
			pkg("b", "1", "'dev' in dependency_groups", "b-1-py3-none-any.whl") +
			pkg("c", "1", "'docs' in dependency_groups", "c-1-py3-none-any.whl") +
			pkg("d", "1", "'x' not in extras", "d-1-py3-none-any.whl"), nil, nil, "b==1 d==1", ""},
		{"pylock asked extras and groups", "pylock.toml", "lock-version = \"1.0\"\nextras = [\"x\"]\ndependency-groups = [\"dev\", \"docs\"]\ndefault-groups = [\"dev\"]\n" +
			pkg("a", "1", "'x' in extras", "a-1-py3-none-any.whl") +
			pkg("b", "1", "'dev' in dependency_groups", "b-1-py3-none-any.whl") +
			pkg("c", "1", "'docs' in dependency_groups", "c-1-py3-none-any.whl"), []string{"X"}, []string{"docs"}, "a==1 c==1", ""},
		{"pylock unknown extra", "pylock.toml", "lock-version = \"1.0\"\nextras = [\"x\"]\n", []string{"y"}, nil, "", `has no "y" (it has x)`},
		{"pylock two versions apply", "pylock.toml", "lock-version = \"1.0\"\n" + pkg("a", "1", "", "a-1-py3-none-any.whl") + pkg("a", "2", "", "a-2-py3-none-any.whl"), nil, nil, "", "both a 1 and 2 apply"},
		{"pylock vcs", "pylock.toml", "lock-version = \"1.0\"\n[[packages]]\nname = \"a\"\nversion = \"1\"\nvcs = { type = \"git\", url = \"https://x/a.git\", commit-id = \"abc\" }\n", nil, nil, "", "a 1: it comes from version control"},
		{"pylock sdist only", "pylock.toml", "lock-version = \"1.0\"\n[[packages]]\nname = \"a\"\nversion = \"1\"\nsdist = { url = \"https://x/a-1.tar.gz\", hashes = {sha256 = \"" + sum + "\"} }\n", nil, nil, "", "a 1 has only a source distribution (a-1.tar.gz)"},
		{"pylock environments", "pylock.toml", "lock-version = \"1.0\"\nenvironments = [\"sys_platform == 'darwin'\"]\n", nil, nil, "", "it covers only the environments sys_platform == \"darwin\""},
		{"pylock no hash", "pylock.toml", "lock-version = \"1.0\"\n[[packages]]\nname = \"a\"\nversion = \"1\"\n[[packages.wheels]]\nurl = \"https://x/a-1-py3-none-any.whl\"\n", nil, nil, "", "has no sha256 hash"},
		{"uv graph", "uv.lock", uvRoot +
			uvPkg("a", "1", reg, `{ name = "g", marker = "python_version < '3.8'" }`, "") +
			uvPkg("b", "1", reg, "", "") +
			uvPkg("c", "1", reg, "", "") +
			uvPkg("c", "2.0", reg, "", "") +
			uvPkg("d", "1", reg, "", "e = [{ name = \"e\" }]") +
			uvPkg("e", "1", reg, "", "") +
			uvPkg("f", "1", reg, "", "") +
			uvPkg("g", "1", reg, "", ""), nil, nil, "a==1* c==2.0* d==1* e==1", ""},
		{"uv group", "uv.lock", uvRoot +
			uvPkg("a", "1", reg, "", "") + uvPkg("c", "2.0", reg, "", "") + uvPkg("d", "1", reg, "", "e = [{ name = \"e\" }]") + uvPkg("e", "1", reg, "", "") + uvPkg("f", "1", reg, "", ""),
			nil, []string{"dev"}, "a==1* c==2.0* d==1* e==1 f==1*", ""},
		{"uv unknown group", "uv.lock", uvRoot, nil, []string{"docs"}, "", `has no "docs" (it has dev)`},
		{"uv missing package", "uv.lock", uvRoot + uvPkg("c", "2.0", reg, "", ""), nil, nil, "", "the project requires a, which the lock does not have"},
		{"uv git dependency", "uv.lock", uvRoot + uvPkg("a", "1", `{ git = "https://x/a.git?rev=abc" }`, "", "") + uvPkg("c", "2.0", reg, "", "") + uvPkg("d", "1", reg, "", "") + uvPkg("e", "1", reg, "", ""), nil, nil, "", "a 1: it comes from Git"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l *Lock
			var err error
			if KindOf(tc.file) == KindUV {
				l, err = ParseUV(tc.file, []byte(tc.data))
			} else {
				l, err = ParsePylock(tc.file, []byte(tc.data))
			}
			if err != nil {
				t.Fatal(err)
			}
			tg := target(t, 11, "x86_64")
			tg.Extras, tg.Groups = tc.extras, tc.groups
			pins, err := l.Install(tg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v (%s), want an error with %q", err, names(pins), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := names(pins)
			if strings.Contains(tc.want, "(") {
				got += " (" + pins[0].File.Filename + ")"
			}
			if got != tc.want {
				t.Errorf("installs %q, want %q", got, tc.want)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	for in, want := range map[string]Kind{
		"/a/pyproject.toml": KindPyproject, "pylock.toml": KindPylock, "x/pylock.prod.toml": KindPylock,
		"pylock..toml": KindRequirements, "uv.lock": KindUV, "poetry.lock": KindPoetry,
		"requirements.txt": KindRequirements, "pylock.txt": KindRequirements, "Pipfile.lock": KindRequirements,
	} {
		if got := KindOf(in); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", in, got, want)
		}
	}
}
