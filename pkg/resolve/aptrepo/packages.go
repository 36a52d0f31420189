package aptrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// Package is one stanza of a Packages index or of the dpkg status file.
//
// Relationship fields (Depends and so on) are kept as written; parse them
// with pault.ag/go/debian/dependency.
type Package struct {
	Package       string
	Version       string
	Architecture  string
	MultiArch     string
	Essential     bool
	Priority      string
	Section       string
	Source        string
	InstalledSize int64 // in KiB, as dpkg counts it
	Depends       string
	PreDepends    string
	Recommends    string
	Provides      string
	Conflicts     string
	Breaks        string
	Replaces      string

	// Filename is the .deb's path relative to the archive root.
	Filename string
	// Size is the .deb's length in bytes.
	Size int64
	// SHA256 is the .deb's lower-case hex SHA-256.
	SHA256 string
	// URL is ArchiveRoot + "/" + Filename; empty in dpkg status stanzas.
	URL string

	// Status is the dpkg Status field ("install ok installed"); only set
	// by ParseStatus.
	Status string

	// Raw is the stanza as it appeared in the index, ending in a newline
	// and without the blank separator line.
	Raw []byte
}

// Installed reports whether a dpkg status stanza records the package as
// fully installed.
func (p *Package) Installed() bool {
	f := strings.Fields(p.Status)
	return len(f) == 3 && f[2] == "installed"
}

// ParsePackages parses a decompressed Packages index. archiveRoot is the
// source URI that Filename fields are relative to; it is used to fill in
// Package.URL. Every stanza must have Package, Version, Architecture,
// Filename, Size and SHA256.
func ParsePackages(r io.Reader, archiveRoot string) ([]Package, error) {
	archiveRoot = strings.TrimRight(archiveRoot, "/")
	return parseStanzas(r, func(p *Package, line int) error {
		for _, req := range []struct{ name, v string }{
			{"Package", p.Package}, {"Version", p.Version}, {"Architecture", p.Architecture},
			{"Filename", p.Filename}, {"SHA256", p.SHA256},
		} {
			if req.v == "" {
				return &lineError{line, fmt.Sprintf("package %q has no %s field", p.Package, req.name)}
			}
		}
		if !isHex(p.SHA256, 64) {
			return &lineError{line, fmt.Sprintf("package %q: SHA256 %q is not a SHA-256 hex digest", p.Package, p.SHA256)}
		}
		p.SHA256 = strings.ToLower(p.SHA256)
		if p.Size <= 0 {
			return &lineError{line, fmt.Sprintf("package %q has no positive Size", p.Package)}
		}
		if err := checkRelPath(p.Filename); err != nil {
			return &lineError{line, fmt.Sprintf("package %q: Filename %q: %v", p.Package, p.Filename, err)}
		}
		p.URL = archiveRoot + "/" + p.Filename
		return nil
	})
}

// ParseStatus parses a dpkg status database such as /var/lib/dpkg/status.
// Every stanza must have Package and Status; use Package.Installed to keep
// only installed packages.
func ParseStatus(r io.Reader) ([]Package, error) {
	return parseStanzas(r, func(p *Package, line int) error {
		if p.Package == "" {
			return &lineError{line, "stanza has no Package field"}
		}
		if len(strings.Fields(p.Status)) != 3 {
			return &lineError{line, fmt.Sprintf("package %q: Status %q is not \"<want> <flag> <status>\"", p.Package, p.Status)}
		}
		return nil
	})
}

func checkRelPath(p string) error {
	if strings.HasPrefix(p, "/") || strings.Contains(p, "://") || strings.ContainsAny(p, "?#\\") {
		return errors.New("must be a relative path")
	}
	for rest := p; ; {
		seg, more, found := strings.Cut(rest, "/")
		if seg == ".." || seg == "" {
			return errors.New("must not contain \"..\" or empty segments")
		}
		if !found {
			return nil
		}
		rest = more
	}
}

func parseStanzas(r io.Reader, check func(*Package, int) error) ([]Package, error) {
	// Packages are gathered in chunks and copied into one slice at the
	// end: appending to one slice would copy an index of 60,000 (about
	// 20 MB) a dozen times as it grew.
	var chunks [][]Package
	out, total := make([]Package, 0, 256), 0
	sc := newStanzaScanner(r, false)
	pr := newPackageReader()
	for {
		st, err := sc.next()
		if err == io.EOF {
			if chunks == nil {
				return out, nil
			}
			all := make([]Package, 0, total+len(out))
			for _, c := range append(chunks, out) {
				all = append(all, c...)
			}
			return all, nil
		}
		if err != nil {
			return nil, err
		}
		p, err := pr.read(st)
		if err != nil {
			return nil, err
		}
		p.Raw = st.raw
		if err := check(&p, st.line); err != nil {
			return nil, err
		}
		if len(out) == cap(out) {
			chunks, total = append(chunks, out), total+len(out)
			out = make([]Package, 0, min(2*cap(out), 8192))
		}
		out = append(out, p)
	}
}

