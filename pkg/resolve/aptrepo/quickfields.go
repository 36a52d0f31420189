package aptrepo

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
)

// The fields a Package keeps, as indices into a keptFields.
const (
	fPackage = iota
	fVersion
	fArchitecture
	fMultiArch
	fEssential
	fPriority
	fSection
	fSource
	fInstalledSize
	fDepends
	fPreDepends
	fRecommends
	fProvides
	fConflicts
	fBreaks
	fReplaces
	fFilename
	fSize
	fSHA256
	fStatus
	nKept
)

// keptNames maps the lower-case names of the fields a Package keeps to
// their indices. It is never modified.
var keptNames = map[string]int{
	"package": fPackage, "version": fVersion, "architecture": fArchitecture,
	"multi-arch": fMultiArch, "essential": fEssential, "priority": fPriority,
	"section": fSection, "source": fSource, "installed-size": fInstalledSize,
	"depends": fDepends, "pre-depends": fPreDepends, "recommends": fRecommends,
	"provides": fProvides, "conflicts": fConflicts, "breaks": fBreaks,
	"replaces": fReplaces, "filename": fFilename, "size": fSize,
	"sha256": fSHA256, "status": fStatus,
}

// keptFields are the values of a stanza's kept fields, as stanza.fields
// gives them; has has bit i set when field i is present.
type keptFields struct {
	v   [nKept][]byte
	has uint32
}

// maxQuickFields bounds the fields a stanza may have for quick to read it;
// a longer one is read by stanza.fields.
const maxQuickFields = 48

// maxInterned bounds the distinct values a packageReader shares.
const maxInterned = 1 << 17

// packageReader turns stanzas into Packages. Most stanzas of an index are
// plain (one line per kept field, no carriage returns), and quick reads
// those without building a map of every field; anything else goes through
// stanza.fields, which gives the same values. Repeated values (Depends:
// libc6 (>= 2.34), Section: libs) are shared between Packages.
type packageReader struct {
	seed   maphash.Seed
	intern map[string]string
	k      keptFields
}

func newPackageReader() *packageReader {
	return &packageReader{seed: maphash.MakeSeed(), intern: map[string]string{}}
}

// read parses st into a Package (without Raw).
func (r *packageReader) read(st *stanza) (Package, error) {
	r.k = keptFields{}
	if !r.quick(st.raw) {
		f, _, err := st.fields()
		if err != nil {
			return Package{}, err
		}
		r.k = keptFields{}
		for name, i := range keptNames {
			if v, ok := f[name]; ok {
				r.k.v[i], r.k.has = []byte(v), r.k.has|1<<i
			}
		}
	}
	return r.build(st.line)
}

// quick fills r.k from a plain stanza and reports whether it could: false
// for a stanza with a carriage return, a continuation line of a kept
// field, possibly repeated fields or more than maxQuickFields fields, which
// stanza.fields must read (and may reject).
func (r *packageReader) quick(raw []byte) bool {
	var others [maxQuickFields]uint64
	n := 0
	lastKept := false
	var lower [32]byte
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return false
		}
		line := raw[:i]
		raw = raw[i+1:]
		if len(line) == 0 || line[len(line)-1] == '\r' || line[0] == '#' {
			return false
		}
		if line[0] == ' ' || line[0] == '\t' {
			if lastKept || n == 0 && r.k.has == 0 {
				return false
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || colon > len(lower) {
			return false
		}
		for j, c := range line[:colon] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[j] = c
		}
		name := lower[:colon]
		if idx, ok := keptNames[string(name)]; ok {
			if r.k.has&(1<<idx) != 0 {
				return false
			}
			r.k.v[idx], r.k.has = bytes.TrimSpace(line[colon+1:]), r.k.has|1<<idx
			lastKept = true
			continue
		}
		h := maphash.Bytes(r.seed, name)
		for _, o := range others[:n] {
			if o == h {
				return false // a repeated field (or a hash collision): let fields decide
			}
		}
		if n == len(others) {
			return false
		}
		others[n] = h
		n++
		lastKept = false
	}
	return n > 0 || r.k.has != 0
}

// str returns field i's value.
func (r *packageReader) str(i int) string { return string(r.k.v[i]) }

// shared returns field i's value, the same string as an earlier equal
// value's.
func (r *packageReader) shared(i int) string {
	v := r.k.v[i]
	if len(v) == 0 {
		return ""
	}
	if s, ok := r.intern[string(v)]; ok {
		return s
	}
	s := string(v)
	if len(r.intern) < maxInterned {
		r.intern[s] = s
	}
	return s
}

// build makes the Package of r.k, the stanza at line.
func (r *packageReader) build(line int) (Package, error) {
	p := Package{
		Package:      r.str(fPackage),
		Version:      r.str(fVersion),
		Architecture: r.shared(fArchitecture),
		MultiArch:    r.shared(fMultiArch),
		Essential:    strings.EqualFold(string(r.k.v[fEssential]), "yes"),
		Priority:     r.shared(fPriority),
		Section:      r.shared(fSection),
		Source:       r.str(fSource),
		Depends:      r.str(fDepends),
		PreDepends:   r.str(fPreDepends),
		Recommends:   r.str(fRecommends),
		Provides:     r.str(fProvides),
		Conflicts:    r.str(fConflicts),
		Breaks:       r.str(fBreaks),
		Replaces:     r.str(fReplaces),
		Filename:     r.str(fFilename),
		SHA256:       r.str(fSHA256),
		Status:       r.shared(fStatus),
	}
	for _, n := range []struct {
		i    int
		name string
		dst  *int64
	}{{fSize, "size", &p.Size}, {fInstalledSize, "installed-size", &p.InstalledSize}} {
		if r.k.has&(1<<n.i) == 0 {
			continue
		}
		v, err := strconv.ParseInt(string(r.k.v[n.i]), 10, 64)
		if err != nil || v < 0 {
			return Package{}, &lineError{line, fmt.Sprintf("package %q: %s %q is not a non-negative integer", p.Package, n.name, r.k.v[n.i])}
		}
		*n.dst = v
	}
	return p, nil
}
