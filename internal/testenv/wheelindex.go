package testenv

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// PEP691JSON is the media type of the PEP 691 JSON simple API.
const PEP691JSON = "application/vnd.pypi.simple.v1+json"

// WheelIndexOptions configures StartWheelIndex.
type WheelIndexOptions struct {
	// Username and Password, when Username is set, require HTTP basic auth
	// on every request.
	Username, Password string
	// NoMetadata omits the PEP 658/714 .metadata files and attributes.
	NoMetadata bool
}

// WheelServer is a PEP 503 / PEP 691 simple package index serving a
// directory of distribution files on a loopback port.
type WheelServer struct {
	// URL is the index URL, "http://127.0.0.1:PORT/simple/".
	URL string

	projects map[string][]*distFile // by normalized name
	names    map[string]string      // normalized -> display name
	files    map[string]*distFile   // by file name
	opts     WheelIndexOptions

	mu       sync.Mutex
	requests []IndexRequest
}

// IndexRequest records one request a WheelServer received.
type IndexRequest struct {
	Method, Path, Accept string
	// Authorization is the raw Authorization header, to check where
	// credentials were (not) sent.
	Authorization string
}

type distFile struct {
	name, project, version string
	path                   string
	sha256                 string
	requiresPython         string
	metadata               []byte // nil if not a wheel or unreadable
	metadataSHA256         string
}

// WheelIndex serves the distribution files (wheels, and sdists without
// metadata) in dir as a simple index and returns its URL
// ("http://127.0.0.1:PORT/simple/"). See StartWheelIndex.
func WheelIndex(t testing.TB, dir string) string {
	t.Helper()
	return StartWheelIndex(t, dir, WheelIndexOptions{}).URL
}

// StartWheelIndex serves dir as a package index until the test ends:
//
//   - /simple/ lists the projects, /simple/<normalized-name>/ lists their
//     files as <a href="../../files/<file>#sha256=<hex>"> anchors with
//     data-requires-python (from the wheel's METADATA, HTML-escaped) and,
//     for wheels, data-dist-info-metadata and data-core-metadata
//     ("sha256=<hex>" of the METADATA file, PEP 658/714);
//   - /files/<file> serves the files, /files/<file>.metadata their METADATA;
//   - with "Accept: application/vnd.pypi.simple.v1+json" the index pages
//     are PEP 691 JSON (api-version 1.1) instead of HTML.
func StartWheelIndex(t testing.TB, dir string, opts WheelIndexOptions) *WheelServer {
	t.Helper()
	ws := &WheelServer{
		projects: map[string][]*distFile{},
		names:    map[string]string{},
		files:    map[string]*distFile{},
		opts:     opts,
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading wheel directory: %v", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		df, err := readDist(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("indexing %s: %v", e.Name(), err)
		}
		if df == nil {
			continue
		}
		norm := NormalizeProjectName(df.project)
		ws.projects[norm] = append(ws.projects[norm], df)
		if _, ok := ws.names[norm]; !ok {
			ws.names[norm] = df.project
		}
		ws.files[df.name] = df
	}
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	ws.URL = srv.URL + "/simple/"
	return ws
}

// Requests returns a copy of the requests received so far.
func (ws *WheelServer) Requests() []IndexRequest {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]IndexRequest(nil), ws.requests...)
}

// AuthURL returns URL with the basic-auth credentials embedded
// ("http://user:pass@127.0.0.1:PORT/simple/").
func (ws *WheelServer) AuthURL() string {
	if ws.opts.Username == "" {
		return ws.URL
	}
	return strings.Replace(ws.URL, "http://", "http://"+ws.opts.Username+":"+ws.opts.Password+"@", 1)
}

var projectNameRE = regexp.MustCompile(`[-_.]+`)

// NormalizeProjectName normalizes a Python project name as PEP 503 does.
func NormalizeProjectName(name string) string {
	return strings.ToLower(projectNameRE.ReplaceAllString(name, "-"))
}

var sdistRE = regexp.MustCompile(`^(.+)-([0-9][^-]*)\.(tar\.gz|zip|tar\.bz2)$`)

