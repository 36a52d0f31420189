package wheelinstall

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/kiln-build/kiln/pkg/layer/tarheader"
)

// Limits bounds what Install accepts from an archive, against zip bombs.
// A zero field takes its default.
type Limits struct {
	// MaxTotalSize caps the sum of the entries' uncompressed sizes.
	// Default 8 GiB.
	MaxTotalSize int64
	// MaxEntries caps the number of entries in the archive. Default 500000.
	MaxEntries int
	// MaxRatio caps an entry's uncompressed-to-compressed size ratio; it
	// applies to entries larger than 1 MiB. Default 200.
	MaxRatio int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = 8 << 30
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = 500000
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = 200
	}
	return l
}

// Options controls an installation.
type Options struct {
	// Epoch is the modification time of every entry written, in whole
	// seconds; the zero time means the Unix epoch.
	Epoch time.Time
	// Requested writes the dist-info REQUESTED marker, which pip writes for
	// distributions the user asked for rather than dependencies.
	Requested bool
	// Dirs holds the directories already present in the layer (tar paths,
	// no trailing slash). Install writes an entry for each parent directory
	// not in it and adds it, so several wheels written to one layer share
	// directory entries. When nil, Install writes every parent directory.
	Dirs map[string]bool
	// Limits bounds the archive; see Limits.
	Limits Limits
}

// Installed describes an installed distribution.
type Installed struct {
	// Name and Version are from the wheel's METADATA.
	Name, Version string
	// Files are the tar paths of the regular files written, sorted.
	Files []string
	// Size is the total size in bytes of those files.
	Size int64
}

// Install writes the wheel (size bytes read from wheel, named filename) into
// tw under scheme, as pip would install it, and returns what it wrote.
//
// Install checks the whole wheel before writing anything: on error nothing
// has been written to tw (unless wheel changes underneath or tw fails).
// Entries are written in path order with uid and gid 0, mode 0755 for
// scripts and for files the archive marks executable and 0644 otherwise,
// and mtime opts.Epoch.
func Install(ctx context.Context, tw *tar.Writer, wheel io.ReaderAt, size int64, filename string, scheme Scheme, opts Options) (Installed, error) {
	p, err := plan(ctx, wheel, size, filename, scheme, opts)
	if err != nil {
		return Installed{}, err
	}
	return p.write(ctx, tw, opts)
}

// output is one file Install writes.
type output struct {
	dest string
	mode int64
	size int64

	// zf is the archive entry the content comes from; nil for generated
	// files, whose content is data.
	zf   *zip.File
	data []byte
	// skip and prefix rewrite a script's shebang: the first skip bytes of
	// zf are replaced by prefix.
	skip   int64
	prefix []byte
	// sum is the sha256 of the content as written (checked again while
	// writing).
	sum []byte
}

type installPlan struct {
	wheel   string
	name    string
	version string
	outputs []*output
}

// entry is a regular file of the archive.
type entry struct {
	zf   *zip.File
	name string
	exec bool
}

