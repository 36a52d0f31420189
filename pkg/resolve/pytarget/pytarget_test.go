package pytarget

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
)

// member is a test tar member: a file, or a symlink when link is set.
type member struct {
	name, body, link string
}

// fsOf returns the members as an fstest.MapFS: Detect takes any fs.FS.
func fsOf(t *testing.T, ms ...member) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	for _, e := range ms {
		switch {
		case e.link != "":
			m[e.name] = &fstest.MapFile{Mode: fs.ModeSymlink | 0o777, Data: []byte(e.link)}
		case strings.HasSuffix(e.name, "/"):
			m[strings.TrimSuffix(e.name, "/")] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		default:
			m[e.name] = &fstest.MapFile{Mode: 0o755, Data: []byte(e.body)}
		}
	}
	return m
}

// rootfsOf returns the members as a parent image's file system reads
// them: a tar layer through rootfs, seen through its io/fs view.
func rootfsOf(t *testing.T, ms ...member) fs.FS {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Mode: 0o755, Typeflag: tar.TypeReg, Size: int64(len(m.body))}
		switch {
		case m.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, m.link, 0
		case strings.HasSuffix(m.name, "/"):
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(m.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	f, err := rootfs.ReadTars(context.Background(), nil, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// elfExe returns a fake 64-bit little-endian executable for machine.
func elfExe(machine uint16) string {
	h := make([]byte, 8192)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], 2)
	binary.LittleEndian.PutUint16(h[18:], machine)
	return string(h)
}

func sysconfigdata(version, soabi, multiarch string) string {
	return "# system configuration generated and used by the sysconfig module\n" +
		"build_time_vars = {'ABIFLAGS': '',\n 'BINDIR': '/usr/bin',\n 'LDVERSION': '" + version + "',\n" +
		" 'MULTIARCH': '" + multiarch + "',\n 'MULTIARCH_CPPFLAGS': '-DMULTIARCH=\\\\\"" + multiarch + "\\\\\"',\n" +
		" 'SOABI': '" + soabi + "',\n 'VERSION': '" + version + "',\n 'prefix': '/usr'}\n"
}

const bookwormStatus = `Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries.

Package: python3.11-minimal
Status: install ok installed
Architecture: amd64
Version: 3.11.2-6+deb12u6

Package: python3.12-minimal
Status: deinstall ok config-files
Architecture: amd64
Version: 3.12.1-1
`

var mergedUsr = []member{
	{name: "usr/bin/"}, {name: "usr/lib/"},
	{name: "bin", link: "usr/bin"}, {name: "lib", link: "usr/lib"},
	{name: "lib64", link: "usr/lib64"}, {name: "sbin", link: "usr/sbin"},
}

func bookworm() []member {
	return append(mergedUsr,
		member{name: "var/lib/dpkg/status", body: bookwormStatus},
		member{name: "usr/bin/python3.11", body: elfExe(62)},
		member{name: "usr/bin/python3", link: "python3.11"},
		member{name: "usr/bin/python3.11-config", link: "x86_64-linux-gnu-python3.11-config"},
		member{name: "usr/lib/python3/dist-packages/"},
		member{name: "usr/lib/python3.11/_sysconfigdata__x86_64-linux-gnu.py", body: sysconfigdata("3.11", "cpython-311-x86_64-linux-gnu", "x86_64-linux-gnu")},
		member{name: "usr/lib/python3.11/_sysconfigdata__linux_x86_64-linux-gnu.py", link: "_sysconfigdata__x86_64-linux-gnu.py"},
	)
}

func officialPython() []member {
	return append(mergedUsr,
		member{name: "var/lib/dpkg/status", body: strings.ReplaceAll(bookwormStatus, "amd64", "arm64")},
		member{name: "usr/local/bin/python3.12", body: elfExe(183)},
		member{name: "usr/local/bin/python3", link: "python3.12"},
		member{name: "usr/local/bin/python", link: "python3"},
		member{name: "usr/local/lib/python3.12/_sysconfigdata__linux_aarch64-linux-gnu.py", body: sysconfigdata("3.12", "cpython-312-aarch64-linux-gnu", "aarch64-linux-gnu")},
	)
}

func alpine() []member {
	return []member{
		{name: "lib/ld-musl-x86_64.so.1", body: elfExe(62)},
		{name: "lib/libc.musl-x86_64.so.1", link: "ld-musl-x86_64.so.1"},
		{name: "lib/apk/db/installed", body: "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:python3\nV:3.11.9-r0\nA:x86_64\n"},
		{name: "usr/bin/python3.11", body: elfExe(62)},
		{name: "usr/bin/python3", link: "python3.11"},
		{name: "usr/lib/python3.11/_sysconfigdata__linux_x86_64-linux-musl.py", body: sysconfigdata("3.11", "cpython-311-x86_64-linux-musl", "x86_64-linux-musl")},
	}
}

func TestDetect(t *testing.T) {
	pyEnv := &v1.ConfigFile{Architecture: "arm64", OS: "linux", Config: v1.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.12.7"}}}
	freeThreaded := append(bookworm()[:0:0], bookworm()...)
	for i, m := range freeThreaded {
		if strings.HasSuffix(m.name, "_sysconfigdata__x86_64-linux-gnu.py") {
			freeThreaded[i].body = sysconfigdata("3.11", "cpython-311t-x86_64-linux-gnu", "x86_64-linux-gnu")
		}
	}
	for _, tc := range []struct {
		name string
		fs   []member
		opts Options
		want Target
	}{
		{
			name: "debian bookworm",
			fs:   bookworm(),
			opts: Options{PythonVersion: "3.11"},
			want: Target{Version: "3.11.2", Major: 3, Minor: 11, Implementation: "cp", ABI: "cp311", Interpreter: "/usr/bin/python3.11",
				Arch: "x86_64", Libc: Glibc, LibcVersion: "2.36", LibcMajor: 2, LibcMinor: 36, SitePackages: "/usr/local/lib/python3.11/dist-packages"},
		},
		{
			name: "debian bookworm, full python_version",
			fs:   bookworm(),
			opts: Options{PythonVersion: "3.11.2", Config: &v1.ConfigFile{Architecture: "amd64"}},
			want: Target{Version: "3.11.2", Major: 3, Minor: 11, Implementation: "cp", ABI: "cp311", Interpreter: "/usr/bin/python3.11",
				Arch: "x86_64", Libc: Glibc, LibcVersion: "2.36", LibcMajor: 2, LibcMinor: 36, SitePackages: "/usr/local/lib/python3.11/dist-packages"},
		},
		{
			name: "free-threaded ABI",
			fs:   freeThreaded,
			want: Target{Version: "3.11.2", Major: 3, Minor: 11, Implementation: "cp", ABI: "cp311t", Interpreter: "/usr/bin/python3.11",
				Arch: "x86_64", Libc: Glibc, LibcVersion: "2.36", LibcMajor: 2, LibcMinor: 36, SitePackages: "/usr/local/lib/python3.11/dist-packages"},
		},
		{
			name: "official python image",
			fs:   officialPython(),
			opts: Options{Config: pyEnv},
			want: Target{Version: "3.12.7", Major: 3, Minor: 12, Implementation: "cp", ABI: "cp312", Interpreter: "/usr/local/bin/python3.12",
				Arch: "aarch64", Libc: Glibc, LibcVersion: "2.36", LibcMajor: 2, LibcMinor: 36, SitePackages: "/usr/local/lib/python3.12/site-packages"},
		},
		{
			name: "official python image over debian python, no config",
			fs:   append(bookworm(), officialPython()...),
			want: Target{Version: "3.12", Major: 3, Minor: 12, Implementation: "cp", ABI: "cp312", Interpreter: "/usr/local/bin/python3.12",
				Arch: "aarch64", Libc: Glibc, LibcVersion: "2.36", LibcMajor: 2, LibcMinor: 36, SitePackages: "/usr/local/lib/python3.12/site-packages"},
		},
		{
			name: "spec picks the debian python beside the official one",
			fs:   append(bookworm(), officialPython()...),
			opts: Options{PythonVersion: "3.11", Config: pyEnv},
			want: Target{Version: "3.11.2", Major: 3, Minor: 11, Implementation: "cp", ABI: "cp311", Interpreter: "/usr/bin/python3.11",
				Arch: "aarch64", Libc: Glibc, LibcVersion: "2.36", LibcMajor: 2, LibcMinor: 36, SitePackages: "/usr/local/lib/python3.11/dist-packages"},
		},
		{
			name: "python_exec picks the debian python3 beside the official one",
			fs:   append(bookworm(), officialPython()...),
			opts: Options{Interpreter: "/usr/bin/python3", Config: pyEnv},
			want: Target{Version: "3.11.2", Major: 3, Minor: 11, Implementation: "cp", ABI: "cp311", Interpreter: "/usr/bin/python3.11",
				Arch: "aarch64", Libc: Glibc, LibcVersion: "2.36", LibcMajor: 2, LibcMinor: 36, SitePackages: "/usr/local/lib/python3.11/dist-packages"},
		},
		{
			name: "python_exec names the official python through two links",
			fs:   append(bookworm(), officialPython()...),
			opts: Options{Interpreter: "/usr/local/bin/python", PythonVersion: "3.12"},
			want: Target{Version: "3.12", Major: 3, Minor: 12, Implementation: "cp", ABI: "cp312", Interpreter: "/usr/local/bin/python3.12",
				Arch: "aarch64", Libc: Glibc, LibcVersion: "2.36", LibcMajor: 2, LibcMinor: 36, SitePackages: "/usr/local/lib/python3.12/site-packages"},
		},
		{
			name: "alpine",
			fs:   alpine(),
			want: Target{Version: "3.11.9", Major: 3, Minor: 11, Implementation: "cp", ABI: "cp311", Interpreter: "/usr/bin/python3.11",
				Arch: "x86_64", Libc: Musl, LibcVersion: "1.2", LibcMajor: 1, LibcMinor: 2, SitePackages: "/usr/lib/python3.11/site-packages"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, files := range []struct {
				kind string
				fs   fs.FS
			}{{"MapFS", fsOf(t, tc.fs...)}, {"rootfs", rootfsOf(t, tc.fs...)}} {
				got, err := Detect(files.fs, tc.opts)
				if err != nil {
					t.Fatalf("%s: %v", files.kind, err)
				}
				if got != tc.want {
					t.Errorf("%s: Detect() =\n%+v\nwant\n%+v", files.kind, got, tc.want)
				}
			}
		})
	}
}

func TestDetectErrors(t *testing.T) {
	noPython := append(mergedUsr, member{name: "var/lib/dpkg/status", body: bookwormStatus})
	dangling := append(noPython[:len(noPython):len(noPython)], member{name: "usr/bin/python3.11", link: "/nowhere"})
	noLibc := append(mergedUsr[:len(mergedUsr):len(mergedUsr)],
		member{name: "usr/bin/python3.11", body: elfExe(62)})
	for _, tc := range []struct {
		name string
		fs   []member
		opts Options
		want []string
	}{
		{"no python", noPython, Options{}, []string{"the parent image has no python3; install it with apt_packages: [python3] or use a python base image"}},
		{"dangling interpreter link", dangling, Options{}, []string{"has no python3"}},
		{"minor mismatch", bookworm(), Options{PythonVersion: "3.12"}, []string{"python_version is 3.12", "Python is 3.11.2", "/usr/bin/python3.11", `set python_version: "3.11"`}},
		{"micro mismatch", bookworm(), Options{PythonVersion: "3.11.4"}, []string{"python_version is 3.11.4", "Python is 3.11.2"}},
		{"unknown libc", noLibc, Options{}, []string{"glibc version"}},
		{"python_exec missing", bookworm(), Options{Interpreter: "/opt/venv/bin/python"}, []string{"/opt/venv/bin/python is not in the image"}},
		{"python_exec not an interpreter", bookworm(), Options{Interpreter: "/usr/lib/python3/dist-packages"}, []string{"/usr/lib/python3/dist-packages is not one of the image's python3.X interpreters (/usr/bin/python3.11)"}},
		{"python_exec against python_version", bookworm(), Options{Interpreter: "/usr/bin/python3", PythonVersion: "3.12"}, []string{"/usr/bin/python3 is Python 3.11, not 3.12"}},
		{"unknown architecture", bookworm(), Options{Config: &v1.ConfigFile{Architecture: "mips64le"}}, []string{`"mips64le"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Detect(fsOf(t, tc.fs...), tc.opts)
			if err == nil {
				t.Fatal("Detect succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := Detect(fsOf(t, noPython...), Options{}); !errors.Is(err, ErrNoPython) {
		t.Errorf("no python: err = %v, want ErrNoPython", err)
	}
}

func TestUpstream(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2.36-9+deb12u4", "2.36"},
		{"3.11.2-6+deb12u6", "3.11.2"},
		{"1:3.11.2-6", "3.11.2"},
		{"1.2.4-r2", "1.2.4"},
		{"2.39-0ubuntu8.3", "2.39"},
		{"3.12.0~rc1-1", "3.12.0"},
		{"2.36", "2.36"},
	} {
		if got := upstream(tc.in); got != tc.want {
			t.Errorf("upstream(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDetectRealParent reads the bookworm rootfs the test environment
// builds, when it exists.
func TestDetectRealParent(t *testing.T) {
	const tarPath = "../../../.cache/testenv/bookworm-python3.tar"
	if _, err := os.Stat(tarPath); err != nil {
		t.Skip("no test parent rootfs:", err)
	}
	f, err := rootfs.ReadTars(context.Background(), nil, func() (io.ReadCloser, error) { return os.Open(tarPath) })
	if err != nil {
		t.Fatal(err)
	}
	got, err := Detect(f, Options{PythonVersion: "3.11"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Version, "3.11.") || got.ABI != "cp311" || got.Libc != Glibc || got.LibcVersion != "2.36" ||
		got.Arch != "x86_64" || got.Interpreter != "/usr/bin/python3.11" {
		t.Errorf("Detect() = %+v, want 3.11.x, cp311, glibc 2.36, x86_64, /usr/bin/python3.11", got)
	}
}

func TestRealpath(t *testing.T) {
	files := fstest.MapFS{
		"usr/bin/python3.11": {Mode: 0o755},
		"usr/bin/python3":    {Mode: fs.ModeSymlink, Data: []byte("python3.11")},
		"bin":                {Mode: fs.ModeSymlink, Data: []byte("usr/bin")},
		"usr/local/bin/py":   {Mode: fs.ModeSymlink, Data: []byte("../../bin/python3")},
		"loop":               {Mode: fs.ModeSymlink, Data: []byte("loop")},
		"dangling":           {Mode: fs.ModeSymlink, Data: []byte("nowhere")},
	}
	for _, tc := range []struct{ in, want string }{
		{"usr/bin/python3.11", "usr/bin/python3.11"},
		{"usr/bin/python3", "usr/bin/python3.11"},
		{"bin/python3", "usr/bin/python3.11"},
		{"usr/local/bin/py", "usr/bin/python3.11"},
		{"loop", ""},
		{"dangling", ""},
		{"usr/nothing", ""},
	} {
		got, err := realpath(files, tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("realpath(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("realpath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
