package aptrepo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/pkg/auth"
)

// Source is one APT binary repository: a URI with one or more suites.
//
// A one-line sources.list entry yields one Source with a single suite. A
// deb822 stanza yields one Source per URI, each carrying all of the stanza's
// suites. Source entries of type deb-src are never returned.
type Source struct {
	// URI is the archive root, without a trailing slash. Filename fields of
	// Packages indices are relative to it.
	URI string
	// Suites are the distributions to use, such as "bookworm". A suite
	// ending in "/" denotes a flat repository, which has no components.
	Suites []string
	// Components are the archive areas, such as "main".
	Components []string
	// Architectures restricts the architectures fetched from this source;
	// empty means the caller's default.
	Architectures []string
	// SignedBy is the raw Signed-By value: one or more keyring paths, or an
	// inline ASCII-armored key block. Use Source.Keyring to load it.
	SignedBy string
	// Options holds every option of the entry keyed by lower-cased name
	// (for example "trusted", "check-valid-until"), including the ones
	// that also have a typed field above.
	Options map[string]string
	// Location is "file:line" of the entry, for error messages.
	Location string
}

// IsFlat reports whether suite names a flat repository (one without a
// dists/ tree), which APT spells with a trailing slash.
func IsFlat(suite string) bool { return strings.HasSuffix(suite, "/") }

// IndexComponents returns the components whose Packages indices s has for
// suite: s's, or the one unnamed ("") of a flat repository.
func (s Source) IndexComponents(suite string) []string {
	if IsFlat(suite) {
		return []string{""}
	}
	return s.Components
}

// ParseSourcesList parses the one-line sources.list format:
//
//	deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://host/debian bookworm main
//
// Comments, blank lines and deb-src entries are skipped. name is used in
// error messages only.
func ParseSourcesList(name string, data []byte) ([]Source, error) {
	var out []Source
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		src, ok, err := parseSourceLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		if !ok {
			continue
		}
		src.Location = fmt.Sprintf("%s:%d", name, lineNo)
		out = append(out, src)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, lineNo+1, err)
	}
	return out, nil
}

func parseSourceLine(line string) (Source, bool, error) {
	typ, rest, _ := strings.Cut(line, " ")
	typ, _, _ = strings.Cut(typ, "\t")
	if typ != "deb" && typ != "deb-src" {
		return Source{}, false, fmt.Errorf("unknown entry type %q; each line must start with \"deb\" or \"deb-src\"", typ)
	}
	rest = strings.TrimSpace(strings.TrimPrefix(line, typ))
	src := Source{Options: map[string]string{}}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return Source{}, false, errors.New("unterminated option list; close the \"[\" with \"]\"")
		}
		for _, opt := range strings.Fields(rest[1:end]) {
			k, v, ok := strings.Cut(opt, "=")
			if !ok || k == "" {
				return Source{}, false, fmt.Errorf("option %q is not key=value", opt)
			}
			k = strings.ToLower(k)
			src.Options[k] = v
			switch strings.TrimRight(k, "+-") {
			case "arch":
				if strings.HasSuffix(k, "-") {
					continue // arch-= removes from the default set; the caller's default is not known here.
				}
				src.Architectures = append(src.Architectures, splitList(v)...)
			case "signed-by":
				src.SignedBy = v
			}
		}
		rest = strings.TrimSpace(rest[end+1:])
	}
	f := strings.Fields(rest)
	if len(f) < 2 {
		return Source{}, false, errors.New("want \"deb [options] URI suite [component...]\"")
	}
	if typ == "deb-src" {
		return Source{}, false, nil
	}
	src.URI = strings.TrimRight(f[0], "/")
	src.Suites = []string{f[1]}
	if len(f) > 2 {
		src.Components = f[2:]
	}
	if _, err := checkSuiteComponents(src); err != nil {
		return Source{}, false, err
	}
	return src, true, nil
}