func plan(ctx context.Context, wheel io.ReaderAt, size int64, filename string, scheme Scheme, opts Options) (*installPlan, error) {
	fn, err := parseFilename(filename)
	if err != nil {
		return nil, err
	}
	if err := scheme.validate(); err != nil {
		return nil, fmt.Errorf("install %s: %w", filename, err)
	}
	limits := opts.Limits.withDefaults()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("install %s: "+format, append([]any{filename}, args...)...)
	}

	zr, err := zip.NewReader(wheel, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fail("not a valid zip archive (%v); download the wheel again or rebuild it", err)
	}
	if len(zr.File) > limits.MaxEntries {
		return nil, fail("%d archive entries, more than the limit of %d", len(zr.File), limits.MaxEntries)
	}

	// Check every name and collect the regular files.
	var total uint64
	seen := map[string]bool{}
	tops := map[string]bool{}
	byName := map[string]*entry{}
	var entries []*entry
	for _, zf := range zr.File {
		name := zf.Name
		if err := checkEntryName(zf); err != nil {
			return nil, fail("entry %q: %v", name, err)
		}
		if seen[name] {
			return nil, fail("entry %q appears twice in the archive", name)
		}
		seen[name] = true
		top, _, _ := strings.Cut(name, "/")
		tops[top] = true

		total += zf.UncompressedSize64
		if total > uint64(limits.MaxTotalSize) {
			return nil, fail("uncompressed size passes the limit of %d bytes (zip bomb?)", limits.MaxTotalSize)
		}
		if zf.UncompressedSize64 > 1<<20 && zf.UncompressedSize64/max(zf.CompressedSize64, 1) > uint64(limits.MaxRatio) {
			return nil, fail("entry %q expands %d bytes to %d, more than %dx (zip bomb?)", name, zf.CompressedSize64, zf.UncompressedSize64, limits.MaxRatio)
		}

		mode := zf.ExternalAttrs >> 16
		typ := mode & 0o170000
		isDir := strings.HasSuffix(name, "/")
		switch {
		case isDir && (typ == 0 || typ == 0o040000):
			continue
		case isDir:
			return nil, fail("entry %q is a directory name but its mode says otherwise", name)
		case typ == 0o120000:
			return nil, fail("entry %q is a symlink; wheels cannot carry symlinks, rebuild the wheel without them", name)
		case typ == 0o040000:
			return nil, fail("entry %q is a directory without a trailing slash", name)
		case typ != 0 && typ != 0o100000:
			return nil, fail("entry %q is not a regular file (mode %o)", name, mode)
		}
		e := &entry{zf: zf, name: name, exec: typ == 0o100000 && mode&0o111 != 0}
		entries = append(entries, e)
		byName[name] = e
	}

	// The .dist-info directory.
	var infoDirs []string
	for t := range tops {
		if strings.HasSuffix(t, ".dist-info") {
			infoDirs = append(infoDirs, t)
		}
	}
	sort.Strings(infoDirs)
	switch len(infoDirs) {
	case 0:
		return nil, fail("no .dist-info directory in the archive")
	case 1:
	default:
		return nil, fail("several .dist-info directories: %s", strings.Join(infoDirs, ", "))
	}
	infoDir := infoDirs[0]
	infoName := strings.TrimSuffix(infoDir, ".dist-info")
	if i := strings.LastIndexByte(infoName, '-'); i >= 0 {
		infoName = infoName[:i]
	}
	if canonicalName(infoName) != canonicalName(fn.name) {
		return nil, fail(".dist-info directory %q does not belong to %q; the file name and the wheel's contents disagree", infoDir, fn.name)
	}

	readSmall := func(name string) ([]byte, error) {
		e := byName[name]
		if e == nil {
			return nil, fmt.Errorf("%s is missing", name)
		}
		if e.zf.UncompressedSize64 > 64<<20 {
			return nil, fmt.Errorf("%s is larger than 64 MiB", name)
		}
		rc, err := e.zf.Open()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		return b, nil
	}

	// WHEEL.
	wheelData, err := readSmall(infoDir + "/WHEEL")
	if err != nil {
		return nil, fail("%v", err)
	}
	if !utf8.Valid(wheelData) {
		return nil, fail("%s/WHEEL is not UTF-8", infoDir)
	}
	wh := parseHeaders(string(wheelData))
	wv, ok := wh["wheel-version"]
	if !ok {
		return nil, fail("%s/WHEEL has no Wheel-Version", infoDir)
	}
	major, _, _ := strings.Cut(wv, ".")
	if n, err := strconv.Atoi(major); err != nil || n < 0 || n > 1 {
		// pip accepts 0.x and 1.x; a newer major version may change the
		// format in ways an installer must understand.
		return nil, fail("Wheel-Version %q is not supported (want 1.x or older)", wv)
	}
	libDir := scheme.Platlib
	if strings.EqualFold(wh["root-is-purelib"], "true") {
		libDir = scheme.Purelib
	}

	// METADATA.
	metaData, err := readSmall(infoDir + "/METADATA")
	if err != nil {
		return nil, fail("%v", err)
	}
	meta := parseHeaders(string(metaData))
	if canonicalName(meta["name"]) != canonicalName(fn.name) {
		return nil, fail("METADATA names %q but the file name says %q", meta["name"], fn.name)
	}
	if meta["version"] == "" {
		return nil, fail("METADATA has no Version")
	}

	// RECORD.
	recordName := infoDir + "/RECORD"
	recordData, err := readSmall(recordName)
	if err != nil {
		return nil, fail("%v", err)
	}
	rows, err := parseRecord(recordData)
	if err != nil {
		return nil, fail("parse %s: %v", recordName, err)
	}
	recorded := map[string]recordRow{}
	for _, r := range rows {
		if prev, dup := recorded[r.path]; dup && prev != r {
			return nil, fail("%s lists %q twice with different hashes", recordName, r.path)
		}
		recorded[r.path] = r
	}

	// Entry points.
	var console, gui []entryPoint
	if _, ok := byName[infoDir+"/entry_points.txt"]; ok {
		b, err := readSmall(infoDir + "/entry_points.txt")
		if err != nil {
			return nil, fail("%v", err)
		}
		if !utf8.Valid(b) {
			return nil, fail("%s/entry_points.txt is not UTF-8", infoDir)
		}
		console, gui, err = parseEntryPoints(string(b))
		if err != nil {
			return nil, fail("parse %s/entry_points.txt: %v", infoDir, err)
		}
	}

	headers := path.Join(scheme.Headers, strings.ReplaceAll(fn.name, "_", "-"))
	schemes := map[string]string{
		"purelib": scheme.Purelib,
		"platlib": scheme.Platlib,
		"headers": headers,
		"scripts": scheme.Scripts,
		"data":    scheme.Data,
	}

	// Map entries to destinations and verify them against RECORD.
	p := &installPlan{wheel: filename, name: meta["name"], version: meta["version"]}
	installed := map[string]string{} // archive path -> RECORD path
	changed := map[string]*output{}  // RECORD path -> rewritten script
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch e.name {
		case infoDir + "/INSTALLER", infoDir + "/REQUESTED", infoDir + "/direct_url.json":
			return nil, fail("entry %q is written by installers, not by wheels; rebuild the wheel without it", e.name)
		}
		top, rest, _ := strings.Cut(e.name, "/")
		dest := path.Join(libDir, e.name)
		isScript := false
		if strings.HasSuffix(top, ".data") {
			key, sub, ok := strings.Cut(rest, "/")
			if !ok {
				return nil, fail("unexpected file %q: .data directory contents should be named <scheme key>/<path>", e.name)
			}
			dir, ok := schemes[key]
			if !ok {
				return nil, fail("unknown scheme key %q (for file %q): .data subdirectories must be one of data, headers, platlib, purelib, scripts", key, e.name)
			}
			dest = path.Join(dir, sub)
			isScript = key == "scripts"
		}
		exempt := e.name == recordName || e.name == recordName+".jws" || e.name == recordName+".p7s"
		var row recordRow
		if !exempt {
			var ok bool
			row, ok = recorded[e.name]
			if !ok || row.hash == "" {
				return nil, fail("entry %q is not listed with a hash in RECORD; the wheel was altered or badly built", e.name)
			}
		}
		if isScript && isEntrypointWrapper(path.Base(dest), console, gui) {
			// pip drops setuptools' wrappers; their RECORD rows stay as
			// they are. Still verify them.
			if _, _, err := verify(e, row, ""); err != nil {
				return nil, fail("%v", err)
			}
			continue
		}
		interp := ""
		if isScript {
			interp = scheme.Interpreter
		}
		sum, fix, err := verify(e, row, interp)
		if err != nil {
			return nil, fail("%v", err)
		}
		if e.name == recordName {
			continue // replaced by the new RECORD below
		}
		o := &output{dest: dest, zf: e.zf, mode: 0o644, size: int64(e.zf.UncompressedSize64), sum: sum}
		if e.exec {
			o.mode = 0o755
		}
		rel := relPath(libDir, dest)
		installed[e.name] = rel
		if fix != nil {
			o.skip, o.prefix = fix.skip, fix.prefix
			o.size = o.size - fix.skip + int64(len(fix.prefix))
			changed[rel] = o
		}
		p.outputs = append(p.outputs, o)
	}

	// Generated scripts.
	var specs []string
	specs = append(specs, consoleSpecs(console, scheme.PythonVersion)...)
	nConsole := len(specs)
	for _, ep := range gui {
		specs = append(specs, ep.name+" = "+ep.value)
	}
	var generated []*output
	for i, spec := range specs {
		s, err := makeScript(spec, scheme.Interpreter)
		if err != nil {
			group := "console_scripts"
			if i >= nConsole {
				group = "gui_scripts"
			}
			return nil, fail("%s in %s/entry_points.txt: %v", group, infoDir, err)
		}
		generated = append(generated, genOutput(path.Join(scheme.Scripts, s.name), 0o755, s.text))
	}
	distInfo := path.Join(libDir, infoDir)
	generated = append(generated, genOutput(distInfo+"/INSTALLER", 0o644, []byte("kiln\n")))
	if opts.Requested {
		generated = append(generated, genOutput(distInfo+"/REQUESTED", 0o644, nil))
	}

	// The new RECORD, as pip writes it.
	var out []recordRow
	for _, r := range rows {
		np, ok := installed[r.path]
		if ok {
			delete(installed, r.path)
		} else {
			np = r.path
		}
		if o, ok := changed[np]; ok {
			r = recordRow{np, recordHash(o.sum), strconv.FormatInt(o.size, 10)}
		} else {
			r.path = np
		}
		out = append(out, r)
	}
	for _, g := range generated {
		out = append(out, recordRow{relPath(libDir, g.dest), recordHash(g.sum), strconv.FormatInt(g.size, 10)})
	}
	for _, np := range installed { // files RECORD does not list (only its signatures)
		out = append(out, recordRow{np, "", ""})
	}
	rec := genOutput(distInfo+"/RECORD", 0o644, writeRecord(out))
	rec.sum = nil // RECORD is not hashed
	generated = append(generated, rec)
	p.outputs = append(p.outputs, generated...)

	// Collisions: exact, by case or Unicode normalisation, file against
	// directory.
	fold := cases.Fold()
	files := map[string]string{}
	for _, o := range p.outputs {
		k := fold.String(norm.NFC.String(o.dest))
		if prev, ok := files[k]; ok {
			return nil, fail("%q and %q would be installed to the same path (paths collide on case-insensitive or normalising file systems)", prev, o.dest)
		}
		files[k] = o.dest
		if opts.Dirs[o.dest] {
			return nil, fail("%q would replace a directory already in the layer", o.dest)
		}
	}
	for _, o := range p.outputs {
		for d := path.Dir(o.dest); d != "."; d = path.Dir(d) {
			if prev, ok := files[fold.String(norm.NFC.String(d))]; ok {
				return nil, fail("%q is installed as a file but %q needs it to be a directory", prev, o.dest)
			}
		}
	}
	sort.Slice(p.outputs, func(i, j int) bool { return p.outputs[i].dest < p.outputs[j].dest })
	return p, nil
}

