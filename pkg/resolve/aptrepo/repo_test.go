package aptrepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// t0 is the creation time of every test key and signature.
var t0 = time.Date(2025, 5, 10, 8, 0, 0, 0, time.UTC)

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

// newKey generates a signing key created at t0. lifetime 0 means the key
// never expires.
func newKey(t testing.TB, name string, algo packet.PublicKeyAlgorithm, lifetime time.Duration) *openpgp.Entity {
	t.Helper()
	cfg := &packet.Config{Algorithm: algo, RSABits: 2048, Time: at(t0), KeyLifetimeSecs: uint32(lifetime / time.Second)}
	e, err := openpgp.NewEntity(name, "test", name+"@example.invalid", cfg)
	if err != nil {
		t.Fatalf("generate key %s: %v", name, err)
	}
	return e
}

func publicKeyring(t testing.TB, es ...*openpgp.Entity) openpgp.EntityList {
	t.Helper()
	var buf bytes.Buffer
	for _, e := range es {
		if err := e.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
	}
	el, err := ReadKeyring("test", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func armoredPublicKey(t testing.TB, e *openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.String()
}

func clearsignText(t testing.TB, text []byte, keys ...*openpgp.Entity) []byte {
	t.Helper()
	var privs []*packet.PrivateKey
	for _, k := range keys {
		privs = append(privs, k.PrivateKey)
	}
	var buf bytes.Buffer
	w, err := clearsign.EncodeMulti(&buf, privs, &packet.Config{Time: at(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(text); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func detachSign(t testing.TB, text []byte, key *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, key, bytes.NewReader(text), &packet.Config{Time: at(t0)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const testPackages = `Package: libfoo1
Source: foo (1.2-3)
Version: 1.2-3+b1
Installed-Size: 120
Maintainer: Nobody <nobody@example.invalid>
Architecture: amd64
Multi-Arch: same
Depends: libc6 (>= 2.36), libbar2 | libbaz2
Pre-Depends: dpkg (>= 1.15)
Description: foo library
 It foos.
 .
 Really.
Section: libs
Priority: optional
Filename: pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb
Size: 4321
SHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

Package: foo-data
Version: 1:2.0
Architecture: all
Essential: yes
Provides: foo-common (= 1:2.0)
Conflicts: foo-old
Breaks: foo-older (<< 1)
Recommends: bar
Filename: pool/main/f/foo/foo-data_2.0_all.deb
Size: 99
SHA256: FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210
`

func xzBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// repoSpec describes a generated test repository for suite "bookworm".
type repoSpec struct {
	suite      string // Suite field; default "bookworm"
	validUntil time.Time
	byHash     bool
	// indices are the Packages variants to publish and list, by suffix
	// ("", ".gz", ".xz"); default all three.
	indices []string
	// release, when set, edits the Release text before signing.
	release func(string) string
}

// buildRelease returns the files of a repository rooted at /debian and the
// unsigned Release text.
func buildRelease(t testing.TB, spec repoSpec) (map[string][]byte, []byte) {
	t.Helper()
	files := map[string][]byte{}
	plain := []byte(testPackages)
	variants := map[string][]byte{"": plain, ".gz": gzBytes(t, plain), ".xz": xzBytes(t, plain)}
	idx := spec.indices
	if idx == nil {
		idx = []string{"", ".gz", ".xz"}
	}
	var sums strings.Builder
	for _, suf := range idx {
		data := variants[suf]
		p := "main/binary-amd64/Packages" + suf
		fmt.Fprintf(&sums, " %s %d %s\n", sha(data), len(data), p)
		if spec.byHash {
			files["/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/"+sha(data)] = data
		} else {
			files["/debian/dists/bookworm/"+p] = data
		}
	}
	suite := spec.suite
	if suite == "" {
		suite = "bookworm"
	}
	rel := fmt.Sprintf("Origin: Test\nLabel: Test\nSuite: %s\nCodename: %s\nDate: %s\n", suite, suite, t0.Format(time.RFC1123))
	if !spec.validUntil.IsZero() {
		rel += "Valid-Until: " + spec.validUntil.Format(time.RFC1123) + "\n"
	}
	if spec.byHash {
		rel += "Acquire-By-Hash: yes\n"
	}
	rel += "Architectures: amd64 arm64\nComponents: main\nDescription: test repo\nSHA256:\n" + sums.String()
	if spec.release != nil {
		rel = spec.release(rel)
	}
	return files, []byte(rel)
}

// server serves files and records the paths requested.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	status map[string]int
	hits   []string
}

func newServer(t testing.TB, files map[string][]byte) *server {
	s := &server{files: files, status: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits = append(s.hits, r.URL.Path)
		data, ok := s.files[r.URL.Path]
		code := s.status[r.URL.Path]
		s.mu.Unlock()
		if code != 0 {
			http.Error(w, "injected", code)
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := append([]string(nil), s.hits...)
	sort.Strings(h)
	return h
}

func (s *server) source() Source {
	return Source{URI: s.URL + "/debian", Suites: []string{"bookworm"}, Components: []string{"main"}}
}

func (s *server) fetcher() Fetcher { return &HTTPFetcher{Client: s.Client()} }

// readAllString is io.ReadAll for tests.
func readAllString(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
