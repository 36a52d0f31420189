package main

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2ESeveralPlatforms is the two-platform build of issue 14, as nobody:
// apt_packages, pure-Python wheels and code for linux/amd64 and
// linux/arm64 in one kiln build, pushed as an OCI index; podman runs the
// amd64 image natively and the arm64 image under QEMU; both digests come
// back from empty caches; a code change uploads one shared code layer.
func TestE2ESeveralPlatforms(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "podman", "skopeo", "docker-registry", "debootstrap", "setpriv")
	testenv.RequireRoot(t)
	testenv.RequireQemuBinfmt(t, "arm64")
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	proxy := testenv.NewCountingProxy(t, reg)
	testenv.MultiArchParent(t, reg)
	index := e2eWheelIndex(t)
	base := proxy.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentBothTag
	spec := "name: multi\nregistry: " + proxy.Host + "\nbase_image: " + base + "\n" +
		"platform: [linux/amd64, linux/arm64]\napt_packages: [python3-numpy]\n" +
		"packages: [six, python-dateutil]\npip_index: " + index + "\nsource_root: app\nentrypoint: [python3, /root/main.py]\n"
	app := map[string]string{"app/main.py": "import platform, numpy, six, dateutil\nprint(platform.machine(), numpy.__version__, six.__version__, 'v1')\n"}
	dir := writeSpec(t, spec, app)

	ref, res := buildRef(t, testenv.RunOptions{Dir: dir})
	show(t, "$ kiln build   (platform: [linux/amd64, linux/arm64])", res.Stderr+res.Stdout)
	for _, want := range []string{"platform linux/amd64:", "platform linux/arm64:"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the build log lacks %q:\n%s", want, res.Stderr)
		}
	}

	// skopeo sees an OCI index listing both platforms.
	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v", ref, err)
	}
	var idx struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("skopeo inspect --raw: %v\n%s", err, raw)
	}
	show(t, "$ skopeo inspect --raw", string(raw))
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 2 ||
		idx.Manifests[0].Platform.Architecture != "amd64" || idx.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("skopeo inspect --raw: want an OCI index of linux/amd64 and linux/arm64, got\n%s", raw)
	}

	podman := testenv.NewPodman(t)
	for _, tc := range []struct{ platform, machine string }{{"linux/amd64", "x86_64"}, {"linux/arm64", "aarch64"}} {
		out, err := podman.Exec("run", "--rm", "--network", "none", "--platform", tc.platform, ref)
		show(t, "$ podman run --platform "+tc.platform+" IMAGE", out)
		if err != nil {
			t.Errorf("podman run --platform %s: %v", tc.platform, err)
			continue
		}
		f := strings.Fields(out)
		if len(f) != 4 || f[0] != tc.machine || !strings.HasPrefix(f[1], "1.") || f[3] != "v1" {
			t.Errorf("podman run --platform %s printed %q, want %s, numpy's version, six's and v1", tc.platform, out, tc.machine)
		}
	}

	// kiln exists: the index holds every platform.
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "exists"); r.Code != 0 {
		t.Errorf("kiln exists after the build: %s", r)
	}
	// A docker archive holds one image.
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "build", "--tarball", "out.tar"); r.Code != 2 || !strings.Contains(r.Stderr, "--tarball") || !strings.Contains(r.Stderr, "--oci-layout") {
		t.Errorf("kiln build --tarball of two platforms: %s\nwant exit 2 naming --tarball and --oci-layout", r)
	}
	// --oci-layout writes the index.
	layoutDir := filepath.Join(dir, "oci")
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "build", "--oci-layout", layoutDir); r.Code != 0 {
		t.Fatalf("kiln build --oci-layout: %s", r)
	}
	_, lim := testenv.LayoutIndex(t, layoutDir)
	found := false
	for _, m := range lim.Manifests {
		found = found || (m.MediaType.IsIndex() && strings.HasSuffix(ref, m.Digest.String()))
	}
	if !found {
		t.Errorf("the OCI layout's index.json does not list the image index %s: %+v", ref, lim.Manifests)
	}

	// kiln.lock pins each platform; --locked installs each from its own.
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "lock"); r.Code != 0 {
		t.Fatalf("kiln lock: %s", r)
	}
	lockData, err := os.ReadFile(filepath.Join(dir, "kiln.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var lk struct {
		Platform  string `json:"platform"`
		Platforms []struct {
			Platform string `json:"platform"`
			Debs     []struct {
				Name, Architecture string
			} `json:"debs"`
		} `json:"platforms"`
	}
	if err := json.Unmarshal(lockData, &lk); err != nil || lk.Platform != "linux/amd64,linux/arm64" || len(lk.Platforms) != 2 {
		t.Fatalf("kiln.lock (%v): want both platforms' pins\n%s", err, lockData)
	}
	for i, arch := range []string{"amd64", "arm64"} {
		numpy := ""
		for _, d := range lk.Platforms[i].Debs {
			if d.Name == "python3-numpy" {
				numpy = d.Architecture
			}
		}
		if lk.Platforms[i].Platform != "linux/"+arch || numpy != arch {
			t.Errorf("kiln.lock platforms[%d]: %s with python3-numpy for %q, want linux/%s and %s", i, lk.Platforms[i].Platform, numpy, arch, arch)
		}
	}
	locked, lres := buildRef(t, testenv.RunOptions{Dir: dir}, "--locked")
	if out, err := podman.Exec("run", "--rm", "--network", "none", "--platform", "linux/arm64", locked); err != nil || !strings.HasPrefix(out, "aarch64 ") {
		t.Errorf("podman run --platform linux/arm64 of the --locked build: %q, %v\n%s", out, err, lres.Stderr)
	}
	os.Remove(filepath.Join(dir, "kiln.lock"))

	// From empty caches (a new home, --refresh ignores cache_from too):
	// the same index, so the same image for each platform.
	again, res2 := buildRef(t, testenv.RunOptions{Dir: dir, Home: testenv.UserDir(t)}, "--refresh")
	if again != ref {
		t.Errorf("rebuilt from empty caches: %s, want %s\n%s", again, ref, res2.Stderr)
	}

	// A code change on a fresh runner uploads the new code layer once,
	// shared by both images.
	app["app/main.py"] = strings.Replace(app["app/main.py"], "'v1'", "'v2'", 1)
	changed := writeSpec(t, spec, app)
	proxy.Reset()
	ref3, res3 := buildRef(t, testenv.RunOptions{Dir: changed, Home: testenv.UserDir(t)})
	show(t, "$ kiln build   (fresh runner, code change)", res3.Stderr)
	if ref3 == ref {
		t.Fatal("the code change did not change the index")
	}
	puts := map[string]int{}
	for _, r := range proxy.Requests() {
		if r.Kind != testenv.KindUploadPut {
			continue
		}
		q, _ := url.ParseQuery(r.RawQuery)
		puts[q.Get("digest")]++
	}
	// The code layer, two configs and two SBOMs are new; each goes up once.
	if c := proxy.Counts(); c.UploadPost != 5 || len(puts) != 5 {
		t.Errorf("the code change started %d uploads of %d blobs (%v), want 5: one code layer shared by both images, two configs, two SBOMs", c.UploadPost, len(puts), puts)
	}
	for d, n := range puts {
		if n != 1 {
			t.Errorf("blob %s was uploaded %d times", d, n)
		}
	}
	for _, tc := range []struct{ platform, machine string }{{"linux/amd64", "x86_64"}, {"linux/arm64", "aarch64"}} {
		out, err := podman.Exec("run", "--rm", "--network", "none", "--platform", tc.platform, ref3)
		if err != nil || !strings.HasPrefix(out, tc.machine+" ") || !strings.Contains(out, "v2") {
			t.Errorf("podman run --platform %s of the changed image: %q, %v", tc.platform, out, err)
		}
	}
}

