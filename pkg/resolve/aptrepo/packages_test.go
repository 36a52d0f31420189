package aptrepo

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestFetchPackages(t *testing.T) {
	key := newKey(t, "repo", packet.PubKeyAlgoEdDSA, 0)
	kr := publicKeyring(t, key)
	const dir = "/debian/dists/bookworm/main/binary-amd64/"
	wrong := strings.Repeat("0", 64)

	tests := []struct {
		name string
		spec repoSpec
		// edit changes the served files after signing.
		edit      func(files map[string][]byte)
		component string
		wantPath  string // Index.Path
		wantHit   string // a path the server must have been asked for
		notHit    string // a path the server must not have been asked for
		wantErr   []string
	}{
		{name: "prefers xz", wantPath: "main/binary-amd64/Packages.xz", wantHit: dir + "Packages.xz", notHit: dir + "Packages.gz"},
		{name: "gz when no xz", spec: repoSpec{indices: []string{"", ".gz"}}, wantPath: "main/binary-amd64/Packages.gz", wantHit: dir + "Packages.gz"},
		{name: "plain only", spec: repoSpec{indices: []string{""}}, wantPath: "main/binary-amd64/Packages", wantHit: dir + "Packages"},
		{
			name:     "by-hash",
			spec:     repoSpec{byHash: true},
			wantPath: "main/binary-amd64/Packages.xz",
			wantHit:  dir + "by-hash/SHA256/" + sha(xzBytes(t, []byte(testPackages))),
			notHit:   dir + "Packages.xz",
		},
		{
			name: "by-hash missing falls back",
			spec: repoSpec{byHash: true},
			edit: func(files map[string][]byte) {
				h := dir + "by-hash/SHA256/" + sha(xzBytes(t, []byte(testPackages)))
				files[dir+"Packages.xz"] = files[h]
				delete(files, h)
			},
			wantPath: "main/binary-amd64/Packages.xz",
			wantHit:  dir + "Packages.xz",
		},
		{
			name: "wrong SHA256 of Packages.xz",
			spec: repoSpec{release: func(rel string) string {
				return strings.Replace(rel, sha(xzBytes(t, []byte(testPackages))), wrong, 1)
			}},
			wantErr: []string{"SHA256", sha(xzBytes(t, []byte(testPackages))), wrong, "Packages.xz", "retry"},
		},
		{
			name: "served file differs from Release",
			edit: func(files map[string][]byte) {
				b := append([]byte(nil), files[dir+"Packages.xz"]...)
				b[len(b)-1] ^= 1
				files[dir+"Packages.xz"] = b
			},
			wantErr: []string{"got SHA256", "Packages.xz"},
		},
		{
			name:    "served file too long",
			edit:    func(files map[string][]byte) { files[dir+"Packages.xz"] = append(files[dir+"Packages.xz"], 0) },
			wantErr: []string{"too large", "at most 488", "InRelease", "retry"},
		},
		{
			name:    "served file too short",
			edit:    func(files map[string][]byte) { files[dir+"Packages.xz"] = files[dir+"Packages.xz"][1:] },
			wantErr: []string{"got 487 bytes, want 488", "InRelease"},
		},
		{
			name:      "unknown component",
			component: "contrib",
			wantErr:   []string{"contrib/binary-amd64/Packages", "[main]", "InRelease"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, rel := buildRelease(t, tc.spec)
			files["/debian/dists/bookworm/InRelease"] = clearsignText(t, rel, key)
			if tc.edit != nil {
				tc.edit(files)
			}
			srv := newServer(t, files)
			ctx := context.Background()
			r, err := FetchRelease(ctx, srv.fetcher(), srv.source(), "bookworm", kr, ReleaseOptions{Now: at(t0.Add(time.Hour))})
			if err != nil {
				t.Fatal(err)
			}
			comp := tc.component
			if comp == "" {
				comp = "main"
			}
			idx, err := FetchPackages(ctx, srv.fetcher(), r, comp, "amd64")
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("FetchPackages succeeded, want error")
				}
				t.Logf("error: %v", err)
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if idx.Path != tc.wantPath {
				t.Errorf("Path = %q, want %q", idx.Path, tc.wantPath)
			}
			hits := strings.Join(srv.requested(), " ")
			if !strings.Contains(hits, tc.wantHit) {
				t.Errorf("server was not asked for %s; got %s", tc.wantHit, hits)
			}
			if tc.notHit != "" && strings.Contains(hits, tc.notHit+" ") {
				t.Errorf("server was asked for %s; got %s", tc.notHit, hits)
			}
			if !strings.HasSuffix(idx.URL, tc.wantHit) {
				t.Errorf("URL = %q, want suffix %q", idx.URL, tc.wantHit)
			}
			if len(idx.Packages) != 2 {
				t.Fatalf("got %d packages, want 2", len(idx.Packages))
			}
			p := idx.Packages[0]
			if want := srv.URL + "/debian/pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb"; p.URL != want {
				t.Errorf("URL = %q, want %q", p.URL, want)
			}
		})
	}
}

