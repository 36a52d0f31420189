package sbom

import (
	"encoding/json"
	"regexp"
)

// SPDX 2.3 JSON, the subset kiln writes.
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string         `json:"SPDXID"`
	Name                  string         `json:"name"`
	VersionInfo           string         `json:"versionInfo,omitempty"`
	Supplier              string         `json:"supplier"`
	DownloadLocation      string         `json:"downloadLocation"`
	FilesAnalyzed         bool           `json:"filesAnalyzed"`
	LicenseConcluded      string         `json:"licenseConcluded"`
	LicenseDeclared       string         `json:"licenseDeclared"`
	CopyrightText         string         `json:"copyrightText"`
	PrimaryPackagePurpose string         `json:"primaryPackagePurpose,omitempty"`
	Checksums             []spdxChecksum `json:"checksums,omitempty"`
	ExternalRefs          []spdxRef      `json:"externalRefs,omitempty"`
	Comment               string         `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// spdxIDChars are the characters an SPDX identifier may not hold.
var spdxIDChars = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

const noAssertion = "NOASSERTION"

func (d *Document) spdx() ([]byte, error) {
	doc := spdxDoc{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              d.Image.Name + "@" + d.Image.Digest,
		DocumentNamespace: "https://kiln.invalid/spdx/" + d.id(),
		CreationInfo:      spdxCreation{Created: d.created(), Creators: []string{"Tool: " + d.tool()}},
	}
	image := spdxPackage{
		SPDXID: "SPDXRef-Image", Name: d.Image.Name, VersionInfo: d.Image.Digest,
		Supplier: noAssertion, DownloadLocation: noAssertion, LicenseConcluded: noAssertion,
		LicenseDeclared: noAssertion, CopyrightText: noAssertion, PrimaryPackagePurpose: "CONTAINER",
		ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", ociPURL(d.Image)}},
	}
	doc.Packages = append(doc.Packages, image)
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"})
	if d.Parent != nil {
		doc.Packages = append(doc.Packages, spdxPackage{
			SPDXID: "SPDXRef-Parent", Name: d.Parent.Name, VersionInfo: d.Parent.Digest,
			Supplier: noAssertion, DownloadLocation: noAssertion, LicenseConcluded: noAssertion,
			LicenseDeclared: noAssertion, CopyrightText: noAssertion, PrimaryPackagePurpose: "CONTAINER",
			ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", ociPURL(*d.Parent)}},
			Comment:      "the base image",
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-Image", "DESCENDANT_OF", "SPDXRef-Parent"})
	}
	seen := map[string]int{}
	for _, p := range d.Packages {
		id := "SPDXRef-" + p.Kind + "-" + spdxIDChars.ReplaceAllString(p.Name+"-"+p.Arch, "-")
		if n := seen[id]; n > 0 {
			id += "-" + string(rune('a'+n))
		}
		seen[id]++
		sp := spdxPackage{
			SPDXID: id, Name: p.Name, VersionInfo: p.Version, Supplier: noAssertion,
			DownloadLocation: noAssertion, LicenseConcluded: noAssertion, LicenseDeclared: noAssertion,
			CopyrightText: noAssertion, PrimaryPackagePurpose: "LIBRARY",
			ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", p.PURL(d.Distro)}},
		}
		if p.URL != "" {
			sp.DownloadLocation = p.URL
		}
		if p.SHA256 != "" {
			sp.Checksums = []spdxChecksum{{"SHA256", p.SHA256}}
		}
		doc.Packages = append(doc.Packages, sp)
		container := "SPDXRef-Image"
		if p.FromParent && d.Parent != nil {
			container = "SPDXRef-Parent"
		}
		doc.Relationships = append(doc.Relationships, spdxRelationship{container, "CONTAINS", id})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
