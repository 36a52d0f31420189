package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2ECacheFromFreshRunner is the CI case: a fresh machine (empty cache)
// rebuilds after a one-line code change and uploads only the code layer,
// reusing the wheel layer from the registry without resolving anything.
func TestE2ECacheFromFreshRunner(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "podman", "docker-registry", "debootstrap", "setpriv")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	proxy := testenv.NewCountingProxy(t, reg)
	testenv.ParentImage(t, reg)
	index := testenv.StartWheelIndex(t, filepath.Join(testenv.RepoRoot(t), "..", "shared", "fixtures", "wheels", "pypi"), testenv.WheelIndexOptions{})
	base := proxy.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag
	spec := "name: cached\nregistry: " + proxy.Host + "\nbase_image: " + base + "\npackages: [six]\npip_index: " + index.URL + "\nsource_root: app\nentrypoint: [python3, /root/main.py]\n"
	app := map[string]string{"app/main.py": "import six\nprint('version', 1, six.__name__)\n"}

	first := writeSpec(t, spec, app)
	ref1, res1 := buildRef(t, testenv.RunOptions{Dir: first})
	show(t, "$ kiln build   (first runner)", res1.Stderr)

	// A one-line change on a fresh runner: new checkout, empty cache.
	app["app/main.py"] = "import six\nprint('version', 2, six.__name__)\n"
	second := writeSpec(t, spec, app)
	proxy.Reset()
	indexBefore := len(index.Requests())
	ref2, res2 := buildRef(t, testenv.RunOptions{Dir: second}, "--explain")
	show(t, "$ kiln build --explain   (fresh runner, one-line change)", res2.Stderr)
	if ref1 == ref2 {
		t.Fatal("the code change did not change the image")
	}
	c := proxy.Counts()
	// The code layer, the config and the new image's SBOM are new;
	// everything else is in place.
	if c.UploadPost != 3 {
		t.Errorf("the fresh runner started %d blob uploads, want 3 (the code layer, the config and the SBOM)\n%+v", c.UploadPost, c)
	}
	if n := len(index.Requests()) - indexBefore; n != 0 {
		t.Errorf("the fresh runner asked the package index %d times; a cache hit must resolve nothing", n)
	}
	for _, want := range []string{"explain: packages", "reused from cache_from", "explain: code", "miss: changed since the last build: file:/root/main.py"} {
		if !strings.Contains(res2.Stderr, want) {
			t.Errorf("--explain output lacks %q:\n%s", want, res2.Stderr)
		}
	}
	if strings.Contains(res2.Stderr, "python: resolved") {
		t.Errorf("the fresh runner resolved packages:\n%s", res2.Stderr)
	}

	podman := testenv.NewPodman(t)
	out, err := podman.Run(ref2)
	if err != nil || strings.TrimSpace(out) != "version 2 six" {
		t.Errorf("podman run %s = %q, %v", ref2, out, err)
	}

	// Nothing changed: the tag exists, kiln does no work.
	again := testenv.RunKiln(t, testenv.RunOptions{Dir: second}, "build")
	if again.Code != 0 || !strings.Contains(again.Stderr, "already exists") {
		t.Errorf("rebuild with nothing changed: %s", again)
	}

	// kiln cache prune shrinks the cache.
	home := testenv.UserDir(t)
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: second, Home: home}, "build", "--force"); r.Code != 0 {
		t.Fatalf("build: %s", r)
	}
	pr := testenv.RunKiln(t, testenv.RunOptions{Dir: second, Home: home}, "cache", "prune", "--max-size", "0")
	if pr.Code != 0 || !strings.Contains(pr.Stderr, "removed") {
		t.Errorf("kiln cache prune: %s", pr)
	}
	blobs, _ := os.ReadDir(filepath.Join(home, ".cache", "kiln", "blobs", "sha256"))
	if len(blobs) != 0 {
		t.Errorf("prune to 0 left %d blobs", len(blobs))
	}
}

// TestE2EKilledBuildLeavesNothingTrusted kills kiln (SIGKILL: no cleanup)
// while it compresses a large layer into the cache, then checks that a
// rerun builds the same image as a build in a fresh cache.
func TestE2EKilledBuildLeavesNothingTrusted(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	// 256 MiB of incompressible-ish data: long enough to be caught mid-layer.
	big := make([]byte, 1<<20)
	f, err := os.Create(filepath.Join(dir, "app", "weights.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 256; i++ {
		for j := range big {
			big[j] = byte((i*7919 + j*31) ^ (j >> 3))
		}
		f.Write(big)
	}
	f.Close()
	spec := filepath.Join(dir, "kiln.yaml")
	os.WriteFile(spec, []byte("name: big\nbase_image: scratch\nsource_root: app\n"), 0o644)
	cacheDir := filepath.Join(dir, "cache")
	kiln := testenv.KilnBinary(t)

	cmd := exec.Command(kiln, "build", "-f", spec, "--cache-dir", cacheDir, "--oci-layout", filepath.Join(dir, "killed"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until a layer is being written into the cache, then kill.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		entries, _ := os.ReadDir(filepath.Join(cacheDir, "tmp"))
		if len(entries) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("kiln never started writing a layer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(dir, "killed")); err == nil {
		t.Error("a killed build left an OCI layout behind")
	}

	// The rerun on the same cache completes, with the digest of a clean build.
	rerun := exec.Command(kiln, "build", "-f", spec, "--cache-dir", cacheDir, "--oci-layout", filepath.Join(dir, "rerun"))
	out1, err := rerun.Output()
	if err != nil {
		t.Fatalf("rerun after the kill: %v", err)
	}
	clean := exec.Command(kiln, "build", "-f", spec, "--cache-dir", filepath.Join(dir, "fresh"), "--oci-layout", filepath.Join(dir, "clean"))
	out2, err := clean.Output()
	if err != nil {
		t.Fatalf("clean build: %v", err)
	}
	if lastLine(string(out1)) != lastLine(string(out2)) {
		t.Errorf("after a kill the build gave %s, a clean build %s", lastLine(string(out1)), lastLine(string(out2)))
	}
}

// TestE2ETwoProcessesShareACache runs two kiln processes at once on one
// cache directory, building overlapping layers; both must succeed.
func TestE2ETwoProcessesShareACache(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	kiln := testenv.KilnBinary(t)
	root := t.TempDir()
	cacheDir := filepath.Join(root, "cache")
	var cmds []*exec.Cmd
	for i := 0; i < 2; i++ {
		dir := filepath.Join(root, fmt.Sprint(i))
		// A shared 32 MiB file (same layer content in part) plus a distinct one.
		if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "app", "shared.bin"), bytes.Repeat([]byte("kiln"), 8<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "app", "own.txt"), []byte(fmt.Sprint(i)), 0o644)
		os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte("name: twin\nbase_image: scratch\nsource_root: app\n"), 0o644)
		cmd := exec.Command(kiln, "build", "-f", filepath.Join(dir, "kiln.yaml"), "--cache-dir", cacheDir, "--oci-layout", filepath.Join(dir, "out"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("kiln %d stderr:\n%s", i, stderr.String())
			}
		})
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("kiln %d: %v", i, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(cacheDir, "tmp")); len(entries) != 0 {
		t.Errorf("temporary files left in the shared cache: %d", len(entries))
	}
}
