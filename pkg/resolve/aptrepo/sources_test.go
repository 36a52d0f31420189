package aptrepo

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestParseSourcesList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Source
		wantErr string
	}{
		{
			name: "plain with comments and deb-src",
			in: `# main archive
deb http://h/debian/ bookworm main contrib # trailing comment

deb-src http://h/debian bookworm main
	deb	http://h/security bookworm-security main
`,
			want: []Source{
				{URI: "http://h/debian", Suites: []string{"bookworm"}, Components: []string{"main", "contrib"}, Options: map[string]string{}, Location: "x.list:2"},
				{URI: "http://h/security", Suites: []string{"bookworm-security"}, Components: []string{"main"}, Options: map[string]string{}, Location: "x.list:5"},
			},
		},
		{
			name: "options",
			in:   "deb [ arch=amd64,arm64 signed-by=/usr/share/keyrings/k.gpg Trusted=yes ] https://h/d bookworm main\n",
			want: []Source{{
				URI: "https://h/d", Suites: []string{"bookworm"}, Components: []string{"main"},
				Architectures: []string{"amd64", "arm64"}, SignedBy: "/usr/share/keyrings/k.gpg",
				Options:  map[string]string{"arch": "amd64,arm64", "signed-by": "/usr/share/keyrings/k.gpg", "trusted": "yes"},
				Location: "x.list:1",
			}},
		},
		{
			name: "flat repository",
			in:   "deb [signed-by=/k.gpg] http://h/repo ./\n",
			want: []Source{{URI: "http://h/repo", Suites: []string{"./"}, SignedBy: "/k.gpg", Options: map[string]string{"signed-by": "/k.gpg"}, Location: "x.list:1"}},
		},
		{name: "empty", in: "\n# nothing\n", want: nil},
		{name: "no components", in: "\n\ndeb http://h/d bookworm\n", wantErr: "x.list:3: suite \"bookworm\" has no components"},
		{name: "flat with components", in: "deb http://h/d ./ main\n", wantErr: "x.list:1: suite \"./\" ends in \"/\""},
		{name: "unknown type", in: "rpm http://h/d bookworm main\n", wantErr: "x.list:1: unknown entry type \"rpm\""},
		{name: "unterminated options", in: "deb [arch=amd64 http://h/d bookworm main\n", wantErr: "x.list:1: unterminated option list"},
		{name: "option without value", in: "deb [trusted] http://h/d bookworm main\n", wantErr: "x.list:1: option \"trusted\""},
		{name: "relative URI", in: "deb h/d bookworm main\n", wantErr: "not absolute"},
		{name: "too short", in: "deb http://h/d\n", wantErr: "x.list:1: want"},
		{name: "dotdot suite", in: "deb http://h/d ../x main\n", wantErr: "\"..\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSourcesList("x.list", []byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseDeb822Sources(t *testing.T) {
	key := newKey(t, "inline", packet.PubKeyAlgoEdDSA, 0)
	armored := armoredPublicKey(t, key)
	// deb822 folds the key block: blank lines become " .".
	var inline strings.Builder
	inline.WriteString("Signed-By:\n")
	for _, l := range strings.Split(strings.TrimSpace(armored), "\n") {
		if l == "" {
			l = "."
		}
		inline.WriteString(" " + l + "\n")
	}

	in := `# comment before
Types: deb deb-src
URIs: http://h/debian http://mirror/debian/
# comment inside
Suites: bookworm bookworm-updates
Components: main non-free-firmware
Architectures: amd64 arm64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
Check-Valid-Until: no

Types: deb-src
URIs: http://h/debian
Suites: bookworm
Components: main

Enabled: no
Types: deb
URIs: http://disabled/debian
Suites: bookworm
Components: main

types: deb
uris: http://h/inline
suites: ./
` + inline.String()

	got, err := ParseDeb822Sources("x.sources", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d sources, want 3: %+v", len(got), got)
	}
	want0 := Source{
		URI:           "http://h/debian",
		Suites:        []string{"bookworm", "bookworm-updates"},
		Components:    []string{"main", "non-free-firmware"},
		Architectures: []string{"amd64", "arm64"},
		SignedBy:      "/usr/share/keyrings/debian-archive-keyring.gpg",
		Options: map[string]string{
			"architectures":     "amd64 arm64",
			"signed-by":         "/usr/share/keyrings/debian-archive-keyring.gpg",
			"check-valid-until": "no",
		},
		Location: "x.sources:2",
	}
	if !reflect.DeepEqual(got[0], want0) {
		t.Errorf("got  %+v\nwant %+v", got[0], want0)
	}
	if got[1].URI != "http://mirror/debian" || !reflect.DeepEqual(got[1].Suites, want0.Suites) {
		t.Errorf("second URI: %+v", got[1])
	}
	inl := got[2]
	if inl.URI != "http://h/inline" || inl.Suites[0] != "./" || len(inl.Components) != 0 || inl.Location != "x.sources:22" {
		t.Errorf("inline source: %+v", inl)
	}
	kr, err := inl.Keyring()
	if err != nil {
		t.Fatalf("inline Keyring: %v", err)
	}
	if len(kr) != 1 || kr[0].PrimaryKey.KeyId != key.PrimaryKey.KeyId {
		t.Errorf("inline keyring has %d keys, want the test key", len(kr))
	}
}

func TestParseDeb822SourcesErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no types", "URIs: http://h/d\nSuites: s\nComponents: main\n", "x.sources:1: stanza has no Types"},
		{"bad type", "\nTypes: rpm\nURIs: http://h/d\nSuites: s\nComponents: main\n", "x.sources:2: unknown type \"rpm\""},
		{"no URIs", "Types: deb\nSuites: s\nComponents: main\n", "no URIs"},
		{"no suites", "Types: deb\nURIs: http://h/d\nComponents: main\n", "no Suites"},
		{"no components", "Types: deb\nURIs: http://h/d\nSuites: s\n", "x.sources:3: suite \"s\" has no components"},
		{"bad enabled", "Types: deb\nEnabled: maybe\n", "x.sources:2: Enabled"},
		{"relative URI", "Types: deb\nURIs: h/d\nSuites: s\nComponents: main\n", "x.sources:2: URI \"h/d\" is not absolute"},
		{"garbage line", "Types: deb\nURIs http://h/d\n", "x.sources: line 2"},
		{"duplicate field", "Types: deb\ntypes: deb\n", "line 2: duplicate field"},
		{"continuation first", " Types: deb\n", "line 1: continuation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDeb822Sources("x.sources", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadSourcesDir(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "sources.list"), []byte("deb http://a/d s main\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sources.list.d", "b.sources"), []byte("Types: deb\nURIs: http://b/d\nSuites: s\nComponents: main\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sources.list.d", "c.list"), []byte("deb http://c/d s main\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sources.list.d", "d.list.disabled"), []byte("garbage\n"), 0o644))
	got, err := LoadSourcesDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, s := range got {
		uris = append(uris, s.URI)
	}
	if want := "http://a/d http://b/d http://c/d"; strings.Join(uris, " ") != want {
		t.Errorf("URIs = %v, want %s", uris, want)
	}

	must(os.WriteFile(filepath.Join(dir, "sources.list.d", "e.list"), []byte("deb http://e/d\n"), 0o644))
	if _, err := LoadSourcesDir(dir); err == nil || !strings.Contains(err.Error(), "e.list:1") {
		t.Errorf("bad file: err = %v, want naming e.list:1", err)
	}
	if got, err := LoadSourcesDir(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("missing dir: %v, %v", got, err)
	}
}

// TestHostSources parses the machine's real APT configuration and loads
// the keyrings it names.
func TestHostSources(t *testing.T) {
	srcs, err := LoadSourcesDir("/etc/apt")
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) == 0 {
		t.Skip("no APT sources configured on this host")
	}
	for _, s := range srcs {
		if s.SignedBy == "" {
			continue
		}
		if _, err := os.Stat(s.SignedBy); err != nil && !strings.HasPrefix(s.SignedBy, "-----") {
			continue
		}
		kr, err := s.Keyring()
		if err != nil {
			t.Errorf("%s: %v", s.Location, err)
			continue
		}
		t.Logf("%s: %s %v %v: %d keys", s.Location, s.URI, s.Suites, s.Components, len(kr))
	}
}

