package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/kiln-build/kiln/internal/testenv"
)

// faultKinds are the registry failures kiln must ride out: server errors,
// rate limiting with Retry-After (seconds and an HTTP date), connection
// resets and stalled requests.
var faultKinds = []string{"500", "502", "503", "504", "429-seconds", "429-date", "reset", "stall"}

// stallFor is how long a stalled request hangs; kiln runs with
// --registry-stall-timeout 1s, so it abandons the request long before.
const stallFor = 60 * time.Second

func faultOf(kind string) testenv.Fault {
	switch kind {
	case "reset":
		return testenv.Fault{Reset: true}
	case "stall":
		return testenv.Fault{Delay: stallFor}
	case "429-seconds":
		return testenv.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}}
	case "429-date":
		return testenv.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {time.Now().Add(time.Second).UTC().Format(http.TimeFormat)}}}
	}
	var code int
	fmt.Sscan(kind, &code)
	return testenv.Fault{Status: code, Body: `{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}`}
}

// faultPlan injects faults into a share of the requests: every fifth
// request in rotation (rotate), or each with probability rate.
type faultPlan struct {
	mu     sync.Mutex
	n      int
	rng    *rand.Rand
	rate   float64
	rotate bool
	hits   map[string]int
}

func (f *faultPlan) decide(r *http.Request, kind testenv.RequestKind, _ int) testenv.Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	var k string
	switch {
	case f.rotate && f.n%5 == 0:
		k = faultKinds[(f.n/5-1)%len(faultKinds)]
	case !f.rotate && f.rng.Float64() < f.rate:
		k = faultKinds[f.rng.IntN(len(faultKinds))]
	default:
		return testenv.Fault{}
	}
	f.hits[k]++
	return faultOf(k)
}

// tinyParent pushes a small random image to reg and returns its repository
// and tag.
func tinyParent(t *testing.T, reg *testenv.Registry) string {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(reg.Host+"/tiny/parent:1", reg.NameOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, reg.RemoteOptions(t.Context())...); err != nil {
		t.Fatalf("pushing the tiny parent: %v", err)
	}
	return "tiny/parent:1"
}

