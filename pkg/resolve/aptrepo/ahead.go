package aptrepo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// maxAheadSuites bounds how many suites one Ahead works on; FetchRelease
// and FetchIndex do any others' work as usual.
const maxAheadSuites = 16

// maxAheadIndex bounds the size of an index Ahead fetches on the word of a
// Release it has not verified (Debian's main Packages.xz is about 9 MB).
const maxAheadIndex = 128 << 20

// maxAheadDecoded bounds the decompressed size of an index Ahead parses
// (Debian's main is about 50 MB): an index it has not verified must not
// take the memory of an arbitrary stream.
const maxAheadDecoded = 256 << 20

// aheadWorkers bounds how many indices an Ahead fetches and parses at once.
const aheadWorkers = 2

// Ahead fetches and parses the Release and Packages indices of sources
// before the keyrings that verify them are at hand: a build starts it
// while the parent image's layers, which hold the sources and keyrings,
// are still streaming. Nothing it fetches is trusted. As a Fetcher it
// hands FetchRelease the Release bytes it fetched, which FetchRelease
// verifies as it would any others; through IndexOptions.Ahead it hands
// FetchIndex a parsed index only when the bytes it parsed have the SHA-256
// and size the verified Release names. Whatever it did not finish, or
// failed at, FetchRelease and FetchIndex do themselves, so its errors are
// never reported.
//
// The zero value is not usable; call NewAhead, and Close when done.
type Ahead struct {
	f      Fetcher
	arch   string
	opts   IndexOptions
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	work   chan struct{}

	mu     sync.Mutex
	suites map[string]bool
	files  map[string]*aheadFile
	parsed map[aheadKey]*aheadIndex
}

// aheadFile is a Release file being fetched.
type aheadFile struct {
	done chan struct{}
	data []byte
	err  error
}

// aheadKey names a parsed index: the SHA-256 and path of the bytes parsed
// and the archive root their Filename fields are relative to.
type aheadKey struct {
	sha256, path, archiveRoot string
}

// aheadIndex is an index being fetched and parsed.
type aheadIndex struct {
	done chan struct{}
	size int64
	url  string
	pkgs []Package
	ok   bool
}

// NewAhead returns an Ahead that fetches with f the indices for the
// Debian architecture arch (and "all"), parsing them with opts. Its work
// stops when ctx is done or Close is called.
func NewAhead(ctx context.Context, f Fetcher, arch string, opts IndexOptions) *Ahead {
	opts.Ahead, opts.maxDecoded = nil, maxAheadDecoded
	ctx, cancel := context.WithCancel(ctx)
	return &Ahead{
		f: f, arch: arch, opts: opts, ctx: ctx, cancel: cancel,
		work:   make(chan struct{}, aheadWorkers),
		suites: map[string]bool{},
		files:  map[string]*aheadFile{},
		parsed: map[aheadKey]*aheadIndex{},
	}
}

// Start begins fetching src's Release files and indices in the background;
// a suite already started is not started again. It does not block.
func (a *Ahead) Start(src Source) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctx.Err() != nil {
		return
	}
	for _, suite := range src.Suites {
		base := ReleaseBaseURL(src, suite)
		if a.suites[base] || len(a.suites) >= maxAheadSuites {
			continue
		}
		a.suites[base] = true
		in := &aheadFile{done: make(chan struct{})}
		a.files[base+"InRelease"] = in
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.suite(src, suite, base, in)
		}()
	}
}

// suite fetches the Release file of src's suite at base (in, already
// registered, is InRelease), and starts on the indices it lists. The
// indices are registered before the Release file is handed out, so that
// FetchIndex, which can only ask once FetchRelease has that file, finds
// them.
func (a *Ahead) suite(src Source, suite, base string, in *aheadFile) {
	in.data, in.err = fetchAll(a.ctx, a.f, base+"InRelease", maxReleaseSize)
	switch {
	case in.err == nil:
		var text []byte
		if block, _ := clearsign.Decode(bytes.TrimLeft(in.data, " \t\r\n")); block != nil {
			text = block.Plaintext
		}
		start := a.indices(src, suite, base, text)
		close(in.done)
		start()
	case errors.Is(in.err, ErrNotFound):
		// FetchRelease asks for Release once it has InRelease's answer:
		// register Release first so that it waits for this fetch.
		plain := &aheadFile{done: make(chan struct{})}
		a.mu.Lock()
		a.files[base+"Release"] = plain
		a.mu.Unlock()
		close(in.done)
		plain.data, plain.err = fetchAll(a.ctx, a.f, base+"Release", maxReleaseSize)
		start := a.indices(src, suite, base, plain.data)
		close(plain.done)
		start()
	default:
		close(in.done)
	}
}

