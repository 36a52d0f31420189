package debsolve

import (
	"strings"
	"testing"
)

// TestParseTargetGrammar: an entry is judged by Debian's grammar before
// anything else, so that "jq; rm -rf /" is an invalid name, not a release
// selection, and a version (or version prefix) holds only the characters
// Debian allows.
func TestParseTargetGrammar(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // substring of the error; "" valid
	}{
		{"jq", ""},
		{"libc6:amd64", ""},
		{"vim=2:9.0.1378-2", ""},
		{"g++=4:12*", ""},
		{"jq; rm -rf /", `invalid package name "jq; rm -rf "`},
		{"jq/bookworm-backports", "/release is not supported"},
		{"jq/$(id)", `"$(id)" after '/' is not a release name`},
		{"jq=1.6;ls", "invalid version"},
		{"jq=$(id)*", "invalid version"},
		{"jq=1.0/x", "invalid version"},
		{"JQ", "invalid package name"},
		{"j", "invalid package name"},
		{"jq:AMD64", "invalid architecture"},
	} {
		_, err := ParseTarget(tc.in)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ParseTarget(%q): %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("ParseTarget(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}
