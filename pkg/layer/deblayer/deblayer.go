// Package deblayer unpacks Debian packages into one image layer without
// dpkg, root or a container.
//
// Write streams the data.tar entries of each .deb into a tar.Writer,
// rewriting paths for the parent's merged /usr, records the packages in
// the dpkg database (var/lib/dpkg/status and var/lib/dpkg/info), and
// reproduces the effects of the maintainer scripts programs depend on
// (update-alternatives, system users and groups, the CA certificate
// bundle) without running them. Everything else a maintainer script does
// is reported as a warning.
//
// A .deb is untrusted input even after its SHA-256 matched a signed index.
// Write refuses, naming the .deb and the entry: absolute member names and
// ".." components; symlinks whose relative target climbs above the image
// root (absolute targets are kept: inside the container they resolve in the
// image root, like /etc/alternatives links); entries written through a
// symlink the same package ships (dpkg-deb cannot produce them); hard links
// to anything but an earlier regular file of the same package; device nodes
// and FIFOs; .wh. names, which are OCI whiteouts; regular files whose MD5
// differs from the package's md5sums; truncated or corrupt ar, tar, gzip,
// xz or zstd streams. Nothing is ever extracted to disk: data.tar streams
// decompressed ahead of their turn (see Options.Workers) spill, past a
// memory budget, to unlinked temporary files as one opaque stream each.
// Write streams, so on error the layer written so far must be discarded.
package deblayer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-build/kiln/pkg/layer/tarheader"
)

// Parent describes what Write must respect of the image the layer goes on.
type Parent struct {
	// Symlinks maps root-relative paths of symlinked directories in the
	// parent to their targets, as readlink(2) returns them, for example
	// "bin" -> "usr/bin", "lib64" -> "usr/lib64", "var/run" -> "/run".
	// Package entries under these paths are rewritten to the target, and
	// no directory entry is ever emitted for them.
	Symlinks map[string]string
	// Files maps root-relative paths ("etc/passwd", "var/lib/dpkg/status")
	// to the parent's content. Write reads var/lib/dpkg/status,
	// etc/passwd, etc/group, etc/shadow, etc/gshadow, etc/ld.so.conf,
	// etc/ld.so.conf.d/*, etc/ld.so.cache, var/lib/dpkg/alternatives/*,
	// var/lib/dpkg/triggers/*,
	// etc/ca-certificates.conf, usr/share/ca-certificates/** and
	// usr/local/share/ca-certificates/**. Missing files are treated as
	// absent from the parent.
	Files map[string][]byte
}

// Options configures Write.
type Options struct {
	// Epoch is the modification time of every entry (SOURCE_DATE_EPOCH);
	// the zero value means the Unix epoch.
	Epoch time.Time
	// Workers is how many .debs are decompressed at once, ahead of the
	// one being written; 0 means GOMAXPROCS. The layer's bytes do not
	// depend on it.
	Workers int
	// DecodeMemory bounds the memory holding decompressed data.tar
	// members not yet written; past it they spill to unlinked temporary
	// files in TempDir. 0 means 64 MiB; a negative value spills
	// everything.
	DecodeMemory int64
	// TempDir is where decompressed members spill; "" means
	// os.TempDir().
	TempDir string
	// XZ is the path of an xz(1) program (liblzma, about twice as fast
	// as the built-in decoder) to decompress data.tar.xz members with;
	// "" means the built-in decoder. Both give the same bytes or an
	// error.
	XZ string
	// Unpacked leaves the packages as `dpkg --unpack` does, for the
	// image's own `dpkg --configure --pending` to configure: their status
	// is "install ok unpacked", no postinst effect is reproduced, and the
	// triggers they activate are recorded in var/lib/dpkg/triggers. The
	// users and groups their preinst scripts create are still written,
	// since they must exist before the files that belong to them.
	Unpacked bool
}