// indices registers the indices the Release text (not verified) of src's
// suite at base lists for Ahead's architectures, and returns what starts
// fetching and parsing them.
func (a *Ahead) indices(src Source, suite, base string, text []byte) (start func()) {
	if text == nil {
		return func() {}
	}
	rel, err := ParseRelease(text)
	if err != nil {
		return func() {}
	}
	rel.place(base, base, src, suite)
	var jobs []func()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, comp := range src.IndexComponents(suite) {
		for _, arch := range rel.IndexArchs(a.arch) {
			fh, err := locateIndex(rel, comp, arch)
			if err != nil || fh.Size > maxAheadIndex {
				continue
			}
			key := aheadKey{sha256: fh.SHA256, path: fh.Path, archiveRoot: src.URI}
			if _, started := a.parsed[key]; started {
				continue
			}
			ix := &aheadIndex{done: make(chan struct{}), size: fh.Size}
			a.parsed[key] = ix
			a.wg.Add(1)
			jobs = append(jobs, func() {
				go func() {
					defer a.wg.Done()
					defer close(ix.done)
					select {
					case a.work <- struct{}{}:
						defer func() { <-a.work }()
					case <-a.ctx.Done():
						return
					}
					data, url, err := fetchIndexFile(a.ctx, a.f, rel, comp, arch, fh)
					if err != nil {
						return
					}
					// fetchIndexFile checked data against fh: key names these
					// bytes whatever the unverified Release says.
					pkgs, err := decodeAndParse(a.ctx, data, fh.Path, url, src.URI, a.opts)
					ix.url, ix.pkgs, ix.ok = url, pkgs, err == nil
				}()
			})
		}
	}
	return func() {
		for _, j := range jobs {
			j()
		}
	}
}

// Fetch implements Fetcher: a Release file Ahead fetched is handed out as
// fetched (waiting for the fetch if it is under way), or as not found;
// anything else, or a fetch that failed otherwise, is fetched again with
// the Fetcher given to NewAhead.
func (a *Ahead) Fetch(ctx context.Context, url string) (io.ReadCloser, error) {
	a.mu.Lock()
	file := a.files[url]
	a.mu.Unlock()
	if file != nil {
		select {
		case <-file.done:
			if file.err == nil {
				return io.NopCloser(bytes.NewReader(file.data)), nil
			}
			if errors.Is(file.err, ErrNotFound) {
				return nil, file.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return a.f.Fetch(ctx, url)
}

// Parsed returns the index fh of a verified Release whose Filename fields
// are relative to archiveRoot, and the URL it was fetched from, if Ahead
// fetched and parsed bytes of fh's SHA-256 and size. It waits for that
// work if it is under way. The packages are shared: do not modify them.
func (a *Ahead) Parsed(ctx context.Context, fh FileHash, archiveRoot string) (string, []Package, bool) {
	a.mu.Lock()
	ix := a.parsed[aheadKey{sha256: fh.SHA256, path: fh.Path, archiveRoot: archiveRoot}]
	a.mu.Unlock()
	if ix == nil || ix.size != fh.Size {
		return "", nil, false
	}
	select {
	case <-ix.done:
	case <-ctx.Done():
		return "", nil, false
	}
	if !ix.ok {
		return "", nil, false
	}
	return ix.url, ix.pkgs, true
}

// Close stops the work under way and waits for it to end.
func (a *Ahead) Close() {
	a.mu.Lock()
	a.cancel()
	a.mu.Unlock()
	a.wg.Wait()
}
