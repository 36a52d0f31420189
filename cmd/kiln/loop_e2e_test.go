package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EAptWarningsOnCacheHit: what the apt step warned about when its
// layer was built is part of the step's record, so a build that reuses the
// step (from the local cache, or from the kiln-cache image on a fresh
// runner) prints it too: apt warnings are never silently dropped.
func TestE2EAptWarningsOnCacheHit(t *testing.T) {
	reg, base := e2eParent(t, "podman", "dpkg-deb", "apt-ftparchive")
	repo, key := e2eAptRepo(t, testenv.DebPackage{
		Name: "kiln-ldpath", Version: "1.0-1",
		Files: map[string]string{"/etc/ld.so.conf.d/kiln-ldpath.conf": "/opt/kiln-ldpath/lib\n"},
	})
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
	_, again := buildRef(t, runner, "--force", "--explain")
	show(t, "$ kiln build --force --explain   (the step from the local cache)", again.Stderr)
	if !strings.Contains(again.Stderr, "reused from the local cache") || !strings.Contains(again.Stderr, warning) {
		t.Errorf("a build reusing the apt step from the local cache did not print its warning %q:\n%s", warning, again.Stderr)
	}
	// --explain reads the pins and the warnings from the step's record.
	if !strings.Contains(again.Stderr, "explain:   pinned: 1 Debian packages, 0 wheels") || !strings.Contains(again.Stderr, "explain:   1 warnings") {
		t.Errorf("--explain of the reused apt step does not show its recorded pins and warnings:\n%s", again.Stderr)
	}
	fresh := writeSpec(t, spec, files)
	_, remote := buildRef(t, testenv.RunOptions{Dir: fresh}, "--force", "--explain")
	show(t, "$ kiln build --force --explain   (fresh runner: the step from kiln-cache)", remote.Stderr)
	if !strings.Contains(remote.Stderr, "reused from cache_from") || !strings.Contains(remote.Stderr, warning) {
		t.Errorf("a build reusing the apt step from kiln-cache did not print its warning %q:\n%s", warning, remote.Stderr)
	}
	// The remote map holds the same record as the local cache: its pins
	// and warnings come back on a fresh runner too.
	if !strings.Contains(remote.Stderr, "explain:   pinned: 1 Debian packages, 0 wheels") || !strings.Contains(remote.Stderr, "explain:   1 warnings") {
		t.Errorf("--explain of the apt step from kiln-cache does not show its recorded pins and warnings:\n%s", remote.Stderr)
	}
}

// TestE2ELockBuildsNoLayer: kiln lock is the build's loop stopped after
// pin. On an apt + Python spec it resolves both steps (the target Python
// read from the parent and the pinned packages' files) and writes no layer
// and no step record into the cache. A --locked build of a spec whose
// platform or apt source changed since is refused, naming the input.
func TestE2ELockBuildsNoLayer(t *testing.T) {
	reg, base := e2eParent(t, "podman", "dpkg-deb", "apt-ftparchive")
	repo, key := e2eAptRepo(t, testenv.DebPackage{
		Name: "kiln-hello", Version: "1.0-1", Depends: "python3",
		Files: map[string]string{"/usr/bin/kiln-hello": "#!/usr/bin/python3\nprint('hello')\n"},
	})
	index := testenv.WheelIndex(t, filepath.Join(testenv.RepoRoot(t), "..", "shared", "fixtures", "wheels", "pypi"))
	spec := "name: locked\nregistry: " + reg.Host + "\nbase_image: " + base + "\nplatform: linux/amd64\n" +
		"apt_packages: [kiln-hello]\napt_sources:\n  - " + repo.Line + "\npackages: [pyyaml]\npip_index: " + index + "\n"
	dir := writeSpec(t, spec, map[string]string{"repo-key.asc": string(key)})
	cacheDir := filepath.Join(dir, "cache")
	res := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "lock", "--cache-dir", cacheDir)
	show(t, "$ kiln lock", res.Stderr)
	if res.Code != 0 {
		t.Fatalf("kiln lock: %s", res)
	}
	data, err := os.ReadFile(filepath.Join(dir, "kiln.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"name": "kiln-hello"`) || !strings.Contains(string(data), `"name": "pyyaml"`) {
		t.Errorf("kiln.lock does not pin kiln-hello and pyyaml:\n%s", data)
	}
	for _, sub := range []string{"keys", "steps"} {
		filepath.WalkDir(filepath.Join(cacheDir, sub), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Errorf("kiln lock wrote %s into the cache: it must build no layer", p)
			}
			return nil
		})
	}

	for _, tc := range []struct{ what, from, to, want string }{
		{"platform", "platform: linux/amd64", "platform: linux/arm64", "platform changed"},
		{"apt source", repo.Line, strings.Replace(repo.Line, " main", " contrib", 1), "apt_sources changed"},
	} {
		if !strings.Contains(spec, tc.from) {
			t.Fatalf("the spec has no %q", tc.from)
		}
		edited := strings.Replace(spec, tc.from, tc.to, 1)
		if err := os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "build", "--locked", "--cache-dir", cacheDir)
		if r.Code == 0 || !strings.Contains(r.Stderr, "kiln.lock is stale") || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("kiln build --locked after changing the %s: %s; want a stale-lock error naming it (%q)", tc.what, r, tc.want)
		}
	}
}

