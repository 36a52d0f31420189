package pypi

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/wheeltag"
)

// dist describes a distribution file served by a fake index.
type dist struct {
	name, version string
	tag           string   // wheel tag, "py3-none-any" when empty
	requires      []string // Requires-Dist
	extras        []string // Provides-Extra
	python        string   // Requires-Python (METADATA and data-requires-python)
	hidePython    bool     // omit data-requires-python from the index
	yanked        bool
	sdist         bool // a .tar.gz instead of a wheel
	corrupt       bool // serve bytes that do not match the listed sha256
	badMetadata   bool // serve a .metadata that does not match its hash
}

func (d dist) filename() string {
	n := strings.ReplaceAll(d.name, "-", "_")
	if d.sdist {
		return fmt.Sprintf("%s-%s.tar.gz", n, d.version)
	}
	tag := d.tag
	if tag == "" {
		tag = "py3-none-any"
	}
	return fmt.Sprintf("%s-%s-%s.whl", n, d.version, tag)
}

func (d dist) metadata() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", d.name, d.version)
	if d.python != "" {
		fmt.Fprintf(&b, "Requires-Python: %s\n", d.python)
	}
	for _, x := range d.extras {
		fmt.Fprintf(&b, "Provides-Extra: %s\n", x)
	}
	for _, r := range d.requires {
		fmt.Fprintf(&b, "Requires-Dist: %s\n", r)
	}
	b.WriteString("\nA description.\nRequires-Dist: not-a-header\n")
	return []byte(b.String())
}

