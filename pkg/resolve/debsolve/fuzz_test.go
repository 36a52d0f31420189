package debsolve

import (
	"strings"
	"testing"
)

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"python3-numpy", "libc6:i386", "libfoo=1.2-3", "libfoo:amd64=1:2.0~rc1-1+b1", "g++=4*", "a", "x/bookworm", "foo=", "foo:=1", " foo "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		if !validName(tg.Name) {
			t.Fatalf("ParseTarget(%q) accepted invalid name %q", s, tg.Name)
		}
		again, err := ParseTarget(tg.String())
		if err != nil {
			t.Fatalf("ParseTarget(%q) = %+v, but its String %q does not parse: %v", s, tg, tg.String(), err)
		}
		if again != tg {
			t.Fatalf("round trip of %q: %+v then %+v", s, tg, again)
		}
	})
}

func FuzzParseRels(f *testing.F) {
	for _, s := range []string{"libc6 (>= 2.34), libblas3 | libblas.so.3", "python3:any (<< 3.12)", "foo [amd64], bar:native", "${shlibs:Depends}, a", "x (= 1:2-3)", "", ",", "a (>=", "a | | b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rels, err := parseRels(s)
		if err != nil {
			return
		}
		for _, r := range rels {
			if len(r.alts) == 0 {
				t.Fatalf("parseRels(%q): empty relationship", s)
			}
			for _, a := range r.alts {
				if a.name == "" || !strings.HasPrefix(a.text, a.name) {
					t.Fatalf("parseRels(%q): bad atom %+v", s, a)
				}
				if (a.op == "") != (a.verTxt == "") {
					t.Fatalf("parseRels(%q): atom %+v has an operator without a version", s, a)
				}
			}
		}
		// A package carrying the field must not make Solve panic.
		_, _ = Solve(Request{
			Universe: []Package{{Name: "root", Version: "1", Architecture: "amd64", Depends: s, Provides: s, Conflicts: s}},
			Install:  []string{"root"},
		})
	})
}
