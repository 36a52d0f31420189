package main

import (
	"os"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EAptWarningsOnCacheHit: what the apt step warned about when its
// layer was built is part of the step's record, so a build that reuses the
// step (from the local cache, or from the kiln-cache image on a fresh
// runner) prints it too: apt warnings are never silently dropped.
func TestE2EAptWarningsOnCacheHit(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "podman", "docker-registry", "debootstrap", "setpriv", "dpkg-deb", "apt-ftparchive")
	testenv.RequireRoot(t)
	deb := testenv.MakeDeb(t, t.TempDir(), testenv.DebPackage{
		Name: "kiln-ldpath", Version: "1.0-1",
		Files: map[string]string{"/etc/ld.so.conf.d/kiln-ldpath.conf": "/opt/kiln-ldpath/lib\n"},
	})
	repo := testenv.StartAptRepo(t, deb)
	key, err := os.ReadFile(repo.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.ParentImage(t, reg)
	base := reg.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag
	spec := "name: warned\nregistry: " + reg.Host + "\nbase_image: " + base + "\napt_packages: [kiln-ldpath]\napt_sources:\n  - " + repo.Line + "\n"
	files := map[string]string{"repo-key.asc": string(key)}
	dir := writeSpec(t, spec, files)
	const warning = "apt: warning: /etc/ld.so.conf.d/kiln-ldpath.conf adds /opt/kiln-ldpath/lib to the dynamic linker path"

	runner := testenv.RunOptions{Dir: dir, Home: testenv.UserDir(t)} // one local cache
	_, first := buildRef(t, runner)
	show(t, "$ kiln build", first.Stderr)
	if !strings.Contains(first.Stderr, warning) {
		t.Fatalf("the first build did not warn %q:\n%s", warning, first.Stderr)
	}
	_, again := buildRef(t, runner, "--force")
	show(t, "$ kiln build --force   (the step from the local cache)", again.Stderr)
	if !strings.Contains(again.Stderr, "reused from the local cache") || !strings.Contains(again.Stderr, warning) {
		t.Errorf("a build reusing the apt step from the local cache did not print its warning %q:\n%s", warning, again.Stderr)
	}
	fresh := writeSpec(t, spec, files)
	_, remote := buildRef(t, testenv.RunOptions{Dir: fresh}, "--force")
	show(t, "$ kiln build --force   (fresh runner: the step from kiln-cache)", remote.Stderr)
	if !strings.Contains(remote.Stderr, "reused from cache_from") || !strings.Contains(remote.Stderr, warning) {
		t.Errorf("a build reusing the apt step from kiln-cache did not print its warning %q:\n%s", warning, remote.Stderr)
	}
}