func makeWheel(t testing.TB, d dist) []byte {
	t.Helper()
	if d.sdist {
		return []byte("not really a tarball " + d.name + d.version)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	di := fmt.Sprintf("%s-%s.dist-info/", strings.ReplaceAll(d.name, "-", "_"), d.version)
	for name, data := range map[string][]byte{
		di + "METADATA":   d.metadata(),
		di + "WHEEL":      []byte("Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"),
		"pkg/__init__.py": []byte("# " + d.name + "\n"),
	} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sum256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fakeIndex is an in-test simple index.
type fakeIndex struct {
	srv        *httptest.Server
	json       bool // answer PEP 691 JSON when asked
	noMetadata bool
	user, pass string

	files    map[string][]byte // served bytes by file name
	listed   map[string]string // listed sha256 by file name
	projects map[string][]dist

	mu       sync.Mutex
	requests []string
}

type fakeOpts struct {
	json       bool
	noMetadata bool
	user, pass string
}

func newFakeIndex(t testing.TB, dists []dist, o fakeOpts) *fakeIndex {
	t.Helper()
	fi := &fakeIndex{json: o.json, noMetadata: o.noMetadata, user: o.user, pass: o.pass,
		files: map[string][]byte{}, listed: map[string]string{}, projects: map[string][]dist{}}
	for _, d := range dists {
		data := makeWheel(t, d)
		fn := d.filename()
		fi.listed[fn] = sum256(data)
		if d.corrupt {
			data = append(append([]byte(nil), data...), 'X')
		}
		fi.files[fn] = data
		n := pep508.NormalizeName(d.name)
		fi.projects[n] = append(fi.projects[n], d)
	}
	fi.srv = httptest.NewServer(fi)
	t.Cleanup(fi.srv.Close)
	return fi
}

func (fi *fakeIndex) URL() string { return fi.srv.URL + "/simple/" }

func (fi *fakeIndex) AuthURL() string {
	return strings.Replace(fi.URL(), "http://", "http://"+fi.user+":"+fi.pass+"@", 1)
}

func (fi *fakeIndex) Requests() []string {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return append([]string(nil), fi.requests...)
}

func (fi *fakeIndex) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fi.mu.Lock()
	fi.requests = append(fi.requests, r.URL.Path)
	fi.mu.Unlock()
	if fi.user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != fi.user || p != fi.pass {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/simple/"):
		name := strings.Trim(strings.TrimPrefix(p, "/simple/"), "/")
		dists, ok := fi.projects[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		sort.Slice(dists, func(i, j int) bool { return dists[i].filename() < dists[j].filename() })
		if fi.json && strings.Contains(r.Header.Get("Accept"), "application/vnd.pypi.simple.v1+json") {
			fi.serveJSON(w, dists)
			return
		}
		fi.serveHTML(w, dists)
	case strings.HasPrefix(p, "/files/"):
		name := strings.TrimPrefix(p, "/files/")
		if data, ok := fi.files[name]; ok {
			w.Write(data)
			return
		}
		if base, ok := strings.CutSuffix(name, ".metadata"); ok && !fi.noMetadata {
			for _, ds := range fi.projects {
				for _, d := range ds {
					if d.filename() == base && !d.sdist {
						md := d.metadata()
						if d.badMetadata {
							md = append(md, "Requires-Dist: evil\n"...)
						}
						w.Write(md)
						return
					}
				}
			}
		}
		http.NotFound(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (fi *fakeIndex) serveHTML(w http.ResponseWriter, dists []dist) {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html><body>\n")
	for _, d := range dists {
		fn := d.filename()
		fmt.Fprintf(&b, `<a href="../../files/%s#sha256=%s"`, fn, fi.listed[fn])
		if d.python != "" && !d.hidePython {
			fmt.Fprintf(&b, ` data-requires-python="%s"`, html.EscapeString(d.python))
		}
		if d.yanked {
			b.WriteString(` data-yanked="broken"`)
		}
		if !fi.noMetadata && !d.sdist {
			fmt.Fprintf(&b, ` data-core-metadata="sha256=%s"`, sum256(d.metadata()))
		}
		fmt.Fprintf(&b, ">%s</a><br/>\n", fn)
	}
	b.WriteString("</body></html>\n")
	w.Header().Set("Content-Type", "text/html")
	w.Write([]byte(b.String()))
}

func (fi *fakeIndex) serveJSON(w http.ResponseWriter, dists []dist) {
	var files []map[string]any
	for _, d := range dists {
		fn := d.filename()
		f := map[string]any{
			"filename": fn,
			"url":      "/files/" + fn,
			"hashes":   map[string]string{"sha256": fi.listed[fn]},
			"yanked":   d.yanked,
		}
		if d.python != "" && !d.hidePython {
			f["requires-python"] = d.python
		}
		if !fi.noMetadata && !d.sdist {
			f["core-metadata"] = map[string]string{"sha256": sum256(d.metadata())}
		}
		files = append(files, f)
	}
	w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
	json.NewEncoder(w).Encode(map[string]any{"meta": map[string]string{"api-version": "1.1"}, "files": files})
}

// target311 is CPython 3.11.2 on glibc 2.36 x86_64, as in Debian bookworm.
func target311(t testing.TB) (pep508.Environment, wheeltag.Target) {
	return targetFor(t, "3.11.2", "x86_64")
}

func targetFor(t testing.TB, py, arch string) (pep508.Environment, wheeltag.Target) {
	t.Helper()
	env, err := pep508.LinuxCPython(py, arch)
	if err != nil {
		t.Fatal(err)
	}
	var major, minor int
	fmt.Sscanf(py, "%d.%d", &major, &minor)
	return env, wheeltag.Target{PythonMajor: major, PythonMinor: minor, Arch: arch, Libc: wheeltag.Glibc, LibcMajor: 2, LibcMinor: 36}
}

func newStore(t testing.TB) Store {
	t.Helper()
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testIndexes(t testing.TB, urls ...string) Indexes {
	t.Helper()
	ixs, err := NewIndexes(urls[0], urls[1:], IndexOptions{Store: newStore(t), Netrc: "/nonexistent/netrc"})
	if err != nil {
		t.Fatal(err)
	}
	return ixs
}

func reqs(t testing.TB, specs ...string) []Requirement {
	t.Helper()
	var out []Requirement
	for _, s := range specs {
		r, err := ParseRequirement(s, ".")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Requirement{Requirement: r, Source: "packages"})
	}
	return out
}

// pins formats a result as "name==version" strings.
func pins(res Result) []string {
	var out []string
	for _, d := range res.Distributions {
		out = append(out, d.Name+"=="+d.Version)
	}
	return out
}
