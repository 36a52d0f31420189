package wheelinstall_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/pkg/layer/wheelinstall"
)

var testEpoch = time.Unix(1700000000, 0)

// install runs Install on wheel bytes into a fresh tar and returns the tar.
func install(t testing.TB, data []byte, filename string, scheme wheelinstall.Scheme, opts wheelinstall.Options) (wheelinstall.Installed, []byte, error) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	inst, err := wheelinstall.Install(context.Background(), tw, bytes.NewReader(data), int64(len(data)), filename, scheme, opts)
	if err != nil {
		return inst, buf.Bytes(), err
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return inst, buf.Bytes(), nil
}

func simple(files ...zfile) testWheel {
	return testWheel{name: "pkg", version: "1.0", purelib: true, files: files}
}

// rawZip rebuilds w's archive with the entry name replaced by one whose
// header lies: it declares declared bytes but holds data, deflated.
func rawZip(t *testing.T, w testWheel, name string, data []byte, declared uint64) []byte {
	t.Helper()
	good := w.build(t)
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if f.Name == name {
			continue
		}
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(data)
	fw.Close()
	raw, err := zw.CreateRaw(&zip.FileHeader{
		Name: name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(data),
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: declared,
	})
	if err != nil {
		t.Fatal(err)
	}
	raw.Write(comp.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInstallRefuses(t *testing.T) {
	zeros := make([]byte, 20<<20)
	tests := []struct {
		name     string
		wheel    func(t *testing.T) []byte
		filename string
		opts     wheelinstall.Options
		want     string // in the error
	}{
		{name: "absolute path", want: "absolute path",
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "/etc/passwd", data: "x"}).build(t) }},
		{name: "dot-dot", want: `".."`,
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "../evil.py", data: "x"}).build(t) }},
		{name: "inner dot-dot", want: `".."`,
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg/../../evil.py", data: "x"}).build(t) }},
		{name: "dot", want: `"."`,
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg/./x.py", data: "x"}).build(t) }},
		{name: "data dot-dot", want: `".."`,
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg-1.0.data/data/../../../etc/x", data: "x"}).build(t)
			}},
		{name: "backslash", want: "backslash",
			wheel: func(t *testing.T) []byte { return simple(zfile{name: `..\evil.py`, data: "x"}).build(t) }},
		{name: "empty component", want: "empty path component",
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg//x.py", data: "x"}).build(t) }},
		{name: "symlink", want: "symlink",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg/link", data: "../../../../etc/passwd", mode: 0o120777}).build(t)
			}},
		{name: "device", want: "not a regular file",
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg/dev", data: "", mode: 0o020644}).build(t) }},
		{name: "duplicate entry", want: "appears twice",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg/a.py", data: "1"}, zfile{name: "pkg/a.py", data: "1"}).build(t)
			}},
		{name: "case collision", want: "collide",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg/A.py", data: "1"}, zfile{name: "pkg/a.py", data: "2"}).build(t)
			}},
		{name: "unicode collision", want: "collide",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg/\u00e9.py", data: "1"}, zfile{name: "pkg/e\u0301.py", data: "2"}).build(t)
			}},
		{name: "root and purelib collide", want: "collide",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg/a.py", data: "1"}, zfile{name: "pkg-1.0.data/purelib/pkg/a.py", data: "2"}).build(t)
			}},
		{name: "file and directory", want: "needs it to be a directory",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg/x", data: "1"}, zfile{name: "pkg/x/y.py", data: "2"}).build(t)
			}},
		{name: "file over existing directory", want: "replace a directory",
			opts: wheelinstall.Options{Dirs: map[string]bool{"venv/lib/python3.11/site-packages/pkg/x": true}},
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg/x", data: "1"}).build(t)
			}},
		{name: "zip bomb ratio", want: "zip bomb",
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg/zeros", data: string(zeros)}).build(t) }},
		{name: "total size", want: "zip bomb", opts: wheelinstall.Options{Limits: wheelinstall.Limits{MaxTotalSize: 100}},
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg/a", data: strings.Repeat("ab", 100)}).build(t)
			}},
		{name: "entry count", want: "archive entries", opts: wheelinstall.Options{Limits: wheelinstall.Limits{MaxEntries: 2}},
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg/a", data: "a"}).build(t) }},
		{name: "declared size too small", want: "corrupt",
			wheel: func(t *testing.T) []byte {
				data := strings.Repeat("abcdefgh", 1000)
				return rawZip(t, simple(zfile{name: "pkg/big", data: data}), "pkg/big", []byte(data), 10)
			}},
		{name: "declared size too large", want: "corrupt",
			wheel: func(t *testing.T) []byte {
				data := strings.Repeat("abcdefgh", 10)
				return rawZip(t, simple(zfile{name: "pkg/big", data: data}), "pkg/big", []byte(data), 1000)
			}},
		{name: "hash mismatch", want: `"pkg/a.py" does not match its RECORD hash`,
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg/a.py", data: "1", badHash: true}).build(t) }},
		{name: "size mismatch", want: `RECORD says "2"`,
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg/a.py", data: "1", badSize: true}).build(t) }},
		{name: "not in RECORD", want: `"pkg/a.py" is not listed with a hash in RECORD`,
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg/a.py", data: "1", noRecord: true}).build(t) }},
		{name: "script not in RECORD", want: "not listed",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg-1.0.data/scripts/s", data: "#!python\n", noRecord: true}).build(t)
			}},
		{name: "no RECORD", want: "RECORD is missing",
			wheel: func(t *testing.T) []byte { w := simple(); w.noRecord = true; return w.build(t) }},
		{name: "md5 RECORD", want: "not accepted",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg-1.0.dist-info/RECORD", data: "pkg/a.py,md5=xMpCOKC5I4INzFCab3WEmw,1\n"}, zfile{name: "pkg/a.py", data: "1"}).build(t)
			}},
		{name: "no WHEEL", want: "WHEEL is missing",
			wheel: func(t *testing.T) []byte {
				var buf bytes.Buffer
				zw := zip.NewWriter(&buf)
				w, _ := zw.Create("pkg-1.0.dist-info/METADATA")
				w.Write([]byte("Name: pkg\nVersion: 1.0\n"))
				zw.Close()
				return buf.Bytes()
			}},
		{name: "wheel version 2", want: "Wheel-Version",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg-1.0.dist-info/WHEEL", data: "Wheel-Version: 2.0\nRoot-Is-Purelib: true\n"}).build(t)
			}},
		{name: "two dist-info", want: "several .dist-info",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "other-1.0.dist-info/METADATA", data: "Name: other\n"}).build(t)
			}},
		{name: "other project's dist-info", want: "does not belong", filename: "other-1.0-py3-none-any.whl",
			wheel: func(t *testing.T) []byte { return simple().build(t) }},
		{name: "METADATA name", want: "METADATA names",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg-1.0.dist-info/METADATA", data: "Name: other\nVersion: 1.0\n"}).build(t)
			}},
		{name: "unknown data scheme", want: "unknown scheme key",
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg-1.0.data/etc/x", data: "1"}).build(t) }},
		{name: "file directly in data", want: "unexpected file",
			wheel: func(t *testing.T) []byte { return simple(zfile{name: "pkg-1.0.data/x", data: "1"}).build(t) }},
		{name: "entry point without callable", want: "callable suffix",
			wheel: func(t *testing.T) []byte {
				w := simple()
				w.entryPoints = "[console_scripts]\nfoo = pkg.mod\n"
				return w.build(t)
			}},
		{name: "entry point dot-dot", want: "not a file name",
			wheel: func(t *testing.T) []byte {
				w := simple()
				w.entryPoints = "[console_scripts]\n.. = pkg.mod:main\n"
				return w.build(t)
			}},
		{name: "entry point without =", want: "no '='",
			wheel: func(t *testing.T) []byte {
				w := simple()
				w.entryPoints = "[console_scripts]\nfoo\n"
				return w.build(t)
			}},
		{name: "INSTALLER in wheel", want: "written by installers",
			wheel: func(t *testing.T) []byte {
				return simple(zfile{name: "pkg-1.0.dist-info/INSTALLER", data: "pip\n"}).build(t)
			}},
		{name: "corrupt zip", want: "not a valid zip",
			wheel: func(t *testing.T) []byte { b := simple().build(t); return b[:len(b)-30] }},
		{name: "bad CRC", want: "corrupt",
			wheel: func(t *testing.T) []byte {
				b := simple(zfile{name: "pkg/a.py", data: "MARKER-CONTENT", store: true}).build(t)
				return bytes.Replace(b, []byte("MARKER-CONTENT"), []byte("MARKER-CONTENX"), 1)
			}},
		{name: "bad file name", want: "not a valid wheel file name", filename: "pkg-1.0.whl",
			wheel: func(t *testing.T) []byte { return simple().build(t) }},
	}
	scheme := wheelinstall.VenvScheme("venv", "3.11")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			filename := tc.filename
			if filename == "" {
				filename = simple().filename()
			}
			_, out, err := install(t, tc.wheel(t), filename, scheme, tc.opts)
			if err == nil {
				t.Fatalf("Install succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), filename) {
				t.Errorf("error %q does not name the wheel %s", err, filename)
			}
			if len(out) != 0 {
				t.Errorf("Install wrote %d bytes to the tar before failing", len(out))
			}
		})
	}
}

