package spec

import (
	"errors"
	"strings"
	"testing"
)

// TestAptScripts: apt_scripts takes run or emulate, anything else fails
// naming the key, its line and both values; the key enters the spec hash
// only when set, so specs without it keep their tags.
func TestAptScripts(t *testing.T) {
	dir := t.TempDir()
	hash := func(yaml string) string {
		s, err := Parse("kiln.yaml", dir, []byte("base_image: debian:bookworm\n"+yaml))
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Normalized())
	}
	for _, tc := range []struct {
		yaml string
		want []string // substrings of the error; nil: valid
	}{
		{"apt_scripts: run\n", nil},
		{"apt_scripts: emulate\n", nil},
		{"", nil},
		{"apt_scripts: sometimes\n", []string{"kiln.yaml:2", "apt_scripts", `"sometimes"`, "run", "emulate"}},
		{"apt_scripts: Run\n", []string{"apt_scripts", "neither run nor emulate"}},
	} {
		s, err := Parse("kiln.yaml", dir, []byte("base_image: debian:bookworm\n"+tc.yaml))
		if err == nil {
			err = s.Validate()
		}
		if tc.want == nil {
			if err != nil {
				t.Errorf("%q: %v, want valid", tc.yaml, err)
			}
			continue
		}
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("%q: got %v, want a *spec.Error", tc.yaml, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", tc.yaml, err, w)
			}
		}
	}
	if strings.Contains(hash(""), "apt_scripts") {
		t.Errorf("a spec without apt_scripts hashes it: %s", hash(""))
	}
	if hash("apt_scripts: emulate\n") == hash("apt_scripts: run\n") {
		t.Error("apt_scripts: run and emulate give the same spec hash")
	}
}
