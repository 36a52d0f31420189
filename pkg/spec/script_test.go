package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScriptKey: script names a file under the build context with a well
// formed PEP 723 block; it is shipped to /root/NAME unless source_root
// ships it, and it enters the spec hash only when set.
func TestScriptKey(t *testing.T) {
	top := t.TempDir()
	app := filepath.Join(top, "app")
	mustOK(t, os.MkdirAll(filepath.Join(app, "src", "tools"), 0o755))
	good := "# /// script\n# dependencies = [\"six\"]\n# ///\nimport six\n"
	for f, body := range map[string]string{
		"app/run.py":             good,
		"app/src/tools/job.py":   good,
		"app/bad.py":             "# /// script\n# dependencies = [\"six\"]\n# ///\n\n# /// script\n# dependencies = []\n# ///\n",
		"outside.py":             good,
		"app/requirements.txt":   "six\n",
		"app/uv.lock":            "version = 1\n",
		"app/src/tools/other.py": "print(1)\n",
	} {
		mustOK(t, os.WriteFile(filepath.Join(top, f), []byte(body), 0o644))
	}
	const base = "base_image: scratch\n"
	for _, tc := range []struct {
		name, yaml, path string
		copies           bool
		want             []string // substrings of the error; nil: valid
	}{
		{name: "beside the spec", yaml: "script: run.py\n", path: "/root/run.py", copies: true},
		{name: "with requirements.txt", yaml: "script: run.py\nrequirements: requirements.txt\n", path: "/root/run.py", copies: true},
		{name: "under source_root", yaml: "script: src/tools/job.py\nsource_root: src\n", path: "/root/tools/job.py"},
		{name: "source_root elsewhere", yaml: "script: run.py\nsource_root: src\n", path: "/root/run.py", copies: true},
		{name: "source_root not copied", yaml: "script: src/tools/job.py\nsource_root: src\nsource_copy_mode: none\n", path: "/root/job.py", copies: true},
		{name: "two blocks", yaml: "script: bad.py\n", want: []string{"kiln.yaml:2", "script", filepath.Join(app, "bad.py") + ":5: a second `# /// script` block"}},
		{name: "outside the context", yaml: "script: ../outside.py\n", want: []string{"script", "outside the build context"}},
		{name: "missing", yaml: "script: nothing.py\n", want: []string{"script", "does not exist"}},
		{name: "a directory", yaml: "script: src\n", want: []string{"script", "not a regular file"}},
		{name: "with a lock", yaml: "script: run.py\nrequirements: uv.lock\n", want: []string{"script", "cannot add the script's dependencies to uv.lock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("kiln.yaml", app, []byte(base+tc.yaml))
			mustOK(t, err)
			s.File = "kiln.yaml"
			err = s.Validate()
			if tc.want != nil {
				if err == nil {
					t.Fatalf("Validate succeeded, want an error with %q", tc.want)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			mustOK(t, err)
			if got := s.ScriptPath(); got != tc.path {
				t.Errorf("ScriptPath = %q, want %q", got, tc.path)
			}
			if _, copies := s.ScriptCopy(); copies != tc.copies {
				t.Errorf("ScriptCopy copies = %t, want %t", copies, tc.copies)
			}
			m, err := s.ScriptMetadata()
			if err != nil || m == nil || len(m.Dependencies) != 1 || m.Dependencies[0] != "six" {
				t.Errorf("ScriptMetadata = %+v, %v; want the dependency six", m, err)
			}
		})
	}

	// The key enters the spec hash only when set, and as set: not the
	// host path.
	without, err := Parse("kiln.yaml", app, []byte(base))
	mustOK(t, err)
	withA, err := Parse("kiln.yaml", app, []byte(base+"script: run.py\n"))
	mustOK(t, err)
	withB, err := Parse("kiln.yaml", filepath.Join(app, "src"), []byte(base+"script: tools/job.py\n"))
	mustOK(t, err)
	if bytes.Contains(without.Normalized(), []byte("script")) {
		t.Errorf("a spec without script has it in its hash input: %s", without.Normalized())
	}
	if bytes.Equal(without.Normalized(), withA.Normalized()) {
		t.Error("script changed nothing in the spec hash")
	}
	if !bytes.Equal(withA.Normalized(), withB.Normalized()) || bytes.Contains(withA.Normalized(), []byte(app)) {
		t.Errorf("the script's host path enters the spec hash: %s vs %s", withA.Normalized(), withB.Normalized())
	}
}
