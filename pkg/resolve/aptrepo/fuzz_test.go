package aptrepo

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParsePackages feeds arbitrary indices to ParsePackages and
// ParseStatus. Neither may panic; a package ParsePackages accepts must have
// the fields it promises and a URL under the archive root.
func FuzzParsePackages(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	seeds := []string{
		"Package: a\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/main/a/a_1.0_amd64.deb\nSize: 10\nSHA256: " + sum + "\nDepends: b (>= 1), c | d\nDescription: x\n more\n .\n end\n\nPackage: b\nVersion: 2\nArchitecture: all\nFilename: pool/b.deb\nSize: 1\nSHA256: " + sum + "\n",
		"Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\nConffiles:\n /etc/x 0123\n",
		"Package: a\r\nVersion: 1\r\n\r\n",
		" continuation first\n",
		"Package: a\nPackage: b\n",
		"Package: a\nSize: -1\nFilename: ../../x\n",
		"#comment\nPackage: x\n\n\n\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParsePackages(bytes.NewReader(data), "http://h/debian/")
		if err == nil {
			for _, p := range pkgs {
				if p.Package == "" || p.Version == "" || p.Architecture == "" || p.Size <= 0 || len(p.SHA256) != 64 {
					t.Fatalf("incomplete package accepted: %+v", p)
				}
				if !strings.HasPrefix(p.URL, "http://h/debian/") || strings.Contains(p.URL, "/../") {
					t.Fatalf("package URL %q leaves the archive root", p.URL)
				}
			}
		}
		st, err := ParseStatus(bytes.NewReader(data))
		if err == nil {
			for _, p := range st {
				if p.Package == "" {
					t.Fatalf("status stanza without Package accepted: %+v", p)
				}
				p.Installed()
			}
		}
	})
}
