package aptrepo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

func loadDebianKeyring(t *testing.T) openpgp.EntityList {
	t.Helper()
	if _, err := os.Stat(debianKeyring); err != nil {
		t.Skipf("%s not present: %v", debianKeyring, err)
	}
	kr, err := LoadKeyring(debianKeyring)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestDebianArchiveKeyring(t *testing.T) {
	kr := loadDebianKeyring(t)
	var fprs []string
	for _, e := range kr {
		fprs = append(fprs, fmt.Sprintf("%X", e.PrimaryKey.Fingerprint))
	}
	// The bookworm archive, security and stable release keys.
	for _, want := range []string{
		"B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
		"05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0",
		"4D64FEC119C2029067D6E791F8D2585B8783D481",
	} {
		if !slices.Contains(fprs, want) {
			t.Errorf("keyring lacks %s; has %v", want, fprs)
		}
	}
}

// TestHostAptLists verifies the InRelease files apt left in
// /var/lib/apt/lists against the real Debian keyring, offline.
func TestHostAptLists(t *testing.T) {
	kr := loadDebianKeyring(t)
	paths, _ := filepath.Glob("/var/lib/apt/lists/*_dists_*_InRelease")
	if len(paths) == 0 {
		t.Skip("no InRelease files in /var/lib/apt/lists")
	}
	suiteRE := regexp.MustCompile(`_dists_(.+)_InRelease$`)
	for _, p := range paths {
		m := suiteRE.FindStringSubmatch(filepath.Base(p))
		if m == nil || strings.Contains(m[1], "_") {
			continue
		}
		suite := m[1]
		t.Run(suite, func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte("\nOrigin: Debian\n")) {
				// Lists of other vendors' repositories (left by an apt
				// source the machine once had) are not signed by Debian.
				t.Skipf("%s is not a Debian archive's", filepath.Base(p))
			}
			srv := newServer(t, map[string][]byte{"/debian/dists/" + suite + "/InRelease": data})
			rel, err := FetchRelease(context.Background(), srv.fetcher(), srv.source(), suite, kr, ReleaseOptions{AllowExpired: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := rel.File("main/binary-amd64/Packages.xz"); !ok {
				t.Errorf("Release lacks main/binary-amd64/Packages.xz")
			}
			t.Logf("%s: Codename %s, Date %s, signer %s, %d files", suite, rel.Codename, rel.Date, rel.Signer, len(rel.SHA256))

			// A single changed byte in the signed text must be rejected.
			i := bytes.Index(data, []byte("\nDate: ")) + 7
			bad := bytes.Clone(data)
			bad[i+1] ^= 1
			srv.files["/debian/dists/"+suite+"/InRelease"] = bad
			if _, err := FetchRelease(context.Background(), srv.fetcher(), srv.source(), suite, kr, ReleaseOptions{AllowExpired: true}); err == nil {
				t.Error("tampered real InRelease accepted")
			}
		})
	}
}

func TestReadKeyring(t *testing.T) {
	k1 := newKey(t, "one", packet.PubKeyAlgoEdDSA, 0)
	k2 := newKey(t, "two", packet.PubKeyAlgoEdDSA, 0)
	var bin bytes.Buffer
	k1.Serialize(&bin)
	k2.Serialize(&bin)
	keybox := append(make([]byte, 8), "KBXf...."...)

	tests := []struct {
		name    string
		data    []byte
		wantIDs []uint64
		wantErr string
	}{
		{name: "binary", data: bin.Bytes(), wantIDs: []uint64{k1.PrimaryKey.KeyId, k2.PrimaryKey.KeyId}},
		{name: "armored", data: []byte(armoredPublicKey(t, k1)), wantIDs: []uint64{k1.PrimaryKey.KeyId}},
		{name: "two armored blocks", data: []byte("\n" + armoredPublicKey(t, k1) + "\n" + armoredPublicKey(t, k2)), wantIDs: []uint64{k1.PrimaryKey.KeyId, k2.PrimaryKey.KeyId}},
		{name: "empty", data: []byte("\n"), wantErr: "empty"},
		{name: "keybox", data: keybox, wantErr: "gpg --no-default-keyring"},
		{name: "armored signature", data: detachSign(t, []byte("x"), k1), wantErr: "no \"-----BEGIN PGP PUBLIC KEY BLOCK-----\""},
		{name: "garbage", data: []byte("hello"), wantErr: "k.gpg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			el, err := ReadKeyring("k.gpg", tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []uint64
			for _, e := range el {
				ids = append(ids, e.PrimaryKey.KeyId)
			}
			if !slices.Equal(ids, tc.wantIDs) {
				t.Errorf("key IDs = %X, want %X", ids, tc.wantIDs)
			}
		})
	}
}

func TestSourceKeyringPaths(t *testing.T) {
	k1 := newKey(t, "one", packet.PubKeyAlgoEdDSA, 0)
	k2 := newKey(t, "two", packet.PubKeyAlgoEdDSA, 0)
	dir := t.TempDir()
	var bin bytes.Buffer
	k1.Serialize(&bin)
	p1 := filepath.Join(dir, "one.gpg")
	p2 := filepath.Join(dir, "two.asc")
	if err := os.WriteFile(p1, bin.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p2, []byte(armoredPublicKey(t, k2)), 0o644); err != nil {
		t.Fatal(err)
	}
	el, err := Source{SignedBy: p1 + ", " + p2}.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	if len(el) != 2 || el[0].PrimaryKey.KeyId != k1.PrimaryKey.KeyId || el[1].PrimaryKey.KeyId != k2.PrimaryKey.KeyId {
		t.Errorf("got %d keys", len(el))
	}
}

// TestNetworkBookworm fetches the real bookworm InRelease and main/amd64
// Packages from the host's configured mirror and verifies them with the
// real keyring. It runs only with KILN_NETWORK_TESTS=1.
func TestNetworkBookworm(t *testing.T) {
	if testing.Short() || os.Getenv("KILN_NETWORK_TESTS") != "1" {
		t.Skip("set KILN_NETWORK_TESTS=1 (and omit -short) to run network tests")
	}
	srcs, err := LoadSourcesDir("/etc/apt")
	if err != nil {
		t.Fatal(err)
	}
	var src *Source
	for i := range srcs {
		if slices.Contains(srcs[i].Suites, "bookworm") {
			src = &srcs[i]
			break
		}
	}
	if src == nil {
		t.Skip("no bookworm source in /etc/apt")
	}
	kr := loadDebianKeyring(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := &HTTPFetcher{UserAgent: "kiln-test"}
	rel, err := FetchRelease(ctx, f, *src, "bookworm", kr, ReleaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s %s signed by %s, Date %s, Valid-Until %v, by-hash %v", rel.URL, rel.Codename, rel.Version, rel.Signer, rel.Date, rel.ValidUntil, rel.AcquireByHash)
	idx, err := FetchPackages(ctx, f, rel, "main", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d packages", idx.URL, len(idx.Packages))
	found := false
	for _, p := range idx.Packages {
		if p.Package == "base-files" {
			found = true
			t.Logf("base-files %s %s %d %s", p.Version, p.URL, p.Size, p.SHA256)
		}
	}
	if !found || len(idx.Packages) < 1000 {
		t.Errorf("index looks wrong: %d packages, base-files found %v", len(idx.Packages), found)
	}
}
