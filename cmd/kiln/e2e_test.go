package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// These tests meet real things: Debian's docker-registry, a debootstrapped
// bookworm parent, podman, skopeo and umoci. kiln itself always runs as the
// unprivileged user nobody.

var refLine = regexp.MustCompile(`^(\S+/hello):([0-9a-f]{32})@(sha256:[0-9a-f]{64})$`)

// show logs what a step printed when the test runs as `make demo`.
func show(t *testing.T, step, text string) {
	t.Helper()
	if os.Getenv("KILN_DEMO") != "" {
		t.Logf("%s\n%s", step, strings.TrimRight(text, "\n"))
	}
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// helloDir copies examples/hello into a directory the unprivileged user can
// read, with a .dockerignore'd file and a cache directory beside it.
func helloDir(t *testing.T) string {
	t.Helper()
	dir := testenv.UserDir(t)
	src := filepath.Join(testenv.RepoRoot(t), "examples", "hello")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Left out by the example's .dockerignore and by the default excludes.
	for _, f := range []string{"app/debug.log", "app/__pycache__/x.pyc", "app/.git/HEAD"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.ChownTree(t, dir, 65534, 65534)
	return dir
}

func TestE2EBuildPushRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "podman", "skopeo", "umoci", "docker-registry", "debootstrap", "setpriv")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	proxy := testenv.NewCountingProxy(t, reg)
	testenv.ParentImage(t, reg)
	base := proxy.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag
	dir := helloDir(t)
	home := testenv.UserDir(t)

	// kiln name works offline and predicts the tag.
	name := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "name", "--base-image", base, "--registry", proxy.Host)
	if name.Code != 0 {
		t.Fatalf("kiln name: %s", name)
	}
	// Not there yet: exists says 1.
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "exists", "--base-image", base, "--registry", proxy.Host); r.Code != 1 {
		t.Errorf("kiln exists before the build: %s; want exit code 1", r)
	}

	proxy.Reset()
	res := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "build", "--base-image", base, "--registry", proxy.Host)
	if res.Code != 0 {
		t.Fatalf("kiln build: %s\nregistry log:\n%s", res, reg.Log())
	}
	show(t, "$ kiln build --base-image "+base+" --registry "+proxy.Host+"   (as nobody, in examples/hello)", res.Stderr+res.Stdout)
	m := refLine.FindStringSubmatch(lastLine(res.Stdout))
	if m == nil {
		t.Fatalf("last stdout line %q is not registry/name:tag@sha256:...", lastLine(res.Stdout))
	}
	ref := m[1] + ":" + m[2] + "@" + m[3]
	if want := m[1] + ":" + m[2]; strings.TrimSpace(name.Stdout) != want {
		t.Errorf("kiln name printed %q, the build pushed %q", strings.TrimSpace(name.Stdout), want)
	}
	// Only manifests, the parent's config and, for the SBOM's list of the
	// parent's Debian packages, its one layer were read.
	if n := parentBlobGets(proxy); n > 2 {
		t.Errorf("the build made %d blob GETs of the parent; want at most 2 (the parent's config and its layer, for the SBOM)\n%v", n, proxy.Requests())
	}
	if !strings.Contains(res.Stderr, "sbom: spdx SBOM of") {
		t.Errorf("the build attached no SBOM:\n%s", res.Stderr)
	}
	// Without the SBOM, a code-only build reads no parent layer at all.
	proxy.Reset()
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: helloDir(t)}, "build", "--force", "--sbom=false", "--base-image", base, "--registry", proxy.Host); r.Code != 0 {
		t.Fatalf("kiln build --sbom=false: %s", r)
	}
	if n := parentBlobGets(proxy); n > 1 {
		t.Errorf("a build with --sbom=false made %d blob GETs of the parent; want at most 1 (the parent's config): parent layers must not be downloaded\n%v", n, proxy.Requests())
	}

	podman := testenv.NewPodman(t)
	out, err := podman.Run(ref)
	if err != nil {
		t.Fatalf("podman run %s: %v", ref, err)
	}
	show(t, "$ podman run "+ref, out)
	if strings.TrimSpace(out) != "Hello from kiln, world!" {
		t.Errorf("podman run printed %q, want the app's greeting", out)
	}
	// The ignored files are not in the image; the code is readable by any user.
	out, err = podman.Exec("run", "--rm", "--network", "none", "--user", "1234", "--entrypoint", "sh", ref, "-c", "ls -A /root; cat /root/main.py >/dev/null && echo readable")
	if err != nil {
		t.Fatalf("podman run ls: %v", err)
	}
	for _, bad := range []string{"debug.log", "__pycache__", ".git"} {
		if strings.Contains(out, bad) {
			t.Errorf("/root holds %s, which .dockerignore or the defaults exclude:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "readable") {
		t.Errorf("the code is not readable by an arbitrary user:\n%s", out)
	}

	info := testenv.DecodeSkopeoInspect(t, testenv.SkopeoInspect(t, reg, "docker://"+m[1]+"@"+m[3]))
	if info.Architecture != "amd64" || info.Os != "linux" || info.Labels["org.opencontainers.image.title"] != "hello" {
		t.Errorf("skopeo inspect: %+v", info)
	}

	// exists now says 0, and a second build does nothing.
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "exists", "--base-image", base, "--registry", proxy.Host); r.Code != 0 {
		t.Errorf("kiln exists after the build: %s; want exit code 0", r)
	}
	again := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "build", "--base-image", base, "--registry", proxy.Host)
	if again.Code != 0 || lastLine(again.Stdout) != lastLine(res.Stdout) || !strings.Contains(again.Stderr, "already exists") {
		t.Errorf("second build: %s; want it to find the image and print the same reference", again)
	}
	// A registry that does not answer: exists cannot tell (2).
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "exists", "--base-image", base, "--registry", "127.0.0.1:1"); r.Code != 2 {
		t.Errorf("kiln exists against a dead registry: %s; want exit code 2", r)
	}

	// The same inputs on "another machine": a fresh copy, another cache,
	// umask and time zone, written as an OCI layout and a docker archive.
	other := helloDir(t)
	rebuilt := testenv.RunKiln(t, testenv.RunOptions{Dir: other, Umask: "077", Env: []string{"TZ=Pacific/Auckland"}},
		"build", "--base-image", base, "--registry", proxy.Host, "--oci-layout", "layout", "--tarball", "hello.tar")
	if rebuilt.Code != 0 {
		t.Fatalf("rebuild: %s", rebuilt)
	}
	if lastLine(rebuilt.Stdout) != lastLine(res.Stdout) {
		t.Errorf("rebuild elsewhere gave %s, want the same reference and digest %s", lastLine(rebuilt.Stdout), lastLine(res.Stdout))
	}
	layout := filepath.Join(other, "layout")
	if out, err := podman.RunOCI(layout, m[2]); err != nil || strings.TrimSpace(out) != "Hello from kiln, world!" {
		t.Errorf("podman run oci:%s:%s = %q, %v", layout, m[2], out, err)
	}
	rootfs := testenv.UmociUnpack(t, layout, m[2])
	if data, err := os.ReadFile(filepath.Join(rootfs, "root", "greet.py")); err != nil || !strings.Contains(string(data), "def greeting") {
		t.Errorf("umoci unpack: /root/greet.py = %q, %v", data, err)
	}
	testenv.SkopeoInspect(t, nil, "oci:"+layout+":"+m[2])
	loaded := podman.Load(filepath.Join(other, "hello.tar"))
	if out, err := podman.Run(loaded[0], "Kiln"); err != nil || strings.TrimSpace(out) != "Hello from kiln, Kiln!" {
		t.Errorf("podman run of the loaded archive %s = %q, %v", loaded[0], out, err)
	}
	testenv.SkopeoInspect(t, nil, "docker-archive:"+filepath.Join(other, "hello.tar"))
}