// Report describes what Write put in the layer.
type Report struct {
	// Packages lists the installed packages in input order.
	Packages []PackageReport
	// Paths lists every path written to the layer, in write order, in
	// root-relative form ("usr/bin/x", directories as "usr/bin/").
	Paths []string
	// Warnings lists problems not tied to a single package.
	Warnings []string
	// LibraryDirs lists directories packages added to the dynamic linker
	// search path through etc/ld.so.conf.d. Without Options.Unpacked the
	// libraries the layer ships there are listed in the etc/ld.so.cache
	// Write generates (the parent's entries and the layer's).
	LibraryDirs []string
}

// PackageReport describes one installed package.
type PackageReport struct {
	// Name, Version and Arch come from the package's control file.
	Name, Version, Arch string
	// Files is the number of data.tar entries written for the package,
	// directories included.
	Files int
	// Warnings lists maintainer script commands whose effects are not
	// reproduced and other problems a user may need to act on.
	Warnings []string
	// Skipped lists maintainer script commands that were recognised as
	// irrelevant in a container (service management, debconf, ...) and
	// not reproduced.
	Skipped []string
}

// Bounds against decompression bombs and memory exhaustion.
const (
	// maxDataSize bounds the regular files of a package without an
	// Installed-Size field.
	maxDataSize = 16 << 30
	// maxKept bounds a file whose content Write keeps in memory (CA
	// certificates, ld.so.conf files).
	maxKept = 16 << 20
	// maxControl bounds the sum of a control.tar's members.
	maxControl = 64 << 20
)

// pkgState is one package being installed.
type pkgState struct {
	arch      *debArchive
	name      string
	version   string
	archName  string
	multiSame bool
	list      []string          // paths as shipped, "/"-rooted
	conffiles []string          // "/etc/x"
	confMD5   map[string]string // conffile -> md5
	report    *PackageReport
}

func (p *pkgState) infoName() string {
	if p.multiSame {
		return p.name + ":" + p.archName
	}
	return p.name
}

func (p *pkgState) warnf(format string, args ...any) {
	p.report.Warnings = append(p.report.Warnings, fmt.Sprintf(format, args...))
}

// layerWriter emits tar entries once each, with fixed times.
type layerWriter struct {
	tw      *tar.Writer
	epoch   time.Time
	res     resolver
	noDir   map[string]bool   // parent symlinks: never emit a directory there
	emitted map[string]byte   // final path -> typeflag
	owner   map[string]string // final path -> package (or "kiln")
	report  *Report
	// content of regular files written, for paths later steps read
	// (ld.so.conf.d, ca-certificates).
	keep map[string][]byte
	// elfHead holds the first bytes of the library files written (by
	// final path), for the ld.so.cache.
	elfHead map[string][]byte
}

// headWriter keeps the first n bytes written to it.
type headWriter struct {
	buf []byte
	n   int
}

func (h *headWriter) Write(b []byte) (int, error) {
	if room := h.n - len(h.buf); room > 0 {
		if len(b) < room {
			room = len(b)
		}
		h.buf = append(h.buf, b[:room]...)
	}
	return len(b), nil
}

func (w *layerWriter) wantKeep(p string) bool {
	return strings.HasPrefix(p, "usr/share/ca-certificates/") ||
		strings.HasPrefix(p, "usr/local/share/ca-certificates/") ||
		strings.HasPrefix(p, "etc/ld.so.conf.d/") || p == "etc/ld.so.conf"
}

// ensureDirs emits the ancestors of p that are not emitted yet.
func (w *layerWriter) ensureDirs(p string) error {
	for _, d := range parentDirs(p) {
		if _, ok := w.emitted[d]; ok || w.noDir[d] {
			continue
		}
		if err := w.put(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}, nil, "kiln"); err != nil {
			return err
		}
	}
	return nil
}

