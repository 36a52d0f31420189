package deblayer

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// The glibc-ld.so.cache1.1 format (glibc's elf/cache.c, new format only,
// which glibc 2.32 and later write and read): a 48-byte header, nlibs
// 24-byte entries, then the NUL-terminated strings, string offsets being
// from the start of the file.
const (
	ldCacheMagic   = "glibc-ld.so.cache1.1"
	ldCacheHeader  = 48
	ldCacheEntry   = 24
	ldCacheLE      = 2 // cache_file_new_flags_endian_little
	ldFlagELFLibc6 = 0x0003
)

// ldFlagsByMachine are the entry flags ldconfig gives a libc6 library of
// an ELF machine and class (FLAG_ELF_LIBC6 with the architecture's).
var ldFlagsByMachine = map[[2]uint16]int32{
	{62, 2}:  0x0303, // x86-64: FLAG_X8664_LIB64
	{183, 2}: 0x0a03, // aarch64: FLAG_AARCH64_LIB64
	{3, 1}:   0x0003, // i386
	{21, 2}:  0x0503, // ppc64le: FLAG_POWERPC_LIB64
	{22, 2}:  0x0403, // s390x: FLAG_S390_LIB64
}

// ldEntry is one library of the cache: its soname (or a development
// link's name) and the path the loader opens.
type ldEntry struct {
	flags      int32
	key, value string
	osVersion  uint32
	hwcap      uint64
}

// parseLDCache reads an ld.so.cache in the glibc-ld.so.cache1.1 format.
func parseLDCache(b []byte) ([]ldEntry, error) {
	if len(b) < ldCacheHeader || string(b[:len(ldCacheMagic)]) != ldCacheMagic {
		return nil, errors.New("not in the glibc-ld.so.cache1.1 format")
	}
	le := binary.LittleEndian
	if b[28] != ldCacheLE {
		return nil, errors.New("not a little-endian cache")
	}
	n := int(le.Uint32(b[20:]))
	if n < 0 || n > (len(b)-ldCacheHeader)/ldCacheEntry {
		return nil, errors.New("truncated")
	}
	str := func(off uint32) (string, error) {
		if int(off) >= len(b) {
			return "", errors.New("string offset out of range")
		}
		end := bytes.IndexByte(b[off:], 0)
		if end < 0 {
			return "", errors.New("unterminated string")
		}
		return string(b[off : int(off)+end]), nil
	}
	out := make([]ldEntry, 0, n)
	for i := 0; i < n; i++ {
		e := b[ldCacheHeader+i*ldCacheEntry:]
		k, err := str(le.Uint32(e[4:]))
		if err != nil {
			return nil, err
		}
		v, err := str(le.Uint32(e[8:]))
		if err != nil {
			return nil, err
		}
		out = append(out, ldEntry{flags: int32(le.Uint32(e)), key: k, value: v, osVersion: le.Uint32(e[12:]), hwcap: le.Uint64(e[16:])})
	}
	return out, nil
}

// encodeLDCache writes entries (sorted with sortLDEntries) as an
// ld.so.cache with no extension section.
func encodeLDCache(entries []ldEntry) []byte {
	le := binary.LittleEndian
	var strs bytes.Buffer
	offs := map[string]uint32{}
	base := uint32(ldCacheHeader + len(entries)*ldCacheEntry)
	intern := func(s string) uint32 {
		if o, ok := offs[s]; ok {
			return o
		}
		o := base + uint32(strs.Len())
		strs.WriteString(s)
		strs.WriteByte(0)
		offs[s] = o
		return o
	}
	out := make([]byte, base)
	copy(out, ldCacheMagic)
	le.PutUint32(out[20:], uint32(len(entries)))
	out[28] = ldCacheLE
	for i, e := range entries {
		p := out[ldCacheHeader+i*ldCacheEntry:]
		le.PutUint32(p, uint32(e.flags))
		le.PutUint32(p[4:], intern(e.key))
		le.PutUint32(p[8:], intern(e.value))
		le.PutUint32(p[12:], e.osVersion)
		le.PutUint64(p[16:], e.hwcap)
	}
	le.PutUint32(out[24:], uint32(strs.Len()))
	return append(out, strs.Bytes()...)
}