// checkAllManifests asks the registry itself (not the proxy) for every tag
// of repo and checks that each manifest's config and layers are there: a
// manifest must never be pushed before its blobs. It returns the number of
// image tags, not counting kiln's layer-cache tags.
func checkAllManifests(t *testing.T, reg *testenv.Registry, repo string) int {
	t.Helper()
	r, err := name.NewRepository(reg.Host+"/"+repo, reg.NameOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	opts := reg.RemoteOptions(t.Context())
	tags, err := remote.List(r, opts...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return 0
	}
	if err != nil {
		t.Fatalf("listing %s: %v", r, err)
	}
	images := 0
	for _, tag := range tags {
		if strings.HasPrefix(tag, "sha256-") {
			continue // a referrers tag: the index of an image's SBOM, not an image
		}
		if !strings.HasPrefix(tag, "kiln-cache") {
			images++
		}
		img, err := remote.Image(r.Tag(tag), opts...)
		if err != nil {
			t.Errorf("%s:%s: %v", r, tag, err)
			continue
		}
		m, err := img.Manifest()
		if err != nil {
			t.Errorf("%s:%s: %v", r, tag, err)
			continue
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if !blobPresent(t, reg, repo, d.Digest.String()) {
				t.Errorf("%s:%s names blob %s, which the registry lacks", r, tag, d.Digest)
			}
		}
	}
	return images
}

func blobPresent(t *testing.T, reg *testenv.Registry, repo, digest string) bool {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, reg.URL()+"/v2/"+repo+"/blobs/"+digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Username != "" {
		req.SetBasicAuth(reg.Username, reg.Password)
	}
	resp, err := (&http.Client{Transport: reg.Transport()}).Do(req)
	if err != nil {
		t.Fatalf("HEAD blob %s: %v", digest, err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// faultSpec writes a spec whose code prints msg.
func faultSpec(t *testing.T, registry, base, msg string) string {
	t.Helper()
	spec := "name: faulty\nregistry: " + registry + "\nbase_image: " + base + "\nsource_root: app\n" +
		"entrypoint: [\"python3\", \"/root/main.py\"]\n"
	return writeSpec(t, spec, map[string]string{"app/main.py": fmt.Sprintf("print(%q)\n", msg)})
}

var faultFlags = []string{"--registry-stall-timeout", "1s", "--registry-timeout", "2m"}

func TestE2EFaultsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "docker-registry", "setpriv")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	proxy := testenv.NewCountingProxy(t, reg)
	base := proxy.Host + "/" + tinyParent(t, reg)
	plan := &faultPlan{rotate: true, hits: map[string]int{}}
	proxy.SetFault(plan.decide)
	home := testenv.UserDir(t)

	var refs []string
	for i := 0; i < 5; i++ {
		dir := faultSpec(t, proxy.Host, base, fmt.Sprintf("quick build %d", i))
		ref, res := buildRef(t, testenv.RunOptions{Dir: dir, Home: home}, faultFlags...)
		if !strings.Contains(res.Stderr, "retrying") && !strings.Contains(res.Stderr, "starting again") {
			t.Errorf("build %d: stderr reports no retry although every fifth request failed:\n%s", i, res.Stderr)
		}
		refs = append(refs, ref)
	}
	for _, k := range faultKinds {
		if plan.hits[k] == 0 {
			t.Errorf("fault %s was never injected (%v); the test covers too little", k, plan.hits)
		}
	}
	t.Logf("faults injected: %v", plan.hits)

	proxy.SetFault(nil)
	if n := checkAllManifests(t, reg, "faulty"); n != len(refs) {
		t.Errorf("%d tags in the registry, want %d", n, len(refs))
	}
	// Every image is complete: each blob of each manifest reads back.
	for _, ref := range refs {
		r, err := name.ParseReference(strings.Replace(ref, proxy.Host, reg.Host, 1), reg.NameOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(r, reg.RemoteOptions(t.Context())...)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if _, err := img.RawConfigFile(); err != nil {
			t.Errorf("%s: config: %v", ref, err)
		}
	}
}

func TestE2EFaultsGiveUp(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "docker-registry", "setpriv")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	proxy := testenv.NewCountingProxy(t, reg)
	base := proxy.Host + "/" + tinyParent(t, reg)
	home := testenv.UserDir(t)
	run := func(args ...string) testenv.Result {
		dir := faultSpec(t, proxy.Host, base, "never pushed")
		return testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home, Timeout: 2 * time.Minute},
			append(args, "--registry-timeout", "4s", "--registry-stall-timeout", "1s")...)
	}

	for _, tc := range []struct {
		name  string
		fault testenv.FaultFunc
		want  string
	}{
		{"every request 503", func(*http.Request, testenv.RequestKind, int) testenv.Fault {
			return testenv.Fault{Status: http.StatusServiceUnavailable}
		}, "503 Service Unavailable"},
		{"every upload reset", func(_ *http.Request, k testenv.RequestKind, _ int) testenv.Fault {
			return testenv.Fault{Reset: k == testenv.KindUploadPatch}
		}, "connection"},
		{"every upload stalls", func(_ *http.Request, k testenv.RequestKind, _ int) testenv.Fault {
			if k == testenv.KindUploadPatch {
				return testenv.Fault{Delay: stallFor}
			}
			return testenv.Fault{}
		}, "stalled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.SetFault(tc.fault)
			res := run("build")
			if res.Code != 1 {
				t.Fatalf("kiln build against a failing registry: %s; want exit code 1", res)
			}
			last := lastLine(res.Stderr)
			if !strings.Contains(last, "registry "+proxy.Host+": giving up after") || !strings.Contains(last, tc.want) {
				t.Errorf("last stderr line %q: want it to name the registry %s, that kiln gave up, and the last failure (%s)", last, proxy.Host, tc.want)
			}
			if strings.Contains(res.Stderr, "panic") || res.Stdout != "" {
				t.Errorf("unexpected output: %s", res)
			}
		})
	}
	proxy.SetFault(nil)
	if n := checkAllManifests(t, reg, "faulty"); n != 0 {
		t.Errorf("%d tags were pushed by builds that failed", n)
	}

	// kiln exists cannot tell: exit 2.
	proxy.SetFault(func(*http.Request, testenv.RequestKind, int) testenv.Fault {
		return testenv.Fault{Status: http.StatusBadGateway}
	})
	if res := run("exists"); res.Code != 2 || !strings.Contains(res.Stderr, "cannot tell") {
		t.Errorf("kiln exists against a failing registry: %s; want exit code 2, cannot tell", res)
	}
}

// TestSoakFaults runs 50 builds through a proxy failing 20% of the
// requests at random. Run it with KILN_SOAK=1 (make soak).
func TestSoakFaults(t *testing.T) {
	if os.Getenv("KILN_SOAK") != "1" {
		t.Skip("soak test: set KILN_SOAK=1")
	}
	testenv.Require(t, "podman", "docker-registry", "debootstrap", "setpriv")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	proxy := testenv.NewCountingProxy(t, reg)
	testenv.ParentImage(t, reg)
	base := proxy.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag
	seed := uint64(time.Now().UnixNano())
	t.Logf("fault seed %d", seed)
	plan := &faultPlan{rng: rand.New(rand.NewPCG(seed, 6)), rate: 0.2, hits: map[string]int{}}
	proxy.SetFault(plan.decide)
	home := testenv.UserDir(t)
	const builds = 50
	refs := make([]string, 0, builds)
	for i := 0; i < builds; i++ {
		dir := faultSpec(t, proxy.Host, base, fmt.Sprintf("soak build %d", i))
		ref, _ := buildRef(t, testenv.RunOptions{Dir: dir, Home: home, Timeout: 5 * time.Minute}, faultFlags...)
		refs = append(refs, ref)
	}
	proxy.SetFault(nil)
	t.Logf("faults injected over %d requests: %v", plan.n, plan.hits)
	if n := checkAllManifests(t, reg, "faulty"); n != builds {
		t.Errorf("%d tags in the registry, want %d", n, builds)
	}
	podman := testenv.NewPodman(t)
	for i, ref := range refs {
		out, err := podman.Run(strings.Replace(ref, proxy.Host, reg.Host, 1))
		if err != nil {
			t.Errorf("podman run %s: %v", ref, err)
			continue
		}
		if want := fmt.Sprintf("soak build %d", i); strings.TrimSpace(out) != want {
			t.Errorf("podman run %s printed %q, want %q", ref, out, want)
		}
	}
}
