package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DebianWheels returns the wheels Debian's *-whl package pkg (such as
// python3-setuptools-whl) ships in /usr/share/python-wheels, downloaded
// with apt-get from the configured sources and unpacked with dpkg-deb once
// per worktree, under <repo root>/.cache/testenv/debian-wheels/<pkg>.
func DebianWheels(t testing.TB, pkg string) []string {
	t.Helper()
	Require(t, "apt-get", "dpkg-deb")
	dir := filepath.Join(RepoRoot(t), ".cache", "testenv", "debian-wheels", pkg)
	if got, _ := filepath.Glob(filepath.Join(dir, "*.whl")); len(got) > 0 {
		return got
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), pkg+".tmp-")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(dir), pkg+".tmp-"); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(tmp)
	// apt-get download writes into the current directory; _apt cannot
	// write a root-owned temp dir, so allow the unsandboxed download.
	os.Chmod(tmp, 0o755)
	cmd := exec.Command("apt-get", "-o", "APT::Sandbox::User=root", "download", pkg)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get download %s: %v\n%s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download %s gave %v", pkg, debs)
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	wheels, _ := filepath.Glob(filepath.Join(root, "usr", "share", "python-wheels", "*.whl"))
	if len(wheels) == 0 {
		t.Fatalf("%s ships no wheel in /usr/share/python-wheels", pkg)
	}
	stage := filepath.Join(tmp, "wheels")
	if err := os.Mkdir(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, w := range wheels {
		if err := os.Rename(w, filepath.Join(stage, filepath.Base(w))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(stage, dir); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(dir, "*.whl"))
	return got
}
