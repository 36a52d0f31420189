package lock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadRefusesMalformedPins: a sha256 (or parent digest) in the lock
// that is not 64 lower-case hex digits is reported when the lock is read,
// naming the lock, the package and the fix, not later as a download that
// "does not match the index".
func TestReadRefusesMalformedPins(t *testing.T) {
	good := strings.Repeat("b", 64)
	parent := `"parent":{"ref":"r/p:1","digest":"sha256:` + strings.Repeat("a", 64) + `"}`
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"short deb hash", `{"version":1,` + parent + `,"debs":[{"name":"git","sha256":"abc","url":"http://m/git.deb"}]}`,
			[]string{"kiln.lock: git: sha256 \"abc\" is not a valid sha256", "regenerate the lock with kiln lock"}},
		{"non-hex deb hash", `{"version":1,` + parent + `,"debs":[{"name":"git","sha256":"` + strings.Repeat("z", 64) + `","url":"http://m/git.deb"}]}`,
			[]string{"kiln.lock: git: sha256", "is not a valid sha256"}},
		{"upper-case deb hash", `{"version":1,` + parent + `,"debs":[{"name":"git","sha256":"` + strings.Repeat("B", 64) + `","url":"http://m/git.deb"}]}`,
			[]string{"kiln.lock: git: sha256", "is not a valid sha256"}},
		{"long wheel hash", `{"version":1,` + parent + `,"wheels":[{"name":"flask","filename":"flask-3.0-py3-none-any.whl","sha256":"` + good + `0","url":"http://i/f.whl"}]}`,
			[]string{"kiln.lock: flask-3.0-py3-none-any.whl: sha256", "is not a valid sha256", "kiln lock"}},
		{"negative size", `{"version":1,` + parent + `,"debs":[{"name":"git","sha256":"` + good + `","size":-1,"url":"http://m/git.deb"}]}`,
			[]string{"kiln.lock: git: size -1"}},
		{"bad parent digest", `{"version":1,"parent":{"digest":"sha256:xyz"}}`,
			[]string{"kiln.lock: parent: digest \"sha256:xyz\"", "kiln lock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			// Read from the lock's directory, so the error names kiln.lock as
			// the user wrote it.
			t.Chdir(dir)
			_, err := Read(FileName)
			if err == nil {
				t.Fatalf("Read accepted %s", tc.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