// put writes h (whose Name is a final root-relative path without a
// trailing slash) and body.
func (w *layerWriter) put(h *tar.Header, body io.Reader, owner string) error {
	p := h.Name
	w.emitted[p] = h.Typeflag
	w.owner[p] = owner
	h.PAXRecords = nil
	if err := w.tw.WriteHeader(tarheader.Normalize(h, w.epoch)); err != nil {
		return fmt.Errorf("write %s: %w", h.Name, err)
	}
	w.report.Paths = append(w.report.Paths, h.Name)
	if body != nil {
		if _, err := io.Copy(w.tw, body); err != nil {
			return fmt.Errorf("write %s: %w", h.Name, err)
		}
	}
	return nil
}

// generated writes a file, symlink or directory kiln creates itself
// (dpkg database, alternatives, users, certificates). Paths are given in
// shipped form and resolved through symlinked directories.
func (w *layerWriter) generated(h tar.Header, data []byte) error {
	p, err := cleanMember(h.Name)
	if err != nil {
		return err
	}
	full := h.Typeflag == tar.TypeDir
	p, err = w.res.resolve(p, full)
	if err != nil {
		return err
	}
	if t, ok := w.emitted[p]; ok {
		if t == tar.TypeDir && h.Typeflag == tar.TypeDir {
			return nil
		}
		w.report.Warnings = append(w.report.Warnings, fmt.Sprintf("/%s is shipped by package %s and also generated by kiln; kept the package's version", p, w.owner[p]))
		return nil
	}
	if err := w.ensureDirs(p); err != nil {
		return err
	}
	h.Name = p
	var body io.Reader
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(data))
		body = bytes.NewReader(data)
		if w.wantKeep(p) {
			w.keep[p] = data
		}
	}
	return w.put(&h, body, "kiln")
}

// Write writes one layer to tw holding debs, unpacked in order over
// parent, followed by the dpkg database and the reproduced effects of the
// packages' postinst scripts. It does not close tw. On error the layer is
// incomplete and must be discarded; errors name the .deb and entry.
func Write(ctx context.Context, tw *tar.Writer, parent Parent, debs []Deb, opts Options) (Report, error) {
	var rep Report
	epoch := opts.Epoch
	if epoch.IsZero() {
		epoch = time.Unix(0, 0)
	}
	w := &layerWriter{
		tw:      tw,
		epoch:   epoch.UTC(),
		res:     resolver{links: map[string]string{}},
		noDir:   map[string]bool{},
		emitted: map[string]byte{},
		owner:   map[string]string{},
		report:  &rep,
		keep:    map[string][]byte{},
		elfHead: map[string][]byte{},
	}
	for k, v := range parent.Symlinks {
		ck, err := cleanMember(strings.TrimPrefix(k, "/"))
		if err != nil || ck == "" {
			return rep, fmt.Errorf("parent symlink %q: not a root-relative path such as \"bin\"", k)
		}
		w.res.links[ck] = strings.TrimSuffix(v, "/")
		w.noDir[ck] = true
	}

	pkgs := make([]*pkgState, 0, len(debs))
	rep.Packages = make([]PackageReport, len(debs))
	pf := newPrefetcher(ctx, debs, opts)
	defer pf.close()
	for i, d := range debs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		frag, err := pf.next(i)
		if err != nil {
			return rep, err
		}
		if frag.openErr != nil {
			pf.done(frag)
			return rep, fmt.Errorf("read %s: %w", d.Name, frag.openErr)
		}
		a := frag.arch
		p := &pkgState{
			arch:      a,
			name:      a.control.get("Package"),
			version:   a.control.get("Version"),
			archName:  a.control.get("Architecture"),
			multiSame: a.control.get("Multi-Arch") == "same",
			confMD5:   map[string]string{},
			report:    &rep.Packages[i],
		}
		p.report.Name, p.report.Version, p.report.Arch = p.name, p.version, p.archName
		for _, l := range strings.Split(string(a.members["conffiles"]), "\n") {
			fs := strings.Fields(l)
			if len(fs) == 0 {
				continue
			}
			if !strings.HasPrefix(fs[0], "/") {
				// dpkg >= 1.20 flags such as "remove-on-upgrade /etc/x"
				continue
			}
			p.conffiles = append(p.conffiles, fs[0])
		}
		err = w.unpack(ctx, p, frag)
		pf.done(frag)
		if err != nil {
			return rep, fmt.Errorf("unpack %s: %w", d.Name, err)
		}
		pkgs = append(pkgs, p)
	}

	fx, err := newEffects(parent, w, pkgs)
	if err != nil {
		return rep, err
	}
	status := "install ok installed"
	for _, p := range pkgs {
		if opts.Unpacked {
			fx.preinst(p)
		} else {
			fx.configure(p)
		}
	}
	if opts.Unpacked {
		status = "install ok unpacked"
		if err := writeTriggers(w, parent, pkgs); err != nil {
			return rep, err
		}
	}
	if err := writeDpkgDB(w, parent, pkgs, status); err != nil {
		return rep, err
	}
	if opts.Unpacked {
		return rep, fx.writeUsers()
	}
	if err := fx.write(); err != nil {
		return rep, err
	}
	return rep, nil
}