func TestInstallLayer(t *testing.T) {
	w := simple(
		zfile{name: "pkg/__init__.py", data: "x = 1\n"},
		zfile{name: "pkg/bin.so", data: "ELF", mode: 0o100755},
		zfile{name: "pkg-1.0.data/scripts/s", data: "#!python\nprint(1)\n"},
	)
	w.entryPoints = "[console_scripts]\npkg-cli = pkg:main\n"
	data := w.build(t)
	scheme := wheelinstall.VenvScheme("opt/venv", "3.11")
	opts := wheelinstall.Options{Epoch: testEpoch}

	inst, tarball, err := install(t, data, w.filename(), scheme, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, again, err := install(t, data, w.filename(), scheme, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tarball, again) {
		t.Error("two installations of the same wheel differ")
	}

	site := "opt/venv/lib/python3.11/site-packages/"
	wantFiles := []string{
		"opt/venv/bin/pkg-cli",
		"opt/venv/bin/s",
		site + "pkg-1.0.dist-info/INSTALLER",
		site + "pkg-1.0.dist-info/METADATA",
		site + "pkg-1.0.dist-info/RECORD",
		site + "pkg-1.0.dist-info/WHEEL",
		site + "pkg-1.0.dist-info/entry_points.txt",
		site + "pkg/__init__.py",
		site + "pkg/bin.so",
	}
	if strings.Join(inst.Files, "\n") != strings.Join(wantFiles, "\n") {
		t.Errorf("Files:\n%s\nwant:\n%s", strings.Join(inst.Files, "\n"), strings.Join(wantFiles, "\n"))
	}
	if inst.Name != "pkg" || inst.Version != "1.0" {
		t.Errorf("Name, Version = %q, %q", inst.Name, inst.Version)
	}

	tree := treeFromTar(t, tarball, "opt/venv", testEpoch)
	var size int64
	tr := tar.NewReader(bytes.NewReader(tarball))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		size += h.Size
	}
	if size != inst.Size {
		t.Errorf("Size = %d, tar holds %d", inst.Size, size)
	}
	if names[0] != "opt/" || names[1] != "opt/venv/" {
		t.Errorf("first entries %q, want the parent directories", names[:2])
	}
	for p, want := range map[string]node{
		"bin/pkg-cli": {kind: "file", mode: 0o755},
		"bin/s":       {kind: "file", mode: 0o644}, // pip keeps the archive's mode
		"lib/python3.11/site-packages/pkg/bin.so":      {kind: "file", mode: 0o755},
		"lib/python3.11/site-packages/pkg/__init__.py": {kind: "file", mode: 0o644},
		"lib/python3.11/site-packages/pkg":             {kind: "dir", mode: 0o755},
	} {
		if n := tree[p]; n.kind != want.kind || n.mode != want.mode {
			t.Errorf("%s: %s %o, want %s %o", p, n.kind, n.mode, want.kind, want.mode)
		}
	}
	if got := string(tree["bin/s"].data); got != "#!/opt/venv/bin/python3.11\nprint(1)\n" {
		t.Errorf("bin/s = %q, want its shebang rewritten", got)
	}
	if got := string(tree["bin/pkg-cli"].data); !strings.HasPrefix(got, "#!/opt/venv/bin/python3.11\n# -*- coding: utf-8 -*-\n") || !strings.Contains(got, "from pkg import main\n") {
		t.Errorf("bin/pkg-cli = %q", got)
	}
	if _, ok := tree["lib/python3.11/site-packages/pkg-1.0.dist-info/REQUESTED"]; ok {
		t.Error("REQUESTED written without Options.Requested")
	}
	if _, ok := tree["bin/pkg-cli"]; !ok {
		t.Error("console script not written")
	}
}

