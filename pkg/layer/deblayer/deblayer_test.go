package deblayer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"path"
	"strings"
	"testing"
	"time"
)

const toolControl = `Package: tool
Version: 1.0-1
Architecture: amd64
Maintainer: Test <t@example.org>
Installed-Size: 10
Depends: libc6
Description: a tool
 Longer text.
Homepage: https://example.org`

func TestWriteMergedUsr(t *testing.T) {
	setuid := file("./bin/tool", "#!/bin/sh\n")
	setuid.mode = 0o4755
	setuid.gid = 42
	hard := ent{name: "./bin/tool2", typ: tar.TypeLink, link: "./bin/tool", mode: 0o4755}
	tool := testPkg{
		control: toolControl,
		data: []ent{
			dir("./"), dir("./bin/"), setuid, hard,
			dir("./lib/"), dir("./lib/x86_64-linux-gnu/"),
			file("./lib/x86_64-linux-gnu/libtool.so.1.0", "ELF"),
			symlink("./lib/x86_64-linux-gnu/libtool.so.1", "libtool.so.1.0"),
			dir("./usr/"), dir("./usr/share/"), dir("./usr/share/doc/"),
			dir("./usr/share/doc/tool/"), file("./usr/share/doc/tool/README", "hi"),
			// A relative symlink from /bin that is only valid through /usr/bin.
			symlink("./bin/tool-link", "../lib/x86_64-linux-gnu/libtool.so.1"),
		},
		dataExt: ".gz",
	}
	other := testPkg{
		control: "Package: other\nVersion: 2\nArchitecture: all\nDescription: x",
		data: []ent{
			dir("./"), dir("./usr/"), dir("./usr/share/"), dir("./usr/share/doc/"),
			dir("./usr/share/doc/other/"), file("./usr/share/doc/other/README", "x"),
			// No directory entries for these parents.
			file("./opt/other/deep/file", "y"),
		},
	}
	l, rep, _ := writeLayer(t, Parent{Symlinks: mergedUsr()}, []Deb{tool.build(t, "tool.deb"), other.build(t, "other.deb")})

	for _, n := range []string{"bin/", "lib/", "bin", "lib", "./", "/"} {
		if _, ok := l.byName[n]; ok {
			t.Errorf("layer has %q, which would replace the parent's symlink or root", n)
		}
	}
	e := l.get(t, "usr/bin/tool")
	// Owners are numeric only (tarheader's convention): the .deb's names go.
	if e.hdr.Mode != 0o4755 || e.hdr.Gid != 42 || e.hdr.Uname != "" || e.hdr.Gname != "" {
		t.Errorf("usr/bin/tool: mode %o gid %d uname %q gname %q, want 4755 42 and no names", e.hdr.Mode, e.hdr.Gid, e.hdr.Uname, e.hdr.Gname)
	}
	if e := l.get(t, "usr/bin/tool2"); e.hdr.Typeflag != tar.TypeLink || e.hdr.Linkname != "usr/bin/tool" {
		t.Errorf("usr/bin/tool2: type %c link %q, want hard link to usr/bin/tool", e.hdr.Typeflag, e.hdr.Linkname)
	}
	if e := l.get(t, "usr/lib/x86_64-linux-gnu/libtool.so.1"); e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != "libtool.so.1.0" {
		t.Errorf("libtool.so.1: %c -> %q", e.hdr.Typeflag, e.hdr.Linkname)
	}
	l.get(t, "usr/bin/tool-link")
	l.get(t, "usr/bin/")
	// Parents of a directory-less entry are created once.
	for _, d := range []string{"opt/", "opt/other/", "opt/other/deep/"} {
		l.get(t, d)
	}
	// Every entry comes after its parent directory, and has the epoch.
	seen := map[string]bool{}
	for _, n := range l.order {
		e := l.byName[n]
		if !e.hdr.ModTime.Equal(time.Unix(1234567890, 0)) {
			t.Errorf("%s: mtime %v", n, e.hdr.ModTime)
		}
		if p := path.Dir(strings.TrimSuffix(n, "/")); p != "." && !seen[p+"/"] {
			t.Errorf("%s is written before its parent directory %s/", n, p)
		}
		seen[n] = true
	}
	list := l.get(t, "var/lib/dpkg/info/tool.list").body
	for _, want := range []string{"/.\n", "\n/bin\n", "\n/bin/tool\n", "\n/lib/x86_64-linux-gnu/libtool.so.1\n"} {
		if !strings.Contains(list, want) {
			t.Errorf("tool.list lacks %q:\n%s", want, list)
		}
	}
	if got := rep.Packages[0]; got.Name != "tool" || got.Version != "1.0-1" || got.Arch != "amd64" || got.Files != 12 {
		t.Errorf("report = %+v", got)
	}
	for _, p := range []string{"usr/bin/tool", "usr/share/doc/", "var/lib/dpkg/status"} {
		found := false
		for _, q := range rep.Paths {
			found = found || q == p
		}
		if !found {
			t.Errorf("Report.Paths lacks %s", p)
		}
	}
}

