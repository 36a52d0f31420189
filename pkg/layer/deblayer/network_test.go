package deblayer

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRealPackages installs real Debian packages fetched with apt-get
// download. It needs the host's apt sources and network access.
func TestRealPackages(t *testing.T) {
	if os.Getenv("KILN_NETWORK_TESTS") != "1" {
		t.Skip("set KILN_NETWORK_TESTS=1 to download real .deb files with apt-get")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get not installed")
	}
	arch, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Skip("dpkg not installed")
	}
	triplet := multiarchTriplet(strings.TrimSpace(string(arch)))
	caVersion, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "ca-certificates").Output()
	if err != nil || len(caVersion) == 0 {
		t.Skip("host has no ca-certificates package to compare with")
	}
	tmp := t.TempDir()
	os.Chmod(tmp, 0o777) // let apt's sandbox user write there
	pkgs := []string{"libgfortran5", "libblas3", "liblapack3", "openssl", "ca-certificates=" + string(caVersion), "python3-numpy"}
	cmd := exec.Command("apt-get", append([]string{"download", "-q"}, pkgs...)...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get download: %v\n%s", err, out)
	}
	var debs []Deb
	for _, p := range pkgs {
		name, _, _ := strings.Cut(p, "=")
		m, _ := filepath.Glob(filepath.Join(tmp, name+"_*.deb"))
		if len(m) != 1 {
			t.Fatalf("downloaded files for %s: %q", name, m)
		}
		d, c, err := OpenFile(m[0])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		debs = append(debs, d)
	}
	l, rep, _ := writeLayer(t, Parent{Symlinks: mergedUsr()}, debs)

	for _, lib := range []string{"libblas.so.3", "liblapack.so.3"} {
		name := lib + "-" + triplet
		dir := map[string]string{"libblas.so.3": "blas", "liblapack.so.3": "lapack"}[lib]
		want := "/usr/lib/" + triplet + "/" + dir + "/" + lib
		if e := l.get(t, "etc/alternatives/"+name); e.hdr.Linkname != want {
			t.Errorf("etc/alternatives/%s -> %s, want %s", name, e.hdr.Linkname, want)
		}
		if e := l.get(t, "usr/lib/"+triplet+"/"+lib); e.hdr.Linkname != "/etc/alternatives/"+name {
			t.Errorf("%s -> %s", lib, e.hdr.Linkname)
		}
		l.get(t, strings.TrimPrefix(want, "/"))
	}

	hostBundle, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	// The host's bundle ends with its local certificates from
	// /usr/local/share/ca-certificates, which the parent here lacks.
	local, _ := filepath.Glob("/usr/local/share/ca-certificates/*.crt")
	got := l.get(t, "etc/ssl/certs/ca-certificates.crt").body
	rest, ok := strings.CutPrefix(string(hostBundle), got)
	if !ok || strings.Count(rest, "-----BEGIN CERTIFICATE-----") != len(local) {
		t.Errorf("CA bundle (%d bytes) is not the host's (%d bytes) minus its %d local certificates", len(got), len(hostBundle), len(local))
	}
	if hostConf, err := os.ReadFile("/etc/ca-certificates.conf"); err == nil {
		if got := l.get(t, "etc/ca-certificates.conf").body; got != string(hostConf) {
			t.Errorf("etc/ca-certificates.conf differs from the host's:\n%s", got)
		}
	}
	// Every certificate link kiln made must be on the host, same target.
	n := 0
	for _, name := range l.order {
		e := l.byName[name]
		if !strings.HasPrefix(name, "etc/ssl/certs/") || e.hdr.Typeflag != tar.TypeSymlink {
			continue
		}
		n++
		host, err := os.Readlink("/" + name)
		if err != nil || host != e.hdr.Linkname {
			t.Errorf("/%s -> %s, host has %q (%v)", name, e.hdr.Linkname, host, err)
		}
	}
	if n < 200 {
		t.Errorf("only %d certificate links", n)
	}

	for _, p := range rep.Packages {
		t.Logf("%s %s %s: %d files, warnings %q, skipped %q", p.Name, p.Version, p.Arch, p.Files, p.Warnings, p.Skipped)
		if p.Name == "python3-numpy" && !strings.Contains(strings.Join(p.Warnings, "\n"), "py3compile") {
			t.Errorf("numpy warnings %q do not mention py3compile", p.Warnings)
		}
		if p.Name == "libblas3" || p.Name == "liblapack3" {
			if len(p.Warnings) != 0 {
				t.Errorf("%s warnings: %q", p.Name, p.Warnings)
			}
		}
	}
}