// unpack streams p's data.tar, decompressed into frag, into the layer.
func (w *layerWriter) unpack(ctx context.Context, p *pkgState, frag *fragment) error {
	if frag.dataErr != nil {
		return fmt.Errorf("open %s: %w", p.arch.dataTar.name, frag.dataErr)
	}
	rc, err := frag.reader()
	if err != nil {
		return fmt.Errorf("open %s: %w", p.arch.dataTar.name, err)
	}
	isConf := map[string]bool{}
	for _, c := range p.conffiles {
		isConf[c] = true
	}
	regular := map[string]string{} // shipped path -> final path
	// ownLinks holds the final paths of the symlinks this package shipped.
	// dpkg-deb builds data.tar from a directory tree, where nothing can be
	// below a symlink, so an entry through one of them is a hostile archive
	// (a -> /etc, then a/passwd), not a package.
	ownLinks := map[string]bool{}
	sums, err := parseMD5Sums(p.arch.members["md5sums"])
	if err != nil {
		return fmt.Errorf("control member md5sums: %w", err)
	}
	// The regular files' sizes are bounded by twice Installed-Size (KiB,
	// which dpkg-gencontrol rounds up per file) plus slack, against
	// decompression bombs.
	limit, total := int64(maxDataSize), int64(0)
	if n, err := strconv.ParseInt(p.arch.control.get("Installed-Size"), 10, 64); err == nil && n >= 0 && n < 1<<40 {
		limit = 2*n<<10 + 64<<20
	}
	tr := tar.NewReader(rc)
	prev := "" // the last entry read, to place a read error
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if prev != "" {
				return fmt.Errorf("read %s after entry %q: %w", p.arch.dataTar.name, prev, err)
			}
			return fmt.Errorf("read %s: %w", p.arch.dataTar.name, err)
		}
		prev = h.Name
		shipped, err := cleanMember(h.Name)
		if err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		if shipped == "" {
			p.list = append(p.list, "/.")
			continue
		}
		switch h.Typeflag {
		case tar.TypeChar, tar.TypeBlock:
			return fmt.Errorf("entry %q: device nodes are not allowed in image layers", h.Name)
		case tar.TypeFifo:
			return fmt.Errorf("entry %q: FIFOs are not allowed in packages kiln installs", h.Name)
		case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
		default:
			return fmt.Errorf("entry %q: unsupported tar entry type %q", h.Name, h.Typeflag)
		}
		if strings.HasPrefix(path.Base(shipped), ".wh.") {
			return fmt.Errorf("entry %q: names starting with .wh. are OCI whiteouts and would delete files of the parent image", h.Name)
		}
		var xattrs []string
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") || strings.HasPrefix(k, "LIBARCHIVE.xattr.") {
				xattrs = append(xattrs, strings.TrimPrefix(strings.TrimPrefix(k, "SCHILY.xattr."), "LIBARCHIVE.xattr."))
			}
		}
		if len(xattrs) > 0 {
			sort.Strings(xattrs)
			p.warnf("%s: extended attributes %s dropped", h.Name, strings.Join(xattrs, ", "))
		}
		final, err := w.res.resolveOwn(shipped, h.Typeflag == tar.TypeDir, ownLinks)
		if err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		p.list = append(p.list, "/"+shipped)
		if final == "" {
			continue
		}
		if t, ok := w.emitted[final]; ok {
			if t == tar.TypeDir && h.Typeflag == tar.TypeDir {
				continue
			}
			p.warnf("/%s is also shipped by %s; kept the first package's version (dpkg would need Replaces)", final, w.owner[final])
			continue
		}
		if err := w.ensureDirs(final); err != nil {
			return err
		}
		out := &tar.Header{
			Typeflag: h.Typeflag,
			Name:     final,
			Mode:     h.Mode & 0o7777,
			Uid:      h.Uid,
			Gid:      h.Gid,
			Uname:    h.Uname,
			Gname:    h.Gname,
		}
		var body io.Reader
		switch h.Typeflag {
		case tar.TypeSymlink:
			if h.Linkname == "" || escapes(final, h.Linkname) {
				return fmt.Errorf("entry %q: symlink target %q leads outside the image root", h.Name, h.Linkname)
			}
			out.Linkname = h.Linkname
			w.res.links[final] = strings.TrimSuffix(h.Linkname, "/")
			ownLinks[final] = true
		case tar.TypeLink:
			t, err := cleanMember(h.Linkname)
			if err != nil {
				return fmt.Errorf("entry %q: hard link target: %w", h.Name, err)
			}
			ft, ok := regular[t]
			if !ok {
				return fmt.Errorf("entry %q: hard link to %q, which is not an earlier regular file of this package", h.Name, h.Linkname)
			}
			out.Linkname = ft
			regular[shipped] = ft
		case tar.TypeReg:
			out.Size = h.Size
			total += h.Size
			if total > limit {
				return fmt.Errorf("entry %q: data.tar holds more than %d bytes, twice the package's Installed-Size (decompression bomb?)", h.Name, limit)
			}
			body = tr
			var buf *bytes.Buffer
			if w.wantKeep(final) {
				if h.Size > maxKept {
					return fmt.Errorf("entry %q: %d bytes, more than %d for a CA certificate or ld.so.conf file", h.Name, h.Size, maxKept)
				}
				buf = &bytes.Buffer{}
				body = io.TeeReader(body, buf)
			}
			var head *headWriter
			if libNameRE.MatchString(path.Base(final)) {
				head = &headWriter{n: elfHeadSize}
				body = io.TeeReader(body, head)
			}
			// One MD5 serves md5sums and the conffile record.
			want, listed := sums[shipped]
			sum := md5.New()
			body = io.TeeReader(body, sum)
			if err := w.put(out, body, p.name); err != nil {
				return fmt.Errorf("entry %q: %w", h.Name, err)
			}
			got := hex.EncodeToString(sum.Sum(nil))
			if listed && got != want {
				return fmt.Errorf("entry %q: md5sum %s, but the package's md5sums says %s: the .deb is corrupt or tampered with", h.Name, got, want)
			}
			if isConf["/"+shipped] {
				p.confMD5["/"+shipped] = got
			}
			if buf != nil {
				w.keep[final] = buf.Bytes()
			}
			if head != nil {
				w.elfHead[final] = head.buf
			}
			regular[shipped] = final
			p.report.Files++
			continue
		}
		if err := w.put(out, body, p.name); err != nil {
			return err
		}
		p.report.Files++
	}
}