// TestE2EPlatformUnsatisfiable: a project with no wheel for one of the
// platforms fails the build naming that platform and the project.
func TestE2EPlatformUnsatisfiable(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "docker-registry", "debootstrap", "setpriv")
	testenv.RequireRoot(t)
	testenv.RequireQemuBinfmt(t, "arm64")
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.MultiArchParent(t, reg)
	base := reg.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentBothTag
	// The fixtures have PyYAML only as an x86_64 wheel.
	dir := writeSpec(t, "name: nowheel\nregistry: "+reg.Host+"\nbase_image: "+base+"\nplatform: linux/amd64,linux/arm64\nonly_binary: true\npackages: [pyyaml]\npip_index: "+e2eWheelIndex(t)+"\n", nil)
	r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "build")
	show(t, "$ kiln build   (packages: [pyyaml] for linux/amd64 and linux/arm64)", r.Stderr)
	if r.Code != 1 || !strings.Contains(r.Stderr, "platform linux/arm64") || !strings.Contains(strings.ToLower(r.Stderr), "pyyaml") {
		t.Errorf("kiln build of pyyaml for arm64: %s\nwant exit 1 naming platform linux/arm64 and pyyaml", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "kiln.lock")); err == nil {
		t.Error("a failed build wrote kiln.lock")
	}
}
