package sbom

import (
	"encoding/json"
	"fmt"
)

// CycloneDX 1.5 JSON, the subset kiln writes.
type cdxDoc struct {
	BOMFormat    string          `json:"bomFormat"`
	SpecVersion  string          `json:"specVersion"`
	SerialNumber string          `json:"serialNumber"`
	Version      int             `json:"version"`
	Metadata     cdxMetadata     `json:"metadata"`
	Components   []cdxComponent  `json:"components"`
	Dependencies []cdxDependency `json:"dependencies"`
}

type cdxMetadata struct {
	Timestamp string       `json:"timestamp"`
	Tools     cdxTools     `json:"tools"`
	Component cdxComponent `json:"component"`
}

type cdxTools struct {
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	Type       string        `json:"type"`
	BOMRef     string        `json:"bom-ref,omitempty"`
	Name       string        `json:"name"`
	Version    string        `json:"version,omitempty"`
	PURL       string        `json:"purl,omitempty"`
	Hashes     []cdxHash     `json:"hashes,omitempty"`
	ExtRefs    []cdxExtRef   `json:"externalReferences,omitempty"`
	Properties []cdxProperty `json:"properties,omitempty"`
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxExtRef struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxDependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn,omitempty"`
}

func (d *Document) cyclonedx() ([]byte, error) {
	id := d.id()
	doc := cdxDoc{
		BOMFormat:   "CycloneDX",
		SpecVersion: "1.5",
		// A UUID (version 5 layout) made from the content, not at random.
		SerialNumber: fmt.Sprintf("urn:uuid:%s-%s-5%s-8%s-%s", id[0:8], id[8:12], id[13:16], id[17:20], id[20:32]),
		Version:      1,
		Metadata: cdxMetadata{
			Timestamp: d.created(),
			Tools:     cdxTools{Components: []cdxComponent{{Type: "application", Name: d.tool()}}},
			Component: cdxComponent{Type: "container", BOMRef: "image", Name: d.Image.Name, Version: d.Image.Digest, PURL: ociPURL(d.Image)},
		},
	}
	image := cdxDependency{Ref: "image"}
	var parent *cdxDependency
	if d.Parent != nil {
		doc.Components = append(doc.Components, cdxComponent{
			Type: "container", BOMRef: "parent", Name: d.Parent.Name, Version: d.Parent.Digest, PURL: ociPURL(*d.Parent),
			Properties: []cdxProperty{{"kiln:role", "base image"}},
		})
		image.DependsOn = append(image.DependsOn, "parent")
		parent = &cdxDependency{Ref: "parent"}
	}
	for _, p := range d.Packages {
		purl := p.PURL(d.Distro)
		c := cdxComponent{Type: "library", BOMRef: purl, Name: p.Name, Version: p.Version, PURL: purl}
		if p.SHA256 != "" {
			c.Hashes = []cdxHash{{"SHA-256", p.SHA256}}
		}
		if p.URL != "" {
			c.ExtRefs = []cdxExtRef{{"distribution", p.URL}}
		}
		origin := "installed by kiln"
		if p.FromParent {
			origin = "parent image"
		}
		c.Properties = []cdxProperty{{"kiln:origin", origin}}
		doc.Components = append(doc.Components, c)
		if p.FromParent && parent != nil {
			parent.DependsOn = append(parent.DependsOn, purl)
		} else {
			image.DependsOn = append(image.DependsOn, purl)
		}
	}
	doc.Dependencies = append(doc.Dependencies, image)
	if parent != nil {
		doc.Dependencies = append(doc.Dependencies, *parent)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
