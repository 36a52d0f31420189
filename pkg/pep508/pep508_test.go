package pep508

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRequirement(t *testing.T) {
	tests := []struct {
		in                         string
		name, extras, spec, url, m string
	}{
		{"requests", "requests", "", "", "", ""},
		{"requests[security,socks]>=2.8.1,==2.8.*", "requests", "security socks", "==2.8.*,>=2.8.1", "", ""},
		{"Foo.Bar (>=1.0, <2)", "Foo.Bar", "", "<2,>=1.0", "", ""},
		{"name[ b , a ]", "name", "a b", "", "", ""},
		{"name[]", "name", "", "", "", ""},
		{"pip @ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee", "pip", "", "", "https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee", ""},
		{"pkg @ file:///tmp/pkg.whl ; os_name == 'posix'", "pkg", "", "", "file:///tmp/pkg.whl", `os_name == "posix"`},
		{`torch>=2; python_version>="3.9" and (sys_platform=='linux' or platform_machine=="x86_64")`, "torch", "", ">=2", "",
			`python_version >= "3.9" and (sys_platform == "linux" or platform_machine == "x86_64")`},
		{"a;extra=='Dev_Tools'", "a", "", "", "", `extra == "dev-tools"`},
		{"a ===foo", "a", "", "===foo", "", ""},
	}
	for _, tt := range tests {
		r, err := ParseRequirement(tt.in)
		if err != nil {
			t.Errorf("ParseRequirement(%q): %v", tt.in, err)
			continue
		}
		if r.Name != tt.name || strings.Join(r.Extras, " ") != tt.extras || r.Specifier.String() != tt.spec || r.URL != tt.url || r.Marker.String() != tt.m {
			t.Errorf("ParseRequirement(%q) = %q %q %q %q %q", tt.in, r.Name, r.Extras, r.Specifier, r.URL, r.Marker)
		}
		if again, err := ParseRequirement(r.String()); err != nil || again.String() != r.String() {
			t.Errorf("round trip of %q via %q: %v", tt.in, r.String(), err)
		}
	}
}

