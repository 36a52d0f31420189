package pypi

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/net/html"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/pep508"
)

// DefaultIndexURL is the index used when the spec names none (pip_index).
const DefaultIndexURL = "https://pypi.org/simple"

// acceptHeader prefers PEP 691 JSON and accepts PEP 503 HTML.
const acceptHeader = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"

// maxPageSize bounds an index page or metadata file read into memory.
const maxPageSize = 256 << 20

// Store keeps downloaded files by SHA-256. *cache.Cache implements it.
type Store interface {
	// Fetch returns the path of the file whose SHA-256 is sum (hex),
	// calling open to download it when the store lacks it, and checking the
	// download against sum (and size when positive) before keeping it.
	Fetch(ctx context.Context, name, sum string, size int64, open cache.Opener) (path string, hit bool, err error)
}

// File is one distribution file listed on an index's project page.
type File struct {
	// Filename is the file's name, from the link (or the JSON filename).
	Filename string
	// URL is the absolute download URL without credentials or fragment.
	URL string
	// SHA256 is the hex SHA-256 the index gives (the "#sha256=" fragment or
	// the JSON hashes), or "" when it gives none.
	SHA256 string
	// Size is the file size from PEP 700 JSON, or 0 when unknown.
	Size int64
	// RequiresPython is the data-requires-python attribute, unescaped.
	RequiresPython string
	// Yanked reports a PEP 592 yanked file; YankedReason may explain why.
	Yanked       bool
	YankedReason string
	// HasMetadata reports that the index serves the file's core metadata
	// at URL+".metadata" (PEP 658/714); MetadataSHA256 is its hash, if given.
	HasMetadata    bool
	MetadataSHA256 string
}

// IndexOptions configures NewIndex.
type IndexOptions struct {
	// Client makes the requests; nil means http.DefaultClient.
	Client *http.Client
	// Netrc is the path of a .netrc file giving credentials for hosts whose
	// URL has none; "" means $HOME/.netrc. A missing file is not an error.
	Netrc string
	// Store receives downloaded wheels (needed by Metadata when the index
	// offers no PEP 658 metadata, and by Download).
	Store Store
}

// Index is a PEP 503 / PEP 691 simple repository.
type Index struct {
	base   *url.URL      // without credentials, path ending in "/"
	user   *url.Userinfo // credentials from the URL, or nil
	client *http.Client
	store  Store

	netrcPath string
	netrcOnce sync.Once
	netrc     *netrc
	netrcErr  error
}

// NewIndex returns the index at rawURL, such as "https://pypi.org/simple"
// or "https://user:token@host/simple/". Credentials in the URL are sent as
// basic auth to that host only and never shown (see auth.RedactURL).
func NewIndex(rawURL string, opts IndexOptions) (*Index, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil && BadUserinfoEscape(rawURL) {
		return nil, fmt.Errorf("index URL %s: %s", auth.RedactURL(rawURL), UserinfoEscapeHint)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("index URL %s is not an http(s) URL such as %s", auth.RedactURL(rawURL), DefaultIndexURL)
	}
	base, user := stripCredentials(u)
	base.Fragment, base.RawFragment = "", ""
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		if base.RawPath != "" {
			base.RawPath += "/"
		}
	}
	ix := &Index{base: base, user: user, store: opts.Store, netrcPath: opts.Netrc}
	c := http.Client{}
	if opts.Client != nil {
		c = *opts.Client
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if next != nil {
			if err := next(req, via); err != nil {
				return err
			}
		} else if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return ix.redirect(req, via)
	}
	ix.client = &c
	if ix.netrcPath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			ix.netrcPath = filepath.Join(home, ".netrc")
		}
	}
	return ix, nil
}

// URL returns the index URL with its credentials redacted, for messages.
func (ix *Index) URL() string {
	if ix.user == nil {
		return ix.base.String()
	}
	u := *ix.base
	u.User = ix.user
	return auth.RedactURL(u.String())
}

// String implements fmt.Stringer with URL.
func (ix *Index) String() string { return ix.URL() }

// NotFoundError reports a project that no index has.
type NotFoundError struct {
	Project string
	// Indexes are the (redacted) URLs of the indexes tried, in order.
	Indexes []string
}