// parseMD5Sums parses a control.tar md5sums member ("<md5>  <path>" lines,
// paths without the leading "/") into a map from cleaned path to digest.
// Lines naming impossible paths are ignored: the data.tar entry they could
// describe is refused anyway.
func parseMD5Sums(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		sum, name, ok := strings.Cut(l, " ")
		name = strings.TrimLeft(name, " *")
		if !ok || len(sum) != 32 || name == "" {
			return nil, fmt.Errorf("line %d: %q is not \"<md5>  <path>\"", i+1, l)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("line %d: %q is not an MD5 digest", i+1, sum)
		}
		p, err := cleanMember(name)
		if err != nil {
			continue // no data.tar entry can have this name
		}
		out[p] = strings.ToLower(sum)
	}
	return out, nil
}

// writeDpkgDB writes var/lib/dpkg/info/* and var/lib/dpkg/status.
func writeDpkgDB(w *layerWriter, parent Parent, pkgs []*pkgState, status string) error {
	type entry struct {
		name, arch string
		text       []byte
	}
	newKey := map[string]bool{}
	var entries []entry
	for _, p := range pkgs {
		info := "var/lib/dpkg/info/" + p.infoName()
		list := strings.Join(p.list, "\n")
		if list != "" {
			list += "\n"
		}
		if err := w.generated(tar.Header{Typeflag: tar.TypeReg, Name: info + ".list", Mode: 0o644}, []byte(list)); err != nil {
			return err
		}
		names := append([]string(nil), p.arch.names...)
		sort.Strings(names)
		for _, m := range names {
			mode := int64(0o644)
			switch m {
			case "preinst", "postinst", "prerm", "postrm", "config":
				mode = 0o755
			}
			if err := w.generated(tar.Header{Typeflag: tar.TypeReg, Name: info + "." + m, Mode: mode}, p.arch.members[m]); err != nil {
				return err
			}
		}
		var conf []string
		for _, c := range p.conffiles {
			sum, ok := p.confMD5[c]
			if !ok {
				p.warnf("conffile %s is not shipped in data.tar", c)
				sum = "newconffile"
			}
			conf = append(conf, c+" "+sum)
		}
		key := p.name + ":" + p.archName
		if newKey[key] {
			p.warnf("package %s is installed twice in this layer; the dpkg database keeps the last one", key)
			for i := range entries {
				if entries[i].name == p.name && entries[i].arch == p.archName {
					entries = append(entries[:i], entries[i+1:]...)
					break
				}
			}
		}
		newKey[key] = true
		entries = append(entries, entry{p.name, p.archName, statusText(p.arch.control, conf, status)})
	}
	if st, ok := parent.Files["var/lib/dpkg/status"]; ok {
		for _, para := range splitParagraphs(st) {
			s, err := parseStanza(para)
			if err != nil {
				return fmt.Errorf("parse parent var/lib/dpkg/status: %w", err)
			}
			name, arch := s.get("Package"), s.get("Architecture")
			if newKey[name+":"+arch] || (arch == "all" && anyArch(newKey, name)) || (arch != "all" && newKey[name+":all"]) {
				continue // replaced by the new version
			}
			entries = append(entries, entry{name, arch, para})
		}
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].name != entries[j].name {
			return entries[i].name < entries[j].name
		}
		return entries[i].arch < entries[j].arch
	})
	var buf bytes.Buffer
	for _, e := range entries {
		buf.Write(bytes.TrimRight(e.text, "\n"))
		buf.WriteString("\n\n")
	}
	return w.generated(tar.Header{Typeflag: tar.TypeReg, Name: "var/lib/dpkg/status", Mode: 0o644}, buf.Bytes())
}

func anyArch(keys map[string]bool, name string) bool {
	for k := range keys {
		if strings.HasPrefix(k, name+":") {
			return true
		}
	}
	return false
}

// splitParagraphs splits a deb822 file into its paragraphs, verbatim.
func splitParagraphs(b []byte) [][]byte {
	var out [][]byte
	for _, p := range bytes.Split(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
		p = bytes.Trim(p, "\n")
		if len(p) > 0 {
			out = append(out, append(p, '\n'))
		}
	}
	return out
}

// joinPath is path.Join for root-relative paths.
func joinPath(elem ...string) string {
	return strings.TrimPrefix(path.Join(elem...), "/")
}