// Index is a verified, parsed Packages index.
type Index struct {
	// URL is where the index was fetched from.
	URL string
	// Path is the index's path in the Release file, such as
	// "main/binary-amd64/Packages.xz".
	Path string
	// SHA256 is the hex SHA-256 of the fetched (compressed) file.
	SHA256 string
	// Component and Arch are the arguments FetchPackages was called with.
	Component string
	Arch      string
	// Packages are the index's stanzas in file order.
	Packages []Package
}

// IndexDir returns the directory of the Packages index for component and
// arch, relative to rel.BaseURL: "component/binary-arch/", or "" for a
// flat repository.
func IndexDir(rel *Release, component, arch string) string {
	if rel.Flat {
		return ""
	}
	return component + "/binary-" + arch + "/"
}

// FetchPackages fetches the Packages index of component and arch named by
// rel (as returned by FetchRelease), checks its size and SHA-256 against
// rel, and parses it. It prefers Packages.xz, then Packages.gz, then the
// uncompressed Packages, and fetches by-hash/SHA256/<hex> when the
// Release has Acquire-By-Hash: yes (falling back to the plain name if the
// mirror lacks the by-hash file). component and arch are ignored for flat
// repositories.
func FetchPackages(ctx context.Context, f Fetcher, rel *Release, component, arch string) (*Index, error) {
	return FetchIndex(ctx, f, rel, component, arch, IndexOptions{})
}

// IndexOptions configure FetchIndex.
type IndexOptions struct {
	// XZ is the path of the xz(1) program, which decodes Packages.xz
	// (about 50 MB for Debian's main) in less than half the time of the
	// built-in decoder; "" means the built-in decoder. The parsed index is
	// the same either way.
	XZ string
	// Ahead, when set, may hold the index already fetched and parsed (see
	// Ahead.Parsed); FetchIndex then neither fetches nor parses it again.
	Ahead *Ahead

	// maxDecoded, when positive, bounds the decompressed size of an index.
	maxDecoded int64
}

// errDecodedTooLarge is what parsing an index past IndexOptions.maxDecoded
// gets.
var errDecodedTooLarge = errors.New("the decompressed index is too large")

// limit returns r, failing past o.maxDecoded bytes when that is set.
func (o IndexOptions) limit(r io.Reader) io.Reader {
	if o.maxDecoded <= 0 {
		return r
	}
	return &capReader{r: r, left: o.maxDecoded}
}

// capReader fails with errDecodedTooLarge, and none of the bytes of that
// read, once more than left bytes are read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left < 0 {
		return 0, errDecodedTooLarge
	}
	return n, err
}

// FetchIndex is FetchPackages with options. The index is decompressed
// in a goroutine (or by xz(1)) while it is parsed, so that a build uses
// two cores for it.
func FetchIndex(ctx context.Context, f Fetcher, rel *Release, component, arch string, opts IndexOptions) (*Index, error) {
	fh, err := locateIndex(rel, component, arch)
	if err != nil {
		return nil, err
	}
	if opts.Ahead != nil {
		if url, pkgs, ok := opts.Ahead.Parsed(ctx, fh, rel.ArchiveRoot); ok {
			return &Index{URL: url, Path: fh.Path, SHA256: fh.SHA256, Component: component, Arch: arch, Packages: pkgs}, nil
		}
	}
	data, url, err := fetchIndexFile(ctx, f, rel, component, arch, fh)
	if err != nil {
		return nil, err
	}
	pkgs, err := decodeAndParse(ctx, data, fh.Path, url, rel.ArchiveRoot, opts)
	if err != nil {
		return nil, err
	}
	return &Index{URL: url, Path: fh.Path, SHA256: fh.SHA256, Component: component, Arch: arch, Packages: pkgs}, nil
}

// locateIndex returns rel's entry for the Packages index of component and
// arch, preferring Packages.xz, then Packages.gz, then Packages.
func locateIndex(rel *Release, component, arch string) (FileHash, error) {
	dir := IndexDir(rel, component, arch)
	for _, name := range []string{"Packages.xz", "Packages.gz", "Packages"} {
		if fh, found := rel.File(dir + name); found {
			return fh, nil
		}
	}
	return FileHash{}, fmt.Errorf("%s lists no %sPackages index; check the component (Release has %v) and architecture (Release has %v)", rel.URL, dir, rel.Components, rel.Architectures)
}

