package pypi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeBuilder "builds" an sdist by writing the wheel makeWheel gives for
// the same name and version (with the given requirements).
type fakeBuilder struct {
	t        *testing.T
	dir      string
	requires map[string][]string
	fail     map[string]bool
	mu       sync.Mutex
	built    []string
}

func (b *fakeBuilder) BuildWheel(_ context.Context, ix *Index, name, version string, sdist File) (Built, error) {
	b.mu.Lock()
	b.built = append(b.built, name+" "+version+" from "+sdist.Filename)
	b.mu.Unlock()
	if b.fail[name] {
		return Built{}, errors.New("the build backend failed; its last output:\nerror: no compiler")
	}
	d := dist{name: name, version: version, requires: b.requires[name]}
	data := makeWheel(b.t, d)
	p := filepath.Join(b.dir, d.filename())
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return Built{}, err
	}
	return Built{Path: p, Filename: d.filename(), SHA256: sha256hex(data), Size: int64(len(data))}, nil
}

func TestResolveBuildsSdists(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dists     []dist
		reqs      []string
		requires  map[string][]string
		fail      map[string]bool
		want      []string
		wantBuilt []string
		wantErr   string
	}{
		{
			name:  "an sdist-only project is built",
			dists: []dist{{name: "s", version: "1.0", sdist: true}},
			reqs:  []string{"s"}, want: []string{"s==1.0"}, wantBuilt: []string{"s 1.0 from s-1.0.tar.gz"},
		},
		{
			name:  "a version with a wheel comes first (prefer binary)",
			dists: []dist{{name: "s", version: "2.0", sdist: true}, {name: "s", version: "1.0"}},
			reqs:  []string{"s"}, want: []string{"s==1.0"},
		},
		{
			name:  "the sdist is built when only it satisfies",
			dists: []dist{{name: "s", version: "2.0", sdist: true}, {name: "s", version: "1.0"}},
			reqs:  []string{"s>=2"}, want: []string{"s==2.0"}, wantBuilt: []string{"s 2.0 from s-2.0.tar.gz"},
		},
		{
			name:  "the built wheel's dependencies are resolved",
			dists: []dist{{name: "app", version: "1.0", sdist: true}, {name: "lib", version: "3.0", sdist: true}, {name: "lib", version: "2.0"}},
			reqs:  []string{"app"}, requires: map[string][]string{"app": {"lib>=2"}},
			want: []string{"app==1.0", "lib==2.0"}, wantBuilt: []string{"app 1.0 from app-1.0.tar.gz"},
		},
		{
			name:  "a failing build fails the resolution with its output",
			dists: []dist{{name: "s", version: "1.0", sdist: true}},
			reqs:  []string{"s"}, fail: map[string]bool{"s": true},
			wantErr: "building s 1.0 from s-1.0.tar.gz: the build backend failed; its last output:\nerror: no compiler",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fi := newFakeIndex(t, tc.dists, fakeOpts{})
			env, target := target311(t)
			b := &fakeBuilder{t: t, dir: t.TempDir(), requires: tc.requires, fail: tc.fail}
			res, err := Resolve(t.Context(), Request{
				Requirements: reqs(t, tc.reqs...),
				Env:          env, Target: target, Indexes: testIndexes(t, fi.URL()),
				Builder: b,
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := pins(res); !slices.Equal(got, tc.want) {
				t.Errorf("resolved %v, want %v", got, tc.want)
			}
			if !slices.Equal(b.built, tc.wantBuilt) {
				t.Errorf("built %v, want %v", b.built, tc.wantBuilt)
			}
			for _, d := range res.Distributions {
				fromSdist := slices.ContainsFunc(tc.wantBuilt, func(s string) bool { return strings.HasPrefix(s, d.Name+" ") })
				if fromSdist != (d.BuiltFrom != nil) {
					t.Errorf("%s: BuiltFrom %+v, want it set: %t", d.Name, d.BuiltFrom, fromSdist)
				}
				if fromSdist && (!strings.HasPrefix(d.URL, "file://") || len(d.SHA256) != 64 || !strings.HasSuffix(d.BuiltFrom.Filename, ".tar.gz")) {
					t.Errorf("%s: built wheel %+v", d.Name, d)
				}
			}
		})
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
