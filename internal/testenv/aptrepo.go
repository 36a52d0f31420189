package testenv

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// DebPackage describes a tiny Debian package MakeDeb builds.
type DebPackage struct {
	Name, Version string
	// Depends is the Depends field, if any.
	Depends string
	// Files maps absolute paths in the package to contents; paths under
	// usr/bin get mode 0755.
	Files map[string]string
	// Links maps absolute paths in the package to symlink targets.
	Links map[string]string
}

// MakeDeb builds pkg with dpkg-deb into dir and returns the .deb's path.
func MakeDeb(t testing.TB, dir string, pkg DebPackage) string {
	t.Helper()
	Require(t, "dpkg-deb")
	root := filepath.Join(t.TempDir(), pkg.Name)
	must(t, os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755))
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: kiln tests <kiln@example.invalid>\nDescription: kiln test package\n", pkg.Name, pkg.Version)
	if pkg.Depends != "" {
		control += "Depends: " + pkg.Depends + "\n"
	}
	must(t, os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(control), 0o644))
	for p, content := range pkg.Files {
		full := filepath.Join(root, p)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		mode := os.FileMode(0o644)
		if strings.Contains(p, "/bin/") {
			mode = 0o755
		}
		must(t, os.WriteFile(full, []byte(content), mode))
		must(t, os.Chmod(full, mode))
	}
	for p, target := range pkg.Links {
		full := filepath.Join(root, p)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.Symlink(target, full))
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_amd64.deb", pkg.Name, pkg.Version))
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build %s: %v\n%s", pkg.Name, err, b)
	}
	return out
}

// AptRepo is a signed APT repository (suite "stable", component "main",
// amd64) served on a loopback port.
type AptRepo struct {
	// URL is the archive root, e.g. "http://127.0.0.1:PORT/debian".
	URL string
	// KeyFile is the repository's public key, ASCII-armored.
	KeyFile string
	// Line is the sources.list line for the repository, with
	// signed-by=KeyFile's base name (write KeyFile beside the spec).
	Line string

	blockIndices atomic.Bool
	mu           sync.Mutex
	requests     []string
}

// StartAptRepo builds a repository holding debs with apt-ftparchive, signs
// its InRelease with a key generated here, and serves it.
func StartAptRepo(t testing.TB, debs ...string) *AptRepo {
	t.Helper()
	Require(t, "apt-ftparchive")
	root := t.TempDir()
	archive := filepath.Join(root, "debian")
	pool := filepath.Join(archive, "pool", "main")
	must(t, os.MkdirAll(pool, 0o755))
	for _, d := range debs {
		data, err := os.ReadFile(d)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(pool, filepath.Base(d)), data, 0o644))
	}
	bin := filepath.Join(archive, "dists", "stable", "main", "binary-amd64")
	must(t, os.MkdirAll(bin, 0o755))
	packages := ftparchive(t, archive, "packages", "pool/main")
	must(t, os.WriteFile(filepath.Join(bin, "Packages"), packages, 0o644))
	xz := exec.Command("xz", "-k", "-9", filepath.Join(bin, "Packages"))
	if b, err := xz.CombinedOutput(); err != nil {
		t.Fatalf("xz Packages: %v\n%s", err, b)
	}
	dists := filepath.Join(archive, "dists", "stable")
	release := ftparchive(t, dists, "-o", "APT::FTPArchive::Release::Suite=stable", "-o", "APT::FTPArchive::Release::Codename=stable",
		"-o", "APT::FTPArchive::Release::Components=main", "-o", "APT::FTPArchive::Release::Architectures=amd64", "release", ".")
	must(t, os.WriteFile(filepath.Join(dists, "Release"), release, 0o644))

	key, err := openpgp.NewEntity("kiln test repository", "", "repo@example.invalid", &packet.Config{RSABits: 2048})
	must(t, err)
	var signed bytes.Buffer
	w, err := clearsign.Encode(&signed, key.PrivateKey, nil)
	must(t, err)
	_, err = w.Write(release)
	must(t, err)
	must(t, w.Close())
	must(t, os.WriteFile(filepath.Join(dists, "InRelease"), signed.Bytes(), 0o644))

	var pub bytes.Buffer
	aw, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	must(t, err)
	must(t, key.Serialize(aw))
	must(t, aw.Close())
	r := &AptRepo{KeyFile: filepath.Join(root, "repo-key.asc")}
	must(t, os.WriteFile(r.KeyFile, pub.Bytes(), 0o644))

	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		if r.blockIndices.Load() && strings.Contains(req.URL.Path, "/dists/") {
			http.Error(w, "indices are offline in this test", http.StatusServiceUnavailable)
			return
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/debian"
	r.Line = "deb [signed-by=" + filepath.Base(r.KeyFile) + "] " + r.URL + " stable main"
	return r
}

func ftparchive(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("apt-ftparchive", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("apt-ftparchive %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// BlockIndices makes every request under dists/ fail from now on, as on an
// air-gapped mirror that only serves the pinned .debs.
func (r *AptRepo) BlockIndices() { r.blockIndices.Store(true) }

// Requests returns "METHOD path" for every request served so far.
func (r *AptRepo) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string{}, r.requests...)
}