func TestParsePackages(t *testing.T) {
	pkgs, err := ParsePackages(strings.NewReader(testPackages), "http://h/debian/")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 {
		t.Fatalf("got %d packages", len(pkgs))
	}
	a, b := pkgs[0], pkgs[1]
	checks := []struct{ field, got, want string }{
		{"Package", a.Package, "libfoo1"},
		{"Version", a.Version, "1.2-3+b1"},
		{"Architecture", a.Architecture, "amd64"},
		{"Multi-Arch", a.MultiArch, "same"},
		{"Source", a.Source, "foo (1.2-3)"},
		{"Depends", a.Depends, "libc6 (>= 2.36), libbar2 | libbaz2"},
		{"Pre-Depends", a.PreDepends, "dpkg (>= 1.15)"},
		{"Section", a.Section, "libs"},
		{"Priority", a.Priority, "optional"},
		{"Filename", a.Filename, "pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb"},
		{"URL", a.URL, "http://h/debian/pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb"},
		{"SHA256", a.SHA256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"b.Version", b.Version, "1:2.0"},
		{"b.Provides", b.Provides, "foo-common (= 1:2.0)"},
		{"b.Conflicts", b.Conflicts, "foo-old"},
		{"b.Breaks", b.Breaks, "foo-older (<< 1)"},
		{"b.Recommends", b.Recommends, "bar"},
		{"b.SHA256 lower-cased", b.SHA256, strings.ToLower("FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if a.Size != 4321 || a.InstalledSize != 120 || a.Essential || !b.Essential || b.Size != 99 {
		t.Errorf("numbers/flags: a=%+v b=%+v", a, b)
	}
	wantRaw := testPackages[:strings.Index(testPackages, "\n\n")+1]
	if string(a.Raw) != wantRaw {
		t.Errorf("Raw = %q, want %q", a.Raw, wantRaw)
	}
	if !strings.HasSuffix(string(b.Raw), "SHA256: FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210\n") {
		t.Errorf("b.Raw = %q", b.Raw)
	}
}

func TestParsePackagesErrors(t *testing.T) {
	const okSHA = "SHA256: " + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + "\n"
	base := "Package: a\nVersion: 1\nArchitecture: all\nFilename: pool/a.deb\nSize: 1\n"
	tests := []struct {
		name, in, want string
	}{
		{"no SHA256", "\n\n" + base, "line 3: package \"a\" has no SHA256"},
		{"bad SHA256", base + "SHA256: zz\n", "not a SHA-256"},
		{"bad size", strings.Replace(base, "Size: 1", "Size: x", 1) + okSHA, "size \"x\""},
		{"zero size", strings.Replace(base, "Size: 1", "Size: 0", 1) + okSHA, "no positive Size"},
		{"absolute filename", strings.Replace(base, "pool/a.deb", "/etc/passwd", 1) + okSHA, "relative"},
		{"dotdot filename", strings.Replace(base, "pool/a.deb", "pool/../../x.deb", 1) + okSHA, ".."},
		{"url filename", strings.Replace(base, "pool/a.deb", "http://evil/x.deb", 1) + okSHA, "relative"},
		{"no version", strings.Replace(base, "Version: 1\n", "", 1) + okSHA, "no Version"},
		{"syntax", base + okSHA + "\nPackage: b\nthis is not a field\n", "line 9"},
		{"continuation first", " x\n", "line 1: continuation"},
		{"armor header", base + okSHA + "\n-----BEGIN PGP SIGNED MESSAGE: x\n", "line 8: \"-----BEGIN PGP SIGNED MESSAGE\" is not a valid field name"},
		{"space in name", "Pack age: a\n", "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePackages(strings.NewReader(tc.in), "http://h")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestParsePackagesLongLine(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	in := "Package: a\nVersion: 1\nArchitecture: all\nDescription: " + long + "\nFilename: pool/a.deb\nSize: 1\nSHA256: " + strings.Repeat("a", 64)
	pkgs, err := ParsePackages(strings.NewReader(in), "http://h")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || !strings.Contains(string(pkgs[0].Raw), "Description: "+long+"\n") || !strings.HasSuffix(string(pkgs[0].Raw), strings.Repeat("a", 64)+"\n") {
		t.Errorf("long line or missing final newline mishandled: %d packages", len(pkgs))
	}
}

func TestParseStatus(t *testing.T) {
	const status = `Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 340
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u11
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Pre-Depends: awk
Breaks: debian-security-support (<< 2019.04.25), initscripts (<< 2.88dsf-13.3), sendfile (<< 2.1b.20080616-5.2~)
Conffiles:
 /etc/debian_version 1a2b
 /etc/dpkg/origins/debian 731423fa8ba067262f8ef37882d1e742
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files.

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
`
	pkgs, err := ParseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 {
		t.Fatalf("got %d stanzas", len(pkgs))
	}
	bf := pkgs[0]
	if !bf.Installed() || pkgs[1].Installed() {
		t.Errorf("Installed = %v, %v; want true, false", bf.Installed(), pkgs[1].Installed())
	}
	if bf.Version != "12.4+deb12u11" || !bf.Essential || bf.MultiArch != "foreign" || bf.InstalledSize != 340 || bf.PreDepends != "awk" || bf.Replaces == "" {
		t.Errorf("base-files = %+v", bf)
	}
	if !strings.Contains(string(bf.Raw), " /etc/dpkg/origins/debian 731423fa8ba067262f8ef37882d1e742\n") {
		t.Errorf("Raw lost Conffiles: %q", bf.Raw)
	}

	if _, err := ParseStatus(strings.NewReader("Package: x\nStatus: installed\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad Status: err = %v", err)
	}
}

func BenchmarkParsePackages(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		sb.WriteString(testPackages)
		sb.WriteString("\n")
	}
	data := sb.String()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParsePackages(strings.NewReader(data), "http://h"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFetchPackagesFlat(t *testing.T) {
	key := newKey(t, "flat", packet.PubKeyAlgoEdDSA, 0)
	xzData := xzBytes(t, []byte(testPackages))
	rel := fmt.Sprintf("Origin: Flat\nDate: %s\nSHA256:\n %s %d Packages.xz\n", t0.Format(time.RFC1123), sha(xzData), len(xzData))
	srv := newServer(t, map[string][]byte{
		"/repo/InRelease":   clearsignText(t, []byte(rel), key),
		"/repo/Packages.xz": xzData,
	})
	src := Source{URI: srv.URL + "/repo", Suites: []string{"./"}}
	ctx := context.Background()
	r, err := FetchRelease(ctx, srv.fetcher(), src, "./", publicKeyring(t, key), ReleaseOptions{Now: at(t0.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Flat || r.BaseURL != srv.URL+"/repo/" {
		t.Errorf("Flat = %v, BaseURL = %q", r.Flat, r.BaseURL)
	}
	idx, err := FetchPackages(ctx, srv.fetcher(), r, "", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if idx.URL != srv.URL+"/repo/Packages.xz" || len(idx.Packages) != 2 {
		t.Errorf("URL = %q, %d packages", idx.URL, len(idx.Packages))
	}
	if want := srv.URL + "/repo/pool/main/f/foo/foo-data_2.0_all.deb"; idx.Packages[1].URL != want {
		t.Errorf("package URL = %q, want %q", idx.Packages[1].URL, want)
	}
}
