// Package sbom describes what an image holds as a software bill of
// materials: SPDX 2.3 JSON or CycloneDX 1.5 JSON, from what kiln knows
// rather than from scanning files. A Document lists the parent image, the
// Debian packages the parent has installed (from its dpkg status), every
// .deb and wheel the build installed, with versions, architectures, package
// URLs (purls) and, for each file kiln downloaded, its sha256.
//
// The output is deterministic: the same Document gives the same bytes (no
// clock, no random identifiers), so an image rebuilt from cache hits has
// the same SBOM.
package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Format is an SBOM format.
type Format string

// The formats kiln writes.
const (
	SPDX      Format = "spdx"
	CycloneDX Format = "cyclonedx"
)

// ParseFormat returns the format named s ("spdx" or "cyclonedx").
func ParseFormat(s string) (Format, error) {
	switch Format(strings.ToLower(s)) {
	case SPDX, "spdx-json":
		return SPDX, nil
	case CycloneDX, "cyclonedx-json":
		return CycloneDX, nil
	}
	return "", fmt.Errorf("SBOM format %q: use spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON)", s)
}

// MediaType is the media type of an SBOM in format f, as an OCI artifact
// type and layer media type.
func (f Format) MediaType() string {
	if f == CycloneDX {
		return "application/vnd.cyclonedx+json"
	}
	return "application/spdx+json"
}

// FileName is the conventional file name of an SBOM in format f.
func (f Format) FileName() string {
	if f == CycloneDX {
		return "sbom.cdx.json"
	}
	return "sbom.spdx.json"
}

// Package kinds.
const (
	Deb  = "deb"
	PyPI = "pypi"
)

// Package is one installed package.
type Package struct {
	// Kind is Deb or PyPI.
	Kind string
	// Name, Version and Arch (Debian architecture, "" for wheels) say
	// what it is.
	Name, Version, Arch string
	// SHA256 is the lower-case hex sha256 of the file kiln downloaded
	// (the .deb or the wheel); "" for the parent's packages.
	SHA256 string
	// URL is where kiln downloaded it from (without credentials); "" for
	// the parent's packages.
	URL string
	// FromParent marks a package the parent image has installed.
	FromParent bool
}

// Image names an image: its repository and manifest digest.
type Image struct {
	// Name is the repository (registry/path) or, for the parent, the
	// reference as the spec gives it.
	Name string
	// Digest is the manifest digest ("sha256:…").
	Digest string
}

// Document is what an SBOM says.
type Document struct {
	// Image is the image described.
	Image Image
	// Parent is the base image; nil for scratch.
	Parent *Image
	// Distro is the parent's Debian release for purls ("debian-12"),
	// empty when unknown.
	Distro string
	// Packages are the installed packages, in any order.
	Packages []Package
	// Created is the document's creation time (the build's epoch).
	Created time.Time
	// Tool names the generator ("kiln 1.2.3").
	Tool string
}

// Encode writes d in format f.
func (d *Document) Encode(f Format) ([]byte, error) {
	d.normalize()
	switch f {
	case SPDX:
		return d.spdx()
	case CycloneDX:
		return d.cyclonedx()
	}
	return nil, fmt.Errorf("SBOM format %q: use spdx or cyclonedx", f)
}

// normalize sorts the packages and drops duplicates: a package the build
// installed replaces the parent's of the same kind, name and
// architecture.
func (d *Document) normalize() {
	type key struct{ kind, name, arch string }
	byKey := map[key]Package{}
	for _, p := range d.Packages {
		k := key{p.Kind, p.Name, p.Arch}
		if old, ok := byKey[k]; ok && !old.FromParent && p.FromParent {
			continue
		}
		byKey[k] = p
	}
	out := make([]Package, 0, len(byKey))
	for _, p := range byKey {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Arch < b.Arch
	})
	d.Packages = out
}

// PURL returns p's package URL: pkg:deb/debian/NAME@VERSION?arch=ARCH
// (with distro=… when known) or pkg:pypi/NAME@VERSION, the name in its
// normalized form (PEP 503) for PyPI.
func (p Package) PURL(distro string) string {
	switch p.Kind {
	case PyPI:
		return "pkg:pypi/" + purlEscape(normalizePyPI(p.Name)) + "@" + purlEscape(p.Version)
	default:
		q := url.Values{}
		if p.Arch != "" {
			q.Set("arch", p.Arch)
		}
		if distro != "" {
			q.Set("distro", distro)
		}
		s := "pkg:deb/debian/" + purlEscape(p.Name) + "@" + purlEscape(p.Version)
		if len(q) > 0 {
			s += "?" + q.Encode()
		}
		return s
	}
}

// purlEscape percent-encodes what a purl's name or version may not hold
// (an epoch's ':' becomes %3A); '+', '~' and '.' stay.
func purlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-._~+", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// normalizePyPI is PEP 503's name normalization.
func normalizePyPI(name string) string {
	var b strings.Builder
	sep := false
	for _, c := range strings.ToLower(name) {
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(c)
	}
	return b.String()
}

// ociPURL is the purl of an image: pkg:oci/NAME@DIGEST?repository_url=REPO.
func ociPURL(img Image) string {
	repo := img.Name
	if i := strings.IndexAny(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i] // a tag
	}
	last := repo[strings.LastIndex(repo, "/")+1:]
	return "pkg:oci/" + purlEscape(last) + "@" + purlEscape(img.Digest) + "?repository_url=" + url.QueryEscape(repo)
}

// id derives a stable identifier from the document's content, for the
// SPDX namespace and the CycloneDX serial number.
func (d *Document) id() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", d.Image.Name, d.Image.Digest)
	if d.Parent != nil {
		fmt.Fprintf(h, "%s\x00%s\x00", d.Parent.Name, d.Parent.Digest)
	}
	for _, p := range d.Packages {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%t\x00", p.Kind, p.Name, p.Version, p.Arch, p.SHA256, p.FromParent)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (d *Document) tool() string {
	if d.Tool != "" {
		return d.Tool
	}
	return "kiln"
}

func (d *Document) created() string { return d.Created.UTC().Format(time.RFC3339) }
