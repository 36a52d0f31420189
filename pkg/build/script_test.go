package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/pkg/resolve/pytarget"
	"github.com/kiln-build/kiln/pkg/spec"
)

// TestScriptRequirements: the script's PEP 723 dependencies join the
// requirements (after a requirements file's), each naming the script as
// its source; they and requires-python enter the digest; requires-python
// is checked against the target interpreter.
func TestScriptRequirements(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("requirements.txt", "flask>=3\n")
	plan := func(yaml string) *requirements {
		t.Helper()
		s, err := spec.Parse(filepath.Join(dir, "kiln.yaml"), dir, []byte("base_image: debian:bookworm\n"+yaml))
		must(t, err)
		r, err := (&Plan{Spec: s}).requirements()
		must(t, err)
		return r
	}
	write("app.py", "# /// script\n# requires-python = \">=3.11\"\n# dependencies = [\"six>=1.16\", \"rich\"]\n# ///\n")
	r := plan("script: app.py\nrequirements: requirements.txt\n")
	var got []string
	for _, l := range r.lines {
		got = append(got, l.Requirement.Source+": "+l.Requirement.Requirement.String())
	}
	if len(got) != 3 || !strings.Contains(got[0], "flask>=3") || got[1] != "script app.py: six>=1.16" || got[2] != "script app.py: rich" {
		t.Errorf("lines = %q, want flask then the script's six and rich", got)
	}
	alone := plan("requirements: requirements.txt\n")
	if r.digest == alone.digest || r.digest == "" {
		t.Errorf("the script's dependencies did not change the digest (%s)", r.digest)
	}
	before := r.digest
	write("app.py", "# /// script\n# requires-python = \">=3.12\"\n# dependencies = [\"six>=1.16\", \"rich\"]\n# ///\n")
	if r2 := plan("script: app.py\nrequirements: requirements.txt\n"); r2.digest == before {
		t.Error("requires-python did not change the digest")
	}
	r3 := plan("script: app.py\n")
	s, err := spec.Parse(filepath.Join(dir, "kiln.yaml"), dir, []byte("base_image: debian:bookworm\nscript: app.py\n"))
	must(t, err)
	for _, tc := range []struct {
		version string
		ok      bool
	}{{"3.12.1", true}, {"3.13.0", true}, {"3.11.2", false}} {
		err := checkScriptPython(s, r3, &pytarget.Target{Version: tc.version, Interpreter: "/usr/bin/python3"})
		if tc.ok != (err == nil) {
			t.Errorf("Python %s: %v, want ok %t", tc.version, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `app.py:1: requires-python ">=3.12", but the target Python is 3.11.2`) {
			t.Errorf("Python %s: %v, want the script, line and both versions named", tc.version, err)
		}
	}
	// Without a block: nothing added, nothing checked.
	write("app.py", "print('hi')\n")
	if r4 := plan("script: app.py\n"); len(r4.lines) != 0 || r4.script != nil {
		t.Errorf("a script without a block gave %d lines", len(r4.lines))
	}
}
