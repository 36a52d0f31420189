package aptrepo

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// count returns how often the server was asked for path.
func (s *server) count(path string) int {
	n := 0
	for _, h := range s.requested() {
		if h == path {
			n++
		}
	}
	return n
}

// TestAhead checks that the verified fetches use what an Ahead fetched and
// parsed, and only that: the same InRelease is verified as always, an
// index is used only for the SHA-256, size, path and archive root the
// verified Release names, and whatever the Ahead failed at is fetched
// again.
func TestAhead(t *testing.T) {
	key := newKey(t, "repo", packet.PubKeyAlgoEdDSA, 0)
	other := newKey(t, "other", packet.PubKeyAlgoEdDSA, 0)
	const in = "/debian/dists/bookworm/InRelease"
	const xzPath = "/debian/dists/bookworm/main/binary-amd64/Packages.xz"
	opts := ReleaseOptions{Now: at(t0.Add(time.Hour))}

	tests := []struct {
		name string
		// signer signs the served InRelease.
		signer *openpgp.Entity
		// status is the server's answer to Packages.xz while the Ahead
		// works, when not 0.
		status int
		// wantErr is the error FetchRelease must give, if any.
		wantErr error
		// xzFetches is how often Packages.xz must have been fetched in all.
		xzFetches int
	}{
		{name: "used", signer: key, xzFetches: 1},
		{name: "InRelease by an unknown key is refused as without an Ahead", signer: other, wantErr: ErrUnknownKey},
		{name: "a failed index is fetched again", signer: key, status: http.StatusInternalServerError, xzFetches: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, rel := buildRelease(t, repoSpec{indices: []string{".xz"}})
			files[in] = clearsignText(t, rel, tt.signer)
			srv := newServer(t, files)
			if tt.status != 0 {
				srv.status[xzPath] = tt.status
			}
			ctx := context.Background()
			a := NewAhead(ctx, srv.fetcher(), "amd64", IndexOptions{})
			defer a.Close()
			a.Start(srv.source())
			a.Start(srv.source()) // started once

			r, err := FetchRelease(ctx, a, srv.source(), "bookworm", publicKeyring(t, key), opts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FetchRelease: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := srv.count(in); n != 1 {
				t.Errorf("InRelease fetched %d times, want 1", n)
			}
			fh, _ := r.File("main/binary-amd64/Packages.xz")
			if tt.status != 0 {
				// Let the Ahead fail first, then serve the file.
				if _, _, ok := a.Parsed(ctx, fh, r.ArchiveRoot); ok {
					t.Fatal("Parsed gives an index the server refused")
				}
				srv.mu.Lock()
				delete(srv.status, xzPath)
				srv.mu.Unlock()
			}
			for _, wrong := range []struct {
				what string
				fh   FileHash
				root string
			}{
				{"another SHA-256", FileHash{Path: fh.Path, Size: fh.Size, SHA256: sha(nil)}, r.ArchiveRoot},
				{"another size", FileHash{Path: fh.Path, Size: fh.Size + 1, SHA256: fh.SHA256}, r.ArchiveRoot},
				{"another path", FileHash{Path: "main/binary-amd64/Packages.gz", Size: fh.Size, SHA256: fh.SHA256}, r.ArchiveRoot},
				{"another archive root", fh, r.ArchiveRoot + "/x"},
			} {
				if _, _, ok := a.Parsed(ctx, wrong.fh, wrong.root); ok {
					t.Errorf("Parsed gives an index for %s", wrong.what)
				}
			}
			got, err := FetchIndex(ctx, srv.fetcher(), r, "main", "amd64", IndexOptions{Ahead: a})
			if err != nil {
				t.Fatal(err)
			}
			want, err := FetchIndex(ctx, srv.fetcher(), r, "main", "amd64", IndexOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("index through the Ahead:\n%+v\nwithout:\n%+v", got, want)
			}
			// The second FetchIndex, without the Ahead, fetched once.
			if n := srv.count(xzPath) - 1; n != tt.xzFetches {
				t.Errorf("Packages.xz fetched %d times through the Ahead, want %d", n, tt.xzFetches)
			}
		})
	}
}

// TestAheadRelease checks that a suite without InRelease has its Release
// fetched ahead too, and that a closed Ahead leaves the fetches to its
// Fetcher.
func TestAheadRelease(t *testing.T) {
	key := newKey(t, "repo", packet.PubKeyAlgoEdDSA, 0)
	files, rel := buildRelease(t, repoSpec{indices: []string{".xz"}})
	files["/debian/dists/bookworm/Release"] = rel
	files["/debian/dists/bookworm/Release.gpg"] = detachSign(t, rel, key)
	srv := newServer(t, files)
	ctx := context.Background()
	opts := ReleaseOptions{Now: at(t0.Add(time.Hour))}

	a := NewAhead(ctx, srv.fetcher(), "amd64", IndexOptions{})
	a.Start(srv.source())
	r, err := FetchRelease(ctx, a, srv.source(), "bookworm", publicKeyring(t, key), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FetchIndex(ctx, srv.fetcher(), r, "main", "amd64", IndexOptions{Ahead: a}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	for _, f := range []string{"InRelease", "Release", "Release.gpg"} {
		if n := srv.count("/debian/dists/bookworm/" + f); n != 1 {
			t.Errorf("%s asked for %d times, want 1", f, n)
		}
	}
	if n := srv.count("/debian/dists/bookworm/main/binary-amd64/Packages.xz"); n != 1 {
		t.Errorf("Packages.xz fetched %d times, want 1", n)
	}

	closed := NewAhead(ctx, srv.fetcher(), "amd64", IndexOptions{})
	closed.Close()
	closed.Start(srv.source())
	if _, err := FetchRelease(ctx, closed, srv.source(), "bookworm", publicKeyring(t, key), opts); err != nil {
		t.Fatalf("FetchRelease through a closed Ahead: %v", err)
	}
	if n := srv.count("/debian/dists/bookworm/Release"); n != 2 {
		t.Errorf("Release fetched %d times in all, want 2 (the closed Ahead fetched nothing)", n)
	}
}
