package pep440

import (
	"errors"
	"sort"
	"strings"
	"testing"
)

func TestParseNormalise(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"1.0", "1.0"},
		{"v1.0", "1.0"},
		{"  V1.0\n", "1.0"},
		{"1.0.0", "1.0.0"},
		{"01.002", "1.2"},
		{"1!2.0", "1!2.0"},
		{"0!1.0", "1.0"},
		{"1.0a", "1.0a0"},
		{"1.0alpha1", "1.0a1"},
		{"1.0.beta.2", "1.0b2"},
		{"1.0c1", "1.0rc1"},
		{"1.0-pre_1", "1.0rc1"},
		{"1.0preview", "1.0rc0"},
		{"1.0RC1", "1.0rc1"},
		{"1.0-1", "1.0.post1"},
		{"1.0post", "1.0.post0"},
		{"1.0.rev3", "1.0.post3"},
		{"1.0_r", "1.0.post0"},
		{"1.0-dev", "1.0.dev0"},
		{"1.0dev-2", "1.0.dev2"},
		{"1.0a1-1.dev2", "1.0a1.post1.dev2"},
		{"1.0+Ubuntu-01_A", "1.0+ubuntu.1.a"},
		{"2.0.0+cu118", "2.0.0+cu118"},
	}
	for _, tt := range tests {
		v, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := v.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range []string{"", " ", "1.", ".1", "1..0", "1.0+", "1.0+a..b", "a1", "1.0-", "1.0.*", "1!", "!1",
		"1.0 a1", "1.0+é", "1.0.dev1.post1", "1.0a1a1", "99999999999999999999"} {
		_, err := Parse(in)
		var ive *InvalidVersionError
		if !errors.As(err, &ive) {
			t.Errorf("Parse(%q) error = %v, want *InvalidVersionError", in, err)
		}
	}
}

func TestCompareOrder(t *testing.T) {
	// Each version sorts strictly after the previous one (PEP 440 examples).
	order := []string{
		"1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12",
		"1.0b1.dev456", "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345",
		"1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0+abc.7", "1.0+5",
		"1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1", "1!0.1",
	}
	for i := 1; i < len(order); i++ {
		a, b := MustParse(order[i-1]), MustParse(order[i])
		if Compare(a, b) != -1 || Compare(b, a) != 1 {
			t.Errorf("want %s < %s, got Compare=%d", a, b, Compare(a, b))
		}
	}
	vs := make([]Version, len(order))
	for i := range order {
		vs[len(order)-1-i] = MustParse(order[i])
	}
	sort.Slice(vs, func(i, j int) bool { return Compare(vs[i], vs[j]) < 0 })
	for i := range vs {
		if vs[i].String() != MustParse(order[i]).String() {
			t.Fatalf("sorted[%d] = %s, want %s", i, vs[i], order[i])
		}
	}
	if !MustParse("1.0").Equal(MustParse("1.0.0.0")) || !MustParse("v1").Equal(MustParse("1.0")) {
		t.Error("trailing zeros must not matter")
	}
}

func TestSpecifierContains(t *testing.T) {
	tests := []struct {
		spec, version string
		pre           bool // prereleases argument
		want          bool
	}{
		{"==1.0", "1.0+local", false, true},
		{"==1.0+local", "1.0", false, false},
		{"==1.0+local", "1.0+local", false, true},
		{"==1.*", "1.9.9", false, true},
		{"==1.0.*", "1", false, true},
		{"==1.0.*", "1.0a1", true, true},
		{"==1.0.*", "1a1", true, true},
		{"!=1.0.*", "1.0.1", false, false},
		{"==1!1.*", "1.2", false, false},
		{"~=2.2", "2.9", false, true},
		{"~=2.2", "3.0", false, false},
		{"~=2.2.0", "2.3", false, false},
		{"~=1.4.5a4", "1.4.5", false, true},
		{"<2.0", "2.0a1", true, false},
		{"<2.0rc1", "2.0a1", true, true},
		{"<2.0", "1.9+local", false, true},
		{">1.7", "1.7.post1", false, false},
		{">1.7.post1", "1.7.post2", false, true},
		{">1.7", "1.7+local", false, false},
		{">1.7", "1.7.1", false, true},
		{"<=1.0", "1.0+local", false, true},
		{">=1.0", "1.0+local", false, true},
		{"===1.0", "1.0", false, true},
		{"===1.0", "1.0.0", false, false},
		{">=1.0", "2.0b1", false, false},
		{">=1.0", "2.0b1", true, true},
	}
	for _, tt := range tests {
		s := MustParseSpecifier(tt.spec)
		if got := s.Contains(MustParse(tt.version), tt.pre); got != tt.want {
			t.Errorf("%s contains %s (prereleases=%v) = %v, want %v", tt.spec, tt.version, tt.pre, got, tt.want)
		}
	}
}

func TestSpecifierSetDefaults(t *testing.T) {
	tests := []struct {
		set     string
		version string
		want    bool
	}{
		{"", "1.0", true},
		{"", "1.0a1", false},
		{">=1.0", "2.0a1", false},
		{">=1.0a1", "2.0a1", true},
		{">=1.0,<2", "1.5", true},
		{">=1.0,<2", "2.0", false},
		{"==1.0rc1", "1.0rc1", true},
		{"!=1.0rc1", "1.0rc2", false},
	}
	for _, tt := range tests {
		s := MustParseSpecifierSet(tt.set)
		if got := s.Allows(MustParse(tt.version)); got != tt.want {
			t.Errorf("SpecifierSet(%q).Allows(%s) = %v, want %v", tt.set, tt.version, got, tt.want)
		}
	}
	if got := MustParseSpecifierSet(">=1.0, <2 ,>=1.0.0,,").String(); got != "<2,>=1.0" {
		t.Errorf("String() = %q", got)
	}
}

func TestSpecifierErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{">=1.0+local", "only allowed with == and !="},
		{">=1.*", "only allowed with == and !="},
		{"==1.0a1.*", "must follow the release numbers"},
		{"~=1", "at least two release numbers"},
		{"=>1.0", "expected an operator"},
		{">=", "expected a version"},
		{">=1.0,foo", `"foo" in`},
	}
	for _, tt := range tests {
		_, err := ParseSpecifierSet(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSpecifierSet(%q) error = %v, want it to mention %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.0", "v1!2.0rc1.post2.dev3+abc.1", "1.0-1", " 1.0a ", "1.0.*", "1..0", "1+é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		// The normal form must parse to an equal version with the same form.
		w, err := Parse(v.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, v, err)
		}
		if Compare(v, w) != 0 || w.String() != v.String() {
			t.Fatalf("round trip %q -> %q -> %q", s, v, w)
		}
		for _, op := range []string{"==", ">=", "<=", "<", ">", "!=", "==="} {
			if sp, err := ParseSpecifier(op + v.String()); err == nil {
				sp.Contains(v, true)
			}
		}
	})
}
