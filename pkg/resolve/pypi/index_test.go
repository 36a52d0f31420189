package pypi

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseHTMLPage(t *testing.T) {
	t.Parallel()
	page, _ := url.Parse("https://example.com/simple/foo/")
	body := `<!DOCTYPE html><html><body>
<a href="../../files/foo-1.0-py3-none-any.whl#sha256=ABCDEF" data-requires-python="&gt;=3.8,&lt;4" data-core-metadata="sha256=1234">foo-1.0-py3-none-any.whl</a>
<a href="https://files.example.org/p/foo-1.1-py3-none-any.whl#md5=00" data-yanked="" data-dist-info-metadata="true">x</a>
<a href="foo-0.9.tar.gz" data-yanked="security hole">x</a>
<a>no href</a>
<base href="https://mirror.example.net/base/">
<a href="foo-2.0-py3-none-any.whl" data-core-metadata="false">y</a>
</body></html>`
	files, err := parseHTMLPage(page, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Filename: "foo-1.0-py3-none-any.whl", URL: "https://example.com/files/foo-1.0-py3-none-any.whl", SHA256: "abcdef", RequiresPython: ">=3.8,<4", HasMetadata: true, MetadataSHA256: "1234"},
		{Filename: "foo-1.1-py3-none-any.whl", URL: "https://files.example.org/p/foo-1.1-py3-none-any.whl", Yanked: true, HasMetadata: true},
		{Filename: "foo-0.9.tar.gz", URL: "https://example.com/simple/foo/foo-0.9.tar.gz", Yanked: true, YankedReason: "security hole"},
		{Filename: "foo-2.0-py3-none-any.whl", URL: "https://mirror.example.net/base/foo-2.0-py3-none-any.whl"},
	}
	if len(files) != len(want) {
		t.Fatalf("got %d files: %+v", len(files), files)
	}
	for i := range want {
		if files[i] != want[i] {
			t.Errorf("file %d:\n got %+v\nwant %+v", i, files[i], want[i])
		}
	}
}

func TestParseJSONPage(t *testing.T) {
	t.Parallel()
	page, _ := url.Parse("https://example.com/simple/foo/")
	body := `{"meta":{"api-version":"1.1"},"name":"foo","files":[
{"filename":"foo-1.0-py3-none-any.whl","url":"../../files/foo-1.0-py3-none-any.whl","hashes":{"sha256":"AA"},"requires-python":">=3.8","core-metadata":{"sha256":"BB"},"yanked":false,"size":42},
{"filename":"foo-1.1-py3-none-any.whl","url":"https://cdn.example.org/foo-1.1-py3-none-any.whl","hashes":{},"yanked":"broken","dist-info-metadata":true}
]}`
	files, err := parseJSONPage(page, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Filename: "foo-1.0-py3-none-any.whl", URL: "https://example.com/files/foo-1.0-py3-none-any.whl", SHA256: "aa", Size: 42, RequiresPython: ">=3.8", HasMetadata: true, MetadataSHA256: "bb"},
		{Filename: "foo-1.1-py3-none-any.whl", URL: "https://cdn.example.org/foo-1.1-py3-none-any.whl", Yanked: true, YankedReason: "broken", HasMetadata: true},
	}
	if len(files) != 2 || files[0] != want[0] || files[1] != want[1] {
		t.Errorf("got %+v\nwant %+v", files, want)
	}
	if _, err := parseJSONPage(page, []byte(`{"meta":{"api-version":"2.0"},"files":[]}`)); err == nil || !strings.Contains(err.Error(), "2.0") {
		t.Errorf("api-version 2.0: %v", err)
	}
}

