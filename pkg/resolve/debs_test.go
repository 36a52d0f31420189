package resolve

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// mapFiles is a parent filesystem held in a map, as an fstest.MapFS.
type mapFiles map[string]string

func (m mapFiles) fs() fs.FS {
	out := fstest.MapFS{}
	for k, v := range m {
		out[k] = &fstest.MapFile{Data: []byte(v), Mode: 0o644}
	}
	return out
}

func TestResolveDebsSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		parent  mapFiles
		sources []string
		want    []string
	}{
		{"no sources at all", mapFiles{"var/lib/dpkg/status": ""}, nil, []string{"no apt sources", "apt_sources"}},
		{"apt_sources without signed-by", mapFiles{}, []string{"deb http://127.0.0.1:1/debian stable main"}, []string{"no signed-by", "never installs unsigned"}},
		{"bad apt_sources line", mapFiles{}, []string{"deb"}, []string{"apt_sources[0]", "sources.list line"}},
		{"parent keyring missing", mapFiles{"etc/apt/sources.list": "deb [signed-by=/usr/share/keyrings/gone.gpg] http://127.0.0.1:1/debian bookworm main\n"}, nil, []string{"/usr/share/keyrings/gone.gpg", "not in the parent image"}},
		{"parent source without any key", mapFiles{"etc/apt/sources.list": "deb http://127.0.0.1:1/debian bookworm main\n"}, nil, []string{"no keyring", "signed-by"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ResolveDebs(context.Background(), DebRequest{Packages: []string{"git"}, Parent: tc.parent.fs(), Sources: tc.sources, Arch: "amd64", SpecDir: t.TempDir()})
			if err == nil {
				t.Fatal("ResolveDebs succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDebianArch(t *testing.T) {
	for _, tc := range [][3]string{{"amd64", "", "amd64"}, {"arm64", "v8", "arm64"}, {"arm", "v7", "armhf"}, {"arm", "v6", "armel"}, {"386", "", "i386"}, {"ppc64le", "", "ppc64el"}} {
		if got := DebianArch(tc[0], tc[1]); got != tc[2] {
			t.Errorf("DebianArch(%s, %s) = %s, want %s", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestDepNames(t *testing.T) {
	got := depNames("a (>= 1) | b:any, c [amd64] <!nocheck>,\n d\t(<< 2)")
	want := []string{"a", "b", "c", "d"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("depNames = %v, want %v", got, want)
	}
}
