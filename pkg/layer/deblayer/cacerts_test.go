package deblayer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rdn builds an RDN from (oid, value) pairs; values are asn1.RawValue.
func ava(oid asn1.ObjectIdentifier, tag int, s []byte) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: s}}
}

func bmp(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>8), byte(r))
	}
	return b
}

var (
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
)

func TestSubjectHash(t *testing.T) {
	tests := []struct {
		name string
		rdns pkix.RDNSequence
		want string // from `openssl x509 -hash -noout` (OpenSSL 3.0)
	}{
		{"printable", pkix.RDNSequence{
			{ava(oidC, asn1.TagPrintableString, []byte("US"))},
			{ava(oidO, asn1.TagPrintableString, []byte("Example Org"))},
			{ava(oidCN, asn1.TagPrintableString, []byte("Example Root CA"))},
		}, "e6dddb6d"},
		{"case and whitespace folded", pkix.RDNSequence{
			{ava(oidC, asn1.TagPrintableString, []byte("us"))},
			{ava(oidO, asn1.TagUTF8String, []byte("  example\t\tORG "))},
			{ava(oidCN, asn1.TagUTF8String, []byte("EXAMPLE   root\nca"))},
		}, "e6dddb6d"},
		{"bmp t61 and non-ascii", pkix.RDNSequence{
			{ava(oidO, asn1.TagBMPString, bmp("Ünïcode Örg"))},
			{ava(oidOU, asn1.TagT61String, []byte("Caf\xe9 Unit"))},
			{ava(oidCN, asn1.TagUTF8String, []byte("Straße CA"))},
		}, "73edecdb"},
		{"multi-valued rdn", pkix.RDNSequence{
			{ava(oidOU, asn1.TagUTF8String, []byte("Zeta")), ava(oidCN, asn1.TagPrintableString, []byte("Alpha"))},
		}, "36f91d1d"},
		{"numeric string kept as is", pkix.RDNSequence{
			{ava(asn1.ObjectIdentifier{2, 5, 4, 5}, 18, []byte("0042"))},
		}, "b3b8a6ec"},
	}
	_, haveOpenSSL := exec.LookPath("openssl")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := asn1.Marshal(tt.rdns)
			if err != nil {
				t.Fatal(err)
			}
			h, err := SubjectHash(raw)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%08x", h)
			if haveOpenSSL == nil {
				tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: raw, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
				der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
				if err != nil {
					t.Fatal(err)
				}
				f := filepath.Join(t.TempDir(), "c.pem")
				os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
				out, err := exec.Command("openssl", "x509", "-hash", "-noout", "-in", f).Output()
				if err != nil {
					t.Fatalf("openssl: %v", err)
				}
				if want := strings.TrimSpace(string(out)); got != want {
					t.Errorf("SubjectHash = %s, openssl says %s", got, want)
				}
			}
			if got != tt.want {
				t.Errorf("SubjectHash = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestSubjectHashHostCerts checks SubjectHash against the <hash>.N links
// openssl rehash made in the host's certificate directory.
func TestSubjectHashHostCerts(t *testing.T) {
	links, _ := filepath.Glob("/etc/ssl/certs/*.[0-9]")
	if len(links) == 0 {
		t.Skip("no hash links in /etc/ssl/certs")
	}
	for _, l := range links {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		h, err := SubjectHash(c.RawSubject)
		if err != nil {
			t.Errorf("%s: %v", l, err)
			continue
		}
		if want := strings.SplitN(filepath.Base(l), ".", 2)[0]; fmt.Sprintf("%08x", h) != want {
			t.Errorf("%s: SubjectHash = %08x", l, h)
		}
	}
}

func selfSigned(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestWriteCACertificates(t *testing.T) {
	a, b, local := selfSigned(t, "A Root"), selfSigned(t, "B Root"), selfSigned(t, "Local")
	ca := testPkg{
		control: "Package: ca-certificates\nVersion: 1\nArchitecture: all\nDescription: x",
		members: map[string]string{"postinst": "#!/bin/sh\nhostile-command\n"},
		data: []ent{
			dir("./"), dir("./etc/"), dir("./etc/ssl/"), dir("./etc/ssl/certs/"),
			dir("./usr/"), dir("./usr/share/"), dir("./usr/share/ca-certificates/"), dir("./usr/share/ca-certificates/mozilla/"),
			file("./usr/share/ca-certificates/mozilla/B Root (2020), x.crt", b),
			file("./usr/share/ca-certificates/mozilla/A_Root.crt", strings.TrimSuffix(a, "\n")),
		},
	}
	parent := Parent{Files: map[string][]byte{"usr/local/share/ca-certificates/corp.crt": []byte(local)}}
	l, rep, _ := writeLayer(t, parent, []Deb{ca.build(t, "ca.deb")})

	conf := l.get(t, "etc/ca-certificates.conf").body
	if want := caConfHeader + "mozilla/A_Root.crt\nmozilla/B Root (2020), x.crt\n"; conf != want {
		t.Errorf("conf =\n%s\nwant\n%s", conf, want)
	}
	if got, want := l.get(t, "etc/ssl/certs/ca-certificates.crt").body, a+b+local; got != want {
		t.Errorf("bundle =\n%s\nwant\n%s", got, want)
	}
	links := map[string]string{
		"etc/ssl/certs/A_Root.pem":           "/usr/share/ca-certificates/mozilla/A_Root.crt",
		"etc/ssl/certs/B_Root_=2020=__x.pem": "/usr/share/ca-certificates/mozilla/B Root (2020), x.crt",
		"etc/ssl/certs/corp.pem":             "/usr/local/share/ca-certificates/corp.crt",
	}
	for _, c := range []struct{ pemName, cn string }{{"A_Root.pem", "A Root"}, {"B_Root_=2020=__x.pem", "B Root"}, {"corp.pem", "Local"}} {
		raw, _ := asn1.Marshal(pkix.Name{CommonName: c.cn}.ToRDNSequence())
		h, _ := SubjectHash(raw)
		links[fmt.Sprintf("etc/ssl/certs/%08x.0", h)] = c.pemName
	}
	for name, target := range links {
		if e := l.get(t, name); e.hdr.Linkname != target {
			t.Errorf("%s -> %s, want %s", name, e.hdr.Linkname, target)
		}
	}
	if w := rep.Packages[0].Warnings; len(w) != 0 {
		t.Errorf("ca-certificates warnings %q; its postinst is reproduced, not parsed", w)
	}
}