func TestE2ELocalOutputAndErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "setpriv")
	dir := helloDir(t)

	// No registry and no output flag: an OCI layout under ./out/.
	res := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "build", "--base-image", "scratch")
	if res.Code != 0 {
		t.Fatalf("kiln build: %s", res)
	}
	if !regexp.MustCompile(`^hello:[0-9a-f]{32}@sha256:[0-9a-f]{64}$`).MatchString(lastLine(res.Stdout)) {
		t.Errorf("last stdout line = %q", lastLine(res.Stdout))
	}
	if !strings.Contains(res.Stderr, filepath.Join("out", "hello")) {
		t.Errorf("kiln did not say where the layout went:\n%s", res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "hello", "index.json")); err != nil {
		t.Errorf("no OCI layout under out/hello: %v", err)
	}

	for _, tc := range []struct {
		name string
		spec string
		args []string
		code int
		want []string
	}{
		{"typo in a key", "base_image: scratch\nsource_rot: app\n", nil, 2, []string{"kiln.yaml:2", "source_rot", `did you mean "source_root"`}},
		{"wrong type", "base_image: scratch\nenv: [A]\n", nil, 2, []string{"kiln.yaml:2", "env", "must be a mapping"}},
		{"not supported yet", "base_image: scratch\nconda_packages: [numpy]\n", nil, 2, []string{"kiln.yaml:2", "conda_packages", "not supported yet"}},
		{"bad flag value", "base_image: scratch\n", []string{"--entrypoint", "python3 main.py"}, 2, []string{"--entrypoint", "JSON list"}},
		{"unknown flag", "base_image: scratch\n", []string{"--no-such-flag"}, 2, []string{"no-such-flag"}},
		{"missing source", "base_image: scratch\nsource_root: nope\n", nil, 2, []string{"kiln.yaml:2", "source_root", "does not exist"}},
		{"unreachable parent", "base_image: 127.0.0.1:1/nothing:here\n", nil, 1, []string{"resolve parent", "127.0.0.1:1/nothing:here"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testenv.UserDir(t)
			if err := os.WriteFile(filepath.Join(d, "kiln.yaml"), []byte(tc.spec), 0o644); err != nil {
				t.Fatal(err)
			}
			testenv.ChownTree(t, d, 65534, 65534)
			r := testenv.RunKiln(t, testenv.RunOptions{Dir: d}, append([]string{"build"}, tc.args...)...)
			if r.Code != tc.code {
				t.Errorf("exit code %d, want %d\n%s", r.Code, tc.code, r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, r.Stderr)
				}
			}
			if r.Stdout != "" {
				t.Errorf("a failed build printed on stdout: %q", r.Stdout)
			}
			if _, err := os.Stat(filepath.Join(d, "out")); err == nil {
				t.Error("a failed build left an out/ directory")
			}
		})
	}
}

