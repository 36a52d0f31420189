package wheelinstall

import (
	"fmt"
	"strings"
)

// wheelFilename is the split of name-version(-build)?-py-abi-plat.whl.
type wheelFilename struct {
	name, version string
}

// parseFilename splits a wheel's file name. It checks only the shape; the
// tags are for the resolver to judge.
func parseFilename(filename string) (wheelFilename, error) {
	base := filename
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	stem, ok := strings.CutSuffix(base, ".whl")
	if !ok {
		return wheelFilename{}, fmt.Errorf("%q is not a wheel file name: it must end in .whl", filename)
	}
	parts := strings.Split(stem, "-")
	bad := len(parts) != 5 && len(parts) != 6
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t\r\n") {
			bad = true
		}
	}
	if !bad && len(parts) == 6 && (parts[2][0] < '0' || parts[2][0] > '9') {
		bad = true
	}
	if bad {
		return wheelFilename{}, fmt.Errorf("%q is not a valid wheel file name: want name-version(-build)?-python-abi-platform.whl", filename)
	}
	return wheelFilename{name: parts[0], version: parts[1]}, nil
}

// canonicalName normalises a project name as PEP 503 does: lower case,
// runs of "-", "_" and "." replaced by one "-".
func canonicalName(name string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			if !sep {
				b.WriteByte('-')
			}
			sep = true
			continue
		}
		sep = false
		b.WriteRune(r)
	}
	return b.String()
}

// parseHeaders reads RFC 822 style headers (METADATA, WHEEL) up to the
// first blank line. Continuation lines are joined; the first value of a
// repeated header wins. Keys are matched case-insensitively.
func parseHeaders(text string) map[string]string {
	h := map[string]string{}
	var last string
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && last != "" {
			h[last] += "\n" + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			last = ""
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := h[k]; dup {
			last = ""
			continue
		}
		h[k] = strings.TrimSpace(v)
		last = k
	}
	return h
}
