package deblayer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Deb is one downloaded, already verified .deb archive.
type Deb struct {
	// Name identifies the archive in errors and reports, typically its
	// file name.
	Name string
	// R reads the archive.
	R io.ReaderAt
	// Size is the length of the archive in bytes.
	Size int64
	// Open, when R is nil, gives R and Size once the archive can be read:
	// it may still be downloading when Write starts. Write calls it once,
	// for each archive in order, as it decodes ahead.
	Open func(ctx context.Context) (io.ReaderAt, int64, error)
}

// OpenFile opens the .deb at path. The caller must close the returned
// io.Closer once Write has returned.
func OpenFile(path string) (Deb, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return Deb{}, nil, fmt.Errorf("open .deb: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return Deb{}, nil, fmt.Errorf("stat .deb: %w", err)
	}
	return Deb{Name: path, R: f, Size: fi.Size()}, f, nil
}

// arMember is one member of an ar(1) archive.
type arMember struct {
	name string
	data *io.SectionReader
}

// readAr lists the members of a .deb's ar(1) archive.
func readAr(r io.ReaderAt, size int64) ([]arMember, error) {
	magic := make([]byte, 8)
	if _, err := r.ReadAt(magic, 0); err != nil {
		return nil, fmt.Errorf("read ar magic: %w", err)
	}
	if string(magic) != "!<arch>\n" {
		return nil, errors.New("not an ar archive (a .deb starts with \"!<arch>\\n\")")
	}
	var members []arMember
	off := int64(8)
	hdr := make([]byte, 60)
	for off < size {
		if _, err := r.ReadAt(hdr, off); err != nil {
			return nil, fmt.Errorf("read ar header at %d: %w", off, err)
		}
		if string(hdr[58:60]) != "`\n" {
			return nil, fmt.Errorf("bad ar header at offset %d", off)
		}
		name := strings.TrimRight(string(hdr[0:16]), " ")
		name = strings.TrimSuffix(name, "/")
		n, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || n < 0 || off+60+n > size {
			return nil, fmt.Errorf("bad ar member size for %q at offset %d", name, off)
		}
		members = append(members, arMember{name: name, data: io.NewSectionReader(r, off+60, n)})
		off += 60 + n
		if n%2 == 1 {
			off++
		}
	}
	return members, nil
}