// sortLDEntries orders entries as ldconfig does, which the loader's binary
// search relies on: by key in descending _dl_cache_libcmp order, then by
// flags and hwcap descending; equal entries keep their order.
func sortLDEntries(entries []ldEntry) {
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if c := libcmp(a.key, b.key); c != 0 {
			return c > 0
		}
		if a.flags != b.flags {
			return a.flags > b.flags
		}
		return a.hwcap > b.hwcap
	})
}

// libcmp is glibc's _dl_cache_libcmp: strings compared byte by byte, with
// runs of digits compared as numbers and sorting after other bytes.
func libcmp(p1, p2 string) int {
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	i, j := 0, 0
	for i < len(p1) {
		switch {
		case isDigit(p1[i]):
			if j >= len(p2) || !isDigit(p2[j]) {
				return 1
			}
			v1, v2 := 0, 0
			for i < len(p1) && isDigit(p1[i]) {
				v1 = v1*10 + int(p1[i]-'0')
				i++
			}
			for j < len(p2) && isDigit(p2[j]) {
				v2 = v2*10 + int(p2[j]-'0')
				j++
			}
			if v1 != v2 {
				return v1 - v2
			}
		case j < len(p2) && isDigit(p2[j]):
			return -1
		case j >= len(p2):
			return int(p1[i])
		case p1[i] != p2[j]:
			return int(p1[i]) - int(p2[j])
		default:
			i++
			j++
		}
	}
	if j < len(p2) {
		return -int(p2[j])
	}
	return 0
}

// libNameRE matches the names ldconfig considers: lib*.so* and ld-*.so*.
var libNameRE = regexp.MustCompile(`^(lib.*|ld-.*)\.so(\..*)?$`)

// elfHeadSize is how much of a library file Write keeps to read its ELF
// header.
const elfHeadSize = 20

// elfLibFlags returns the cache flags of a library from its first bytes,
// and false when it is not an ELF file (a linker script such as libc.so)
// or of a machine kiln does not know.
func elfLibFlags(head []byte) (int32, bool) {
	if len(head) < elfHeadSize || string(head[:4]) != "\x7fELF" || head[5] != 1 {
		return 0, false
	}
	machine := binary.LittleEndian.Uint16(head[18:])
	f, ok := ldFlagsByMachine[[2]uint16{machine, uint16(head[4])}]
	return f, ok
}