func TestWriteDeterministic(t *testing.T) {
	pkg := testPkg{control: toolControl, data: []ent{dir("./"), dir("./usr/"), file("./usr/x", "1")}}
	_, _, a := writeLayer(t, Parent{}, []Deb{pkg.build(t, "a.deb")})
	_, _, b := writeLayer(t, Parent{}, []Deb{pkg.build(t, "a.deb")})
	if !bytes.Equal(a, b) {
		t.Error("two runs gave different layers")
	}
}

func TestWriteRejects(t *testing.T) {
	dev := ent{name: "./dev/null", typ: tar.TypeChar, mode: 0o666}
	tests := []struct {
		name string
		data []ent
		want string
	}{
		{"dotdot", []ent{file("./usr/../../x", "")}, `"./usr/../../x"`},
		{"absolute", []ent{file("/etc/passwd", "")}, `"/etc/passwd"`},
		{"device", []ent{dev}, "device"},
		{"whiteout", []ent{dir("./usr/"), file("./usr/.wh.lib", "")}, "whiteout"},
		{"symlink escape", []ent{dir("./usr/"), symlink("./usr/evil", "../../../.."), file("./usr/evil/etc/x", "")}, "outside"},
		{"escaping symlink", []ent{dir("./usr/"), symlink("./usr/up", "../../etc")}, "outside"},
		{"hard link outside package", []ent{{name: "./x", typ: tar.TypeLink, link: "./etc/shadow"}}, "hard link"},
		{"hard link dotdot", []ent{file("./a", ""), {name: "./x", typ: tar.TypeLink, link: "../a"}}, ".."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testPkg{control: toolControl, data: tt.data}.build(t, "hostile.deb")
			var buf bytes.Buffer
			_, err := Write(context.Background(), tar.NewWriter(&buf), Parent{Symlinks: mergedUsr()}, []Deb{d}, Options{})
			if err == nil {
				t.Fatal("Write succeeded, want error")
			}
			if !strings.Contains(err.Error(), "hostile.deb") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name the .deb and %q", err, tt.want)
			}
		})
	}
}

