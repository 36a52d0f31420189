package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeTree creates files under dir: a name ending in "/" is a directory,
// "->" makes a symlink, a "*" suffix makes an executable.
func writeTree(t *testing.T, dir string, entries ...string) {
	t.Helper()
	for _, e := range entries {
		switch {
		case strings.HasSuffix(e, "/"):
			must(t, os.MkdirAll(filepath.Join(dir, e), 0o755))
		case strings.Contains(e, " -> "):
			name, target, _ := strings.Cut(e, " -> ")
			must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
			must(t, os.Symlink(target, filepath.Join(dir, name)))
		default:
			mode := fs.FileMode(0o644)
			if strings.HasSuffix(e, "*") {
				e, mode = strings.TrimSuffix(e, "*"), 0o700
			}
			p := filepath.Join(dir, e)
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte("content of "+e), mode))
			must(t, os.Chmod(p, mode))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func paths(files []File) []string {
	var out []string
	for _, f := range files {
		p := f.Path
		if f.Mode.IsDir() {
			p += "/"
		}
		out = append(out, p)
	}
	return out
}

func TestCollectDockerignore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tree   []string
		ignore string
		want   []string
	}{
		{
			name: "default excludes",
			tree: []string{"main.py", ".git/config", "pkg/__pycache__/m.cpython-311.pyc", "pkg/m.py", "pkg/old.pyc"},
			want: []string{"root/", "root/main.py", "root/pkg/", "root/pkg/m.py"},
		},
		{
			name:   "patterns and exceptions",
			tree:   []string{"main.py", "debug.log", "logs/a.log", "logs/keep.log", "data/big.bin", "data/small.txt"},
			ignore: "*.log\nlogs/\n!logs/keep.log\ndata/*.bin\n",
			want:   []string{"root/", "root/.dockerignore", "root/data/", "root/data/small.txt", "root/logs/", "root/logs/keep.log", "root/main.py"},
		},
		{
			name:   "double star",
			tree:   []string{"a/b/c/secret.key", "a/b/ok.py", "secret.key"},
			ignore: "**/*.key\n",
			want:   []string{"root/", "root/.dockerignore", "root/a/", "root/a/b/", "root/a/b/c/", "root/a/b/ok.py"},
		},
		{
			name:   "comments and leading slash",
			tree:   []string{"build/x", "src/build/y"},
			ignore: "# comment\n/build\n",
			want:   []string{"root/", "root/.dockerignore", "root/src/", "root/src/build/", "root/src/build/y"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.tree...)
			if tc.ignore != "" {
				must(t, os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(tc.ignore), 0o644))
			}
			files, err := Collect(context.Background(), []Mapping{{Src: dir, Dest: "/root"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := paths(files); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Collect =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestCollectCopies(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, "model.bin", "conf/a.yaml", "conf/b.yaml")
	files, err := Collect(context.Background(), []Mapping{
		{Src: filepath.Join(dir, "model.bin"), Dest: "/opt/model/"},
		{Src: filepath.Join(dir, "model.bin"), Dest: "/opt/renamed.bin"},
		{Src: filepath.Join(dir, "conf"), Dest: "/etc/app"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etc/", "etc/app/", "etc/app/a.yaml", "etc/app/b.yaml", "opt/", "opt/model/", "opt/model/model.bin", "opt/renamed.bin"}
	if got := paths(files); !reflect.DeepEqual(got, want) {
		t.Errorf("Collect =\n%q\nwant\n%q", got, want)
	}
}

func TestCollectSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tree    []string
		wantErr string
	}{
		{"inside", []string{"a/x.py", "link -> a/x.py", "a/up -> ../a/x.py"}, ""},
		{"absolute", []string{"link -> /etc/passwd"}, "points outside"},
		{"climbs out", []string{"a/link -> ../../secret"}, "points outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.tree...)
			files, err := Collect(context.Background(), []Mapping{{Src: dir, Dest: "/root"}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					if f.Path == "root/link" && (f.Mode&fs.ModeSymlink == 0 || f.Link != "a/x.py") {
						t.Errorf("root/link = %+v, want a symlink to a/x.py", f)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "link") {
				t.Errorf("Collect error = %v, want one naming the link and %q", err, tc.wantErr)
			}
		})
	}
}

func TestCollectRejectsSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Skip("cannot make a FIFO here:", err)
	}
	_, err := Collect(context.Background(), []Mapping{{Src: dir, Dest: "/root"}})
	if err == nil || !strings.Contains(err.Error(), "fifo") {
		t.Errorf("Collect of a FIFO: %v, want an error naming it", err)
	}
}

func readTar(t *testing.T, data []byte) []*tar.Header {
	t.Helper()
	var out []*tar.Header
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		out = append(out, h)
	}
}

func buildTar(t *testing.T, l *Files) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, l.WriteTar(context.Background(), tw))
	must(t, tw.Close())
	return buf.Bytes()
}

