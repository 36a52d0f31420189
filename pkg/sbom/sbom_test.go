package sbom

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sample() *Document {
	return &Document{
		Image:  Image{Name: "registry.example/team/app", Digest: "sha256:" + strings.Repeat("b", 64)},
		Parent: &Image{Name: "registry.example/debian:bookworm", Digest: "sha256:" + strings.Repeat("a", 64)},
		Distro: "debian-12",
		Packages: []Package{
			{Kind: PyPI, Name: "Typing_Extensions", Version: "4.15.0", SHA256: strings.Repeat("1", 64), URL: "http://index.example/t.whl"},
			{Kind: Deb, Name: "libc6", Version: "2.36-9+deb12u4", Arch: "amd64", FromParent: true},
			{Kind: Deb, Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Arch: "amd64", FromParent: true},
			{Kind: Deb, Name: "zlib1g", Version: "1:1.2.13.dfsg-2", Arch: "amd64", SHA256: strings.Repeat("2", 64), URL: "http://deb.example/z.deb"},
		},
		Created: time.Unix(0, 0),
	}
}

func TestPURL(t *testing.T) {
	for _, tc := range []struct {
		p    Package
		want string
	}{
		{Package{Kind: Deb, Name: "libc6", Version: "2.36-9+deb12u4", Arch: "amd64"}, "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12"},
		{Package{Kind: Deb, Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Arch: "amd64"}, "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12"},
		{Package{Kind: PyPI, Name: "Typing_Extensions", Version: "4.15.0"}, "pkg:pypi/typing-extensions@4.15.0"},
		{Package{Kind: PyPI, Name: "zope.interface", Version: "6.0"}, "pkg:pypi/zope-interface@6.0"},
	} {
		if got := tc.p.PURL("debian-12"); got != tc.want {
			t.Errorf("PURL(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

// TestEncodeDeterministic: the same packages in any order give the same
// bytes, in both formats; the build's zlib1g replaces the parent's.
func TestEncodeDeterministic(t *testing.T) {
	for _, f := range []Format{SPDX, CycloneDX} {
		a, err := sample().Encode(f)
		if err != nil {
			t.Fatal(err)
		}
		rev := sample()
		for i, j := 0, len(rev.Packages)-1; i < j; i, j = i+1, j-1 {
			rev.Packages[i], rev.Packages[j] = rev.Packages[j], rev.Packages[i]
		}
		b, err := rev.Encode(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the package order changed the document", f)
		}
		if bytes.Contains(a, []byte("dfsg-1")) || !bytes.Contains(a, []byte("dfsg-2")) {
			t.Errorf("%s: the build's zlib1g does not replace the parent's:\n%s", f, a)
		}
		if !bytes.Contains(a, []byte("1970-01-01T00:00:00Z")) {
			t.Errorf("%s: the creation time is not the epoch", f)
		}
	}
}

func TestSPDXShape(t *testing.T) {
	b, err := sample().Encode(SPDX)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			SPDXID    string `json:"SPDXID"`
			Name      string `json:"name"`
			Checksums []struct{ Algorithm, ChecksumValue string }
		} `json:"packages"`
		Relationships []struct {
			Element string `json:"spdxElementId"`
			Type    string `json:"relationshipType"`
			Related string `json:"relatedSpdxElement"`
		} `json:"relationships"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || len(doc.Packages) != 5 { // image, parent, 3 packages
		t.Fatalf("version %q, %d packages:\n%s", doc.SPDXVersion, len(doc.Packages), b)
	}
	rel := map[string]string{}
	for _, r := range doc.Relationships {
		rel[r.Related] = r.Element + " " + r.Type
	}
	for id, want := range map[string]string{
		"SPDXRef-Image": "SPDXRef-DOCUMENT DESCRIBES", "SPDXRef-Parent": "SPDXRef-Image DESCENDANT_OF",
		"SPDXRef-deb-libc6-amd64": "SPDXRef-Parent CONTAINS", "SPDXRef-deb-zlib1g-amd64": "SPDXRef-Image CONTAINS",
		"SPDXRef-pypi-Typing-Extensions-": "SPDXRef-Image CONTAINS",
	} {
		if rel[id] != want {
			t.Errorf("relationship to %s = %q, want %q", id, rel[id], want)
		}
	}
	for _, p := range doc.Packages {
		if p.Name == "zlib1g" && (len(p.Checksums) != 1 || p.Checksums[0].ChecksumValue != strings.Repeat("2", 64)) {
			t.Errorf("zlib1g's checksum: %+v", p.Checksums)
		}
	}
}

func TestCycloneDXShape(t *testing.T) {
	b, err := sample().Encode(CycloneDX)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		BOMFormat, SpecVersion, SerialNumber string
		Components                           []struct{ Type, Name, PURL string }
		Dependencies                         []struct {
			Ref       string
			DependsOn []string
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.BOMFormat != "CycloneDX" || doc.SpecVersion != "1.5" || len(doc.SerialNumber) != len("urn:uuid:")+36 {
		t.Errorf("header: %q %q %q", doc.BOMFormat, doc.SpecVersion, doc.SerialNumber)
	}
	if len(doc.Components) != 4 || len(doc.Dependencies) != 2 {
		t.Errorf("%d components, %d dependency entries:\n%s", len(doc.Components), len(doc.Dependencies), b)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"spdx": SPDX, "SPDX-JSON": SPDX, "cyclonedx": CycloneDX} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("syft"); err == nil || !strings.Contains(err.Error(), "spdx") {
		t.Errorf("ParseFormat(syft): %v, want an error naming the formats", err)
	}
}