func TestWriteDpkgDB(t *testing.T) {
	parentStatus := "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n" +
		"Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12\n\n" +
		"Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.9\n"
	md5sums := "d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/tool/README\n"
	tool := testPkg{
		control: toolControl,
		members: map[string]string{"md5sums": md5sums, "conffiles": "/etc/tool.conf\n", "postinst": "#!/bin/sh\nset -e\n#DEBHELPER#\n", "shlibs": "libtool 1 tool\n", "triggers": "activate-noawait ldconfig\n"},
		data:    []ent{dir("./"), dir("./etc/"), file("./etc/tool.conf", "a=1\n")},
	}
	lib := testPkg{
		control: "Package: libfoo1\nVersion: 3\nArchitecture: amd64\nMulti-Arch: same\nDescription: lib",
		data:    []ent{dir("./"), dir("./usr/"), file("./usr/libfoo", "")},
	}
	l, _, _ := writeLayer(t, Parent{Files: map[string][]byte{"var/lib/dpkg/status": []byte(parentStatus)}},
		[]Deb{tool.build(t, "tool.deb"), lib.build(t, "lib.deb")})

	status := l.get(t, "var/lib/dpkg/status").body
	sum := md5.Sum([]byte("a=1\n"))
	wantTool := "Package: tool\nStatus: install ok installed\nInstalled-Size: 10\nMaintainer: Test <t@example.org>\n" +
		"Architecture: amd64\nVersion: 1.0-1\nDepends: libc6\nConffiles:\n /etc/tool.conf " + hex.EncodeToString(sum[:]) +
		"\nDescription: a tool\n Longer text.\nHomepage: https://example.org\n\n"
	if !strings.Contains(status, wantTool) {
		t.Errorf("status lacks\n%s\ngot:\n%s", wantTool, status)
	}
	if strings.Contains(status, "Version: 0.9") {
		t.Error("status keeps the parent's replaced tool 0.9 stanza")
	}
	var names []string
	for _, para := range strings.Split(strings.TrimSpace(status), "\n\n") {
		names = append(names, strings.TrimPrefix(strings.SplitN(para, "\n", 2)[0], "Package: "))
	}
	if got, want := strings.Join(names, ","), "base-files,libfoo1,tool,zlib1g"; got != want {
		t.Errorf("status packages = %s, want %s", got, want)
	}
	if got := l.get(t, "var/lib/dpkg/info/tool.md5sums").body; got != md5sums {
		t.Errorf("tool.md5sums = %q", got)
	}
	if e := l.get(t, "var/lib/dpkg/info/tool.postinst"); e.hdr.Mode != 0o755 {
		t.Errorf("tool.postinst mode %o, want 755", e.hdr.Mode)
	}
	for _, n := range []string{"tool.conffiles", "tool.shlibs", "tool.triggers", "libfoo1:amd64.list"} {
		l.get(t, "var/lib/dpkg/info/"+n)
	}
	if _, ok := l.byName["var/lib/dpkg/info/libfoo1.list"]; ok {
		t.Error("Multi-Arch: same package info is not named <pkg>:<arch>")
	}
}

const blasPostinst = `#!/bin/sh
set -e

update-alternatives --install /usr/lib/x86_64-linux-gnu/libblas.so.3 \
                    libblas.so.3-x86_64-linux-gnu \
	            /usr/lib/x86_64-linux-gnu/blas/libblas.so.3 10

# Automatically added by dh_makeshlibs
if [ "$1" = "configure" ]; then
	ldconfig
fi
exit 0
`

const openblasPostinst = `#! /bin/sh
set -e
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
case "$1" in
  configure)
    update-alternatives --install /usr/lib/$MA/libblas.so.3 libblas.so.3-$MA \
        /usr/lib/${MA}/openblas/libblas.so.3 100 \
        --slave /usr/lib/$MA/libblas.so libblas.so-$MA /usr/lib/$MA/openblas/libblas.so
    ;;
  abort-upgrade|abort-remove)
    ;;
esac
`

