package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
	"github.com/kiln-build/kiln/pkg/lock"
)

// TestE2ETamperedLockHash (E10): kiln build --locked, run as nobody, with
// a kiln.lock whose sha256 for a package was edited. A malformed hash fails
// when the lock is read (exit 2), naming kiln.lock, the package and the
// fix; a well-formed but wrong one fails the download naming kiln.lock, not
// the index, as where the expected hash came from.
func TestE2ETamperedLockHash(t *testing.T) {
	reg, base := e2eParent(t, "dpkg-deb", "apt-ftparchive")
	repo, key := e2eAptRepo(t, testenv.DebPackage{
		Name: "kiln-tamper", Version: "1.0-1",
		Files: map[string]string{"/usr/share/kiln-tamper/README": "pinned\n"},
	})
	spec := "name: tamper\nregistry: " + reg.Host + "\nbase_image: " + base + "\napt_packages: [kiln-tamper]\napt_sources:\n  - " + repo.Line + "\n"
	dir := writeSpec(t, spec, map[string]string{"repo-key.asc": string(key)})
	opts := testenv.RunOptions{Dir: dir}
	if res := testenv.RunKiln(t, opts, "lock"); res.Code != 0 {
		t.Fatalf("kiln lock: %s", res)
	}
	lockPath := filepath.Join(dir, lock.FileName)
	data, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	var l lock.Lock
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	i := -1
	for j, d := range l.Debs {
		if d.Name == "kiln-tamper" {
			i = j
		}
	}
	if i < 0 {
		t.Fatalf("kiln.lock does not pin kiln-tamper:\n%s", data)
	}
	real := l.Debs[i].SHA256
	for _, tc := range []struct {
		name, sha string
		code      int
		want      []string
	}{
		{"malformed", "not-a-hash", exitUsage, []string{"kiln.lock: kiln-tamper: sha256 \"not-a-hash\" is not a valid sha256", "regenerate the lock with kiln lock"}},
		{"wrong", strings.Repeat("0", 64), exitFailed, []string{"does not match the sha256 kiln.lock pins", "sha256:" + real, "kiln lock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := strings.Replace(string(data), `"sha256": "`+real+`"`, `"sha256": "`+tc.sha+`"`, 1)
			if edited == string(data) {
				t.Fatalf("could not edit the hash in kiln.lock:\n%s", data)
			}
			if err := os.WriteFile(lockPath, []byte(edited), 0o644); err != nil {
				t.Fatal(err)
			}
			res := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: testenv.UserDir(t)}, "build", "--locked")
			if res.Code != tc.code {
				t.Errorf("kiln build --locked with a %s hash: exit %d, want %d\n%s", tc.name, res.Code, tc.code, res)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Stderr, w) {
					t.Errorf("kiln build --locked with a %s hash: stderr does not contain %q\n%s", tc.name, w, res.Stderr)
				}
			}
			if strings.Contains(res.Stderr, "index serves") {
				t.Errorf("kiln build --locked with a %s hash blames the index:\n%s", tc.name, res.Stderr)
			}
		})
	}
}
