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