// fetchIndexFile fetches the index fh of component and arch (by hash when
// rel says the mirror has it) and checks its size and SHA-256 against fh.
// It returns the file and the URL it came from.
func fetchIndexFile(ctx context.Context, f Fetcher, rel *Release, component, arch string, fh FileHash) ([]byte, string, error) {
	dir := IndexDir(rel, component, arch)
	url := rel.BaseURL + fh.Path
	var data []byte
	var err error
	if rel.AcquireByHash {
		byHash := rel.BaseURL + dir + "by-hash/SHA256/" + fh.SHA256
		data, err = fetchAll(ctx, f, byHash, fh.Size)
		if err == nil {
			url = byHash
		}
	}
	if data == nil {
		if errors.Is(err, errTooLarge) {
			return nil, "", fmt.Errorf("%w (from %s); the mirror is inconsistent or mid-update, retry later", err, rel.URL)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, "", fmt.Errorf("fetch Packages: %w", err)
		}
		if data, err = fetchAll(ctx, f, url, fh.Size); err != nil {
			if errors.Is(err, errTooLarge) {
				return nil, "", fmt.Errorf("%w (from %s); the mirror is inconsistent or mid-update, retry later", err, rel.URL)
			}
			return nil, "", fmt.Errorf("fetch Packages: %w", err)
		}
	}
	if int64(len(data)) != fh.Size {
		return nil, "", fmt.Errorf("%s: got %d bytes, want %d (from %s); the mirror is inconsistent or mid-update, retry later", url, len(data), fh.Size, rel.URL)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != fh.SHA256 {
		return nil, "", fmt.Errorf("%s: got SHA256 %s, want %s (from %s); the mirror is inconsistent or mid-update, retry later", url, got, fh.SHA256, rel.URL)
	}
	return data, url, nil
}

// xzMemLimit bounds the memory xz(1) may use to decode an index (mostly
// the dictionary the stream asks for; Debian's indices use 8 MiB).
const xzMemLimit = 256 << 20

// errParsed is what a decompression writing to a closed pipe gets.
var errParsed = errors.New("the parser stopped reading")

// decodeAndParse decompresses data (fetched from url) as name's extension
// says (.xz, .gz or none) and parses it. The decompression runs
// concurrently with the parse: in xz(1) when opts.XZ names it, else in a
// goroutine.
func decodeAndParse(ctx context.Context, data []byte, name, url, archiveRoot string, opts IndexOptions) ([]Package, error) {
	var decode func(w io.Writer) error
	switch {
	case strings.HasSuffix(name, ".xz") && opts.XZ != "":
		return parseXZ(ctx, data, url, archiveRoot, opts)
	case strings.HasSuffix(name, ".xz"):
		decode = func(w io.Writer) error {
			xr, err := xz.NewReader(bytes.NewReader(data))
			if err != nil {
				return err
			}
			_, err = io.Copy(w, xr)
			return err
		}
	case strings.HasSuffix(name, ".gz"):
		decode = func(w io.Writer) error {
			gr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return err
			}
			defer gr.Close()
			_, err = io.Copy(w, gr)
			return err
		}
	default:
		pkgs, err := ParsePackages(bytes.NewReader(data), archiveRoot)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", url, err)
		}
		return pkgs, nil
	}
	pr, pw := io.Pipe()
	decoded := make(chan error, 1)
	go func() {
		err := decode(pw)
		pw.CloseWithError(err) // nil: the parser sees EOF
		decoded <- err
	}()
	pkgs, parseErr := ParsePackages(opts.limit(pr), archiveRoot)
	if parseErr != nil && !errors.Is(parseErr, errDecodedTooLarge) {
		// Let the decoder finish: a corrupt stream is reported as such,
		// not as the parse error its garbled output gives.
		_, _ = io.Copy(io.Discard, pr)
	}
	pr.CloseWithError(errParsed)
	decodeErr := <-decoded
	switch {
	case decodeErr != nil && !errors.Is(decodeErr, errParsed):
		return nil, fmt.Errorf("decompress %s: %w", url, decodeErr)
	case parseErr != nil:
		return nil, fmt.Errorf("parse %s: %w", url, parseErr)
	}
	return pkgs, nil
}

// parseXZ parses the xz-compressed index data (fetched from url) as xz(1)
// at opts.XZ decompresses it.
func parseXZ(ctx context.Context, data []byte, url, archiveRoot string, opts IndexOptions) ([]Package, error) {
	xzPath := opts.XZ
	cmd := exec.CommandContext(ctx, xzPath, "--decompress", "--stdout", "--quiet", "--no-warn", "--memlimit-decompress="+strconv.Itoa(xzMemLimit))
	cmd.Stdin = bytes.NewReader(data)
	cmd.Env = []string{"LC_ALL=C"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", xzPath, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", xzPath, err)
	}
	pkgs, parseErr := ParsePackages(opts.limit(out), archiveRoot)
	if errors.Is(parseErr, errDecodedTooLarge) {
		_ = cmd.Process.Kill() // what is left could be endless
	} else if parseErr != nil {
		// Let xz finish: a corrupt stream is reported as xz's error, not as
		// the parse error its truncated output gives.
		_, _ = io.Copy(io.Discard, out)
	}
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(parseErr, errDecodedTooLarge):
		return nil, fmt.Errorf("parse %s: %w", url, parseErr)
	case waitErr != nil:
		return nil, fmt.Errorf("decompress %s: xz: %s (%v)", url, strings.TrimSpace(stderr.String()), waitErr)
	case parseErr != nil:
		return nil, fmt.Errorf("parse %s: %w", url, parseErr)
	}
	return pkgs, nil
}
