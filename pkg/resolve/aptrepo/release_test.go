package aptrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestFetchRelease(t *testing.T) {
	good := newKey(t, "good", packet.PubKeyAlgoEdDSA, 0)
	other := newKey(t, "other", packet.PubKeyAlgoEdDSA, 0)
	rsa := newKey(t, "rsa", packet.PubKeyAlgoRSA, 0)
	shortLived := newKey(t, "short", packet.PubKeyAlgoEdDSA, time.Hour)
	soon := t0.Add(30 * time.Minute)
	later := t0.Add(48 * time.Hour)

	const in = "/debian/dists/bookworm/InRelease"
	const plain = "/debian/dists/bookworm/Release"
	const gpg = "/debian/dists/bookworm/Release.gpg"

	tests := []struct {
		name    string
		spec    repoSpec
		keyring openpgp.EntityList
		now     time.Time
		opts    ReleaseOptions
		// publish adds the signed files for the Release text rel.
		publish func(files map[string][]byte, rel []byte)
		status  map[string]int
		wantErr error  // errors.Is target; nil with wantMsg "" means success
		wantMsg string // substring of the error
		signer  *openpgp.Entity
	}{
		{
			name:    "InRelease good",
			keyring: publicKeyring(t, other, good),
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, good) },
			signer:  good,
		},
		{
			name:    "InRelease RSA",
			keyring: publicKeyring(t, rsa),
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, rsa) },
			signer:  rsa,
		},
		{
			name:    "InRelease signed by unknown and trusted key",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, other, good) },
			signer:  good,
		},
		{
			name:    "InRelease expired key then good key",
			keyring: publicKeyring(t, shortLived, good),
			now:     later,
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, shortLived, good) },
			signer:  good,
		},
		{
			name:    "InRelease tampered",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) {
				f[in] = bytes.Replace(clearsignText(t, rel, good), []byte("Label: Test"), []byte("Label: Evil"), 1)
			},
			wantErr: ErrBadSignature,
			wantMsg: "InRelease",
		},
		{
			name:    "InRelease data after signature",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) {
				f[in] = append(clearsignText(t, rel, good), "Origin: Evil\n"...)
			},
			wantErr: ErrBadSignature,
		},
		{
			name:    "InRelease not signed",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) { f[in] = rel },
			wantErr: ErrNoSignature,
		},
		{
			name:    "InRelease wrong key",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, other) },
			wantErr: ErrUnknownKey,
			wantMsg: fmt.Sprintf("%016X", other.PrimaryKey.KeyId),
		},
		{
			name:    "InRelease signing key expired",
			keyring: publicKeyring(t, shortLived),
			now:     later,
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, shortLived) },
			wantErr: ErrExpired,
		},
		{
			name:    "InRelease short-lived key still valid",
			keyring: publicKeyring(t, shortLived),
			now:     soon,
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, shortLived) },
			signer:  shortLived,
		},
		{
			name:    "Valid-Until passed",
			spec:    repoSpec{validUntil: t0.Add(24 * time.Hour)},
			keyring: publicKeyring(t, good),
			now:     later,
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, good) },
			wantErr: ErrExpired,
			wantMsg: "AllowExpired",
		},
		{
			name:    "Valid-Until passed, AllowExpired",
			spec:    repoSpec{validUntil: t0.Add(24 * time.Hour)},
			keyring: publicKeyring(t, good),
			now:     later,
			opts:    ReleaseOptions{AllowExpired: true},
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, good) },
			signer:  good,
		},
		{
			name:    "Valid-Until in future",
			spec:    repoSpec{validUntil: t0.Add(72 * time.Hour)},
			keyring: publicKeyring(t, good),
			now:     later,
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, good) },
			signer:  good,
		},
		{
			name:    "Release with Release.gpg",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) { f[plain] = rel; f[gpg] = detachSign(t, rel, good) },
			signer:  good,
		},
		{
			name:    "Release tampered",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) {
				f[gpg] = detachSign(t, rel, good)
				f[plain] = bytes.Replace(rel, []byte("Label: Test"), []byte("Label: Evil"), 1)
			},
			wantErr: ErrBadSignature,
			wantMsg: "Release.gpg",
		},
		{
			name:    "Release without Release.gpg",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) { f[plain] = rel },
			wantErr: ErrNoSignature,
			wantMsg: "unsigned",
		},
		{
			name:    "Release.gpg wrong key",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) { f[plain] = rel; f[gpg] = detachSign(t, rel, other) },
			wantErr: ErrUnknownKey,
		},
		{
			name:    "server error on InRelease does not fall back",
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) { f[plain] = rel; f[gpg] = detachSign(t, rel, good) },
			status:  map[string]int{in: http.StatusInternalServerError},
			wantMsg: "500",
		},
		{
			name:    "suite mismatch",
			spec:    repoSpec{suite: "bullseye"},
			keyring: publicKeyring(t, good),
			publish: func(f map[string][]byte, rel []byte) { f[in] = clearsignText(t, rel, good) },
			wantMsg: `not the requested "bookworm"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, rel := buildRelease(t, tc.spec)
			tc.publish(files, rel)
			srv := newServer(t, files)
			for p, c := range tc.status {
				srv.status[p] = c
			}
			now := tc.now
			if now.IsZero() {
				now = t0.Add(time.Hour)
			}
			opts := tc.opts
			opts.Now = at(now)
			r, err := FetchRelease(context.Background(), srv.fetcher(), srv.source(), "bookworm", tc.keyring, opts)
			if tc.wantErr == nil && tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("FetchRelease: %v", err)
				}
				if want := fmt.Sprintf("%X", tc.signer.PrimaryKey.Fingerprint); r.Signer != want {
					t.Errorf("Signer = %s, want %s", r.Signer, want)
				}
				if r.Label != "Test" || r.Suite != "bookworm" || len(r.SHA256) != 3 {
					t.Errorf("parsed Release = %+v", r)
				}
				if want := srv.URL + "/debian/dists/bookworm/"; r.BaseURL != want {
					t.Errorf("BaseURL = %q, want %q", r.BaseURL, want)
				}
				if !strings.HasPrefix(r.URL, r.BaseURL) {
					t.Errorf("URL %q not under BaseURL", r.URL)
				}
				return
			}
			if err == nil {
				t.Fatalf("FetchRelease succeeded, want error %v %q", tc.wantErr, tc.wantMsg)
			}
			t.Logf("error: %v", err)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tc.wantMsg)
			}
			if !strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error %q does not name the URL", err)
			}
		})
	}
}

func TestParseRelease(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(t *testing.T, r *Release)
		wantErr string
	}{
		{
			name: "debian-like",
			in: `Origin: Debian
Label: Debian
Suite: stable
Version: 12.11
Codename: bookworm
Changelogs: https://metadata.ftp-master.debian.org/changelogs/@CHANGEPATH@_changelog
Date: Sat, 17 May 2025 09:14:47 UTC
Valid-Until: Sat, 24 May 2025 09:14:47 +0000
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: all amd64 arm64
Components: main contrib non-free-firmware non-free
Description: Debian 12.11 Released 17 May 2025
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 d6c9c82f4e61b4662f9ba16b9ebb379c57b4943f8b7813091d1f637325ddfb79  1484322 contrib/Contents-all
 ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789 8 main/binary-amd64/Packages.xz
`,
			check: func(t *testing.T, r *Release) {
				if r.Codename != "bookworm" || r.Suite != "stable" || r.Version != "12.11" || r.Origin != "Debian" {
					t.Errorf("names: %+v", r)
				}
				if !r.Date.Equal(time.Date(2025, 5, 17, 9, 14, 47, 0, time.UTC)) {
					t.Errorf("Date = %v", r.Date)
				}
				if !r.ValidUntil.Equal(time.Date(2025, 5, 24, 9, 14, 47, 0, time.UTC)) {
					t.Errorf("ValidUntil = %v", r.ValidUntil)
				}
				if !r.AcquireByHash || r.NoSupportForArchitectureAll != "Packages" {
					t.Errorf("flags: %+v", r)
				}
				if strings.Join(r.Architectures, ",") != "all,amd64,arm64" || len(r.Components) != 4 {
					t.Errorf("lists: %v %v", r.Architectures, r.Components)
				}
				fh, ok := r.File("main/binary-amd64/Packages.xz")
				if !ok || fh.Size != 8 || fh.SHA256 != "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789" {
					t.Errorf("File = %+v, %v", fh, ok)
				}
				if len(r.SHA256) != 2 {
					t.Errorf("SHA256 has %d entries", len(r.SHA256))
				}
			},
		},
		{name: "no SHA256", in: "Origin: x\nMD5Sum:\n 00 1 a\n", wantErr: "no SHA256"},
		{name: "bad digest", in: "SHA256:\n abc 1 a\n", wantErr: "not a SHA-256"},
		{name: "bad size", in: "SHA256:\n " + strings.Repeat("a", 64) + " -1 a\n", wantErr: "bad size"},
		{name: "short entry", in: "SHA256:\n " + strings.Repeat("a", 64) + " 1\n", wantErr: "want"},
		{name: "bad date", in: "Date: yesterday\nSHA256:\n", wantErr: "Date"},
		{name: "armored", in: "-----BEGIN PGP SIGNED MESSAGE-----\n", wantErr: "verify it"},
		{name: "two paragraphs", in: "A: b\n\nC: d\n", wantErr: "more than one"},
		{name: "empty", in: "\n\n", wantErr: "empty"},
		{name: "garbage line", in: "Origin: x\nnot a field\n", wantErr: "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRelease([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestReleaseBaseURL(t *testing.T) {
	src := Source{URI: "http://h/debian"}
	for suite, want := range map[string]string{
		"bookworm": "http://h/debian/dists/bookworm/",
		"./":       "http://h/debian/",
		"flat/":    "http://h/debian/flat/",
	} {
		if got := ReleaseBaseURL(src, suite); got != want {
			t.Errorf("ReleaseBaseURL(%q) = %q, want %q", suite, got, want)
		}
	}
}

func FuzzParseRelease(f *testing.F) {
	f.Add([]byte("Origin: Debian\nSuite: stable\nDate: Sat, 17 May 2025 09:14:47 UTC\nSHA256:\n " + strings.Repeat("a", 64) + " 12 main/binary-amd64/Packages.xz\n"))
	f.Add([]byte("Valid-Until: Sat, 24 May 2025 09:14:47 +0000\nAcquire-By-Hash: yes\nSHA256:\n"))
	f.Add([]byte("A: b\n c\n .\n\n"))
	f.Add([]byte(" continuation\n"))
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nA: b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRelease(data)
		if err != nil {
			return
		}
		for _, fh := range r.SHA256 {
			if fh.Size < 0 || len(fh.SHA256) != 64 || fh.Path == "" {
				t.Fatalf("bad entry accepted: %+v", fh)
			}
		}
	})
}