func TestParseMetadata(t *testing.T) {
	t.Parallel()
	m, err := ParseMetadata([]byte("Metadata-Version: 2.1\r\nName: Foo.Bar\r\nVersion: 1.0\r\nRequires-Python: >=3.8\r\nSummary: a\r\n   continued\r\nProvides-Extra: Socks_X\r\nRequires-Dist: idna (>=2.5)\r\nRequires-Dist: pysocks; extra == 'socks-x'\r\n\r\nRequires-Dist: body\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "Foo.Bar" || m.Version != "1.0" || m.RequiresPython.String() != ">=3.8" || len(m.ProvidesExtra) != 1 || m.ProvidesExtra[0] != "socks-x" {
		t.Errorf("parsed %+v", m)
	}
	if len(m.RequiresDist) != 2 || m.RequiresDist[0].String() != "idna>=2.5" {
		t.Errorf("Requires-Dist %v", m.RequiresDist)
	}
	for _, bad := range []string{"Name: x\nVersion: 1\nRequires-Dist: ???\n", "Version: 1\n", "Name: x\nVersion: 1\nRequires-Python: >>3\n"} {
		if _, err := ParseMetadata([]byte(bad)); err == nil {
			t.Errorf("ParseMetadata(%q) succeeded", bad)
		}
	}
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	const pass = "hunter2-very-secret"
	fi := newFakeIndex(t, []dist{{name: "priv", version: "1.0"}}, fakeOpts{user: "alice", pass: pass, noMetadata: true})
	env, target := target311(t)
	resolve := func(t *testing.T, ixs Indexes, specs ...string) (Result, error) {
		return Resolve(t.Context(), Request{Requirements: reqs(t, specs...), Env: env, Target: target, Indexes: ixs})
	}

	t.Run("in the URL", func(t *testing.T) {
		res, err := resolve(t, testIndexes(t, fi.AuthURL()), "priv")
		if err != nil {
			t.Fatal(err)
		}
		d := res.Distributions[0]
		for _, s := range []string{d.URL, d.Index} {
			if strings.Contains(s, pass) || strings.Contains(s, "alice") {
				t.Errorf("result carries credentials: %s", s)
			}
		}
		if d.Index != fi.URL() {
			t.Errorf("index %s, want %s", d.Index, fi.URL())
		}
	})
	t.Run("from netrc", func(t *testing.T) {
		netrc := filepath.Join(t.TempDir(), "netrc")
		host := strings.TrimPrefix(fi.srv.URL, "http://")
		hostOnly, _, _ := strings.Cut(host, ":")
		os.WriteFile(netrc, []byte("# comment\nmachine other.example login x password y\nmachine "+hostOnly+"\n  login alice\n  password "+pass+"\nmacdef init\n  cd /\n\n"), 0o600)
		ixs, err := NewIndexes(fi.URL(), nil, IndexOptions{Store: newStore(t), Netrc: netrc})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resolve(t, ixs, "priv"); err != nil {
			t.Fatal(err)
		}
	})
	wrong := strings.Replace(fi.AuthURL(), pass, "wrong-"+pass+"-x", 1)
	for _, tc := range []struct {
		name, url, spec, want string
	}{
		{"wrong password", wrong, "priv", "401"},
		{"no credentials", fi.URL(), "priv", "401"},
		{"token only", strings.Replace(fi.URL(), "http://", "http://"+pass+"@", 1), "priv", "***@"},
		{"not found", fi.AuthURL(), "nothing", "was not found"},
		{"unreachable", "http://alice:" + pass + "@127.0.0.1:1/simple/", "priv", "127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve(t, testIndexes(t, tc.url), tc.spec)
			if err == nil {
				t.Fatal("resolved with bad credentials")
			}
			if strings.Contains(err.Error(), pass) {
				t.Errorf("error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := NewIndex("ftp://alice:"+pass+"@host/", IndexOptions{}); err == nil || strings.Contains(err.Error(), pass) {
		t.Errorf("bad scheme error: %v", err)
	}
}

func TestParseNetrc(t *testing.T) {
	t.Parallel()
	n, err := parseNetrc("machine a.example login u1 password p1\ndefault login du password dp\nmachine b.example:8080 login u2 password p2 account x\n")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"a.example": "u1:p1", "a.example:443": "u1:p1", "b.example:8080": "u2:p2", "c.example": "du:dp"} {
		e, ok := n.lookup(host)
		if got := e.login + ":" + e.password; !ok || got != want {
			t.Errorf("lookup(%s) = %s, want %s", host, got, want)
		}
	}
	if _, err := parseNetrc("login secretuser password x"); err == nil || strings.Contains(err.Error(), "secretuser") {
		t.Errorf("netrc without machine: %v", err)
	}
	if _, err := parseNetrc("machine a bogus secrettoken"); err == nil || strings.Contains(err.Error(), "secrettoken") {
		t.Errorf("netrc with an unknown token: %v", err)
	}
}

func TestIndexMetadataFallback(t *testing.T) {
	t.Parallel()
	for _, noMD := range []bool{false, true} {
		fi := newFakeIndex(t, []dist{{name: "m", version: "1.0", requires: []string{"x"}}}, fakeOpts{noMetadata: noMD})
		ix, err := NewIndex(fi.URL(), IndexOptions{Store: newStore(t), Netrc: "/nonexistent"})
		if err != nil {
			t.Fatal(err)
		}
		files, err := ix.Project(context.Background(), "M")
		if err != nil || len(files) != 1 || files[0].HasMetadata == noMD {
			t.Fatalf("Project: %+v, %v", files, err)
		}
		data, err := ix.Metadata(t.Context(), files[0])
		if err != nil || !strings.Contains(string(data), "Requires-Dist: x") {
			t.Fatalf("Metadata (noMetadata=%v): %q, %v", noMD, data, err)
		}
		downloaded := false
		for _, p := range fi.Requests() {
			downloaded = downloaded || strings.HasSuffix(p, ".whl")
		}
		if downloaded != noMD {
			t.Errorf("noMetadata=%v: wheel downloaded=%v (requests %v)", noMD, downloaded, fi.Requests())
		}
		if _, err := ix.Project(t.Context(), "absent"); !errors.Is(err, ErrProjectNotFound) {
			t.Errorf("absent project: %v", err)
		}
	}
}
