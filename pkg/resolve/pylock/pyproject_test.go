package pylock

import (
	"strings"
	"testing"
)

const demoPyproject = `
[project]
name = "Demo_App"
version = "0.1.0"
dependencies = ["flask>=3", "requests; python_version >= '3.8'"]

[project.optional-dependencies]
yaml = ["pyyaml"]
All = ["demo-app[yaml]", "orjson"]

[dependency-groups]
test = ["pytest", {include-group = "lint"}]
lint = ["ruff"]
loop-a = [{include-group = "loop-b"}]
loop-b = [{include-group = "loop-a"}]
dangling = [{include-group = "nope"}]
`

func TestPyprojectRequirements(t *testing.T) {
	p, err := ParsePyproject("/src/pyproject.toml", []byte(demoPyproject))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		extras, groups []string
		want, wantErr  string
	}{
		{"base", nil, nil, "flask>=3 [project.dependencies] | requests; python_version >= '3.8' [project.dependencies]", ""},
		{"extra", []string{"YAML"}, nil, "flask>=3 [project.dependencies] | requests; python_version >= '3.8' [project.dependencies] | pyyaml [project.optional-dependencies] yaml", ""},
		{"self-referring extra", []string{"all"}, nil, "flask>=3 [project.dependencies] | requests; python_version >= '3.8' [project.dependencies] | pyyaml [project.optional-dependencies] yaml | orjson [project.optional-dependencies] all", ""},
		{"group with include", nil, []string{"test"}, "flask>=3 [project.dependencies] | requests; python_version >= '3.8' [project.dependencies] | pytest [dependency-groups] test | ruff [dependency-groups] test", ""},
		{"unknown extra", []string{"gpu"}, nil, "", `has no extra "gpu" (asked by the spec's extras; it has all, yaml)`},
		{"unknown group", nil, []string{"docs"}, "", `has no group "docs" (it has dangling, lint, loop-a, loop-b, test)`},
		{"cycle", nil, []string{"loop-a"}, "", "in a cycle: loop-a -> loop-b -> loop-a"},
		{"dangling include", nil, []string{"dangling"}, "", `dangling includes "nope", which does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, err := p.Requirements(tc.extras, tc.groups)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range reqs {
				got = append(got, r.Text+" "+strings.TrimPrefix(r.Source, "pyproject.toml "))
			}
			if g := strings.Join(got, " | "); g != tc.want {
				t.Errorf("got\n %s\nwant\n %s", g, tc.want)
			}
		})
	}
}

func TestParsePyprojectErrors(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"dynamic", "[project]\nname = \"a\"\ndynamic = [\"dependencies\"]\n", "declares dependencies dynamic"},
		{"bad group table", "[dependency-groups]\ng = [{include = \"x\"}]\n", `a table must be {include-group = "name"}`},
		{"bad group entry", "[dependency-groups]\ng = [3]\n", "want a requirement string"},
		{"duplicate group", "[dependency-groups]\nA_b = []\na-b = []\n", "twice once normalised"},
		{"not toml", "[project\n", "not valid TOML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePyproject("pyproject.toml", []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestPoetryConstraint(t *testing.T) {
	for in, want := range map[string]string{
		"^1.2.3": ">=1.2.3,<2.0", "^0.2.3": ">=0.2.3,<0.3", "^0.0.3": ">=0.0.3,<0.0.4", "^2": ">=2,<3.0",
		"~1.2.3": ">=1.2.3,<1.3", "~1": ">=1,<2.0", ">=2,<4": ">=2,<4", ">= 1 < 2": ">=1,<2",
		"1.2.3": "==1.2.3", "1.2.*": "==1.2.*", "*": "", "": "", ">=1 || <0.5": "", "~=1.4": "~=1.4",
	} {
		got := ""
		if s := poetryConstraint(in); s != nil {
			var parts []string
			for _, sp := range s.Specifiers() {
				parts = append(parts, sp.String())
			}
			got = strings.Join(parts, ",")
		}
		if got != want {
			t.Errorf("poetryConstraint(%q) = %q, want %q", in, got, want)
		}
	}
}
