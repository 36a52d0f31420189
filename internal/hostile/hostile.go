// Package hostile generates the hostile archive corpus of testdata/hostile:
// wheels, .debs and image layer tars written to escape the directory they
// are unpacked into, smuggle whiteouts or devices into a layer, exhaust
// memory, or lie about their sizes and hashes; and build contexts (a spec
// with its files) that try to reach host files or get kiln to echo them.
//
// kiln never extracts an archive to the host disk: wheels, .debs and parent
// layers are read as streams and their entries rewritten into layer tars.
// The corpus checks that every entry point (wheelinstall.Install,
// deblayer.Write, rootfs.Read) refuses, or for parent layers confines to
// the image root, each of these archives. Regenerate the files with
//
//	go test ./internal/hostile -run TestHostileCorpus -update
package hostile

//go:generate go test -run ^TestHostileCorpus$ -update

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io/fs"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// CanaryDir is the absolute host path the corpus's escaping entries aim at.
// Nothing may ever be created there.
const CanaryDir = "/tmp/kiln-hostile-canary"

// climb is enough ".." components to reach "/" from any working directory.
const climb = "../../../../../../../../../../../../../../../.."

// Kind is the kind of archive a Case holds.
type Kind string

// The archive kinds of the corpus.
const (
	Wheel Kind = "wheel" // a wheel, installed with wheelinstall.Install
	Deb   Kind = "deb"   // a .deb, unpacked with deblayer.Write
	Layer Kind = "layer" // an uncompressed image layer tar, read with rootfs.Read
	// Context is a build context (ContextSpecDir/kiln.yaml and its files)
	// as a tar, planned offline as kiln name does.
	Context Kind = "context"
)

// Outcome is what the entry point must do with a Case.
type Outcome int

const (
	// Reject: the call fails, its error names the archive and Case.Entry,
	// and (for wheels) nothing was written to the output tar.
	Reject Outcome = iota
	// Confine: the call succeeds, and the hostile entry lands inside the
	// image root at Case.Inside, where a container runtime would also put
	// it; nothing reaches the host.
	Confine
)

// Case is one archive of the corpus.
type Case struct {
	// File is the archive's file name in testdata/hostile; for wheels and
	// .debs it is also the name passed to the entry point.
	File string
	Kind Kind
	// What says what the archive tries.
	What string
	// Want is the required outcome.
	Want Outcome
	// Entry is the hostile member's name as stored, which a Reject error
	// must quote; "" when the archive is unreadable as a whole.
	Entry string
	// Inside is, for Confine, the root-relative path where the hostile
	// entry must land.
	Inside string
	// Data is the archive.
	Data []byte
}