func TestSourceKeyringErrors(t *testing.T) {
	tests := []struct {
		name     string
		signedBy string
		want     string
		is       error
	}{
		{"empty", "", "add signed-by=", ErrNoSignedBy},
		{"fingerprint", "0123456789ABCDEF0123456789ABCDEF01234567", "fingerprint", nil},
		{"missing file", "/nonexistent/k.gpg", "/nonexistent/k.gpg", os.ErrNotExist},
		{"bad inline", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64\n-----END PGP PUBLIC KEY BLOCK-----", "inline Signed-By of x.sources:1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Source{URI: "http://h/d", SignedBy: tc.signedBy, Location: "x.sources:1"}.Keyring()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.is)
			}
		})
	}
}

func FuzzParseSourcesList(f *testing.F) {
	f.Add([]byte("deb [arch=amd64 signed-by=/k.gpg] http://h/debian bookworm main contrib\n# c\ndeb-src http://h/d s main\n"))
	f.Add([]byte("deb http://h/repo ./\n"))
	f.Add([]byte("deb [ arch+=i386 arch-=armel ] http://h/d s main\n"))
	f.Add([]byte("Types: deb\nURIs: http://h/d\nSuites: s\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n xx\n -----END PGP PUBLIC KEY BLOCK-----\n"))
	f.Add([]byte("Enabled: no\nTypes: deb\n\nTypes: deb\nURIs: a:b\nSuites: x/\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func(string, []byte) ([]Source, error){ParseSourcesList, ParseDeb822Sources} {
			srcs, err := parse("fuzz", data)
			if err != nil {
				continue
			}
			for _, s := range srcs {
				if s.URI == "" || len(s.Suites) == 0 || s.Location == "" {
					t.Fatalf("incomplete source accepted: %+v", s)
				}
				for _, su := range s.Suites {
					if !IsFlat(su) && len(s.Components) == 0 {
						t.Fatalf("non-flat suite without components accepted: %+v", s)
					}
				}
			}
		}
	})
}
