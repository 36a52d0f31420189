package pypi

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeFiles writes name -> content under a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var (
	hashA = strings.Repeat("a", 64)
	hashB = strings.Repeat("b", 64)
)

func TestParseRequirements(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"requirements.txt": `# top comment
--index-url https://user:pw@private.example/simple
--extra-index-url=https://pypi.org/simple
--pre
--only-binary :all:

flask>=2 \
    ; python_version >= "3.8"   # trailing comment
requests[socks,security] ==2.31.0
-r sub/more.txt
-c constraints.txt
local @ file:///opt/wheels/local-1.0-py3-none-any.whl
./wheels/rel-2.0-py3-none-any.whl
https://example.com/dl/remote-3.0-py3-none-any.whl#sha256=` + hashA + `
`,
		"sub/more.txt":    "pyyaml  # in a sub-file\n-r ../third.txt\n",
		"third.txt":       "orjson\n",
		"constraints.txt": "urllib3<2\n",
	})
	lines, opts, err := ParseRequirements(filepath.Join(dir, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		s := l.Requirement.Requirement.String()
		if l.Constraint {
			s = "constraint " + s
		}
		got = append(got, filepath.Base(l.File)+":"+strconv.Itoa(l.Line)+" "+s)
	}
	want := []string{
		`requirements.txt:7 flask>=2; python_version >= "3.8"`,
		`requirements.txt:9 requests[security,socks]==2.31.0`,
		`more.txt:1 pyyaml`,
		`third.txt:1 orjson`,
		`constraints.txt:1 constraint urllib3<2`,
		`requirements.txt:12 local@ file:///opt/wheels/local-1.0-py3-none-any.whl`,
		`requirements.txt:13 rel@ file://` + filepath.Join(dir, "wheels/rel-2.0-py3-none-any.whl"),
		`requirements.txt:14 remote@ https://example.com/dl/remote-3.0-py3-none-any.whl#sha256=` + hashA,
	}
	if !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if opts.IndexURL != "https://user:pw@private.example/simple" || !slices.Equal(opts.ExtraIndexURLs, []string{"https://pypi.org/simple"}) || !opts.Pre || opts.RequireHashes {
		t.Errorf("options %+v", opts)
	}
	if lines[0].Source != filepath.Join(dir, "requirements.txt")+":7" {
		t.Errorf("source %q", lines[0].Source)
	}
}

func TestParseRequirementsHashes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   map[string]string
		want    map[string][]string // name -> hashes
		wantErr string              // substring, "" for success
	}{{
		name: "every requirement hashed",
		files: map[string]string{"requirements.txt": "a==1.0 --hash=sha256:" + hashA + " \\\n    --hash sha256:" + hashB + "\n" +
			"b==2.0 --hash=sha256:" + strings.ToUpper(hashB) + "\n"},
		want: map[string][]string{"a": {hashA, hashB}, "b": {hashB}},
	}, {
		name:    "one requirement without hash",
		files:   map[string]string{"requirements.txt": "a==1.0 --hash=sha256:" + hashA + "\nb==2.0\n"},
		wantErr: "requirements.txt:2: b==2.0 has no --hash, but hash-checking mode is on",
	}, {
		name:    "hash on a requirement in an included file",
		files:   map[string]string{"requirements.txt": "b==2.0\n-r inc.txt\n", "inc.txt": "a==1.0 --hash=sha256:" + hashA + "\n"},
		wantErr: "requirements.txt:1: b==2.0 has no --hash",
	}, {
		name:    "--require-hashes without hashes",
		files:   map[string]string{"requirements.txt": "--require-hashes\na==1.0\n"},
		wantErr: "requirements.txt:2: a==1.0 has no --hash",
	}, {
		name:    "hashed but not pinned",
		files:   map[string]string{"requirements.txt": "a>=1.0 --hash=sha256:" + hashA + "\n"},
		wantErr: "requirements.txt:1: a>=1.0 is not pinned with ==",
	}, {
		name:    "not sha256",
		files:   map[string]string{"requirements.txt": "a==1.0 --hash=md5:0123\n"},
		wantErr: "requirements.txt:1: --hash md5: kiln checks sha256 hashes only",
	}, {
		name:    "short hash",
		files:   map[string]string{"requirements.txt": "a==1.0 --hash=sha256:abc\n"},
		wantErr: "requirements.txt:1: --hash sha256:abc is not 64 hex digits",
	}, {
		name:  "constraints need no hashes",
		files: map[string]string{"requirements.txt": "a==1.0 --hash=sha256:" + hashA + "\n-c c.txt\n", "c.txt": "b<3\n"},
		want:  map[string][]string{"a": {hashA}, "b": nil},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tc.files)
			lines, opts, err := ParseRequirements(filepath.Join(dir, "requirements.txt"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !opts.RequireHashes {
				t.Error("hash-checking mode is off")
			}
			got := map[string][]string{}
			for _, l := range lines {
				got[l.Name] = l.Hashes
			}
			for n, w := range tc.want {
				if !slices.Equal(got[n], w) {
					t.Errorf("%s hashes %v, want %v", n, got[n], w)
				}
			}
		})
	}
}

func TestParseRequirementsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ content, want string }{
		{"ok\n-e ./src\n", "requirements.txt:2: editable requirement"},
		{"-f https://example.com/links\n", "requirements.txt:1: --find-links is not supported"},
		{"--no-index\n", "requirements.txt:1: --no-index is not supported"},
		{"--no-binary :all:\n", "requirements.txt:1: --no-binary :all:: kiln installs wheels only"},
		{"--trusted-host example.com\n", "requirements.txt:1: option --trusted-host is not supported by kiln; remove it"},
		{"\n\nflask --install-option=x\n", "requirements.txt:3: option --install-option on a requirement is not supported"},
		{"foo @ https://example.com/foo-1.0.tar.gz\n", "requirements.txt:1: foo: https://example.com/foo-1.0.tar.gz is not a wheel (.whl); kiln installs wheels only"},
		{"https://example.com/foo-1.0.tar.gz\n", "requirements.txt:1: https://example.com/foo-1.0.tar.gz is not a wheel"},
		{"git+https://tok@github.com/x/y.git#egg=y\n", "requirements.txt:1: git+https://***@github.com/x/y.git#egg=y is a version-control URL"},
		{"./sub\n", "requirements.txt:1: " + "SUBDIR is a project directory"},
		{"flask[\n", "requirements.txt:1: "},
		{"-r missing.txt\n", "requirements.txt:1: reading requirements file"},
		{"-r requirements.txt\n", "includes itself"},
		{"-c c.txt\n", "c.txt:1: constraint requests[socks]<3 has extras"},
		{"-r https://example.com/r.txt\n", "requirements.txt:1: -r https://example.com/r.txt: kiln reads requirement files from local paths only"},
		{"--index-url\n", "requirements.txt:1: --index-url needs a value"},
	}
	for _, tc := range tests {
		t.Run(tc.content, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, map[string]string{"requirements.txt": tc.content, "c.txt": "requests[socks]<3\n", "sub/setup.py": ""})
			_, _, err := ParseRequirements(filepath.Join(dir, "requirements.txt"))
			want := strings.ReplaceAll(tc.want, "SUBDIR", filepath.Join(dir, "sub"))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
}

// TestRequirementsFileBound checks that a requirements file that never
// ends (here: one just over the bound) is refused rather than read whole.
func TestRequirementsFileBound(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"at the bound", maxRequirementsFile, false},
		{"over the bound", maxRequirementsFile + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := "# padding padding padding padding padding padding padding padding\n"
			b := []byte(strings.Repeat(line, tt.size/len(line)+1))[:tt.size]
			p := filepath.Join(dir, "requirements.txt")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := ParseRequirements(p)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseRequirements of %d bytes: err = %v, want error %v", tt.size, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "larger than") {
				t.Errorf("error %q does not say the file is too large", err)
			}
		})
	}
}