// Error implements error.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("project %q was not found on any index (tried %s): check the name, or add the index that serves it with pip_extra_index_url", e.Project, strings.Join(e.Indexes, ", "))
}

// errNotFound is returned (wrapped) for an HTTP 404.
var errNotFound = errors.New("not found")

// sameOrigin reports whether a and b have the same scheme, host and port
// (an absent port being the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		switch strings.ToLower(u.Scheme) {
		case "http":
			return "80"
		case "https":
			return "443"
		}
		return ""
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// redirect is the index client's CheckRedirect: a redirect from https to
// http is refused, and the credentials of the first request are replaced
// by those authorize gives the new URL (net/http would copy them to any
// port and scheme of the same host name).
func (ix *Index) redirect(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" {
		for _, v := range via {
			if v.URL.Scheme == "https" {
				return fmt.Errorf("refusing the redirect from %s to plain-HTTP %s: credentials and files would travel unprotected; the index must redirect to https", auth.RedactURL(v.URL.String()), auth.RedactURL(req.URL.String()))
			}
		}
	}
	req.Header.Del("Authorization")
	return ix.authorize(req)
}

// authorize adds basic auth to req: the index URL's credentials when req
// goes to the index's exact scheme, host and port, else the netrc entry for
// the request's host. Nothing is sent over plain http for an https index.
func (ix *Index) authorize(req *http.Request) error {
	if req.URL.User != nil {
		req.URL.User = nil // never net/http's implicit basic auth
	}
	if ix.base.Scheme == "https" && req.URL.Scheme != "https" {
		return nil
	}
	if ix.user != nil && sameOrigin(req.URL, ix.base) {
		pw, _ := ix.user.Password()
		req.SetBasicAuth(ix.user.Username(), pw)
		return nil
	}
	ix.netrcOnce.Do(func() {
		if ix.netrcPath != "" {
			ix.netrc, ix.netrcErr = readNetrc(ix.netrcPath)
		}
	})
	if ix.netrcErr != nil {
		return ix.netrcErr
	}
	if e, ok := ix.netrc.lookup(req.URL.Host); ok && (e.login != "" || e.password != "") {
		req.SetBasicAuth(e.login, e.password)
	}
	return nil
}

// get performs a GET of u (which carries no credentials) and returns the
// response of a 200, errNotFound for a 404, or an error naming the URL.
func (ix *Index) get(ctx context.Context, u *url.URL, accept string) (*http.Response, error) {
	u, _ = stripCredentials(u)
	u.Fragment, u.RawFragment = "", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", auth.RedactURL(u.String()), err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if err := ix.authorize(req); err != nil {
		return nil, err
	}
	resp, err := ix.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", auth.RedactURL(u.String()), scrubError(err, ix.user))
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp, nil
	case http.StatusNotFound, http.StatusGone:
		resp.Body.Close()
		return nil, fmt.Errorf("fetching %s: %w", u, errNotFound)
	case http.StatusUnauthorized, http.StatusForbidden:
		resp.Body.Close()
		return nil, fmt.Errorf("fetching %s: HTTP %s: give credentials as https://USER:PASSWORD@host/... in the index URL or in ~/.netrc", u, resp.Status)
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("fetching %s: HTTP %s", u, resp.Status)
	}
}

// scrubError removes a password that may have slipped into err's text.
func scrubError(err error, user *url.Userinfo) error {
	if user == nil {
		return err
	}
	pw, ok := user.Password()
	if !ok {
		pw = user.Username()
	}
	if pw != "" && strings.Contains(err.Error(), pw) {
		return errors.New(auth.RedactSecret(err.Error(), pw))
	}
	return err
}