// ldSearchDirs returns the directories ldconfig scans, in its order: those
// of etc/ld.so.conf (following include globs over etc/ld.so.conf.d), then
// the system directories of the multiarch triplet and /lib, /usr/lib.
func ldSearchDirs(conf func(name string) ([]byte, bool), confNames []string, multiarch string) []string {
	var dirs []string
	seen := map[string]bool{}
	var read func(name string, depth int)
	read = func(name string, depth int) {
		b, ok := conf(name)
		if !ok || depth > 4 {
			return
		}
		for _, l := range strings.Split(string(b), "\n") {
			if i := strings.IndexByte(l, '#'); i >= 0 {
				l = l[:i]
			}
			l = strings.TrimSpace(l)
			switch {
			case l == "":
			case strings.HasPrefix(l, "include"):
				pat := strings.TrimSpace(strings.TrimPrefix(l, "include"))
				pat = strings.TrimPrefix(path.Clean("/"+pat), "/")
				var matched []string
				for _, n := range confNames {
					if ok, _ := path.Match(pat, n); ok {
						matched = append(matched, n)
					}
				}
				sort.Strings(matched)
				for _, n := range matched {
					read(n, depth+1)
				}
			case strings.HasPrefix(l, "hwcap"):
			default:
				for _, d := range strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == ':' || r == '=' }) {
					d = path.Clean(d)
					if strings.HasPrefix(d, "/") && !seen[d] {
						seen[d] = true
						dirs = append(dirs, d)
					}
				}
			}
		}
	}
	read("etc/ld.so.conf", 0)
	for _, d := range []string{"/lib/" + multiarch, "/usr/lib/" + multiarch, "/lib", "/usr/lib"} {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// writeLDCache reproduces `ldconfig`: it writes etc/ld.so.cache with the
// parent's entries and, for every directory ldconfig scans, the libraries
// this layer ships there (by soname: the shortest versioned name that
// leads to the library file, or the file's own name; and the .so
// development links to them). It writes nothing when the layer adds no
// library, and warns instead when the parent's cache is in a format kiln
// does not read.
func (fx *effects) writeLDCache() error {
	w := fx.w
	var parentEntries []ldEntry
	if b, ok := fx.parent.Files["etc/ld.so.cache"]; ok {
		var err error
		if parentEntries, err = parseLDCache(b); err != nil {
			w.report.Warnings = append(w.report.Warnings, fmt.Sprintf("the parent's /etc/ld.so.cache is %v; kiln left it as it is, so programs that look libraries up with `ldconfig -p` (ctypes.util.find_library) may not find this layer's", err))
			return nil
		}
	}
	conf := func(name string) ([]byte, bool) {
		if b, ok := w.keep[name]; ok {
			return b, true
		}
		b, ok := fx.parent.Files[name]
		return b, ok
	}
	nameSet := map[string]bool{}
	for n := range w.keep {
		nameSet[n] = true
	}
	for n := range fx.parent.Files {
		nameSet[n] = true
	}
	var confNames []string
	for n := range nameSet {
		if strings.HasPrefix(n, "etc/ld.so.conf.d/") {
			confNames = append(confNames, n)
		}
	}
	// The entries of the directory each emitted path is in.
	byDir := map[string][]string{}
	for p := range w.emitted {
		d, base := path.Split(p)
		if libNameRE.MatchString(base) {
			byDir[strings.TrimSuffix(d, "/")] = append(byDir[strings.TrimSuffix(d, "/")], base)
		}
	}
	flagsSeen := map[int32]bool{}
	var added []ldEntry
	doneDirs := map[string]bool{}
	for _, dir := range ldSearchDirs(conf, confNames, fx.multiarch) {
		final, err := w.res.resolve(strings.TrimPrefix(dir, "/"), true)
		if err != nil || doneDirs[final] {
			continue
		}
		doneDirs[final] = true
		names := byDir[final]
		sort.Strings(names)
		// Each library file and the names in dir that lead to it.
		groups := map[string][]string{}
		for _, n := range names {
			if target, ok := w.libTarget(final + "/" + n); ok {
				groups[target] = append(groups[target], n)
			}
		}
		var targets []string
		for t := range groups {
			targets = append(targets, t)
		}
		sort.Strings(targets)
		for _, t := range targets {
			flags, ok := elfLibFlags(w.elfHead[t])
			if !ok {
				continue
			}
			flagsSeen[flags] = true
			soname := ""
			var devs []string
			for _, n := range groups[t] {
				if strings.HasSuffix(n, ".so") {
					devs = append(devs, n)
					continue
				}
				if soname == "" || len(n) < len(soname) || (len(n) == len(soname) && n < soname) {
					soname = n
				}
			}
			if soname == "" {
				soname = path.Base(t)
				if path.Dir(t) != final {
					continue // only development links here
				}
			}
			added = append(added, ldEntry{flags: flags, key: soname, value: dir + "/" + soname})
			fx.cachedDirs[dir] = true
			for _, d := range devs {
				if strings.HasPrefix(soname, d) && d != soname {
					added = append(added, ldEntry{flags: flags, key: d, value: dir + "/" + d})
				}
			}
		}
	}
	if len(added) == 0 {
		return nil
	}
	have := map[[2]string]bool{}
	all := make([]ldEntry, 0, len(parentEntries)+len(added))
	for _, e := range parentEntries {
		have[[2]string{e.key, e.value}] = true
		all = append(all, e)
	}
	fresh := 0
	for _, e := range added {
		if !have[[2]string{e.key, e.value}] {
			have[[2]string{e.key, e.value}] = true
			all = append(all, e)
			fresh++
		}
	}
	if fresh == 0 {
		return nil
	}
	sortLDEntries(all)
	return w.generated(tar.Header{Typeflag: tar.TypeReg, Name: "etc/ld.so.cache", Mode: 0o644}, encodeLDCache(all))
}

// libTarget follows p (a final path) through symlinks to a regular file
// this layer ships, and returns it.
func (w *layerWriter) libTarget(p string) (string, bool) {
	for hops := 0; hops < 16; hops++ {
		switch w.emitted[p] {
		case tar.TypeReg:
			return p, true
		case tar.TypeSymlink:
			t := w.res.links[p]
			if !strings.HasPrefix(t, "/") {
				t = path.Join(path.Dir(p), t)
			}
			r, err := w.res.resolve(strings.TrimPrefix(path.Clean("/"+t), "/"), false)
			if err != nil {
				return "", false
			}
			p = r
		default:
			return "", false
		}
	}
	return "", false
}
