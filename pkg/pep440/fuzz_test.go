package pep440

import "testing"

// FuzzParseSpecifierSet parses arbitrary specifier sets; a set that parses
// must print to a set that parses to the same text, and matching any
// version against it must not panic.
func FuzzParseSpecifierSet(f *testing.F) {
	for _, s := range []string{">=1.0,<2", "~=1.4.5", "==1.0.*", "!=2.0.post1", "===foo", " >= 1.0 , != 1.5.* ", "~=1", "==1.0+local", ">1.0a1", "<=v1!2.0"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, s, v string) {
		set, err := ParseSpecifierSet(s)
		if err != nil {
			return
		}
		again, err := ParseSpecifierSet(set.String())
		if err != nil {
			t.Fatalf("ParseSpecifierSet(%q).String() = %q does not parse: %v", s, set, err)
		}
		if again.String() != set.String() {
			t.Fatalf("round trip %q -> %q -> %q", s, set, again)
		}
		if ver, err := Parse(v); err == nil {
			for _, sp := range set.Specifiers() {
				sp.Contains(ver, true)
				sp.Contains(ver, false)
			}
		}
	})
}