func TestParseRequirementErrors(t *testing.T) {
	tests := []struct {
		in   string
		pos  int
		want string
	}{
		{"", 0, "package name"},
		{"-foo", 0, "package name"},
		{"foo[bar", 7, "expected ']'"},
		{"foo[bar baz]", 8, "comma between extra names"},
		{"foo >=1.0+local", 4, "local version label"},
		{"foo (>=1.0", 10, "expected ')'"},
		{"foo 1.0", 4, "expected end or ';'"},
		{"foo @ https://x/y.whl; python_version>'3'", 23, "put a space before"},
		{"foo @ https:///y.whl", 6, "host"},
		{"foo @ /tmp/x.whl", 6, "scheme"},
		{"foo @ file:/tmp/x.whl", 6, "file:///"},
		{"foo; python_version >= ", 23, "marker variable"},
		{"foo; python_version >= '3", 23, "unterminated"},
		{"foo; python_version => '3'", 20, "marker operator"},
		{"foo; os_name == 'a' xor", 20, "end of requirement"},
		{"foo; (os_name == 'a'", 20, "expected ')'"},
		{"foo; os_name not'a'", 13, "not in"},
	}
	for _, tt := range tests {
		_, err := ParseRequirement(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseRequirement(%q) error = %v, want *SyntaxError", tt.in, err)
			continue
		}
		if se.Pos != tt.pos || !strings.Contains(se.Error(), tt.want) || !strings.Contains(se.Error(), tt.in) {
			t.Errorf("ParseRequirement(%q) error at %d: %v; want position %d mentioning %q", tt.in, se.Pos, err, tt.pos, tt.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	env, err := LinuxCPython("3.11.7", "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	rc := env
	rc.PythonFullVersion = "3.13.0rc2"
	rc.PythonVersion = "3.13"
	rc.PlatformRelease = "6.7.0-gentoo"
	tests := []struct {
		env    Environment
		marker string
		extras []string
		want   bool
	}{
		{env, `python_version >= "3.8"`, nil, true},
		{env, `python_version > "3.9"`, nil, true}, // version, not string, comparison
		{env, `python_version < "3.10"`, nil, false},
		{env, `python_version == "3.11.*"`, nil, true},
		{env, `python_full_version ~= "3.11.0"`, nil, true},
		{env, `"3.11" in python_version`, nil, true},
		{env, `python_version not in "3.8, 3.9"`, nil, true},
		{env, `sys_platform == "linux" and platform_machine == "x86_64"`, nil, true},
		{env, `sys_platform == "win32" or os_name == "posix" and platform_system == "Linux"`, nil, true},
		{env, `(sys_platform == "win32" or os_name == "posix") and platform_system == "Darwin"`, nil, false},
		{env, `platform_python_implementation == "CPython" and implementation_name == "cpython"`, nil, true},
		{env, `platform_machine > "aarch64"`, nil, true}, // string comparison
		{env, `extra == "test"`, nil, false},
		{env, `extra == "test"`, []string{"docs", "Test"}, true},
		{env, `extra == "dev_tools"`, []string{"Dev.Tools"}, true},
		{rc, `python_full_version >= "3.8"`, nil, true}, // pre-releases compare as versions
		{rc, `platform_release >= "6"`, nil, true},      // non-version falls back to strings
		{env, `implementation_name === "CPYTHON"`, nil, true},
	}
	for _, tt := range tests {
		m := MustParseMarker(tt.marker)
		got, err := m.Evaluate(tt.env, tt.extras...)
		if err != nil || got != tt.want {
			t.Errorf("%s with extras %q = %v, %v; want %v", tt.marker, tt.extras, got, err, tt.want)
		}
	}
	var uce *UndefinedComparisonError
	if _, err := MustParseMarker(`os_name ~= "posix"`).Evaluate(env); !errors.As(err, &uce) {
		t.Errorf("os_name ~= posix: err = %v, want *UndefinedComparisonError", err)
	}
	if ok, err := (*Marker)(nil).Evaluate(env); !ok || err != nil {
		t.Errorf("nil marker = %v, %v", ok, err)
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{"Foo.Bar": "foo-bar", "foo__bar": "foo-bar", "FOO-._bar": "foo-bar", "a": "a", "Scikit_Learn": "scikit-learn"} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{"a": true, "a-b.c_d": true, "a-": false, "-a": false, "": false, "a b": false, "é": false} {
		if got := ValidName(in); got != want {
			t.Errorf("ValidName(%q) = %v", in, got)
		}
	}
}

func FuzzParseRequirement(f *testing.F) {
	for _, s := range []string{"requests[security]>=2.8.1,==2.8.*; python_version<'2.7'", "pip @ https://x/y.zip ; os_name=='a'",
		"a (>=1, <2)", "a[]", "a===x", "a; (b == 'c' or extra == 'd') and 'e' not in f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRequirement(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 0 || se.Pos > len(s) {
				t.Fatalf("ParseRequirement(%q): bad error %v", s, err)
			}
			_ = err.Error()
			return
		}
		if !ValidName(r.Name) {
			t.Fatalf("ParseRequirement(%q) accepted name %q", s, r.Name)
		}
		again, err := ParseRequirement(r.String())
		if err != nil {
			t.Fatalf("ParseRequirement(%q).String() = %q does not parse: %v", s, r.String(), err)
		}
		if again.String() != r.String() {
			t.Fatalf("unstable String: %q -> %q", r.String(), again.String())
		}
		env, _ := LinuxCPython("3.11.7", "x86_64")
		_, _ = r.Marker.Evaluate(env, "x")
	})
}

func FuzzParseMarker(f *testing.F) {
	for _, s := range []string{`python_version >= "3.8"`, `(os_name=='a' or extra=='b') and 'c' not in sys.platform`,
		`platform_release ~= "5.0"`, `a`, `"x" === "y"`} {
		f.Add(s)
	}
	env, _ := LinuxCPython("3.11.7", "x86_64")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMarker(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 0 || se.Pos > len(s) {
				t.Fatalf("ParseMarker(%q): bad error %v", s, err)
			}
			return
		}
		got, err1 := m.Evaluate(env, "test")
		m2, err := ParseMarker(m.String())
		if err != nil {
			t.Fatalf("ParseMarker(%q).String() = %q does not parse: %v", s, m.String(), err)
		}
		if m2.String() != m.String() {
			t.Fatalf("unstable String: %q -> %q", m.String(), m2.String())
		}
		got2, err2 := m2.Evaluate(env, "test")
		if got != got2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("%q and its String %q evaluate differently: %v/%v vs %v/%v", s, m.String(), got, err1, got2, err2)
		}
	})
}