func genOutput(dest string, mode int64, data []byte) *output {
	s := sha256.Sum256(data)
	return &output{dest: dest, mode: mode, size: int64(len(data)), data: data, sum: s[:]}
}

// checkEntryName refuses archive names that could escape the target or
// that would unpack differently elsewhere.
func checkEntryName(zf *zip.File) error {
	name := zf.Name
	switch {
	case name == "":
		return errors.New("empty name")
	case !utf8.ValidString(name):
		return errors.New("name is not UTF-8")
	case zf.NonUTF8 && !isASCII(name):
		return errors.New("non-ASCII name without the zip UTF-8 flag")
	case strings.HasPrefix(name, "/"):
		return errors.New("absolute path")
	case strings.ContainsAny(name, "\\\x00"):
		return errors.New(`name contains a backslash or NUL`)
	case len(name) >= 2 && name[1] == ':':
		return errors.New("drive letter in path")
	}
	for _, c := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		switch c {
		case "":
			return errors.New("empty path component")
		case ".", "..":
			return errors.New(`path contains "." or ".."`)
		}
		if strings.HasPrefix(c, ".wh.") {
			return errors.New("a name starting with .wh. is an OCI whiteout and would delete files of the parent image")
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// shebangFix says how a script's first line is rewritten: the first skip
// bytes of the entry are replaced by prefix.
type shebangFix struct {
	skip   int64
	prefix []byte
}

// verify reads e and checks it against its RECORD row (unless the row has
// no hash). When interp is not empty, a "#!python" first line is rewritten
// to it, as pip's fix_script does. It returns the sha256 of the content as
// installed and the rewrite, if any.
func verify(e *entry, row recordRow, interp string) ([]byte, *shebangFix, error) {
	var check hash.Hash
	var want recordDigest
	if row.hash != "" {
		d, err := parseDigest(row.hash)
		if err != nil {
			return nil, nil, fmt.Errorf("RECORD entry for %q: %v", e.name, err)
		}
		want, check = d, newHash(d.algo)
	}
	if row.size != "" {
		n, err := strconv.ParseInt(row.size, 10, 64)
		if err != nil || n != int64(e.zf.UncompressedSize64) {
			return nil, nil, fmt.Errorf("entry %q is %d bytes but RECORD says %q; the wheel was altered or is corrupt", e.name, e.zf.UncompressedSize64, row.size)
		}
	}
	installed := sha256.New()
	var sw *shebangWriter
	ws := []io.Writer{}
	if check != nil {
		ws = append(ws, check)
	}
	if interp != "" {
		sw = &shebangWriter{out: installed, prefix: []byte("#!" + interp + "\n")}
		ws = append(ws, sw)
	} else {
		ws = append(ws, installed)
	}
	if err := readEntry(e, io.MultiWriter(ws...)); err != nil {
		return nil, nil, err
	}
	if check != nil && !bytes.Equal(check.Sum(nil), want.sum) {
		return nil, nil, fmt.Errorf("entry %q does not match its RECORD hash; the wheel was altered or is corrupt", e.name)
	}
	var fix *shebangFix
	if sw != nil {
		sw.close()
		if sw.rewrite {
			fix = &shebangFix{skip: sw.skip, prefix: sw.prefix}
		}
	}
	return installed.Sum(nil), fix, nil
}

// readEntry copies e's content to w.
func readEntry(e *entry, w io.Writer) error {
	rc, err := e.zf.Open()
	if err != nil {
		return fmt.Errorf("open entry %q: %v (the archive is corrupt)", e.name, err)
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil {
		return fmt.Errorf("read entry %q: %v (the archive is corrupt)", e.name, err)
	}
	if uint64(n) != e.zf.UncompressedSize64 {
		return fmt.Errorf("entry %q is %d bytes but declares %d (the archive is corrupt)", e.name, n, e.zf.UncompressedSize64)
	}
	return nil
}

// shebangWriter passes content through to out, replacing a first line that
// starts with "#!python" by prefix.
type shebangWriter struct {
	out     io.Writer
	prefix  []byte
	head    []byte // the first bytes, until the first line is decided
	state   int    // 0 undecided, 1 skipping the first line, 2 passing through
	rewrite bool
	skip    int64
}

const pythonShebang = "#!python"

func (s *shebangWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		switch s.state {
		case 0:
			take := min(len(pythonShebang)-len(s.head), len(b))
			s.head = append(s.head, b[:take]...)
			b = b[take:]
			if len(s.head) == len(pythonShebang) {
				if string(s.head) == pythonShebang {
					s.rewrite, s.skip, s.state = true, int64(len(s.head)), 1
				} else {
					s.out.Write(s.head)
					s.state = 2
				}
			}
		case 1:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				s.skip += int64(len(b))
				return n, nil
			}
			s.skip += int64(i + 1)
			b = b[i+1:]
			s.out.Write(s.prefix)
			s.state = 2
		default:
			s.out.Write(b)
			return n, nil
		}
	}
	return n, nil
}

// close settles content that ended before the first line did.
func (s *shebangWriter) close() {
	switch s.state {
	case 0:
		s.out.Write(s.head)
	case 1:
		s.out.Write(s.prefix)
	}
	s.state = 2
}

// write streams the plan into tw.
func (p *installPlan) write(ctx context.Context, tw *tar.Writer, opts Options) (Installed, error) {
	dirs := opts.Dirs
	if dirs == nil {
		dirs = map[string]bool{}
	}
	res := Installed{Name: p.name, Version: p.version}
	epoch := normEpoch(opts.Epoch)
	for _, o := range p.outputs {
		if err := ctx.Err(); err != nil {
			return Installed{}, err
		}
		if err := writeParents(tw, o.dest, dirs, epoch); err != nil {
			return Installed{}, fmt.Errorf("install %s: %w", p.wheel, err)
		}
		hdr := tarheader.New(tar.TypeReg, o.dest, o.mode, epoch)
		hdr.Size = o.size
		if err := tw.WriteHeader(hdr); err != nil {
			return Installed{}, fmt.Errorf("install %s: write %s: %w", p.wheel, o.dest, err)
		}
		if err := p.writeContent(tw, o); err != nil {
			return Installed{}, fmt.Errorf("install %s: %w", p.wheel, err)
		}
		res.Files = append(res.Files, o.dest)
		res.Size += o.size
	}
	return res, nil
}

func (p *installPlan) writeContent(tw *tar.Writer, o *output) error {
	if o.zf == nil {
		_, err := tw.Write(o.data)
		if err != nil {
			return fmt.Errorf("write %s: %w", o.dest, err)
		}
		return nil
	}
	rc, err := o.zf.Open()
	if err != nil {
		return fmt.Errorf("open entry %q: %w", o.zf.Name, err)
	}
	defer rc.Close()
	h := sha256.New()
	w := io.MultiWriter(tw, h)
	if o.prefix != nil {
		if _, err := io.CopyN(io.Discard, rc, o.skip); err != nil {
			return fmt.Errorf("read entry %q: %w", o.zf.Name, err)
		}
		if _, err := w.Write(o.prefix); err != nil {
			return fmt.Errorf("write %s: %w", o.dest, err)
		}
	}
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("copy entry %q to %s: %w", o.zf.Name, o.dest, err)
	}
	if o.sum != nil && !bytes.Equal(h.Sum(nil), o.sum) {
		return fmt.Errorf("entry %q changed while it was installed", o.zf.Name)
	}
	return nil
}

// normEpoch returns t in whole seconds, or the Unix epoch for the zero
// time.
func normEpoch(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0)
	}
	return t.Truncate(time.Second)
}

// writeParents writes directory entries for the parents of p that are not
// in dirs, outermost first, and adds them to dirs.
func writeParents(tw *tar.Writer, p string, dirs map[string]bool, epoch time.Time) error {
	var missing []string
	for d := path.Dir(p); d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := tw.WriteHeader(tarheader.New(tar.TypeDir, d, 0o755, epoch)); err != nil {
			return fmt.Errorf("write directory %s: %w", d, err)
		}
		dirs[d] = true
	}
	return nil
}
