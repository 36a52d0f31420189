package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// aptDiffPackages exercise alternatives (the JVM, xz-utils' lzma, BLAS),
// triggers (ldconfig, the MIME database, fontconfig, gdk-pixbuf), system
// users (dbus' messagebus), CA stores (ca-certificates, the Java
// keystore), debconf (tzdata) and the library cache (libGL).
var aptDiffPackages = []string{
	"default-jre-headless", "ca-certificates-java", "libgl1", "file", "shared-mime-info",
	"fontconfig", "fonts-dejavu-core", "xz-utils", "dbus", "libgdk-pixbuf-2.0-0",
	"python3-numpy", "tzdata",
}

// aptDiffExplained are the paths where kiln's image rightly differs from
// apt-get's, each with why.
var aptDiffExplained = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`^/var/lib/apt/lists/`), "apt-get update's indexes: kiln resolves from its own cache"},
	{regexp.MustCompile(`^/var/cache/apt/`), "apt's package caches and downloaded .debs"},
	{regexp.MustCompile(`^/var/lib/apt/extended_states$`), "apt's auto-installed marks: kiln does not write them"},
	{regexp.MustCompile(`^/var/log/`), "dpkg's, apt's and update-alternatives' logs"},
	{regexp.MustCompile(`^/var/cache/ldconfig/aux-cache$`), "ldconfig's per-run inode cache"},
	{regexp.MustCompile(`^/var/lib/dpkg/(status|diversions|statoverride)-old$|^/var/cache/debconf/.*-old$`), "backups of the previous state"},
	{regexp.MustCompile(`(^|/)lock(-frontend)?$|^/var/lib/dpkg/triggers/Lock$`), "lock files"},
	{regexp.MustCompile(`^/etc/ssl/certs/java/cacerts$`), "keytool stamps each entry with the time; kiln stamps the epoch"},
	{regexp.MustCompile(`\.pyc$`), "byte-code: SOURCE_DATE_EPOCH makes Python write hash-checked .pyc files, apt-get's are stamped with the sources' times"},
	{regexp.MustCompile(`^/var/lib/dbus/machine-id$|^/etc/machine-id$`), "a random id; kiln's image carries none"},
	{regexp.MustCompile(`^/var/lib/dpkg/triggers/Unincorp$`), "dpkg's incorporated-triggers file: emptied either way"},
	{regexp.MustCompile(`^/var/cache/fontconfig/`), "fontconfig caches hold the fonts directories' modification times"},
	{regexp.MustCompile(`^/var/cache/debconf/(config|templates)\.dat$`), "debconf's database records the templates' load times"},
	{regexp.MustCompile(`^/etc/(passwd|group|shadow|gshadow)-$`), "shadow's backups of the files before the change"},
	{regexp.MustCompile(`^/etc/(hostname|hosts|resolv\.conf)$`), "podman mounts its own into each container, the one listing the files too"},
	{regexp.MustCompile(`^/etc/shadow$`), "useradd stamps the day of the last password change: today under apt-get, SOURCE_DATE_EPOCH's day in kiln"},
}

// aptDiffParentExplained are the paths where apt-get's image differs from
// the parent and kiln's does not, each with why.
var aptDiffParentExplained = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`^/var/lib/dpkg/info/[^/]+\.list$`), "the test parent had /usr/share/man emptied outside dpkg; apt-get's dpkg drops the missing directories from the parent packages' lists, kiln leaves them"},
}

// manifestScript lists every path of the image outside the virtual file
// systems: type, mode, owner, link target, and for regular files the
// SHA-256 of the content.
const manifestScript = `find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \) -prune -o -printf '%p|%y|%m|%U:%G|%l\n' | sort > /tmp/m
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \) -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum > /tmp/s
cat /tmp/m; echo ===; cat /tmp/s`

