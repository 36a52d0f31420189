package layer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// TestCollectRefusesHostileTrees covers what a tree (source_root or a copied
// directory) may not hold: links that resolve out of it through its own
// links, whiteout names, special files and bad .dockerignore files. Each is
// an *InputError naming the file.
func TestCollectRefusesHostileTrees(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tree  []string
		setup func(t *testing.T, dir string)
		dest  string
		want  []string // substrings of the error; nil: no error
	}{
		{name: "link to itself stays inside", tree: []string{"self -> ."}},
		{name: "link into a sibling", tree: []string{"a/x", "b/l -> ../a/x", "c -> b/l"}},
		{name: "climb through a self link", tree: []string{"self -> .", "climb -> self/.."}, want: []string{"climb", "points outside", "climbs above the tree"}},
		{name: "climb through a nested link", tree: []string{"a/b/", "a/up -> b/../..", "x -> a/up/.."}, want: []string{"/x:", "points outside"}},
		{name: "through an absolute link", tree: []string{"abs -> /etc", "x -> abs/passwd"}, want: []string{"abs", "points outside"}},
		{name: "link loop", tree: []string{"l1 -> l2", "l2 -> l1"}, want: []string{"too many levels"}},
		{name: "whiteout file", tree: []string{"a/.wh.passwd"}, want: []string{".wh.passwd", "whiteout"}},
		{name: "opaque whiteout", tree: []string{"a/.wh..wh..opq"}, want: []string{".wh..wh..opq", "whiteout"}},
		{name: "whiteout ignored", tree: []string{".wh.x", ".dockerignore"}, setup: func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(".wh.*\n"), 0o644))
		}},
		{name: "whiteout destination", tree: []string{"a"}, dest: "/opt/.wh.etc", want: []string{"/opt/.wh.etc", "whiteout"}},
		{name: "named pipe", setup: func(t *testing.T, dir string) {
			must(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644))
		}, want: []string{"/pipe:", "a named pipe", ".dockerignore"}},
		{name: "ignored named pipe", setup: func(t *testing.T, dir string) {
			must(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644))
			must(t, os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("pipe\n"), 0o644))
		}},
		{name: "dockerignore with a NUL", setup: func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("ok\nb\x00d\n"), 0o644))
		}, want: []string{".dockerignore:2", "NUL"}},
		{name: "dockerignore bad pattern", setup: func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("# c\n\nsrc/[a-\n"), 0o644))
		}, want: []string{".dockerignore:3", `"src/[a-"`}},
		{name: "dockerignore bad exclusion", setup: func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("!\n"), 0o644))
		}, want: []string{".dockerignore:1", `"!"`}},
		{name: "dockerignore too big", setup: func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(strings.Repeat("a\n", maxDockerignore)), 0o644))
		}, want: []string{".dockerignore", "bytes"}},
		{name: "dockerignore links to a device", setup: func(t *testing.T, dir string) {
			must(t, os.Symlink("/dev/zero", filepath.Join(dir, ".dockerignore")))
		}, want: []string{".dockerignore", "character device", "not a regular file"}},
		{name: "dockerignore is a pipe", setup: func(t *testing.T, dir string) {
			must(t, syscall.Mkfifo(filepath.Join(dir, ".dockerignore"), 0o644))
		}, want: []string{".dockerignore", "named pipe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.tree...)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			m := Mapping{Src: dir, Dest: "/root"}
			if tc.dest != "" {
				m = Mapping{Src: filepath.Join(dir, "a"), Dest: tc.dest}
			}
			_, err := Collect(context.Background(), []Mapping{m})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Collect: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Collect succeeded, want an error with %q", tc.want)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Errorf("error %v is %T, want *InputError", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestCollectUnreadable needs a user that permissions apply to.
func TestCollectUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file; the e2e test as nobody covers this")
	}
	dir := t.TempDir()
	writeTree(t, dir, "secret")
	must(t, os.Chmod(filepath.Join(dir, "secret"), 0))
	_, err := Collect(context.Background(), []Mapping{{Src: dir, Dest: "/root"}})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "unreadable: permission denied") || !strings.Contains(err.Error(), "secret") {
		t.Errorf("Collect = %v, want an *InputError naming secret as unreadable", err)
	}
}

// fakeParent is a merged-/usr parent: bin, sbin and lib are links into usr.
type fakeParent map[string]string

func (p fakeParent) RealDir(dir string) (string, bool) {
	if r, ok := p[dir]; ok {
		return r, true
	}
	for _, d := range []string{"usr", "usr/bin", "usr/lib", "usr/sbin", "opt", "etc"} {
		if d == dir {
			return dir, true
		}
	}
	return "", false
}

func TestThroughParent(t *testing.T) {
	merged := fakeParent{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib"}
	for _, tc := range []struct {
		name    string
		parent  ParentDirs
		files   []string
		want    []string
		wantErr string
	}{
		{"file in /bin", merged, []string{"bin/", "bin/tool"}, []string{"usr/", "usr/bin/", "usr/bin/tool"}, ""},
		{"deeper under /lib", merged, []string{"lib/", "lib/mylib/", "lib/mylib/tool"}, []string{"usr/", "usr/lib/", "usr/lib/mylib/", "usr/lib/mylib/tool"}, ""},
		{"no links", fakeParent{}, []string{"opt/", "opt/x"}, []string{"opt/", "opt/x"}, ""},
		{"not merged", fakeParent{"bin": "bin"}, []string{"bin/", "bin/tool"}, []string{"bin/", "bin/tool"}, ""},
		{"collision", merged, []string{"bin/", "bin/tool", "usr/", "usr/bin/", "usr/bin/tool"}, nil, "comes from both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in []File
			for _, p := range tc.files {
				if strings.HasSuffix(p, "/") {
					in = append(in, File{Path: strings.TrimSuffix(p, "/"), Mode: 0o755 | os.ModeDir})
				} else {
					in = append(in, File{Path: p, Src: "/host/" + p, Mode: 0o755})
				}
			}
			got, err := ThroughParent(in, tc.parent)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ThroughParent error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p := paths(got); !reflect.DeepEqual(p, tc.want) {
				t.Errorf("ThroughParent = %q, want %q", p, tc.want)
			}
		})
	}
}