func TestFilesTarIsNormalised(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, "run.sh*", "data.txt", "link -> data.txt")
	must(t, os.Chmod(filepath.Join(dir, "data.txt"), 0o600))
	epoch := time.Unix(1700000000, 0)
	files, err := Collect(context.Background(), []Mapping{{Src: dir, Dest: "/root"}})
	must(t, err)
	hdrs := readTar(t, buildTar(t, &Files{Entries: files, Epoch: epoch}))
	want := map[string]struct {
		typ  byte
		mode int64
	}{
		"root/":         {tar.TypeDir, 0o755},
		"root/data.txt": {tar.TypeReg, 0o644},
		"root/link":     {tar.TypeSymlink, 0o777},
		"root/run.sh":   {tar.TypeReg, 0o755},
	}
	if len(hdrs) != len(want) {
		t.Fatalf("%d entries, want %d", len(hdrs), len(want))
	}
	for i, h := range hdrs {
		w, ok := want[h.Name]
		if !ok {
			t.Errorf("unexpected entry %s", h.Name)
			continue
		}
		if h.Typeflag != w.typ || h.Mode != w.mode {
			t.Errorf("%s: type %c mode %o, want %c %o", h.Name, h.Typeflag, h.Mode, w.typ, w.mode)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: uid %d gid %d mtime %v, want 0 0 %v", h.Name, h.Uid, h.Gid, h.ModTime, epoch)
		}
		if i > 0 && hdrs[i-1].Name >= h.Name {
			t.Errorf("entries not sorted: %s before %s", hdrs[i-1].Name, h.Name)
		}
	}
}

func TestFilesDeterministicAcrossTrees(t *testing.T) {
	// The same content written at different times, in a different order,
	// with a different umask gives the same bytes and key.
	mk := func(order []string, mode fs.FileMode) (*Files, []byte) {
		dir := t.TempDir()
		for _, n := range order {
			p := filepath.Join(dir, n)
			must(t, os.MkdirAll(filepath.Dir(p), 0o700))
			must(t, os.WriteFile(p, []byte(n), mode))
			must(t, os.Chmod(p, mode))
			must(t, os.Chtimes(p, time.Now(), time.Unix(int64(len(order)*1000), 0)))
		}
		files, err := Collect(context.Background(), []Mapping{{Src: dir, Dest: "/root"}})
		must(t, err)
		l := &Files{Entries: files, Epoch: time.Unix(0, 0)}
		return l, buildTar(t, l)
	}
	l1, b1 := mk([]string{"a/x", "b/y", "c"}, 0o600)
	l2, b2 := mk([]string{"c", "b/y", "a/x"}, 0o664)
	if !bytes.Equal(b1, b2) {
		t.Error("same content gave different tar bytes")
	}
	if l1.Key() != l2.Key() {
		t.Error("same content gave different keys")
	}
}

func TestKeySeparatesPaths(t *testing.T) {
	// flytekit's hash concatenates paths, so a/bc and ab/c collide; ours
	// must not.
	a := &Files{Entries: []File{{Path: "a/bc", SHA256: "x"}}}
	b := &Files{Entries: []File{{Path: "ab/c", SHA256: "x"}}}
	c := &Files{Entries: []File{{Path: "a", SHA256: "bcx"}}}
	if a.Key() == b.Key() || a.Key() == c.Key() {
		t.Error("different trees share a key")
	}
	d := &Files{Entries: []File{{Path: "a/bc", SHA256: "x", Mode: 0o755}}}
	if a.Key() == d.Key() {
		t.Error("a mode change must change the key")
	}
}

func TestWriteTarDetectsChangedFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, "f.txt")
	files, err := Collect(context.Background(), []Mapping{{Src: dir, Dest: "/root"}})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "f.txt"), []byte("changed!!!!!!!!!!!"), 0o644))
	var buf bytes.Buffer
	err = (&Files{Entries: files}).WriteTar(context.Background(), tar.NewWriter(&buf))
	if err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("WriteTar after a change: %v, want an error saying the file changed", err)
	}
}