// checkSuiteComponents validates src and returns the deb822 field at fault.
func checkSuiteComponents(src Source) (string, error) {
	if src.URI == "" || !strings.Contains(src.URI, ":") {
		return "uris", fmt.Errorf("URI %q is not absolute; write it as http://host/path", auth.RedactURL(src.URI))
	}
	if _, rest, ok := strings.Cut(src.URI, "://"); ok {
		if authority, _, _ := strings.Cut(rest, "/"); strings.Contains(authority, "@") {
			return "uris", fmt.Errorf("URI %s holds a user name or password, which kiln does not send to apt repositories (it would reach kiln.lock and the image's cache annotation); serve the repository without credentials on a network you trust", auth.RedactURL(src.URI))
		}
	}
	for _, s := range src.Suites {
		if IsFlat(s) && len(src.Components) > 0 {
			return "suites", fmt.Errorf("suite %q ends in \"/\" (a flat repository) but components %v are given; drop the components or the slash", s, src.Components)
		}
		if !IsFlat(s) && len(src.Components) == 0 {
			return "suites", fmt.Errorf("suite %q has no components; add at least one, such as \"main\"", s)
		}
		if strings.Contains(s, "..") {
			return "suites", fmt.Errorf("suite %q must not contain \"..\"", s)
		}
	}
	for _, c := range src.Components {
		if strings.Contains(c, "..") || strings.HasPrefix(c, "/") {
			return "components", fmt.Errorf("component %q must be a relative path without \"..\"", c)
		}
	}
	return "", nil
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// ParseDeb822Sources parses the deb822 .sources format:
//
//	Types: deb
//	URIs: http://host/debian
//	Suites: bookworm bookworm-updates
//	Components: main
//	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
//
// Stanzas with "Enabled: no" or without the deb type are skipped. Signed-By
// may be a path or an inline armored key block. name is used in error
// messages only.
func ParseDeb822Sources(name string, data []byte) ([]Source, error) {
	var out []Source
	sc := newStanzaScanner(bytes.NewReader(data), true)
	for {
		st, err := sc.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		f, _, err := st.fields()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		at := func(field string) string {
			if l, ok := st.fieldLines[field]; ok {
				return fmt.Sprintf("%s:%d", name, l)
			}
			return fmt.Sprintf("%s:%d", name, st.line)
		}
		if en, ok := f["enabled"]; ok {
			switch strings.ToLower(strings.TrimSpace(en)) {
			case "no":
				continue
			case "yes":
			default:
				return nil, fmt.Errorf("%s: Enabled: %q must be \"yes\" or \"no\"", at("enabled"), en)
			}
		}
		types := strings.Fields(f["types"])
		if len(types) == 0 {
			return nil, fmt.Errorf("%s: stanza has no Types field; add \"Types: deb\"", at(""))
		}
		for _, t := range types {
			if t != "deb" && t != "deb-src" {
				return nil, fmt.Errorf("%s: unknown type %q; Types may list only \"deb\" and \"deb-src\"", at("types"), t)
			}
		}
		uris := strings.Fields(f["uris"])
		if len(uris) == 0 {
			return nil, fmt.Errorf("%s: stanza has no URIs field; add \"URIs: http://host/path\"", at(""))
		}
		suites := strings.Fields(f["suites"])
		if len(suites) == 0 {
			return nil, fmt.Errorf("%s: stanza has no Suites field; add e.g. \"Suites: bookworm\"", at(""))
		}
		if !slices.Contains(types, "deb") {
			continue
		}
		opts := map[string]string{}
		for k, v := range f {
			switch k {
			case "types", "uris", "suites", "components", "enabled":
				continue
			}
			opts[k] = v
		}
		for _, u := range uris {
			src := Source{
				URI:           strings.TrimRight(u, "/"),
				Suites:        suites,
				Components:    strings.Fields(f["components"]),
				Architectures: splitList(f["architectures"]),
				SignedBy:      f["signed-by"],
				Options:       opts,
				Location:      at(""),
			}
			if field, err := checkSuiteComponents(src); err != nil {
				return nil, fmt.Errorf("%s: %w", at(field), err)
			}
			out = append(out, src)
		}
	}
}

// LoadSourcesDir reads the APT sources configured under dir, which is
// normally "/etc/apt": the one-line file dir/sources.list and every
// dir/sources.list.d/*.list and *.sources file, in lexical order. Missing
// files are not an error.
func LoadSourcesDir(dir string) ([]Source, error) {
	var out []Source
	main := filepath.Join(dir, "sources.list")
	if data, err := os.ReadFile(main); err == nil {
		s, err := ParseSourcesList(main, data)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "sources.list.d"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		p := filepath.Join(dir, "sources.list.d", e.Name())
		var parse func(string, []byte) ([]Source, error)
		switch filepath.Ext(e.Name()) {
		case ".list":
			parse = ParseSourcesList
		case ".sources":
			parse = ParseDeb822Sources
		default:
			continue // APT ignores other extensions too.
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read sources: %w", err)
		}
		s, err := parse(p, data)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}
