package pypi

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
)

// Metadata is the part of a distribution's core metadata (a wheel's
// *.dist-info/METADATA file) that resolution needs.
type Metadata struct {
	// Name and Version are as written in the file.
	Name, Version string
	// RequiresDist holds the Requires-Dist fields in file order.
	RequiresDist []pep508.Requirement
	// RequiresPython is the Requires-Python field, empty (matching
	// everything) when absent.
	RequiresPython pep440.SpecifierSet
	// ProvidesExtra holds the Provides-Extra fields, normalised.
	ProvidesExtra []string
}

// ParseMetadata parses core metadata in its email-header format: fields up
// to the first empty line, continuation lines starting with white space.
// Unknown fields are ignored; a Requires-Dist or Requires-Python that does
// not parse is an error naming the field.
func ParseMetadata(data []byte) (*Metadata, error) {
	var fields [][2]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) > 0 {
				fields[len(fields)-1][1] += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields = append(fields, [2]string{strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading metadata: %w", err)
	}
	m := &Metadata{}
	for _, f := range fields {
		switch f[0] {
		case "name":
			m.Name = f[1]
		case "version":
			m.Version = f[1]
		case "requires-dist":
			r, err := pep508.ParseRequirement(f[1])
			if err != nil {
				return nil, fmt.Errorf("metadata field Requires-Dist %q: %w", f[1], err)
			}
			m.RequiresDist = append(m.RequiresDist, r)
		case "requires-python":
			s, err := pep440.ParseSpecifierSet(f[1])
			if err != nil {
				return nil, fmt.Errorf("metadata field Requires-Python %q: %w", f[1], err)
			}
			m.RequiresPython = s
		case "provides-extra":
			m.ProvidesExtra = append(m.ProvidesExtra, pep508.NormalizeName(f[1]))
		}
	}
	if m.Name == "" || m.Version == "" {
		return nil, fmt.Errorf("metadata lacks a Name or Version field")
	}
	return m, nil
}
