package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/internal/testenv"
)

// aptRunPackages exercise what emulating maintainer scripts got wrong: the
// JVM's alternatives loop, a CA keystore built by running java at
// configure time, the library cache (libGL), the MIME database (file).
const aptRunPackages = "[default-jre-headless, ca-certificates-java, libgl1, file, shared-mime-info, python3]"

// TestE2EAptScriptsRun: kiln as a user with a subordinate id range
// configures the packages with the image's own dpkg in the sandbox
// (apt_scripts: run, the default there): java runs from PATH, the CA
// keystore has the certificates, ctypes finds libGL through
// /etc/ld.so.cache, file answers from the MIME database, dpkg --audit and
// apt-get check are clean, and two builds from empty caches give one
// digest (any file that differs is named).
func TestE2EAptScriptsRun(t *testing.T) {
	reg, base := e2eParent(t, "podman", "newuidmap", "newgidmap", "useradd")
	acct := testenv.RangeAccount(t, "kiln-e2e-aptrun", 700000, 65536)
	spec := "name: aptrun\nregistry: " + reg.Host + "\nbase_image: " + base + "\napt_packages: " + aptRunPackages + "\n"
	dir := writeSpec(t, spec, nil)
	testenv.ChownTree(t, dir, acct.UID, acct.GID)
	run := func(args ...string) (string, testenv.Result) {
		t.Helper()
		return buildRef(t, testenv.RunOptions{Dir: dir, Home: testenv.AccountDir(t, acct), As: &acct}, args...)
	}

	ref1, first := run("--explain")
	show(t, "$ kiln build   (apt_packages with maintainer scripts run)", first.Stderr)
	for _, want := range []string{"apt: configuring", "dpkg --configure", "explain:   apt_scripts = run"} {
		if !strings.Contains(first.Stderr, want) {
			t.Errorf("the build's log lacks %q", want)
		}
	}
	if strings.Contains(first.Stderr, "emulated, not run") {
		t.Errorf("a user with a subuid range fell back to emulation:\n%s", first.Stderr)
	}

	ref2, _ := run("--refresh", "--force")
	if ref1 != ref2 {
		t.Errorf("two builds from empty caches gave %s and %s; files that differ:\n%s", ref1, ref2, strings.Join(diffImages(t, reg, ref1, ref2), "\n"))
	}

	// apt_scripts: emulate (here the flag) runs nothing of the image: no
	// configure layer, another image.
	ref3, third := run("--apt-scripts", "emulate")
	if strings.Contains(third.Stderr, "apt: configuring") || strings.Contains(third.Stderr, "dpkg --configure") {
		t.Errorf("--apt-scripts emulate ran dpkg:\n%s", third.Stderr)
	}
	if ref3 == ref1 {
		t.Errorf("--apt-scripts emulate gave the run build's digest %s", ref1)
	}

	p := testenv.NewPodman(t)
	p.UseRegistry(reg)
	p.Pull(ref1)
	for _, tc := range []struct {
		name string
		args []string
		ok   func(out string) error
	}{
		{"java", []string{"sh", "-c", "command -v java && java -version 2>&1"}, contains("openjdk version")},
		{"keytool", []string{"sh", "-c", "keytool -list -cacerts -storepass changeit | grep -c trustedCertEntry"}, atLeast(101)},
		{"libGL", []string{"python3", "-c", "import ctypes.util; print(ctypes.util.find_library('GL'))"}, contains("libGL.so.1")},
		{"mime", []string{"sh", "-c", "printf '%%PDF-1.4\\n' > /tmp/x && file --mime-type /tmp/x && test -s /usr/share/mime/mime.cache && echo cache"}, contains("application/pdf")},
		{"audit", []string{"sh", "-c", "dpkg --audit && echo audit-clean"}, exactly("audit-clean\n")},
		{"check", []string{"apt-get", "check"}, contains("Reading package lists")},
		{"installed", []string{"sh", "-c", "dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n' | grep -vc '^ii '"}, exactly("0\n")},
	} {
		out, err := p.Run(ref1, tc.args...)
		show(t, "$ podman run IMAGE "+strings.Join(tc.args, " "), out)
		if err != nil && tc.name != "installed" {
			t.Errorf("%s: podman run %v: %v\n%s", tc.name, tc.args, err, out)
			continue
		}
		if err := tc.ok(out); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestE2EAptScriptsFallback: kiln as nobody, who has no subordinate id
// range, does not start maintainer scripts whose chown would fail: it
// emulates them, with a warning naming why; an explicit apt_scripts: run
// goes ahead with one uid mapped.
func TestE2EAptScriptsFallback(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	dir := writeSpec(t, "name: aptfallback\nregistry: "+reg.Host+"\nbase_image: "+base+"\napt_packages: [file]\n", nil)
	home := testenv.UserDir(t)
	_, res := buildRef(t, testenv.RunOptions{Dir: dir, Home: home})
	show(t, "$ kiln build   (as nobody, no subuid range)", res.Stderr)
	for _, want := range []string{"apt: warning: maintainer scripts are emulated, not run", "only uid 0 is mapped", "usermod --add-subuids"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the build's log lacks %q:\n%s", want, res.Stderr)
		}
	}
	if strings.Contains(res.Stderr, "apt: configuring") {
		t.Errorf("the build ran dpkg without a subuid range:\n%s", res.Stderr)
	}
	ref, forced := buildRef(t, testenv.RunOptions{Dir: dir, Home: home}, "--apt-scripts", "run")
	if !strings.Contains(forced.Stderr, "apt: configuring") || !strings.Contains(forced.Stderr, "only uid 0 is mapped") {
		t.Errorf("apt_scripts: run did not configure with one uid mapped, or did not warn:\n%s", forced.Stderr)
	}
	p := testenv.NewPodman(t)
	p.UseRegistry(reg)
	p.Pull(ref)
	out, err := p.Run(ref, "sh", "-c", "dpkg --audit && file --mime-type /etc/passwd")
	if err != nil || !strings.Contains(out, "text/plain") {
		t.Errorf("podman run: %v\n%s", err, out)
	}
}

func contains(want string) func(string) error {
	return func(out string) error {
		if !strings.Contains(out, want) {
			return fmt.Errorf("output %q lacks %q", out, want)
		}
		return nil
	}
}

func exactly(want string) func(string) error {
	return func(out string) error {
		if out != want {
			return fmt.Errorf("output %q, want %q", out, want)
		}
		return nil
	}
}

func atLeast(n int) func(string) error {
	return func(out string) error {
		got, err := strconv.Atoi(strings.TrimSpace(lastLine(out)))
		if err != nil || got < n {
			return fmt.Errorf("output %q, want a count of at least %d", out, n)
		}
		return nil
	}
}

// diffImages names every layer entry that differs between two images,
// layer by layer: its header (type, mode, owner, link, size) or content.
func diffImages(t *testing.T, reg *testenv.Registry, a, b string) []string {
	t.Helper()
	la, lb := imageEntries(t, reg, a), imageEntries(t, reg, b)
	var out []string
	for i := 0; i < len(la) || i < len(lb); i++ {
		var ea, eb map[string]string
		if i < len(la) {
			ea = la[i]
		}
		if i < len(lb) {
			eb = lb[i]
		}
		names := map[string]bool{}
		for n := range ea {
			names[n] = true
		}
		for n := range eb {
			names[n] = true
		}
		var sorted []string
		for n := range names {
			if ea[n] != eb[n] {
				sorted = append(sorted, n)
			}
		}
		sort.Strings(sorted)
		for _, n := range sorted {
			out = append(out, fmt.Sprintf("layer %d: %s: %q vs %q", i, n, ea[n], eb[n]))
		}
	}
	if len(out) == 0 {
		out = append(out, "(no entry differs: the difference is in the config or the manifest)")
	}
	return out
}

// imageEntries describes each layer's entries by name.
func imageEntries(t *testing.T, reg *testenv.Registry, ref string) []map[string]string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, reg.RemoteOptions(t.Context())...)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			s := sha256.New()
			if _, err := io.Copy(s, tr); err != nil {
				t.Fatal(err)
			}
			m[h.Name] = fmt.Sprintf("%c %o %d:%d %s %d %s %d", h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, h.Size, hex.EncodeToString(s.Sum(nil))[:12], h.ModTime.Unix())
		}
		rc.Close()
		out = append(out, m)
	}
	return out
}
