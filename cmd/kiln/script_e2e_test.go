package main

import (
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EScript builds a single-file app from its PEP 723 block, as an
// unprivileged user: the block's dependencies (a pure-Python wheel and
// what it requires) are installed into the virtualenv, the script is
// shipped to /root and is the entrypoint, so podman run IMAGE ARGS runs it.
// A requires-python the target does not meet and a malformed block fail
// naming the script and line.
func TestE2EScript(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	index := e2eWheelIndex(t)
	home := testenv.UserDir(t)
	head := "name: script-app\nregistry: " + reg.Host + "\nbase_image: " + base + "\npip_index: " + index + "\nscript: app.py\n"
	script := `#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = [
#   "python-dateutil>=2.8",
# ]
# ///
import sys

import dateutil.parser
import six

when = dateutil.parser.isoparse("2024-02-29T12:00:00")
print("script", when.year, six.__name__, sys.argv[1:], sys.prefix)
`
	dir := writeSpec(t, head, map[string]string{"app.py": script})
	ref, res := buildRef(t, testenv.RunOptions{Dir: dir, Home: home})
	show(t, "$ kiln build   (script: app.py)", res.Stderr+res.Stdout)
	if !strings.Contains(res.Stderr, "python: resolved 2 distributions") {
		t.Errorf("the build did not resolve the script's dependencies (python-dateutil and six):\n%s", res.Stderr)
	}
	podman := testenv.NewPodman(t)
	out, err := podman.Exec("run", "--rm", "--network", "none", ref, "one", "two")
	show(t, "$ podman run IMAGE one two", out)
	if want := "script 2024 six ['one', 'two'] /opt/venv"; err != nil || !strings.Contains(out, want) {
		t.Errorf("podman run IMAGE one two: %v, printed %q, want %q", err, out, want)
	}
	if out, err := podman.Exec("run", "--rm", "--network", "none", "--entrypoint", "cat", ref, "/root/app.py"); err != nil || out != script {
		t.Errorf("/root/app.py in the image: %v, %q; want the script", err, out)
	}

	for _, tc := range []struct {
		name, script, want string
	}{
		{"requires-python", "# /// script\n# requires-python = \">=3.99\"\n# dependencies = [\"six\"]\n# ///\nimport six\n",
			`/app.py:1: requires-python ">=3.99", but the target Python is 3.11`},
		{"two blocks", "# /// script\n# dependencies = [\"six\"]\n# ///\n\n# /// script\n# dependencies = []\n# ///\n",
			"/app.py:5: a second `# /// script` block (the first is on line 1)"},
		{"unclosed", "import os\n# /// script\n# dependencies = [\"six\"]\n",
			"/app.py:2: `# /// script` opens a block that does not close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := writeSpec(t, head, map[string]string{"app.py": tc.script})
			r := testenv.RunKiln(t, testenv.RunOptions{Dir: d, Home: home}, "build")
			show(t, "$ kiln build   ("+tc.name+")", r.Stderr)
			if want := "script: " + d + tc.want; r.Code == 0 || !strings.Contains(r.Stderr, want) {
				t.Errorf("exit %d, stderr lacks %q:\n%s", r.Code, want, r.Stderr)
			}
		})
	}
}
