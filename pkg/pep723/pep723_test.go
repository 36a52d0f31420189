package pep723

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// The PEP's examples.
const (
	pepExample = `# /// script
# requires-python = ">=3.11"
# dependencies = [
#   "requests<3",
#   "rich",
# ]
# ///

import requests
from rich.pretty import pprint

resp = requests.get("https://peps.python.org/api/peps.json")
data = resp.json()
pprint([(k, v["title"]) for k, v in data.items()][:10])
`
	// A closing-looking line inside the content: the block runs to the
	// last "# ///" before a line that is not a comment.
	pepEmbedded = `# /// script
# embedded-csharp = """
# /// <summary>
# /// text
# ///
# /// </summary>
# public class MyClass { }
# """
# ///
`
	pepPyproject = `# /// pyproject
# [run]
# requires-python = ">=3.11"
# ///
print("no script block")
`
)

func TestScriptBlock(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
		start              int
	}{
		{"pep example", pepExample, "requires-python = \">=3.11\"\ndependencies = [\n  \"requests<3\",\n  \"rich\",\n]\n", 0},
		{"pep embedded", pepEmbedded, "embedded-csharp = \"\"\"\n/// <summary>\n/// text\n///\n/// </summary>\npublic class MyClass { }\n\"\"\"\n", 0},
		{"another type only", pepPyproject, "", -1},
		{"none", "print('hi')\n", "", -1},
		{"bare # lines", "#!/usr/bin/env python3\n# /// script\n#\n# dependencies = []\n#\n# ///\n", "\ndependencies = []\n\n", 23},
		{"at end without newline", "# /// script\n# dependencies = [\"six\"]\n# ///", "dependencies = [\"six\"]\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, start, err := scriptBlock("app.py", []byte(tc.script))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || start != tc.start {
				t.Errorf("scriptBlock = %q at %d, want %q at %d", got, start, tc.want, tc.start)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		deps         []string
		python       string
		line         int
	}{
		{"pep example", pepExample, []string{"requests<3", "rich"}, ">=3.11", 1},
		{"no block", "import sys\n", nil, "", 0},
		{"another block type", pepPyproject, nil, "", 0},
		{"empty dependencies", "# /// script\n# dependencies = []\n# ///\n", nil, "", 1},
		{"tool table", "import os\n\n# /// script\n# dependencies = [\"six\"]\n# [tool.uv]\n# exclude-newer = \"2024-01-01T00:00:00Z\"\n# ///\n", []string{"six"}, "", 3},
		{"markers and extras", "# /// script\n# dependencies = ['requests[socks]>=2; python_version >= \"3.8\"']\n# ///\n", []string{`requests[socks]>=2; python_version >= "3.8"`}, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse("app.py", []byte(tc.script))
			if err != nil {
				t.Fatal(err)
			}
			if tc.line == 0 {
				if m != nil {
					t.Errorf("Parse = %+v, want no metadata", m)
				}
				return
			}
			if m == nil {
				t.Fatal("Parse found no block")
			}
			if !slices.Equal(m.Dependencies, tc.deps) || m.RequiresPythonText != tc.python || m.Line != tc.line {
				t.Errorf("Parse = deps %q python %q line %d, want %q %q %d", m.Dependencies, m.RequiresPythonText, m.Line, tc.deps, tc.python, tc.line)
			}
			if tc.python != "" && m.RequiresPython.Len() == 0 {
				t.Errorf("requires-python %q parsed to no specifiers", tc.python)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		line         int
		want         string
	}{
		{"two script blocks", "# /// script\n# dependencies = []\n# ///\n\n# /// script\n# dependencies = [\"six\"]\n# ///\n", 5, "a second `# /// script` block (the first is on line 1)"},
		{"adjacent blocks are one", "# /// script\n# dependencies = []\n# ///\n# /// script\n# dependencies = []\n# ///\n", 3, "this `# ///` line is inside the block"},
		{"unclosed", "import os\n# /// script\n# dependencies = [\"six\"]\nprint(1)\n", 2, "does not close"},
		{"a line without the space", "# /// script\n#dependencies = [\"six\"]\n# ///\n", 1, "does not close"},
		{"bad toml", "# /// script\n# dependencies = [\n#   \"six\"\n#   \"rich\",\n# ]\n# ///\n", 4, "not valid TOML"},
		{"dependencies not a list", "# /// script\n# requires-python = \">=3.8\"\n# dependencies = \"six\"\n# ///\n", 3, "dependencies is a string, want an array"},
		{"a dependency not a string", "# /// script\n# dependencies = [1]\n# ///\n", 2, "dependencies[0] is a number"},
		{"bad requirement", "# /// script\n# dependencies = [\"six ==\"]\n# ///\n", 2, `dependencies[0] "six =="`},
		{"bad requires-python", "# /// script\n# requires-python = \"three\"\n# ///\n", 2, `requires-python "three"`},
		{"unknown key", "# /// script\n# dependencies = []\n# dependency = [\"six\"]\n# ///\n", 3, `unknown key "dependency"`},
		// The PEP calls this block valid; kiln knows no embedded-csharp
		// key and says so, on its line.
		{"pep embedded", pepEmbedded, 2, `unknown key "embedded-csharp"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("app.py", []byte(tc.script))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, want an *Error", err)
			}
			if pe.File != "app.py" || pe.Line != tc.line || !strings.Contains(pe.Msg, tc.want) {
				t.Errorf("Parse = %q (line %d), want app.py line %d with %q", err, pe.Line, tc.line, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "app.py:") {
				t.Errorf("the error %q does not start with the file", err)
			}
		})
	}
}