// TestE2EAptDifferential builds the same package list with kiln (its
// maintainer scripts run in the sandbox; twice from empty caches, which
// must give one digest) and with apt-get install
// --no-install-recommends in podman build, on the same parent, and
// compares every path: type, mode, owner, link target and content. The
// differences that are right (aptDiffExplained) are listed with why; the
// rest must be at most 0.5% of apt-get's paths, and each is named.
func TestE2EAptDifferential(t *testing.T) {
	reg, base := e2eParent(t, "podman", "newuidmap", "newgidmap", "useradd")
	acct := testenv.RangeAccount(t, "kiln-e2e-aptdiff", 800000, 65536)
	p := testenv.NewPodman(t)
	p.UseRegistry(reg)
	p.Pull(base)
	pkgs, random := aptDiffPackages, false
	if n, _ := strconv.Atoi(os.Getenv("KILN_APT_DIFF_RANDOM")); n > 0 {
		pkgs, random = randomPackages(t, p, base, n), true
		t.Logf("random list (KILN_APT_DIFF_RANDOM=%d): %s", n, strings.Join(pkgs, " "))
	}
	spec := "name: aptdiff\nregistry: " + reg.Host + "\nbase_image: " + base + "\napt_packages: [" + strings.Join(pkgs, ", ") + "]\n"
	dir := writeSpec(t, spec, nil)
	testenv.ChownTree(t, dir, acct.UID, acct.GID)
	ref, res := buildRef(t, testenv.RunOptions{Dir: dir, Home: testenv.AccountDir(t, acct), As: &acct})
	show(t, "$ kiln build", res.Stderr)
	if !random {
		// These packages' scripts write caches and keystores: from an
		// empty cache the digest must be the same.
		again, _ := buildRef(t, testenv.RunOptions{Dir: dir, Home: testenv.AccountDir(t, acct), As: &acct}, "--refresh", "--force")
		if again != ref {
			t.Errorf("two builds from empty caches gave %s and %s; files that differ:\n%s", ref, again, strings.Join(diffImages(t, reg, ref, again), "\n"))
		}
	}

	ctxDir := t.TempDir()
	containerfile := "FROM " + base + "\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " + strings.Join(pkgs, " ") + "\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := p.Exec("build", "--pull=never", "-t", "localhost/kiln-aptdiff-ref", "-f", filepath.Join(ctxDir, "Containerfile"), ctxDir); err != nil {
		t.Fatalf("podman build (apt-get): %v\n%s", err, out)
	}
	p.Pull(ref)
	theirs := imageManifest(t, p, "localhost/kiln-aptdiff-ref")
	ours := imageManifest(t, p, ref)
	parent := imageManifest(t, p, base)

	var unexplained, explained []string
	whyCount := map[string]int{}
	consider := func(path, what string) {
		if pa, ok := parent[path]; ok && pa == ours[path] && pa != theirs[path] {
			for _, e := range aptDiffParentExplained {
				if e.re.MatchString(path) {
					whyCount[e.why]++
					explained = append(explained, path+": "+what)
					return
				}
			}
		}
		for _, e := range aptDiffExplained {
			if e.re.MatchString(path) {
				whyCount[e.why]++
				explained = append(explained, path+": "+what)
				return
			}
		}
		unexplained = append(unexplained, path+": "+what)
	}
	var paths []string
	for p := range theirs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		o, ok := ours[path]
		switch {
		case !ok:
			consider(path, "missing (apt-get: "+theirs[path]+")")
		case o != theirs[path]:
			consider(path, "kiln "+o+", apt-get "+theirs[path])
		}
	}
	var extra []string
	for path := range ours {
		if _, ok := theirs[path]; !ok {
			extra = append(extra, path)
		}
	}
	sort.Strings(extra)
	for _, path := range extra {
		consider(path, "only in kiln's image ("+ours[path]+")")
	}
	var whys []string
	for w, n := range whyCount {
		whys = append(whys, fmt.Sprintf("%5d  %s", n, w))
	}
	sort.Strings(whys)
	pct := 100 * float64(len(unexplained)) / float64(len(theirs))
	t.Logf("apt-get's image: %d paths; kiln's: %d; explained differences: %d\n%s\nunexplained: %d (%.2f%%)\n%s",
		len(theirs), len(ours), len(explained), strings.Join(whys, "\n"), len(unexplained), pct, strings.Join(unexplained, "\n"))
	if out := os.Getenv("KILN_APT_DIFF_REPORT"); out != "" {
		report := fmt.Sprintf("packages: %s\napt-get's paths: %d, kiln's: %d\nexplained: %d\n%s\nunexplained: %d (%.2f%%)\n%s\n",
			strings.Join(pkgs, " "), len(theirs), len(ours), len(explained), strings.Join(whys, "\n"), len(unexplained), pct, strings.Join(unexplained, "\n"))
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
	if random {
		return // a random list reports; it is no gate
	}
	if pct > 0.5 {
		t.Errorf("%d of apt-get's %d paths (%.2f%%) are missing or differ in kiln's image without an explanation, more than 0.5%%", len(unexplained), len(theirs), pct)
	}
}

// imageManifest runs manifestScript in ref and returns, by path, its
// type, mode, owner, link target and content hash.
func imageManifest(t *testing.T, p *testenv.Podman, ref string) map[string]string {
	t.Helper()
	out, err := p.Run(ref, "sh", "-c", manifestScript)
	if err != nil {
		t.Fatalf("podman run %s: %v", ref, err)
	}
	meta, sums, ok := strings.Cut(out, "===\n")
	if !ok {
		t.Fatalf("manifest of %s has no separator", ref)
	}
	m := map[string]string{}
	for _, l := range strings.Split(meta, "\n") {
		path, rest, ok := strings.Cut(l, "|")
		if ok {
			m[path] = rest
		}
	}
	for _, l := range strings.Split(sums, "\n") {
		sum, path, ok := strings.Cut(l, "  ")
		if ok {
			if _, have := m[path]; have {
				m[path] += "|" + sum[:16]
			}
		}
	}
	delete(m, "/tmp/m")
	delete(m, "/tmp/s")
	return m
}

// randomPackages draws n packages at random from the parent's own apt
// sources (Priority important, standard or optional, not kernels,
// bootloaders, init systems or what conflicts with the parent), for
// make apt-diff.
func randomPackages(t *testing.T, p *testenv.Podman, base string, n int) []string {
	t.Helper()
	// One container: update once, draw 3n candidates, keep those apt-get
	// can install on the parent as it is.
	script := fmt.Sprintf(`apt-get update >/dev/null 2>&1 && apt-cache dumpavail | awk '
/^Package: / {pkg=$2} /^Priority: / {prio=$2} /^Section: / {sec=$2}
/^$/ { if ((prio=="important"||prio=="standard"||prio=="optional") && sec !~ /kernel|admin|boot|oldlibs|debian-installer/ && pkg !~ /^(linux-|grub|systemd|sysvinit|init|runit|openrc|firmware)/) print pkg; pkg=""; prio=""; sec="" }' |
sort -u | shuf -n %d | while read p; do apt-get install -s --no-install-recommends "$p" >/dev/null 2>&1 && echo "$p"; done`, n*3)
	out, err := p.Exec("run", "--rm", "--network", "host", "--pull", "never", base, "sh", "-c", script)
	if err != nil {
		t.Fatalf("draw a random package list: %v", err)
	}
	pkgs := strings.Fields(out)
	if len(pkgs) > n {
		pkgs = pkgs[:n]
	}
	if len(pkgs) == 0 {
		t.Fatal("the random draw found no installable package")
	}
	return pkgs
}
