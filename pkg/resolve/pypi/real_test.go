package pypi

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// fixtureDir returns ../shared/fixtures/wheels/<name> relative to the
// repository root, skipping the test when it is absent.
func fixtureDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "..", "shared", "fixtures", "wheels", name)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("fixture wheels not available: %v", err)
	}
	return dir
}

func TestResolveRealWheels(t *testing.T) {
	t.Parallel()
	dir := fixtureDir(t, "pypi")
	want := []string{
		"annotated-types", "blinker", "certifi", "charset-normalizer", "click", "flask", "idna",
		"itsdangerous", "jinja2", "markupsafe", "orjson", "pydantic", "pydantic-core", "pyyaml",
		"requests", "typing-extensions", "typing-inspection", "urllib3", "werkzeug",
	}
	top := []string{"flask", "requests", "pydantic", "pyyaml", "orjson"}
	for _, noMetadata := range []bool{false, true} {
		name := "pep658"
		if noMetadata {
			name = "wheel-download"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartWheelIndex(t, dir, testenv.WheelIndexOptions{NoMetadata: noMetadata, Username: "kiln", Password: "s3cr3t-pw"})
			env, target := target311(t)
			res, err := Resolve(t.Context(), Request{
				Requirements: reqs(t, top...),
				Env:          env, Target: target, Indexes: testIndexes(t, srv.AuthURL()),
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range res.Distributions {
				got = append(got, d.Name)
				if len(d.SHA256) != 64 || !strings.HasSuffix(d.URL, "/files/"+d.Filename) || strings.Contains(d.URL, "s3cr3t") {
					t.Errorf("%s: sha256 %q, url %q", d.Name, d.SHA256, d.URL)
				}
				if d.Requested != slices.Contains(top, d.Name) {
					t.Errorf("%s: requested=%v", d.Name, d.Requested)
				}
				if d.Name == "pydantic-core" && !strings.Contains(d.Filename, "cp311-cp311-manylinux") {
					t.Errorf("pydantic-core wheel %s", d.Filename)
				}
				if d.Name == "werkzeug" && (len(d.Chain) != 2 || d.Chain[0] != "flask") {
					t.Errorf("werkzeug chain %q", d.Chain)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("resolved %v\nwant %v", got, want)
			}
			// The requests went to the index with the JSON API preferred.
			sawJSON := false
			for _, r := range srv.Requests() {
				sawJSON = sawJSON || strings.Contains(r.Accept, testenv.PEP691JSON)
			}
			if !sawJSON {
				t.Error("no request asked for PEP 691 JSON")
			}
		})
	}
	t.Run("cp312 rejects the cp311 wheels", func(t *testing.T) {
		t.Parallel()
		srv := testenv.StartWheelIndex(t, dir, testenv.WheelIndexOptions{})
		env, target := targetFor(t, "3.12.1", "x86_64")
		_, err := Resolve(t.Context(), Request{
			Requirements: reqs(t, top...),
			Env:          env, Target: target, Indexes: testIndexes(t, srv.URL),
		})
		if err == nil {
			t.Fatal("resolved for CPython 3.12 with only cp311 binary wheels")
		}
		for _, w := range []string{"no wheel is compatible with the target cp312-linux_x86_64-glibc2.36", "-cp311-cp311-manylinux"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error lacks %q:\n%v", w, err)
			}
		}
	})
}

func TestResolveLocalWheels(t *testing.T) {
	t.Parallel()
	dir := fixtureDir(t, "pip-testdata")
	req := filepath.Join(t.TempDir(), "requirements.txt")
	if err := os.WriteFile(req, []byte(filepath.Join(dir, "simplewheel-2.0-py2.py3-none-any.whl")+"\nrequires_simple_extra[extra] @ file://"+filepath.Join(dir, "requires_simple_extra-0.1-py2.py3-none-any.whl")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines, _, err := ParseRequirements(req)
	if err != nil {
		t.Fatal(err)
	}
	var top []Requirement
	for _, l := range lines {
		top = append(top, l.Requirement)
	}
	// requires_simple_extra[extra] needs simple==1.0 from the index.
	idx := newFakeIndex(t, []dist{{name: "simple", version: "1.0"}, {name: "simple", version: "2.0"}}, fakeOpts{})
	env, target := target311(t)
	res, err := Resolve(t.Context(), Request{Requirements: top, Env: env, Target: target, Indexes: testIndexes(t, idx.URL())})
	if err != nil {
		t.Fatal(err)
	}
	if got := pins(res); !slices.Equal(got, []string{"requires-simple-extra==0.1", "simple==1.0", "simplewheel==2.0"}) {
		t.Errorf("resolved %v", got)
	}
	d := res.Distributions[2]
	if d.Name != "simplewheel" || len(d.SHA256) != 64 || d.Size == 0 || !strings.HasPrefix(d.URL, "file:///") || d.Index != "" || !d.Requested {
		t.Errorf("local wheel: %+v", d)
	}
	_, err = Resolve(t.Context(), Request{Requirements: append(top, reqs(t, "simple>=2")...), Env: env, Target: target, Indexes: testIndexes(t, idx.URL())})
	if err == nil || !strings.Contains(err.Error(), "(from requires-simple-extra 0.1)") || !strings.Contains(err.Error(), "simple>=2 (from packages)") {
		t.Errorf("conflict with a local wheel's dependency: %v", err)
	}
}