func TestWriteAlternatives(t *testing.T) {
	blas := testPkg{
		control: "Package: libblas3\nVersion: 3.11.0-2\nArchitecture: amd64\nMulti-Arch: same\nDescription: blas",
		members: map[string]string{"postinst": blasPostinst},
		data:    []ent{dir("./"), dir("./usr/"), dir("./usr/lib/"), dir("./usr/lib/x86_64-linux-gnu/"), dir("./usr/lib/x86_64-linux-gnu/blas/"), file("./usr/lib/x86_64-linux-gnu/blas/libblas.so.3", "ref")},
	}
	open := testPkg{
		control: "Package: libopenblas0\nVersion: 1\nArchitecture: amd64\nDescription: openblas",
		members: map[string]string{"postinst": openblasPostinst},
		data:    []ent{dir("./"), dir("./usr/"), dir("./usr/lib/"), dir("./usr/lib/x86_64-linux-gnu/"), dir("./usr/lib/x86_64-linux-gnu/openblas/"), file("./usr/lib/x86_64-linux-gnu/openblas/libblas.so.3", "opt"), file("./usr/lib/x86_64-linux-gnu/openblas/libblas.so", "opt")},
	}
	tests := []struct {
		name     string
		debs     []testPkg
		wantBest string
		wantFile string
	}{
		{"reference only", []testPkg{blas}, "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3",
			"auto\n/usr/lib/x86_64-linux-gnu/libblas.so.3\n\n/usr/lib/x86_64-linux-gnu/blas/libblas.so.3\n10\n\n"},
		{"highest priority wins", []testPkg{open, blas}, "/usr/lib/x86_64-linux-gnu/openblas/libblas.so.3",
			"auto\n/usr/lib/x86_64-linux-gnu/libblas.so.3\nlibblas.so-x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu/libblas.so\n\n" +
				"/usr/lib/x86_64-linux-gnu/blas/libblas.so.3\n10\n\n" +
				"/usr/lib/x86_64-linux-gnu/openblas/libblas.so.3\n100\n/usr/lib/x86_64-linux-gnu/openblas/libblas.so\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var debs []Deb
			for _, p := range tt.debs {
				debs = append(debs, p.build(t, "x.deb"))
			}
			l, rep, _ := writeLayer(t, Parent{Symlinks: mergedUsr()}, debs)
			const name = "libblas.so.3-x86_64-linux-gnu"
			if e := l.get(t, "etc/alternatives/"+name); e.hdr.Linkname != tt.wantBest {
				t.Errorf("etc/alternatives/%s -> %s, want %s", name, e.hdr.Linkname, tt.wantBest)
			}
			if e := l.get(t, "usr/lib/x86_64-linux-gnu/libblas.so.3"); e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != "/etc/alternatives/"+name {
				t.Errorf("libblas.so.3 -> %q", e.hdr.Linkname)
			}
			if got := l.get(t, "var/lib/dpkg/alternatives/"+name).body; got != tt.wantFile {
				t.Errorf("alternatives file =\n%q\nwant\n%q", got, tt.wantFile)
			}
			for _, p := range rep.Packages {
				if len(p.Warnings) > 0 {
					t.Errorf("%s warnings: %q", p.Name, p.Warnings)
				}
			}
		})
	}
}

