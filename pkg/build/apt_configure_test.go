package build

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/pkg/layer/deblayer"
)

// jksFile builds a version-2 JKS keystore of trusted certificates, each
// stamped with at.
func jksFile(password string, at time.Time, aliases ...string) []byte {
	var b bytes.Buffer
	be := binary.BigEndian
	put32 := func(v uint32) { binary.Write(&b, be, v) }
	utf := func(s string) { binary.Write(&b, be, uint16(len(s))); b.WriteString(s) }
	put32(jksMagic)
	put32(2)
	put32(uint32(len(aliases)))
	for _, a := range aliases {
		put32(2)
		utf(a)
		binary.Write(&b, be, uint64(at.UnixMilli()))
		utf("X.509")
		cert := []byte("DER of " + a)
		put32(uint32(len(cert)))
		b.Write(cert)
	}
	return append(b.Bytes(), jksDigest(b.Bytes(), password)...)
}

func TestClampJKS(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	want := jksFile("changeit", epoch, "debian:a.pem", "debian:b.pem")
	for _, tc := range []struct {
		name    string
		in      []byte
		out     []byte
		rewrote bool
	}{
		{"run at another time", jksFile("changeit", time.Unix(1800000123, 456e6), "debian:a.pem", "debian:b.pem"), want, true},
		{"already at the epoch", want, want, true},
		{"another password", jksFile("secret", time.Unix(1800000123, 0), "x"), nil, false},
		{"truncated", want[:len(want)-30], nil, false},
		{"not a keystore", []byte("-----BEGIN CERTIFICATE-----\n0123456789012345678901234567890\n"), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := clampJKS(tc.in, epoch, "changeit")
			if ok != tc.rewrote {
				t.Fatalf("rewrote = %v, want %v", ok, tc.rewrote)
			}
			if tc.out == nil {
				tc.out = tc.in // left as it is
			}
			if !bytes.Equal(got, tc.out) {
				t.Errorf("clampJKS gave %x\nwant %x", got, tc.out)
			}
		})
	}
}

// TestFilterDiff: the configure layer leaves out logs, locks and per-run
// caches (and whiteouts of them), keeps everything else as it is, and
// rewrites the Java keystore.
func TestFilterDiff(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	entries := []struct {
		name string
		typ  byte
		body []byte
	}{
		{"var/log/", tar.TypeDir, nil},
		{"var/log/dpkg.log", tar.TypeReg, []byte("2026-12-02 07:50:01 configure x\n")},
		{"var/log/apt/eipp.log.xz", tar.TypeReg, []byte("x")},
		{"var/cache/ldconfig/aux-cache", tar.TypeReg, []byte("inodes")},
		{"var/lib/dpkg/lock-frontend", tar.TypeReg, nil},
		{"var/lib/dpkg/triggers/.wh.Lock", tar.TypeReg, nil},
		{"var/lib/dpkg/triggers/.wh.Unincorp", tar.TypeReg, nil},
		{"var/cache/debconf/config.dat-old", tar.TypeReg, []byte("old")},
		{"var/lib/dpkg/status", tar.TypeReg, []byte("Package: x\n")},
		{"etc/ld.so.cache", tar.TypeReg, []byte("glibc-ld.so.cache1.1")},
		{"etc/ssl/certs/java/cacerts", tar.TypeReg, jksFile("changeit", time.Unix(1800000000, 0), "debian:a.pem")},
	}
	for _, e := range entries {
		tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Size: int64(len(e.body)), Mode: 0o644})
		tw.Write(e.body)
	}
	tw.Close()
	var out bytes.Buffer
	otw := tar.NewWriter(&out)
	if err := filterDiff(tar.NewReader(&in), otw, epoch); err != nil {
		t.Fatal(err)
	}
	otw.Close()
	var names []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		body, _ := io.ReadAll(tr)
		if h.Name == "etc/ssl/certs/java/cacerts" && !bytes.Equal(body, jksFile("changeit", epoch, "debian:a.pem")) {
			t.Errorf("the keystore was not stamped with the epoch")
		}
	}
	if got, want := strings.Join(names, " "), "var/log/ var/lib/dpkg/triggers/.wh.Unincorp var/lib/dpkg/status etc/ld.so.cache etc/ssl/certs/java/cacerts"; got != want {
		t.Errorf("filterDiff kept %s\nwant %s", got, want)
	}
}

// TestGroupedWarnings: one line per package; a package with several
// warnings gets its count and first warning, and every warning on a line
// only --explain prints; --explain's count leaves the details out.
func TestGroupedWarnings(t *testing.T) {
	lines := groupedWarnings([]deblayer.PackageReport{
		{Name: "a", Warnings: []string{"postinst runs `foo`"}},
		{Name: "b", Warnings: []string{"postinst runs `x`", "postinst runs `y`", "postinst runs `z`"}},
		{Name: "c"},
	})
	if got := warningCount(lines); got != 2 {
		t.Errorf("warningCount = %d, want 2 (one per package with warnings)", got)
	}
	for _, tc := range []struct {
		explain bool
		want    string
	}{
		{false, "apt: warning: a: postinst runs `foo`\n" +
			"apt: warning: b: 3 warnings (kiln build --explain lists them), the first: postinst runs `x` (built)\n"},
		{true, "apt: warning: a: postinst runs `foo`\n" +
			"apt: warning: b: 3 warnings (kiln build --explain lists them), the first: postinst runs `x` (built)\n" +
			"explain:  apt: b: postinst runs `x`\nexplain:  apt: b: postinst runs `y`\nexplain:  apt: b: postinst runs `z`\n"},
	} {
		var buf bytes.Buffer
		b := &session{o: Options{Log: &buf, Explain: tc.explain}}
		for i, l := range lines {
			suffix := ""
			if i == 1 {
				suffix = " (built)"
			}
			b.logWarning(l, suffix)
		}
		if buf.String() != tc.want {
			t.Errorf("explain %v printed\n%s\nwant\n%s", tc.explain, buf.String(), tc.want)
		}
	}
}