// Project returns the files the index lists for the project name (which is
// normalised first). A project the index does not have is an error that
// errors.Is(err, ErrProjectNotFound) recognises.
func (ix *Index) Project(ctx context.Context, name string) ([]File, error) {
	norm := pep508.NormalizeName(name)
	page := ix.base.ResolveReference(&url.URL{Path: url.PathEscape(norm) + "/"})
	resp, err := ix.get(ctx, page, acceptHeader)
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("project %q on index %s: %w", norm, ix.URL(), ErrProjectNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading project %q from index %s: %w", norm, ix.URL(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageSize))
	if err != nil {
		return nil, fmt.Errorf("reading project page %s: %w", page, err)
	}
	pageURL, _ := stripCredentials(resp.Request.URL)
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var files []File
	switch {
	case strings.HasPrefix(ct, "application/vnd.pypi.simple.") && strings.HasSuffix(ct, "+json"):
		files, err = parseJSONPage(pageURL, body)
	default:
		files, err = parseHTMLPage(pageURL, body)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing project page %s: %w", page, err)
	}
	return files, nil
}

// ErrProjectNotFound is wrapped by Project's error when the index does not
// have the project (HTTP 404).
var ErrProjectNotFound = errors.New("project not found")

// fileFromLink builds a File from a link on a page.
func fileFromLink(pageURL *url.URL, href string) (File, error) {
	ref, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return File{}, fmt.Errorf("link %q: %w", href, err)
	}
	u := pageURL.ResolveReference(ref)
	frag := u.Fragment
	u, _ = stripCredentials(u)
	u.Fragment, u.RawFragment = "", ""
	f := File{URL: u.String(), Filename: path.Base(u.Path)}
	if algo, sum, ok := strings.Cut(frag, "="); ok && strings.EqualFold(algo, "sha256") {
		f.SHA256 = strings.ToLower(sum)
	}
	return f, nil
}

// parseHTMLPage parses a PEP 503 project page.
func parseHTMLPage(pageURL *url.URL, body []byte) ([]File, error) {
	z := html.NewTokenizer(bytes.NewReader(body))
	base := pageURL
	var files []File
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if errors.Is(z.Err(), io.EOF) {
				return files, nil
			}
			return nil, z.Err()
		case html.StartTagToken, html.SelfClosingTagToken:
			tag, hasAttr := z.TagName()
			if !hasAttr || (string(tag) != "a" && string(tag) != "base") {
				continue
			}
			attrs := map[string]string{}
			for more := true; more; {
				var k, v []byte
				k, v, more = z.TagAttr()
				if _, dup := attrs[string(k)]; !dup {
					attrs[string(k)] = string(v)
				}
			}
			href, ok := attrs["href"]
			if !ok {
				continue
			}
			if string(tag) == "base" {
				if ref, err := url.Parse(href); err == nil {
					base = pageURL.ResolveReference(ref)
				}
				continue
			}
			f, err := fileFromLink(base, href)
			if err != nil {
				return nil, err
			}
			if !plainFilename(f.Filename) {
				continue // a link to a directory or the site root, not a file
			}
			f.RequiresPython = strings.TrimSpace(attrs["data-requires-python"])
			if reason, ok := attrs["data-yanked"]; ok {
				f.Yanked, f.YankedReason = true, reason
			}
			md, ok := attrs["data-core-metadata"]
			if !ok {
				md, ok = attrs["data-dist-info-metadata"]
			}
			if ok && md != "false" {
				f.HasMetadata = true
				if algo, sum, ok := strings.Cut(md, "="); ok && strings.EqualFold(algo, "sha256") {
					f.MetadataSHA256 = strings.ToLower(sum)
				}
			}
			files = append(files, f)
		}
	}
}