func TestWriteUsers(t *testing.T) {
	parent := Parent{Files: map[string][]byte{
		"etc/passwd":  []byte("root:x:0:0:root:/root:/bin/bash\n_apt:x:100:65534::/nonexistent:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
		"etc/group":   []byte("root:x:0:\nshadow:x:42:\nstaff:x:50:\nnogroup:x:65534:\n"),
		"etc/shadow":  []byte("root:*:19000:0:99999:7:::\n"),
		"etc/gshadow": []byte("root:*::\nshadow:*::\nstaff:*::\n"),
	}}
	svc := testPkg{
		control: "Package: svc\nVersion: 1\nArchitecture: amd64\nDescription: x",
		members: map[string]string{"postinst": `#!/bin/sh
set -e
if ! getent passwd svc >/dev/null; then
    adduser --system --group --home /var/lib/svc --no-create-home --gecos "Service user" svc
fi
addgroup --system svcadm
adduser svc staff
useradd -r -M -s /usr/sbin/nologin worker
groupadd --system -f extra
adduser --system _apt
deb-systemd-helper enable svc.service
frobnicate --now
`},
		data: []ent{dir("./")},
	}
	l, rep, _ := writeLayer(t, parent, []Deb{svc.build(t, "svc.deb")})
	passwd := l.get(t, "etc/passwd").body
	for _, want := range []string{
		"svc:x:101:101:Service user:/var/lib/svc:/usr/sbin/nologin\n",
		"worker:x:999:999::/nonexistent:/usr/sbin/nologin\n",
	} {
		if !strings.Contains(passwd, want) {
			t.Errorf("passwd lacks %q:\n%s", want, passwd)
		}
	}
	if strings.Count(passwd, "_apt:") != 1 {
		t.Error("existing system user added twice")
	}
	group := l.get(t, "etc/group").body
	for _, want := range []string{"svc:x:101:\n", "svcadm:x:100:\n", "staff:x:50:svc\n", "worker:x:999:\n", "extra:x:998:\n"} {
		if !strings.Contains(group, want) {
			t.Errorf("group lacks %q:\n%s", want, group)
		}
	}
	sh := l.get(t, "etc/shadow")
	if sh.hdr.Mode != 0o640 || sh.hdr.Gid != 42 || !strings.Contains(sh.body, "svc:!:14288:0:99999:7:::\n") {
		t.Errorf("shadow: mode %o gid %d body\n%s", sh.hdr.Mode, sh.hdr.Gid, sh.body)
	}
	if gs := l.get(t, "etc/gshadow").body; !strings.Contains(gs, "svc:!::\n") || !strings.Contains(gs, "staff:*::svc\n") {
		t.Errorf("gshadow:\n%s", gs)
	}
	p := rep.Packages[0]
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "frobnicate --now") {
		t.Errorf("warnings = %q, want one about frobnicate", p.Warnings)
	}
	if len(p.Skipped) != 1 || !strings.Contains(p.Skipped[0], "deb-systemd-helper") {
		t.Errorf("skipped = %q, want deb-systemd-helper", p.Skipped)
	}
}

func TestParseScript(t *testing.T) {
	src := `#!/bin/sh
set -e # comment
X=/opt/$(dpkg-architecture -qDEB_HOST_MULTIARCH)
f() {
  echo "in f"
}
cat > /etc/foo <<EOF
not a command
EOF
if [ "$1" = configure ] && [ -z "$2" ]; then f; run "$X/a b" 'lit $X' >/dev/null 2>&1 || true; fi
other $UNKNOWN
`
	env := &shellEnv{vars: map[string]string{}, arch: "arm64", multiarch: "aarch64-linux-gnu"}
	cmds, funcs := parseScript(src, env)
	var got []string
	for _, c := range cmds {
		s := strings.Join(c.args, "|")
		if c.unresolved {
			s += " (unresolved)"
		}
		got = append(got, s)
	}
	want := []string{"set|-e", "echo|in f", "cat", "[|configure|=|configure|]", "[|-z||]", "f", "run|/opt/aarch64-linux-gnu/a b|lit $X", "true", "other|$UNKNOWN (unresolved)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !funcs["f"] {
		t.Error("function f not recorded")
	}
}

func TestWriteCompressionAndLibraryDirs(t *testing.T) {
	for _, ext := range []string{"", ".gz", ".xz", ".zst"} {
		t.Run("data.tar"+ext, func(t *testing.T) {
			pkg := testPkg{
				control: toolControl,
				data: []ent{
					dir("./"), dir("./etc/"), dir("./etc/ld.so.conf.d/"),
					file("./etc/ld.so.conf.d/tool.conf", "# tool\n/opt/tool/lib\n/usr/lib/x86_64-linux-gnu\n"),
				},
				dataExt: ext,
			}
			l, rep, _ := writeLayer(t, Parent{}, []Deb{pkg.build(t, "tool.deb")})
			if got := l.get(t, "etc/ld.so.conf.d/tool.conf").body; !strings.Contains(got, "/opt/tool/lib") {
				t.Errorf("tool.conf = %q", got)
			}
			if strings.Join(rep.LibraryDirs, ",") != "/opt/tool/lib" || len(rep.Warnings) != 1 {
				t.Errorf("LibraryDirs %q, warnings %q; want /opt/tool/lib reported", rep.LibraryDirs, rep.Warnings)
			}
		})
	}
}
