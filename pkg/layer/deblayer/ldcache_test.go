package deblayer

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestLibcmp(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		sign int
	}{
		{"libz.so.1", "libz.so.1", 0},
		{"libz.so.10", "libz.so.9", 1}, // numbers, not bytes
		{"libz.so.1", "libz.so", 1},    // longer sorts after
		{"libz3.so", "libz.so", 1},     // a digit sorts after any other byte
		{"liba.so", "libb.so", -1},
		{"libfoo-2.0.so.0", "libfoo-10.0.so.0", -1},
	} {
		got := libcmp(tc.a, tc.b)
		if (got > 0) != (tc.sign > 0) || (got < 0) != (tc.sign < 0) {
			t.Errorf("libcmp(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.sign)
		}
		if back := libcmp(tc.b, tc.a); (back > 0) != (got < 0) {
			t.Errorf("libcmp(%q, %q) = %d is not the opposite of %d", tc.b, tc.a, back, got)
		}
	}
}

func TestLDCacheRoundTrip(t *testing.T) {
	in := []ldEntry{
		{flags: 0x0303, key: "libz.so.1", value: "/lib/x86_64-linux-gnu/libz.so.1"},
		{flags: 0x0303, key: "libzstd.so.1", value: "/lib/x86_64-linux-gnu/libzstd.so.1"},
		{flags: 0x0303, key: "libz.so", value: "/lib/x86_64-linux-gnu/libz.so"},
	}
	sortLDEntries(in)
	if in[0].key != "libzstd.so.1" || in[2].key != "libz.so" {
		t.Errorf("sorted %v, want descending libcmp order", in)
	}
	b := encodeLDCache(in)
	out, err := parseLDCache(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read back %d entries, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i] != in[i] {
			t.Errorf("entry %d: %+v, want %+v", i, out[i], in[i])
		}
	}
	for _, bad := range [][]byte{nil, []byte("ld.so-1.7.0"), b[:60]} {
		if _, err := parseLDCache(bad); err == nil {
			t.Errorf("parseLDCache(%q...) succeeded", bad[:min(len(bad), 12)])
		}
	}
}

// TestLDCacheMatchesLdconfig: the ld.so.cache Write makes for real
// libraries (a soname link, an absolute development link, a library in a
// directory an ld.so.conf.d file adds, a linker script) lists what glibc's
// own ldconfig lists for the same tree, in its order, and the parent's
// entries are kept.
func TestLDCacheMatchesLdconfig(t *testing.T) {
	ldconfig, err := exec.LookPath("ldconfig")
	if err != nil || os.Getuid() != 0 || runtime.GOARCH != "amd64" {
		t.Skip("needs ldconfig, root (ldconfig -r chroots) and an amd64 host")
	}
	zlib, err1 := os.ReadFile("/lib/x86_64-linux-gnu/libz.so.1.2.13")
	zstd, err2 := filepath.EvalSymlinks("/lib/x86_64-linux-gnu/libzstd.so.1")
	if err1 != nil || err2 != nil {
		t.Skip("needs the host's libz.so.1.2.13 and libzstd.so.1")
	}
	zstdBody, err := os.ReadFile(zstd)
	if err != nil {
		t.Fatal(err)
	}
	const ma = "/usr/lib/x86_64-linux-gnu/"
	pkg := testPkg{
		control: "Package: libs\nVersion: 1\nArchitecture: amd64\nDescription: libs",
		data: []ent{dir("./"), dir("./usr/"), dir("./usr/lib/"), dir("./usr/lib/x86_64-linux-gnu/"),
			file("."+ma+"libz.so.1.2.13", string(zlib)), symlink("."+ma+"libz.so.1", "libz.so.1.2.13"),
			symlink("."+ma+"libz.so", "/lib/x86_64-linux-gnu/libz.so.1.2.13"),
			file("."+ma+"libc.so", "/* GNU ld script */\nGROUP ( libc.so.6 )\n"),
			dir("./opt/"), dir("./opt/zs/"), file("./opt/zs/"+filepath.Base(zstd), string(zstdBody)), symlink("./opt/zs/libzstd.so.1", filepath.Base(zstd)),
			dir("./etc/"), dir("./etc/ld.so.conf.d/"), file("./etc/ld.so.conf.d/zs.conf", "# zstd\n/opt/zs\n"),
		},
	}
	parent := Parent{Symlinks: mergedUsr(), Files: map[string][]byte{
		"etc/ld.so.conf":                         []byte("include /etc/ld.so.conf.d/*.conf\n"),
		"etc/ld.so.conf.d/x86_64-linux-gnu.conf": []byte("/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n"),
	}}
	l, rep, raw := writeLayer(t, parent, []Deb{pkg.build(t, "libs.deb")})
	got, err := parseLDCache([]byte(l.get(t, "etc/ld.so.cache").body))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range rep.Warnings {
		if strings.Contains(w, "/opt/zs") {
			t.Errorf("warned about /opt/zs, whose library is in the cache: %s", w)
		}
	}

	// ldconfig over the same tree.
	root := t.TempDir()
	for link, target := range mergedUsr() {
		os.MkdirAll(filepath.Join(root, "usr", strings.TrimPrefix(target, "usr/")), 0o755)
		os.Symlink(target, filepath.Join(root, link))
	}
	extract(t, raw, root)
	for name, body := range parent.Files {
		os.WriteFile(filepath.Join(root, name), body, 0o644)
	}
	os.Remove(filepath.Join(root, "etc/ld.so.cache"))
	if out, err := exec.Command(ldconfig, "-X", "-r", root).CombinedOutput(); err != nil {
		t.Fatalf("ldconfig: %v\n%s", err, out)
	}
	theirs, err := os.ReadFile(filepath.Join(root, "etc/ld.so.cache"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseLDCache(theirs)
	if err != nil {
		t.Fatal(err)
	}
	show := func(es []ldEntry) string {
		var b strings.Builder
		for _, e := range es {
			b.WriteString(e.key + " " + e.value + "\n")
		}
		return b.String()
	}
	t.Logf("ldconfig lists\n%s", show(want))
	if show(got) != show(want) {
		t.Errorf("kiln's ld.so.cache lists\n%s\nldconfig's\n%s", show(got), show(want))
	}
	for i := range got {
		if i < len(want) && got[i].flags != want[i].flags {
			t.Errorf("%s: flags %#x, ldconfig %#x", got[i].key, got[i].flags, want[i].flags)
		}
	}

	// Over a parent with a cache, its entries stay.
	parent.Files["etc/ld.so.cache"] = encodeLDCache([]ldEntry{{flags: 0x0303, key: "libc.so.6", value: "/lib/x86_64-linux-gnu/libc.so.6"}})
	l, _, _ = writeLayer(t, parent, []Deb{pkg.build(t, "libs.deb")})
	merged, _ := parseLDCache([]byte(l.get(t, "etc/ld.so.cache").body))
	if !strings.Contains(show(merged), "libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\n") || len(merged) != len(want)+1 {
		t.Errorf("over the parent's cache kiln lists\n%s", show(merged))
	}
}

// extract writes a layer's directories, files and symlinks under root.
func extract(t *testing.T, layer []byte, root string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
		}
	}
}
