package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/pkg/spec"
)

func TestProjectRequirements(t *testing.T) {
	testdata := filepath.Join("..", "resolve", "pylock", "testdata")
	read := func(rel string) string {
		data, err := os.ReadFile(filepath.Join(testdata, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	const pyproject = "[project]\nname = \"demo\"\ndependencies = [\"flask>=3\"]\n[project.optional-dependencies]\nyaml = [\"pyyaml\"]\n[dependency-groups]\nfast = [\"orjson\"]\n"
	for _, tc := range []struct {
		name    string
		spec    string
		files   map[string]string
		want    string // the requirements read, or the lock's kind
		wantErr string
	}{
		{"pyproject", "requirements: pyproject.toml\n", map[string]string{"pyproject.toml": pyproject}, "flask>=3", ""},
		{"pyproject extras and groups", "requirements: pyproject.toml\nextras: [yaml]\ngroups: [fast]\n", map[string]string{"pyproject.toml": pyproject}, "flask>=3 pyyaml orjson", ""},
		{"pyproject unknown extra", "requirements: pyproject.toml\nextras: [gpu]\n", map[string]string{"pyproject.toml": pyproject}, "", `has no extra "gpu"`},
		{"extras without a project", "requirements: requirements.txt\nextras: [yaml]\n", map[string]string{"requirements.txt": "flask\n"}, "", "extras: needs requirements to name a pyproject.toml"},
		{"groups without requirements", "groups: [fast]\npackages: [flask]\n", nil, "", "groups: needs requirements to name"},
		{"pylock", "requirements: pylock.toml\n", map[string]string{"pylock.toml": read("pip/pylock.toml")}, "pylock.toml", ""},
		{"uv", "requirements: uv.lock\n", map[string]string{"uv.lock": read("uv/uv.lock")}, "uv.lock", ""},
		{"poetry", "requirements: poetry.lock\n", map[string]string{"poetry.lock": read("poetry/poetry.lock"), "pyproject.toml": read("poetry/pyproject.toml")}, "poetry.lock", ""},
		{"poetry without pyproject", "requirements: poetry.lock\n", map[string]string{"poetry.lock": read("poetry/poetry.lock")}, "", "poetry.lock needs the project's pyproject.toml beside it"},
		{"lock with packages", "requirements: uv.lock\npackages: [six]\n", map[string]string{"uv.lock": read("uv/uv.lock")}, "", "packages: cannot be combined with the lock uv.lock"},
		{"lock outside the context", "requirements: ../uv.lock\n", nil, "", "outside the build context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "ctx")
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(root, "uv.lock"), []byte(read("uv/uv.lock")), 0o644)
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, err := spec.Parse(filepath.Join(dir, "kiln.yaml"), dir, []byte("base_image: debian:bookworm\n"+tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			p := &Plan{Spec: s}
			r, err := p.requirements()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if r.lock != nil {
				got = string(r.lock.Kind)
			} else {
				var reqs []string
				for _, l := range r.lines {
					reqs = append(reqs, l.Requirement.Requirement.String())
				}
				got = strings.Join(reqs, " ")
			}
			if got != tc.want {
				t.Errorf("read %q, want %q", got, tc.want)
			}
			if len(r.digest) != 64 {
				t.Errorf("digest %q is not a sha256", r.digest)
			}
		})
	}
}

// TestProjectDigest checks that what a lock build installs enters the
// requirements digest: the lock's bytes, the pyproject.toml beside a
// poetry.lock, and the extras and groups.
func TestProjectDigest(t *testing.T) {
	dir := t.TempDir()
	write := func(n, c string) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lockData, err := os.ReadFile(filepath.Join("..", "resolve", "pylock", "testdata", "poetry", "poetry.lock"))
	if err != nil {
		t.Fatal(err)
	}
	ppData, err := os.ReadFile(filepath.Join("..", "resolve", "pylock", "testdata", "poetry", "pyproject.toml"))
	if err != nil {
		t.Fatal(err)
	}
	digest := func(extra string) string {
		t.Helper()
		s, err := spec.Parse(filepath.Join(dir, "kiln.yaml"), dir, []byte("base_image: debian:bookworm\nrequirements: poetry.lock\n"+extra))
		if err != nil {
			t.Fatal(err)
		}
		r, err := (&Plan{Spec: s}).requirements()
		if err != nil {
			t.Fatal(err)
		}
		return r.digest
	}
	write("poetry.lock", string(lockData))
	write("pyproject.toml", string(ppData))
	base := digest("")
	if digest("") != base {
		t.Fatal("the digest is not stable")
	}
	seen := map[string]string{base: "base"}
	for name, d := range map[string]string{
		"extras": digest("extras: [yaml]\n"),
		"groups": digest("groups: [fast]\n"),
	} {
		if prev, dup := seen[d]; dup {
			t.Errorf("%s gives the digest of %s", name, prev)
		}
		seen[d] = name
	}
	write("pyproject.toml", string(ppData)+"\n# edited\n")
	if digest("") == base {
		t.Error("editing the pyproject.toml beside poetry.lock left the digest unchanged")
	}
	write("pyproject.toml", string(ppData))
	write("poetry.lock", string(lockData)+"\n")
	if digest("") == base {
		t.Error("editing poetry.lock left the digest unchanged")
	}
}