func TestInstallSharesDirs(t *testing.T) {
	scheme := wheelinstall.VenvScheme("opt/venv", "3.11")
	dirs := map[string]bool{"opt": true}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, w := range []testWheel{
		{name: "one", version: "1", purelib: true, files: []zfile{{name: "one/__init__.py", data: "1"}}},
		{name: "two", version: "2", purelib: true, files: []zfile{{name: "two/__init__.py", data: "2"}}},
	} {
		data := w.build(t)
		if _, err := wheelinstall.Install(context.Background(), tw, bytes.NewReader(data), int64(len(data)), w.filename(), scheme,
			wheelinstall.Options{Epoch: testEpoch, Dirs: dirs}); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	tr := tar.NewReader(&buf)
	seen := map[string]int{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name]++
	}
	for name, n := range seen {
		if n > 1 {
			t.Errorf("%s written %d times", name, n)
		}
	}
	if seen["opt/"] != 0 {
		t.Error("opt/ written though Dirs had it")
	}
	if seen["opt/venv/lib/python3.11/site-packages/"] != 1 || !dirs["opt/venv/lib/python3.11/site-packages/two"] {
		t.Errorf("directories not written once and recorded: %v", dirs)
	}
}

func TestInstallArguments(t *testing.T) {
	data := simple().build(t)
	bad := wheelinstall.VenvScheme("opt/venv", "3.11")
	bad.Purelib = "/abs"
	if _, _, err := install(t, data, simple().filename(), bad, wheelinstall.Options{}); err == nil || !strings.Contains(err.Error(), "Purelib") {
		t.Errorf("bad scheme: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := wheelinstall.Install(ctx, tar.NewWriter(io.Discard), bytes.NewReader(data), int64(len(data)), simple().filename(),
		wheelinstall.VenvScheme("opt/venv", "3.11"), wheelinstall.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestLongInterpreterShebang(t *testing.T) {
	w := simple(zfile{name: "pkg-1.0.data/scripts/s", data: "#!python\nx\n"})
	w.entryPoints = "[gui_scripts]\ng = pkg.gui:run\n"
	scheme := wheelinstall.VenvScheme("opt/venv", "3.11")
	scheme.Interpreter = "/" + strings.Repeat("d", 130) + "/python"
	_, tarball, err := install(t, w.build(t), w.filename(), scheme, wheelinstall.Options{Epoch: testEpoch})
	if err != nil {
		t.Fatal(err)
	}
	tree := treeFromTar(t, tarball, "opt/venv", testEpoch)
	want := "#!/bin/sh\n'''exec' " + scheme.Interpreter + " \"$0\" \"$@\"\n' '''\n# -*- coding: utf-8 -*-\n"
	if got := string(tree["bin/g"].data); !strings.HasPrefix(got, want) {
		t.Errorf("bin/g = %q, want the /bin/sh trampoline", got)
	}
	// pip's fix_script writes the long shebang as it is.
	if got := string(tree["bin/s"].data); got != "#!"+scheme.Interpreter+"\nx\n" {
		t.Errorf("bin/s = %q", got)
	}
}