// epoch is the fixed modification time of every generated entry.
var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Corpus generates every Case. The output depends only on the code and the
// compression libraries' versions.
func Corpus() ([]Case, error) {
	var out []Case
	for _, gen := range []func() ([]Case, error){wheels, debs, layers, contexts} {
		cs, err := gen()
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// zent is one member of a generated wheel.
type zent struct {
	name string
	data []byte
	// mode is the Unix mode with type bits; 0 is a regular 0644 file.
	mode uint32
	// declared, when not 0, is the uncompressed size the zip headers
	// claim instead of the real one.
	declared uint64
	// badHash records a wrong sha256 for this member in RECORD.
	badHash bool
}

func b64sum(b []byte) string {
	s := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// wheelFile returns the wheel file name for dist.
func wheelFile(dist string) string { return dist + "-1.0-py3-none-any.whl" }

// buildWheel writes a wheel of dist holding ents plus valid METADATA,
// WHEEL and RECORD (RECORD lists every member with its real hash unless
// badHash).
func buildWheel(dist string, ents []zent) ([]byte, error) {
	info := dist + "-1.0.dist-info/"
	all := append([]zent{}, ents...)
	all = append(all,
		zent{name: info + "METADATA", data: []byte("Metadata-Version: 2.1\nName: " + dist + "\nVersion: 1.0\n")},
		zent{name: info + "WHEEL", data: []byte("Wheel-Version: 1.0\nGenerator: kiln-hostile\nRoot-Is-Purelib: true\nTag: py3-none-any\n")},
	)
	var record strings.Builder
	for _, e := range all {
		sum := b64sum(e.data)
		if e.badHash {
			sum = b64sum(append([]byte("not "), e.data...))
		}
		size := uint64(len(e.data))
		if e.declared != 0 {
			size = e.declared // RECORD agrees with the lying zip headers
		}
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", e.name, sum, size)
	}
	record.WriteString(info + "RECORD,,\n")
	all = append(all, zent{name: info + "RECORD", data: []byte(record.String())})

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range all {
		mode := e.mode
		if mode == 0 {
			mode = 0o100644
		}
		var comp bytes.Buffer
		fw, err := flate.NewWriter(&comp, flate.BestCompression)
		if err != nil {
			return nil, err
		}
		fw.Write(e.data)
		if err := fw.Close(); err != nil {
			return nil, err
		}
		size := uint64(len(e.data))
		if e.declared != 0 {
			size = e.declared
		}
		h := &zip.FileHeader{
			Name:               e.name,
			Method:             zip.Deflate,
			Modified:           epoch,
			CreatorVersion:     3<<8 | 20, // Unix
			ExternalAttrs:      mode << 16,
			CRC32:              crc32.ChecksumIEEE(e.data),
			CompressedSize64:   uint64(comp.Len()),
			UncompressedSize64: size,
		}
		if !isASCII(e.name) {
			h.Flags |= 0x800 // the name is UTF-8
		}
		w, err := zw.CreateRaw(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(comp.Bytes()); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func wheels() ([]Case, error) {
	py := []byte("print('hostile')\n")
	type wc struct {
		dist, what, entry string
		ents              []zent
		truncate          bool
	}
	sym := uint32(fs.ModePerm) | 0o120000
	list := []wc{
		{dist: "abs_path", what: "absolute member path", entry: CanaryDir + "/abs",
			ents: []zent{{name: CanaryDir + "/abs", data: py}}},
		{dist: "dotdot", what: `".." components climbing out of site-packages`, entry: climb + CanaryDir + "/dotdot",
			ents: []zent{{name: climb + CanaryDir + "/dotdot", data: py}}},
		{dist: "symlink_abs", what: "absolute symlink out of the target", entry: "symlink_abs/etc",
			ents: []zent{{name: "symlink_abs/etc", data: []byte("/etc"), mode: sym}}},
		{dist: "symlink_rel", what: "relative symlink out of the target", entry: "symlink_rel/up",
			ents: []zent{{name: "symlink_rel/up", data: []byte(climb + CanaryDir), mode: sym}}},
		{dist: "symlink_through", what: "a symlink to /etc, then a file written through it", entry: "symlink_through/a",
			ents: []zent{{name: "symlink_through/a", data: []byte("/etc"), mode: sym}, {name: "symlink_through/a/passwd", data: []byte("root::0:0::/:/bin/sh\n")}}},
		{dist: "chardev", what: "a character device", entry: "chardev/null",
			ents: []zent{{name: "chardev/null", mode: 0o020666}}},
		{dist: "fifo", what: "a FIFO", entry: "fifo/pipe",
			ents: []zent{{name: "fifo/pipe", mode: 0o010644}}},
		{dist: "case_clash", what: "two members equal after case folding", entry: "case_clash/Mod.py",
			ents: []zent{{name: "case_clash/Mod.py", data: py}, {name: "case_clash/mod.py", data: py}}},
		{dist: "nfc_nfd", what: "two members equal after Unicode NFC normalisation", entry: "nfc_nfd/caf",
			ents: []zent{{name: "nfc_nfd/caf\u00e9.py", data: py}, {name: "nfc_nfd/cafe\u0301.py", data: py}}},
		{dist: "zip_bomb", what: "a 4 MiB member compressed over 1000 times", entry: "zip_bomb/zeros.bin",
			ents: []zent{{name: "zip_bomb/zeros.bin", data: make([]byte, 4<<20)}}},
		{dist: "size_long", what: "a member whose declared size is longer than its data", entry: "size_long/m.py",
			ents: []zent{{name: "size_long/m.py", data: py, declared: 1000}}},
		{dist: "size_short", what: "a member whose declared size is shorter than its data", entry: "size_short/m.py",
			ents: []zent{{name: "size_short/m.py", data: bytes.Repeat(py, 20), declared: 5}}},
		{dist: "whiteout", what: "an OCI whiteout name that would hide the parent's site-packages", entry: ".wh..wh..opq",
			ents: []zent{{name: ".wh..wh..opq", data: nil}}},
		{dist: "record_hash", what: "a member whose sha256 differs from RECORD's", entry: "record_hash/m.py",
			ents: []zent{{name: "record_hash/m.py", data: py, badHash: true}}},
		{dist: "truncated", what: "a wheel cut in half (no central directory)", truncate: true,
			ents: []zent{{name: "truncated/m.py", data: bytes.Repeat(py, 50)}}},
	}
	var out []Case
	for _, c := range list {
		b, err := buildWheel(c.dist, c.ents)
		if err != nil {
			return nil, fmt.Errorf("wheel %s: %w", c.dist, err)
		}
		if c.truncate {
			b = b[:len(b)/2]
		}
		out = append(out, Case{File: wheelFile(c.dist), Kind: Wheel, What: c.what, Want: Reject, Entry: c.entry, Data: b})
	}
	return out, nil
}

// tent is one member of a generated tar.
type tent struct {
	name string
	typ  byte
	link string
	data []byte
	// declared, when not 0, is the size the header claims; the tar then
	// holds data verbatim followed by padding to a block boundary.
	declared int64
}

func file(name, data string) tent      { return tent{name: name, typ: tar.TypeReg, data: []byte(data)} }
func dir(name string) tent             { return tent{name: name, typ: tar.TypeDir} }
func symlink(name, to string) tent     { return tent{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) tent    { return tent{name: name, typ: tar.TypeLink, link: to} }
func special(name string, t byte) tent { return tent{name: name, typ: t} }

// buildTar writes ents as a tar with fixed metadata. A member with a
// declared size gets a lying header.
func buildTar(ents []tent) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, ModTime: epoch, Uname: "root", Gname: "root", Format: tar.FormatGNU}
		switch e.typ {
		case tar.TypeDir:
			h.Mode = 0o755
		case tar.TypeSymlink:
			h.Mode = 0o777
		case tar.TypeChar, tar.TypeBlock:
			h.Devmajor, h.Devminor = 1, 3
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if e.declared != 0 {
			// Write the header alone, then the raw data, so the header
			// lies about it.
			h.Size = 0
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
			if err := tw.Flush(); err != nil {
				return nil, err
			}
			hdr := buf.Bytes()[buf.Len()-512:]
			setTarSize(hdr, e.declared)
			buf.Write(e.data)
			if pad := len(e.data) % 512; pad != 0 {
				buf.Write(make([]byte, 512-pad))
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// setTarSize rewrites the size field of a ustar/GNU header block and its
// checksum.
func setTarSize(hdr []byte, size int64) {
	copy(hdr[124:136], fmt.Sprintf("%011o\x00", size))
	copy(hdr[148:156], "        ")
	var sum int64
	for _, c := range hdr[:512] {
		sum += int64(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

func compress(ext string, b []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch ext {
	case ".gz":
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case ".xz":
		xw, err := xz.NewWriter(&buf)
		if err != nil {
			return nil, err
		}
		xw.Write(b)
		if err := xw.Close(); err != nil {
			return nil, err
		}
	case ".zst":
		zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer zw.Close()
		return zw.EncodeAll(b, nil), nil
	default:
		return b, nil
	}
	return buf.Bytes(), nil
}

// hugeXZDict rewrites the first block header of the xz stream b to ask
// for a 4 GiB LZMA2 dictionary, which a decoder allocates up front.
func hugeXZDict(b []byte) ([]byte, error) {
	b = bytes.Clone(b)
	if len(b) < 13 {
		return nil, fmt.Errorf("xz stream too short")
	}
	hs := (int(b[12]) + 1) * 4
	hdr := b[12 : 12+hs]
	i := bytes.Index(hdr, []byte{0x21, 0x01}) // LZMA2, one property byte
	if i < 0 {
		return nil, fmt.Errorf("no LZMA2 filter in the block header")
	}
	hdr[i+2] = 40 // 4 GiB - 1
	binary.LittleEndian.PutUint32(hdr[hs-4:], crc32.ChecksumIEEE(hdr[:hs-4]))
	return b, nil
}

// debFile returns the .deb file name of package name.
func debFile(name string) string { return name + "_1.0_all.deb" }

// buildDeb writes a .deb of package name whose data.tar holds ents,
// compressed with ext; md5sums lists every regular file with its real
// digest, except those in badMD5, and truncData cuts data.tar's
// compressed stream in half.
func buildDeb(name, ext, extraControl string, ents []tent, badMD5 map[string]bool, truncData bool) ([]byte, error) {
	var sums strings.Builder
	for _, e := range ents {
		if e.typ != tar.TypeReg || e.declared != 0 {
			continue
		}
		s := md5.Sum(e.data)
		if badMD5[e.name] {
			s = md5.Sum(append([]byte("not "), e.data...))
		}
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(s[:]), strings.TrimPrefix(e.name, "./"))
	}
	ctrl, err := buildTar([]tent{
		dir("./"),
		file("./control", "Package: "+name+"\nVersion: 1.0\nArchitecture: all\n"+extraControl+"Maintainer: kiln <kiln@example.com>\nDescription: hostile test package\n"),
		file("./md5sums", sums.String()),
	})
	if err != nil {
		return nil, err
	}
	data, err := buildTar(append([]tent{dir("./")}, ents...))
	if err != nil {
		return nil, err
	}
	if ctrl, err = compress(ext, ctrl); err != nil {
		return nil, err
	}
	if data, err = compress(ext, data); err != nil {
		return nil, err
	}
	if truncData {
		data = data[:len(data)/2]
	}
	if strings.Contains(extraControl, "X-Hostile: xz-dict") {
		if data, err = hugeXZDict(data); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	buf.WriteString("!<arch>\n")
	member := func(name string, b []byte) {
		fmt.Fprintf(&buf, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(b))
		buf.Write(b)
		if len(b)%2 == 1 {
			buf.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar"+ext, ctrl)
	member("data.tar"+ext, data)
	return buf.Bytes(), nil
}

func debs() ([]Case, error) {
	type dc struct {
		name, what, entry, inside string
		want                      Outcome
		ents                      []tent
		badMD5                    map[string]bool
		truncData, truncAr        bool
		ext                       string
		control                   string // extra control fields
	}
	list := []dc{
		{name: "abs-path", what: "absolute member path", entry: CanaryDir + "/abs",
			ents: []tent{file(CanaryDir+"/abs", "x")}},
		{name: "dotdot", what: `".." components`, entry: "./" + climb + CanaryDir + "/dotdot",
			ents: []tent{file("./"+climb+CanaryDir+"/dotdot", "x")}},
		{name: "symlink-abs", what: "an absolute symlink: inside a container it resolves in the image root, as /etc/alternatives links do, so it is kept", want: Confine, inside: "usr/share/symlink-abs/etc",
			ents: []tent{dir("./usr/"), dir("./usr/share/"), dir("./usr/share/symlink-abs/"), symlink("./usr/share/symlink-abs/etc", "/etc")}},
		{name: "symlink-rel", what: "a relative symlink climbing above the image root", entry: "./usr/up",
			ents: []tent{dir("./usr/"), symlink("./usr/up", "../../../.."+CanaryDir)}},
		{name: "symlink-through", what: "a symlink to /etc, then a file written through it", entry: "./a/passwd",
			ents: []tent{symlink("./a", "/etc"), file("./a/passwd", "root::0:0::/:/bin/sh\n")}},
		{name: "hardlink-out", what: `a hard link whose target climbs with ".."`, entry: "./h",
			ents: []tent{hardlink("./h", "../../../../etc/shadow")}},
		{name: "hardlink-parent", what: "a hard link to a file the package does not ship (the parent's /etc/shadow)", entry: "./h",
			ents: []tent{hardlink("./h", "./etc/shadow")}},
		{name: "chardev", what: "a character device", entry: "./dev/evil",
			ents: []tent{dir("./dev/"), special("./dev/evil", tar.TypeChar)}},
		{name: "fifo", what: "a FIFO", entry: "./run/pipe",
			ents: []tent{dir("./run/"), special("./run/pipe", tar.TypeFifo)}},
		{name: "whiteout", what: "an OCI whiteout deleting the parent's /etc/passwd", entry: "./etc/.wh.passwd",
			ents: []tent{dir("./etc/"), file("./etc/.wh.passwd", "")}},
		{name: "opaque", what: "an OCI opaque whiteout hiding the parent's /etc", entry: "./etc/.wh..wh..opq",
			ents: []tent{dir("./etc/"), file("./etc/.wh..wh..opq", "")}},
		{name: "size-long", what: "a member whose declared size is longer than the data", entry: "./usr/lie",
			ents: []tent{dir("./usr/"), {name: "./usr/lie", typ: tar.TypeReg, data: []byte("short"), declared: 1 << 20}}},
		{name: "size-short", what: "a member whose declared size is shorter than the data", entry: "./usr/lie",
			ents: []tent{dir("./usr/"), {name: "./usr/lie", typ: tar.TypeReg, data: bytes.Repeat([]byte("A"), 1500), declared: 5}}},
		{name: "md5-mismatch", what: "a file whose md5 differs from md5sums", entry: "./usr/bin/tool",
			ents: []tent{dir("./usr/"), dir("./usr/bin/"), file("./usr/bin/tool", "#!/bin/sh\necho hostile\n")}, badMD5: map[string]bool{"./usr/bin/tool": true}},
		{name: "bomb", what: "100 MiB of zeros in a package whose Installed-Size says 1 KiB", entry: "./usr/zeros", ext: ".zst", control: "Installed-Size: 1\n",
			ents: []tent{dir("./usr/"), {name: "./usr/zeros", typ: tar.TypeReg, data: make([]byte, 100<<20)}}},
		{name: "xz-dict", what: "a data.tar.xz whose header asks for a 4 GiB dictionary", ext: ".xz", control: "X-Hostile: xz-dict\n",
			ents: []tent{dir("./usr/"), file("./usr/f", "x")}},
		{name: "truncated-ar", what: "a .deb cut in half", truncAr: true,
			ents: []tent{dir("./usr/"), file("./usr/f", strings.Repeat("x", 3000))}},
	}
	var out []Case
	exts := []string{".gz", ".xz", ".zst"}
	for i, c := range list {
		ext := exts[i%len(exts)]
		if c.ext != "" {
			ext = c.ext
		}
		b, err := buildDeb(c.name, ext, c.control, c.ents, c.badMD5, false)
		if err != nil {
			return nil, fmt.Errorf("deb %s: %w", c.name, err)
		}
		if c.truncAr {
			b = b[:len(b)/2]
		}
		out = append(out, Case{File: debFile(c.name), Kind: Deb, What: c.what + " (data.tar" + ext + ")", Want: c.want, Entry: c.entry, Inside: c.inside, Data: b})
	}
	for _, ext := range exts {
		name := "truncated-data" + strings.ReplaceAll(ext, ".", "-")
		b, err := buildDeb(name, ext, "", []tent{dir("./usr/"), file("./usr/f", strings.Repeat("kiln ", 4000))}, nil, true)
		if err != nil {
			return nil, fmt.Errorf("deb %s: %w", name, err)
		}
		out = append(out, Case{File: debFile(name), Kind: Deb, What: "a data.tar" + ext + " stream cut in half", Want: Reject, Data: b})
	}
	return out, nil
}

func layers() ([]Case, error) {
	type lc struct {
		name, what, entry, inside string
		want                      Outcome
		ents                      []tent
		truncate                  bool
	}
	list := []lc{
		{name: "abs-path", what: "absolute member path: read as relative to the image root", want: Confine, inside: "tmp/kiln-hostile-canary/abs",
			ents: []tent{file(CanaryDir+"/abs", "hostile")}},
		{name: "dotdot", what: `".." components: clamped at the image root, as a runtime does`, want: Confine, inside: "tmp/kiln-hostile-canary/dotdot",
			ents: []tent{file(climb+CanaryDir+"/dotdot", "hostile")}},
		{name: "symlink-abs-through", what: "a symlink to /tmp/kiln-hostile-canary then a file through it: lands in the image's directory", want: Confine, inside: "tmp/kiln-hostile-canary/through",
			ents: []tent{symlink("a", CanaryDir), file("a/through", "hostile")}},
		{name: "symlink-rel-through", what: "a relative symlink climbing out, then a file through it: clamped at the image root", want: Confine, inside: "tmp/kiln-hostile-canary/rel",
			ents: []tent{dir("usr/"), symlink("usr/up", "../../../.."+CanaryDir), file("usr/up/rel", "hostile")}},
		{name: "devices", what: "device nodes and a FIFO in /dev, as real base images carry them", want: Confine, inside: "dev/null",
			ents: []tent{dir("dev/"), special("dev/null", tar.TypeChar), special("dev/sda", tar.TypeBlock), special("dev/initctl", tar.TypeFifo)}},
		{name: "hardlink-out", what: "a hard link to a file no layer has (the host's /etc/shadow)", entry: "h",
			ents: []tent{hardlink("h", climb+"/etc/shadow")}},
		{name: "size-long", what: "a member whose declared size is longer than the data", entry: "lie",
			ents: []tent{{name: "lie", typ: tar.TypeReg, data: []byte("short"), declared: 1 << 20}}},
		{name: "size-short", what: "a member whose declared size is shorter than the data", entry: "lie",
			ents: []tent{{name: "lie", typ: tar.TypeReg, data: bytes.Repeat([]byte("A"), 1500), declared: 5}}},
		{name: "truncated", what: "a layer cut in the middle of a file", entry: "etc/big",
			ents: []tent{dir("etc/"), file("etc/big", strings.Repeat("x", 5000))}, truncate: true},
	}
	var out []Case
	for _, c := range list {
		b, err := buildTar(c.ents)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", c.name, err)
		}
		if c.truncate {
			b = b[:2048]
		}
		out = append(out, Case{File: "layer-" + c.name + ".tar", Kind: Layer, What: c.what, Want: c.want, Entry: c.entry, Inside: c.inside, Data: b})
	}
	return out, nil
}