// parentBlobGets counts the downloads of the parent's blobs proxy saw.
func parentBlobGets(proxy *testenv.Proxy) int {
	n := 0
	for _, r := range proxy.Requests() {
		if r.Kind == testenv.KindBlobGet && strings.HasPrefix(r.Path, "/v2/"+testenv.ParentRepository+"/blobs/") {
			n++
		}
	}
	return n
}

// e2eParent skips in -short mode, checks for the tools every end-to-end
// test drives and the extra ones this test does, starts a registry and
// pushes the debootstrap parent to it. It returns the registry and the
// parent's reference.
func e2eParent(t *testing.T, extraTools ...string) (*testenv.Registry, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, append([]string{"docker-registry", "debootstrap", "setpriv"}, extraTools...)...)
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.ParentImage(t, reg)
	return reg, reg.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag
}

// e2eWheelIndex serves the fixture wheels (../shared/fixtures/wheels/pypi)
// as a PEP 503 index and returns its URL.
func e2eWheelIndex(t *testing.T) string {
	t.Helper()
	return testenv.WheelIndex(t, filepath.Join(testenv.RepoRoot(t), "..", "shared", "fixtures", "wheels", "pypi"))
}

// e2eAptRepo builds pkg into a .deb, serves it from a signed local apt
// repository and returns the repository and its public key.
func e2eAptRepo(t *testing.T, pkg testenv.DebPackage) (*testenv.AptRepo, []byte) {
	t.Helper()
	repo := testenv.StartAptRepo(t, testenv.MakeDeb(t, t.TempDir(), pkg))
	key, err := os.ReadFile(repo.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return repo, key
}