// TestE2EAptThroughFaultyProxy: apt traffic goes through the registry's
// retry policy (backoff, Retry-After, resets): with a proxy in front of a
// local signed apt repository that fails the first request for the
// InRelease index (503, Retry-After), for the Packages index (a reset
// connection) and for the .deb (502), the build succeeds.
func TestE2EAptThroughFaultyProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "podman", "docker-registry", "debootstrap", "setpriv", "dpkg-deb", "apt-ftparchive")
	testenv.RequireRoot(t)
	repo, key := e2eAptRepo(t, testenv.DebPackage{
		Name: "kiln-flaky", Version: "1.0-1",
		Files: map[string]string{"/usr/share/kiln-flaky/hello": "hello through a flaky mirror\n"},
	})
	proxy := testenv.NewURLProxy(t, strings.TrimSuffix(repo.URL, "/debian"))
	faults := []struct {
		part  string
		fault testenv.Fault
	}{
		{"/InRelease", testenv.Fault{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"1"}}}},
		{"/binary-amd64/Packages", testenv.Fault{Reset: true}},
		{".deb", testenv.Fault{Status: http.StatusBadGateway}},
	}
	var mu sync.Mutex
	faulted := map[string]bool{}
	proxy.SetFault(func(r *http.Request, _ testenv.RequestKind, _ int) testenv.Fault {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range faults {
			if strings.Contains(r.URL.Path, f.part) && !faulted[f.part] {
				faulted[f.part] = true
				return f.fault
			}
		}
		return testenv.Fault{}
	})
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.ParentImage(t, reg)
	base := reg.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag
	line := strings.Replace(repo.Line, strings.TrimSuffix(repo.URL, "/debian"), proxy.URL(), 1)
	spec := "name: flaky\nregistry: " + reg.Host + "\nbase_image: " + base + "\napt_packages: [kiln-flaky]\napt_sources:\n  - " + line + "\n"
	dir := writeSpec(t, spec, map[string]string{"repo-key.asc": string(key)})
	_, res := buildRef(t, testenv.RunOptions{Dir: dir})
	show(t, "$ kiln build   (through a flaky apt proxy)", res.Stderr)
	for _, f := range faults {
		if !faulted[f.part] {
			t.Errorf("no request for %s went through the proxy:\n%v", f.part, proxy.Requests())
		}
	}
	var retried []string
	for _, r := range proxy.Requests() {
		if r.Faulted {
			retried = append(retried, r.Path)
		}
	}
	if len(retried) != len(faults) {
		t.Errorf("faulted requests %v, want one per fault", retried)
	}
}