// readDist reads a distribution file; it returns nil for files that are not
// distributions. Wheels whose METADATA cannot be read are served without
// metadata.
func readDist(path string) (*distFile, error) {
	base := filepath.Base(path)
	df := &distFile{name: base, path: path}
	switch {
	case strings.HasSuffix(base, ".whl"):
		// Broken wheels (test fixtures) are still served, without metadata.
		parts := strings.Split(strings.TrimSuffix(base, ".whl"), "-")
		if len(parts) < 2 {
			return nil, nil
		}
		df.project, df.version = parts[0], parts[1]
		md, err := wheelMetadata(path)
		if err != nil {
			break
		}
		df.metadata = md
		sum := sha256.Sum256(md)
		df.metadataSHA256 = hex.EncodeToString(sum[:])
		hdr, _ := textproto.NewReader(bufio.NewReader(strings.NewReader(string(md)))).ReadMIMEHeader()
		df.requiresPython = hdr.Get("Requires-Python")
	default:
		m := sdistRE.FindStringSubmatch(base)
		if m == nil {
			return nil, nil
		}
		df.project, df.version = m[1], m[2]
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	df.sha256 = hex.EncodeToString(h.Sum(nil))
	return df, nil
}

// wheelMetadata returns the *.dist-info/METADATA file of a wheel.
func wheelMetadata(path string) ([]byte, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("opening wheel: %w", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		dir, file, ok := strings.Cut(f.Name, "/")
		if ok && file == "METADATA" && strings.HasSuffix(dir, ".dist-info") {
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	return nil, fmt.Errorf("no .dist-info/METADATA in %s", filepath.Base(path))
}

// ServeHTTP serves the index; see StartWheelIndex.
func (ws *WheelServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws.mu.Lock()
	ws.requests = append(ws.requests, IndexRequest{Method: r.Method, Path: r.URL.Path, Accept: r.Header.Get("Accept"), Authorization: r.Header.Get("Authorization")})
	ws.mu.Unlock()

	if ws.opts.Username != "" {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(ws.opts.Username)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(ws.opts.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="kiln test index"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	wantJSON := strings.Contains(r.Header.Get("Accept"), PEP691JSON)
	p := r.URL.Path
	switch {
	case p == "/simple/" || p == "/simple":
		ws.serveRoot(w, wantJSON)
	case strings.HasPrefix(p, "/simple/"):
		name := strings.Trim(strings.TrimPrefix(p, "/simple/"), "/")
		if norm := NormalizeProjectName(name); norm != name {
			http.Redirect(w, r, "/simple/"+norm+"/", http.StatusMovedPermanently)
			return
		}
		if !strings.HasSuffix(p, "/") {
			http.Redirect(w, r, p+"/", http.StatusMovedPermanently)
			return
		}
		files, ok := ws.projects[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		ws.serveProject(w, name, files, wantJSON)
	case strings.HasPrefix(p, "/files/"):
		name := strings.TrimPrefix(p, "/files/")
		if df, ok := ws.files[name]; ok {
			w.Header().Set("Content-Type", "application/octet-stream")
			http.ServeFile(w, r, df.path)
			return
		}
		if df, ok := ws.files[strings.TrimSuffix(name, ".metadata")]; ok && df.metadata != nil && !ws.opts.NoMetadata {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(df.metadata)
			return
		}
		http.NotFound(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (ws *WheelServer) sortedProjects() []string {
	names := make([]string, 0, len(ws.projects))
	for n := range ws.projects {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (ws *WheelServer) serveRoot(w http.ResponseWriter, wantJSON bool) {
	names := ws.sortedProjects()
	if wantJSON {
		type project struct {
			Name string `json:"name"`
		}
		ps := make([]project, 0, len(names))
		for _, n := range names {
			ps = append(ps, project{Name: ws.names[n]})
		}
		writeJSON(w, map[string]any{"meta": map[string]string{"api-version": "1.1"}, "projects": ps})
		return
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Simple index</title></head><body>\n")
	for _, n := range names {
		fmt.Fprintf(&b, "<a href=\"%s/\">%s</a>\n", n, html.EscapeString(ws.names[n]))
	}
	b.WriteString("</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, b.String())
}

func (ws *WheelServer) serveProject(w http.ResponseWriter, name string, files []*distFile, wantJSON bool) {
	sorted := append([]*distFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	if wantJSON {
		type jsonFile struct {
			Filename         string            `json:"filename"`
			URL              string            `json:"url"`
			Hashes           map[string]string `json:"hashes"`
			RequiresPython   string            `json:"requires-python,omitempty"`
			CoreMetadata     any               `json:"core-metadata,omitempty"`
			DistInfoMetadata any               `json:"dist-info-metadata,omitempty"`
			Yanked           bool              `json:"yanked"`
		}
		var out []jsonFile
		versions := map[string]bool{}
		for _, df := range sorted {
			jf := jsonFile{
				Filename:       df.name,
				URL:            "../../files/" + df.name,
				Hashes:         map[string]string{"sha256": df.sha256},
				RequiresPython: df.requiresPython,
			}
			if df.metadata != nil && !ws.opts.NoMetadata {
				md := map[string]string{"sha256": df.metadataSHA256}
				jf.CoreMetadata, jf.DistInfoMetadata = md, md
			}
			out = append(out, jf)
			versions[df.version] = true
		}
		vs := make([]string, 0, len(versions))
		for v := range versions {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		writeJSON(w, map[string]any{
			"meta":     map[string]string{"api-version": "1.1"},
			"name":     name,
			"files":    out,
			"versions": vs,
		})
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for %s</title></head><body>\n<h1>Links for %s</h1>\n", html.EscapeString(name), html.EscapeString(name))
	for _, df := range sorted {
		fmt.Fprintf(&b, "<a href=\"../../files/%s#sha256=%s\"", html.EscapeString(df.name), df.sha256)
		if df.requiresPython != "" {
			fmt.Fprintf(&b, " data-requires-python=\"%s\"", html.EscapeString(df.requiresPython))
		}
		if df.metadata != nil && !ws.opts.NoMetadata {
			fmt.Fprintf(&b, " data-dist-info-metadata=\"sha256=%s\" data-core-metadata=\"sha256=%s\"", df.metadataSHA256, df.metadataSHA256)
		}
		fmt.Fprintf(&b, ">%s</a><br/>\n", html.EscapeString(df.name))
	}
	b.WriteString("</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, b.String())
}

func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", PEP691JSON)
	w.Write(data)
}