// decompress returns a reader of the decompressed contents of an ar
// member named like "data.tar.xz".
func decompress(m arMember) (io.ReadCloser, error) {
	ext := path.Ext(m.name)
	switch ext {
	case ".tar":
		return io.NopCloser(m.data), nil
	case ".gz":
		zr, err := gzip.NewReader(m.data)
		if err != nil {
			return nil, err
		}
		return zr, nil
	case ".xz":
		if err := checkXZ(m.data, m.data.Size()); err != nil {
			return nil, err
		}
		xr, err := xz.NewReader(bufio.NewReader(m.data))
		if err != nil {
			return nil, err
		}
		return io.NopCloser(xr), nil
	case ".zst":
		// Bound the window (zstd --long uses 128 MiB; dpkg-deb 8 MiB) so a
		// frame header cannot make the decoder allocate gigabytes.
		zr, err := zstd.NewReader(m.data, zstd.WithDecoderMaxWindow(128<<20), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("unsupported compression %q (want .tar, .tar.gz, .tar.xz or .tar.zst)", ext)
}

// debArchive is an opened .deb: its control members and its data member.
type debArchive struct {
	deb      Deb
	control  stanza
	members  map[string][]byte // control.tar members by base name, except "control"
	names    []string          // member names in archive order
	dataTar  arMember
	ctrlText []byte
}

// openDeb reads the ar structure and the control.tar of d.
func openDeb(d Deb) (*debArchive, error) {
	members, err := readAr(d.R, d.Size)
	if err != nil {
		return nil, err
	}
	a := &debArchive{deb: d, members: map[string][]byte{}}
	var haveControl, haveData bool
	for _, m := range members {
		switch {
		case strings.HasPrefix(m.name, "control.tar"):
			if err := a.readControlTar(m); err != nil {
				return nil, fmt.Errorf("read %s: %w", m.name, err)
			}
			haveControl = true
		case strings.HasPrefix(m.name, "data.tar"):
			a.dataTar = m
			haveData = true
		}
	}
	if !haveControl || !haveData {
		return nil, errors.New("missing control.tar or data.tar member")
	}
	if a.ctrlText == nil {
		return nil, errors.New("control.tar has no control file")
	}
	a.control, err = parseStanza(a.ctrlText)
	if err != nil {
		return nil, fmt.Errorf("parse control: %w", err)
	}
	for _, f := range []string{"Package", "Version", "Architecture"} {
		if a.control.get(f) == "" {
			return nil, fmt.Errorf("control file has no %s field", f)
		}
	}
	return a, nil
}

func (a *debArchive) readControlTar(m arMember) error {
	rc, err := decompress(m)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		total += h.Size
		if total > maxControl {
			return fmt.Errorf("control members larger than %d bytes in all (decompression bomb?)", maxControl)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if strings.Contains(name, "/") || name == "." || name == ".." {
			continue
		}
		if h.Size > 64<<20 {
			return fmt.Errorf("control member %s is too large (%d bytes)", name, h.Size)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if name == "control" {
			a.ctrlText = b
			continue
		}
		a.members[name] = b
		a.names = append(a.names, name)
	}
}

// field is one field of a deb822 stanza; value holds everything after the
// colon, continuation lines included, without the trailing newline.
type field struct {
	name, value string
}

// stanza is one deb822 paragraph with fields in file order.
type stanza []field

func (s stanza) get(name string) string {
	for _, f := range s {
		if strings.EqualFold(f.name, name) {
			return strings.TrimSpace(f.value)
		}
	}
	return ""
}

// parseStanza parses a single deb822 paragraph.
func parseStanza(b []byte) (stanza, error) {
	ss, err := parseStanzas(b)
	if err != nil {
		return nil, err
	}
	if len(ss) != 1 {
		return nil, fmt.Errorf("want 1 paragraph, found %d", len(ss))
	}
	return ss[0], nil
}

// parseStanzas parses blank-line separated deb822 paragraphs.
func parseStanzas(b []byte) ([]stanza, error) {
	var out []stanza
	var cur stanza
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
		case line[0] == ' ' || line[0] == '\t':
			if len(cur) == 0 {
				return nil, fmt.Errorf("line %d: continuation line without a field", i+1)
			}
			cur[len(cur)-1].value += "\n" + line
		case line[0] == '#':
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not a \"Field: value\" line", i+1, line)
			}
			cur = append(cur, field{name: k, value: strings.TrimLeft(v, " \t")})
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// dpkgFieldOrder is the order in which dpkg writes known fields to its
// status file (lib/dpkg/parse.c fieldinfos); other fields follow in their
// original order.
func dpkgFieldOrder() []string {
	return []string{
		"Package", "Essential", "Protected", "Status", "Priority", "Section",
		"Installed-Size", "Origin", "Maintainer", "Bugs", "Architecture",
		"Multi-Arch", "Source", "Version", "Config-Version", "Replaces",
		"Provides", "Depends", "Pre-Depends", "Recommends", "Suggests", "Breaks",
		"Conflicts", "Enhances", "Conffiles", "Description", "Triggers-Pending",
		"Triggers-Awaited",
	}
}

// statusText renders s as dpkg writes an installed package to its status
// file.
func statusText(s stanza, conffiles []string, status string) []byte {
	order := dpkgFieldOrder()
	rank := map[string]int{}
	for i, n := range order {
		rank[strings.ToLower(n)] = i
	}
	known := map[int]field{}
	var other []field
	for _, f := range s {
		ln := strings.ToLower(f.name)
		switch ln {
		case "status", "config-version", "conffiles", "triggers-pending", "triggers-awaited":
			continue
		case "essential", "protected":
			if f.value != "yes" {
				continue
			}
		}
		if r, ok := rank[ln]; ok {
			known[r] = f
		} else {
			other = append(other, f)
		}
	}
	known[rank["status"]] = field{"Status", status}
	if len(conffiles) > 0 {
		known[rank["conffiles"]] = field{"Conffiles", "\n " + strings.Join(conffiles, "\n ")}
	}
	var buf bytes.Buffer
	write := func(f field) {
		buf.WriteString(f.name)
		buf.WriteString(":")
		if f.value != "" && f.value[0] != '\n' {
			buf.WriteString(" ")
		}
		buf.WriteString(f.value)
		buf.WriteString("\n")
	}
	for i := range order {
		if f, ok := known[i]; ok {
			write(f)
		}
	}
	for _, f := range other {
		write(f)
	}
	return buf.Bytes()
}