// plainFilename reports whether name can be a distribution file's name: a
// single path element, so a hostile index cannot make it name a directory
// or climb out of one.
func plainFilename(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

// parseJSONPage parses a PEP 691 project page.
func parseJSONPage(pageURL *url.URL, body []byte) ([]File, error) {
	var page struct {
		Meta struct {
			APIVersion string `json:"api-version"`
		} `json:"meta"`
		Files []struct {
			Filename         string            `json:"filename"`
			URL              string            `json:"url"`
			Hashes           map[string]string `json:"hashes"`
			RequiresPython   *string           `json:"requires-python"`
			Yanked           json.RawMessage   `json:"yanked"`
			CoreMetadata     json.RawMessage   `json:"core-metadata"`
			DistInfoMetadata json.RawMessage   `json:"dist-info-metadata"`
			Size             int64             `json:"size"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, err
	}
	if major, _, _ := strings.Cut(page.Meta.APIVersion, "."); major != "1" {
		return nil, fmt.Errorf("unsupported simple API version %q (kiln reads 1.x)", page.Meta.APIVersion)
	}
	files := make([]File, 0, len(page.Files))
	for _, jf := range page.Files {
		f, err := fileFromLink(pageURL, jf.URL)
		if err != nil {
			return nil, err
		}
		if jf.Filename != "" {
			f.Filename = jf.Filename
		}
		if !plainFilename(f.Filename) {
			continue // not a distribution file name; never used as a path
		}
		if s := jf.Hashes["sha256"]; s != "" {
			f.SHA256 = strings.ToLower(s)
		}
		if jf.RequiresPython != nil {
			f.RequiresPython = strings.TrimSpace(*jf.RequiresPython)
		}
		f.Size = jf.Size
		var yb bool
		var ys string
		switch {
		case json.Unmarshal(jf.Yanked, &yb) == nil:
			f.Yanked = yb
		case json.Unmarshal(jf.Yanked, &ys) == nil:
			f.Yanked, f.YankedReason = true, ys
		}
		md := jf.CoreMetadata
		if len(md) == 0 {
			md = jf.DistInfoMetadata
		}
		var mb bool
		var mh map[string]string
		switch {
		case json.Unmarshal(md, &mb) == nil:
			f.HasMetadata = mb
		case json.Unmarshal(md, &mh) == nil:
			f.HasMetadata = true
			f.MetadataSHA256 = strings.ToLower(mh["sha256"])
		}
		files = append(files, f)
	}
	return files, nil
}

// HashMismatchError reports a download whose SHA-256 differs from the
// one the index (or a --hash option) promised.
type HashMismatchError struct {
	What     string // the file, e.g. "flask-3.1.3-py3-none-any.whl"
	URL      string // where it came from, redacted
	Want     string // expected hex SHA-256
	Got      string // actual hex SHA-256
	Expected string // where Want came from, e.g. "the index"
}

// Error implements error.
func (e *HashMismatchError) Error() string {
	return fmt.Sprintf("sha256 of %s downloaded from %s is %s, but %s says %s: the file or the index is corrupt or tampered with", e.What, e.URL, e.Got, e.Expected, e.Want)
}

// verifyReader hashes what it reads and fails at EOF on a mismatch.
type verifyReader struct {
	r    io.ReadCloser
	h    hash.Hash
	want string
	err  *HashMismatchError
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			e := *v.err
			e.Got = got
			return n, &e
		}
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.r.Close() }

// open opens rawURL (http(s) or file) for reading, checking its SHA-256
// against want at EOF when want is set.
func (ix *Index) open(ctx context.Context, rawURL, what, want string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", auth.RedactURL(rawURL), err)
	}
	var rc io.ReadCloser
	if u.Scheme == "file" {
		f, err := os.Open(u.Path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", what, err)
		}
		rc = f
	} else {
		resp, err := ix.get(ctx, u, "")
		if err != nil {
			return nil, fmt.Errorf("downloading %s: %w", what, err)
		}
		rc = resp.Body
	}
	if want == "" {
		return rc, nil
	}
	return &verifyReader{r: rc, h: sha256.New(), want: want, err: &HashMismatchError{What: what, URL: auth.RedactURL(stripURL(rawURL)), Want: want, Expected: "the index"}}, nil
}

// Download stores f in the index's Store and returns its path. The file's
// SHA-256 must match the index's; when the index gives none, the file is
// hashed as it is downloaded.
func (ix *Index) Download(ctx context.Context, f File) (string, error) {
	return ix.download(ctx, f, "the index")
}

func (ix *Index) download(ctx context.Context, f File, expected string) (string, error) {
	if ix.store == nil {
		return "", fmt.Errorf("downloading %s: no download store configured (IndexOptions.Store)", f.Filename)
	}
	sum := f.SHA256
	if sum == "" {
		// Hash it first through a temporary file, then store it.
		rc, err := ix.open(ctx, f.URL, f.Filename, "")
		if err != nil {
			return "", err
		}
		tmp, err := os.CreateTemp("", "kiln-wheel-*")
		if err != nil {
			rc.Close()
			return "", fmt.Errorf("downloading %s: %w", f.Filename, err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(tmp, h), rc)
		rc.Close()
		if err != nil {
			return "", fmt.Errorf("downloading %s from %s: %w", f.Filename, auth.RedactURL(f.URL), err)
		}
		sum = hex.EncodeToString(h.Sum(nil))
		name := tmp.Name()
		p, _, err := ix.store.Fetch(ctx, f.Filename, sum, 0, func(context.Context) (io.ReadCloser, error) { return os.Open(name) })
		if err != nil {
			return "", fmt.Errorf("storing %s: %w", f.Filename, err)
		}
		return p, nil
	}
	p, _, err := ix.store.Fetch(ctx, f.Filename, sum, f.Size, func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := ix.open(ctx, f.URL, f.Filename, sum)
		if vr, ok := rc.(*verifyReader); ok {
			vr.err.Expected = expected
		}
		return rc, err
	})
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", f.Filename, err)
	}
	return p, nil
}

// Metadata returns the core metadata of the wheel f: the PEP 658 file when
// the index offers one (checked against its hash), else the
// *.dist-info/METADATA member of the wheel, downloaded into the Store.
func (ix *Index) Metadata(ctx context.Context, f File) ([]byte, error) {
	if f.HasMetadata {
		rc, err := ix.open(ctx, f.URL+".metadata", f.Filename+".metadata", f.MetadataSHA256)
		if err == nil {
			data, err := io.ReadAll(io.LimitReader(rc, maxPageSize))
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("reading metadata of %s: %w", f.Filename, err)
			}
			return data, nil
		}
		if !errors.Is(err, errNotFound) {
			return nil, err
		}
		// Advertised but missing: fall back to the wheel.
	}
	p, err := ix.Download(ctx, f)
	if err != nil {
		return nil, err
	}
	data, err := wheelMetadata(p, f.Filename)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of %s: %w", f.Filename, err)
	}
	return data, nil
}

// wheelMetadata reads {name}-{version}.dist-info/METADATA from the wheel at
// p (filename is its name on the index, to choose among several dist-info
// directories).
func wheelMetadata(p, filename string) ([]byte, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil, fmt.Errorf("opening wheel: %w", err)
	}
	defer zr.Close()
	project := pep508.NormalizeName(strings.SplitN(filename, "-", 2)[0])
	var found *zip.File
	for _, zf := range zr.File {
		dir, file, ok := strings.Cut(zf.Name, "/")
		if !ok || file != "METADATA" || !strings.HasSuffix(dir, ".dist-info") {
			continue
		}
		dirProject := pep508.NormalizeName(strings.SplitN(strings.TrimSuffix(dir, ".dist-info"), "-", 2)[0])
		if found == nil || dirProject == project {
			found = zf
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s has no *.dist-info/METADATA: it is not a valid wheel", filename)
	}
	rc, err := found.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxPageSize))
}

// Indexes is an ordered list of indexes: the first that has a project is
// the only one asked about it.
type Indexes []*Index

// NewIndexes returns pipIndex (DefaultIndexURL when empty) followed by the
// extra indexes, as the spec's pip_index and pip_extra_index_url give them.
func NewIndexes(pipIndex string, extra []string, opts IndexOptions) (Indexes, error) {
	if pipIndex == "" {
		pipIndex = DefaultIndexURL
	}
	var out Indexes
	for _, raw := range append([]string{pipIndex}, extra...) {
		ix, err := NewIndex(raw, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, ix)
	}
	return out, nil
}

// Find returns the files of project name from the first index that has it.
// Later indexes are not consulted once one has the project, even if they
// have newer versions. Any error other than "not found" stops the search
// (a failing private index must not let a public one answer instead).
func (s Indexes) Find(ctx context.Context, name string) (*Index, []File, error) {
	tried := make([]string, 0, len(s))
	for _, ix := range s {
		files, err := ix.Project(ctx, name)
		if errors.Is(err, ErrProjectNotFound) {
			tried = append(tried, ix.URL())
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return ix, files, nil
	}
	return nil, nil, &NotFoundError{Project: pep508.NormalizeName(name), Indexes: tried}
}
