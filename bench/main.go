// Command bench compares kiln with buildah on the same Python/ML workload and
// prints a Markdown report on stdout (progress goes to stderr). Run it as
// root from the repository root: `make bench`, i.e. `go run ./bench`.
//
// Both tools build the same image (see workload.go) against a loopback
// Debian docker-registry holding the debootstrap bookworm + python3 parent
// and a loopback wheel index (both from internal/testenv), in four cases:
//
//  1. cold: empty local storage, nothing of the app in the registry;
//  2. a one-line code change on a fresh runner: empty local storage, only
//     the registry cache (kiln: the previous image through its default
//     cache_from, <repo>:kiln-cache; buildah: --cache-from/--cache-to);
//  3. another one-line change, warm: the local storage of case 2 kept;
//  4. nothing changed, on a fresh runner: kiln finds the tag and stops
//     (no --force); buildah rebuilds from its registry cache and pushes.
//
// Every case ends with the image in the registry. Each is run
// KILN_BENCH_RUNS times (default 3) per tool, interleaving the tools, and
// the median is reported, with peak RSS (/usr/bin/time -f %M) and the body
// bytes that went through a counting proxy in front of the registry. A
// separate case pushes a single 1 GiB layer with kiln to measure its peak
// RSS on big layers.
//
// Case 5 is a cold build of a wide apt set alone (widePackages, with their
// dependencies), where decoding .debs and compressing dominate; kiln's CPU
// utilisation (CPU time / wall time) shows how many cores it kept busy.
//
// Case 6 is a cold build of the workload of cases 1-4 (pure-Python wheels
// instead of flask and requests) for linux/amd64 and linux/arm64 from a
// two-platform parent: kiln with platform: linux/amd64,linux/arm64, an
// OCI index in one build with nothing run; buildah build --platform
// linux/amd64,linux/arm64 --manifest, whose arm64 RUN steps run under
// qemu-user-static through the host's binfmt_misc handler (which the bench
// registers, see testenv.RequireQemuBinfmt), then buildah manifest push
// --all.
//
// Environment: KILN_BENCH_RUNS (3), KILN_BENCH_TOOLS ("kiln,buildah"),
// KILN_BENCH_WIDE (1; 0 skips case 5, "only" runs nothing else),
// KILN_BENCH_MULTI (1; 0 skips case 6, "only" runs nothing else; with
// KILN_BENCH_WIDE=only too, cases 5 and 6),
// KILN_BENCH_CASES ("1-4"; "1" runs the cold build alone of cases 1-4),
// KILN_BENCH_KILN (a kiln binary nobody can run, instead of building one),
// KILN_BENCH_BIG_MB (1024; 0 skips the big layer), KILN_BENCH_VERIFY (1:
// run both final images with podman to check they work; 0 skips),
// KILN_BENCH_BUILDAH_DRIVER (overlay; vfs also works), KILN_BENCH_PROFILE
// (a directory nobody can write: a CPU profile, an execution trace and the
// time-stamped stderr of every kiln build there).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kiln-build/kiln/internal/testenv"
)

var cases = []struct{ id, title string }{
	{"1", "cold build (empty local storage and registry)"},
	{"2", "one-line code change, fresh runner (registry cache only)"},
	{"3", "one-line code change, warm (local cache kept)"},
	{"4", "nothing changed, fresh runner"},
	{"5", "wide apt set, cold (" + fmt.Sprint(len(widePackages)) + " packages with their dependencies, no Python)"},
	{"6", "two platforms, cold (linux/amd64 + linux/arm64; buildah runs the arm64 steps under QEMU)"},
}

type sample struct {
	wall    time.Duration
	rssKB   int64         // peak RSS of the tool's process (max over its commands)
	cpu     time.Duration // user + system time of the tool and its children
	traffic traffic
}

// utilisation is CPU time over wall time: 2.0 means two cores busy.
func (s sample) utilisation() float64 {
	if s.wall <= 0 {
		return 0
	}
	return s.cpu.Seconds() / s.wall.Seconds()
}

type bench struct {
	t        *tb
	kiln     string
	proxy    *byteProxy
	reg      *testenv.Registry
	base     string
	multi    string // the two-platform parent, through the proxy (case 6)
	index    string
	driver   string
	results  map[string]map[string][]sample // tool -> case -> samples
	lastRefs map[string]string              // tool -> last image built
	multiRef map[string]string              // tool -> case 6's last index
	notes    []string
	profiles int  // CPU profiles written (KILN_BENCH_PROFILE)
	coldOnly bool // KILN_BENCH_CASES=1: case 1 alone of cases 1-4
}

func main() { os.Exit(run()) }

func run() (code int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t := newTB(ctx)
	defer t.runCleanups()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatal); !ok {
				panic(r)
			}
			fmt.Fprintln(os.Stderr, "bench: FAILED")
			code = 1
		}
	}()
	if os.Geteuid() != 0 {
		t.Fatal("bench: run as root (buildah and the debootstrap parent need it; kiln itself runs as nobody)")
	}
	runs := envInt(t, "KILN_BENCH_RUNS", 3)
	bigMB := envInt(t, "KILN_BENCH_BIG_MB", 1024)
	wide := envOr("KILN_BENCH_WIDE", "1")
	if wide != "0" && wide != "1" && wide != "only" {
		t.Fatalf("KILN_BENCH_WIDE=%q: want 1, 0 or only", wide)
	}
	multi := envOr("KILN_BENCH_MULTI", "1")
	if multi != "0" && multi != "1" && multi != "only" {
		t.Fatalf("KILN_BENCH_MULTI=%q: want 1, 0 or only", multi)
	}
	// "only" on either knob skips cases 1-4 and the other knob's case unless
	// it says "only" too.
	only := wide == "only" || multi == "only"
	runMain := !only
	runWide := wide == "only" || wide == "1" && !only
	runMulti := multi == "only" || multi == "1" && !only
	tools := strings.Split(envOr("KILN_BENCH_TOOLS", "kiln,buildah"), ",")
	casesEnv := envOr("KILN_BENCH_CASES", "1-4")
	if casesEnv != "1-4" && casesEnv != "1" {
		t.Fatalf("KILN_BENCH_CASES=%q: want 1-4 or 1 (the cold build alone)", casesEnv)
	}
	started := time.Now()

	ensureTools(t)
	b := &bench{
		t:        t,
		driver:   envOr("KILN_BENCH_BUILDAH_DRIVER", "overlay"),
		results:  map[string]map[string][]sample{},
		lastRefs: map[string]string{},
		multiRef: map[string]string{},
		coldOnly: casesEnv == "1",
	}
	if err := os.MkdirAll(systemBlobInfoCache, 0o700); err != nil {
		t.Fatal(err)
	}
	progress("building kiln")
	b.kiln = os.Getenv("KILN_BENCH_KILN") // another build of kiln, to compare
	if b.kiln == "" {
		b.kiln = testenv.KilnBinary(t)
	}
	progress("starting the registry and pushing the bookworm + python3 parent (debootstrap on first use, cached in .cache/testenv)")
	b.reg = testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.ParentImage(t, b.reg)
	b.proxy = startByteProxy(t, b.reg.URL())
	b.base = b.proxy.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag
	if runMulti {
		progress("registering qemu-aarch64-static with binfmt_misc and pushing the two-platform parent (the arm64 debootstrap, on first use, takes minutes under QEMU)")
		testenv.RequireQemuBinfmt(t, "arm64")
		testenv.MultiArchParent(t, b.reg)
		b.multi = b.proxy.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentBothTag
	}
	b.index = htmlIndex(t, testenv.WheelIndex(t, filepath.Join(testenv.RepoRoot(t), "..", "shared", "fixtures", "wheels", "pypi")))

	for r := 1; r <= runs; r++ {
		for _, tool := range tools {
			switch tool {
			case "kiln":
				if runMain {
					b.kilnRun(r)
				}
				if runWide {
					b.kilnWide(r)
				}
				if runMulti {
					b.kilnMulti(r)
				}
			case "buildah":
				if runMain {
					b.buildahRun(r)
				}
				if runWide {
					b.buildahWide(r)
				}
				if runMulti {
					b.buildahMulti(r)
				}
			default:
				t.Fatalf("KILN_BENCH_TOOLS: unknown tool %q (kiln, buildah)", tool)
			}
		}
	}
	var big *sample
	if bigMB > 0 && slices.Contains(tools, "kiln") && runMain {
		s := b.bigLayer(bigMB)
		big = &s
	}
	if envOr("KILN_BENCH_VERIFY", "1") != "0" && !b.coldOnly {
		b.verify()
	}
	b.report(runs, bigMB, big, time.Since(started))
	return 0
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(t *tb, k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", k, v)
	}
	return n
}

// ensureTools installs what the benchmark needs from Debian's packages when
// it is missing: buildah, GNU time, and what internal/testenv uses.
func ensureTools(t *tb) {
	need := map[string]string{ // executable -> package
		"buildah":                      "buildah",
		"/usr/bin/time":                "time",
		"docker-registry":              "docker-registry",
		"debootstrap":                  "debootstrap",
		"setpriv":                      "util-linux",
		"podman":                       "podman",
		"runc":                         "runc",
		"/usr/bin/qemu-aarch64-static": "qemu-user-static",
	}
	var missing []string
	for exe, pkg := range need {
		if _, err := exec.LookPath(exe); err != nil && !slices.Contains(missing, pkg) {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return
	}
	slices.Sort(missing)
	progress("installing %s with apt-get", strings.Join(missing, " "))
	install := func() error {
		cmd := exec.CommandContext(t.Context(), "apt-get", append([]string{"install", "-y", "-q"}, missing...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	if err := install(); err != nil {
		update := exec.CommandContext(t.Context(), "apt-get", "update", "-q")
		update.Stdout, update.Stderr = os.Stderr, os.Stderr
		if err := update.Run(); err != nil {
			t.Fatalf("apt-get update: %v", err)
		}
		if err := install(); err != nil {
			t.Fatalf("apt-get install %s: %v", strings.Join(missing, " "), err)
		}
	}
}

func (b *bench) record(tool, c string, s sample) {
	if b.results[tool] == nil {
		b.results[tool] = map[string][]sample{}
	}
	b.results[tool][c] = append(b.results[tool][c], s)
	progress("  %-7s case %s: %6.1fs  CPU %5.1fs (%.2f cores)  peak RSS %4d MB  up %s  down %s (%d blob GETs, %d requests)", tool, c, s.wall.Seconds(), s.cpu.Seconds(), s.utilisation(), s.rssKB/1024, mb(s.traffic.Up), mb(s.traffic.Down), s.traffic.BlobGets, s.traffic.Requests)
}

// caseDir writes a fresh checkout of the app at version into a directory kiln
// (running as nobody) can read, with kiln.yaml and Containerfile beside it.
func (b *bench) caseDir(name string, version int) string {
	dir := testenv.UserDir(b.t)
	if err := writeApp(dir, version); err != nil {
		b.t.Fatalf("writing the app: %v", err)
	}
	files := map[string]string{
		"kiln.yaml":     kilnSpec(name, b.proxy.Host, b.base, b.index),
		"Containerfile": containerfile(b.base, b.index),
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	return dir
}

// ---- kiln ----

// kilnBuild runs `kiln build` as nobody in dir with the given cache
// directory, under /usr/bin/time, and returns the sample and the image
// reference it printed.
func (b *bench) kilnBuild(dir, cacheDir string, args ...string) (sample, string, testenv.Result) {
	timeDir := testenv.UserDir(b.t)
	timeFile := filepath.Join(timeDir, "rss")
	argv := append([]string{"/usr/bin/time", "-f", timeFormat, "-o", timeFile, b.kiln, "build", "--cache-dir", cacheDir}, args...)
	before := b.proxy.snapshot()
	start := time.Now()
	var env []string
	if d := os.Getenv("KILN_BENCH_PROFILE"); d != "" {
		// For kiln's performance work: a CPU profile per build in d (which
		// nobody must be able to write).
		b.profiles++
		env = append(env, fmt.Sprintf("KILN_CPUPROFILE=%s/kiln-%d.cpu", d, b.profiles),
			fmt.Sprintf("KILN_TRACE=%s/kiln-%d.trace", d, b.profiles), "KILN_LOGTIME=1")
	}
	res := testenv.RunAsNobody(b.t, testenv.RunOptions{Dir: dir, Home: timeDir, Timeout: 20 * time.Minute, Env: env}, argv...)
	wall := time.Since(start)
	if res.Code != 0 {
		b.t.Fatalf("kiln build in %s failed:\n%s", dir, res)
	}
	if d := os.Getenv("KILN_BENCH_PROFILE"); d != "" {
		// Its stderr, each line with the seconds since the start.
		if err := os.WriteFile(fmt.Sprintf("%s/kiln-%d.log", d, b.profiles), []byte(res.Stderr), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	rss, cpu := readTime(b.t, timeFile)
	s := sample{wall: wall, rssKB: rss, cpu: cpu, traffic: b.proxy.snapshot().sub(before)}
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	return s, lines[len(lines)-1], res
}

func (b *bench) kilnRun(r int) {
	name := fmt.Sprintf("bench-kiln-%d", r)
	progress("run %d: kiln (%s)", r, name)
	cacheA := testenv.UserDir(b.t)
	s, _, _ := b.kilnBuild(b.caseDir(name, 1), cacheA, "--force")
	b.record("kiln", "1", s)
	_ = os.RemoveAll(cacheA)
	if b.coldOnly {
		return
	}

	cacheB := testenv.UserDir(b.t)
	s, _, res := b.kilnBuild(b.caseDir(name, 2), cacheB, "--force")
	b.record("kiln", "2", s)
	if r == 1 {
		b.notes = append(b.notes, "kiln's own account of case 2 (first run), its stderr:\n\n```\n"+strings.TrimSpace(res.Stderr)+"\n```")
	}

	s, ref3, _ := b.kilnBuild(b.caseDir(name, 3), cacheB, "--force")
	b.record("kiln", "3", s)
	_ = os.RemoveAll(cacheB)

	cacheC := testenv.UserDir(b.t)
	s, ref4, _ := b.kilnBuild(b.caseDir(name, 3), cacheC)
	b.record("kiln", "4", s)
	_ = os.RemoveAll(cacheC)
	if ref3 != ref4 {
		b.t.Fatalf("kiln: the unchanged rebuild gave %s, the build before it %s", ref4, ref3)
	}
	b.lastRefs["kiln"] = ref4
}

// bigLayer pushes an image whose source_root is one file of mb MiB of
// seeded random data, and measures kiln's peak RSS doing it.
func (b *bench) bigLayer(sizeMB int) sample {
	progress("big layer: generating a %d MiB file", sizeMB)
	dir := testenv.UserDir(b.t)
	if err := os.MkdirAll(filepath.Join(dir, "big"), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := writeRandom(filepath.Join(dir, "big", "blob.bin"), int64(sizeMB)<<20, 42); err != nil {
		b.t.Fatal(err)
	}
	spec := fmt.Sprintf("name: bench-big\nregistry: %s\nbase_image: %s\nsource_root: big\n", b.proxy.Host, b.base)
	if err := os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte(spec), 0o644); err != nil {
		b.t.Fatal(err)
	}
	cache := testenv.UserDir(b.t)
	progress("big layer: kiln build (pushing one %d MiB layer)", sizeMB)
	s, _, _ := b.kilnBuild(dir, cache, "--force")
	progress("  kiln    big layer: %6.1fs  peak RSS %4d MB  up %s", s.wall.Seconds(), s.rssKB/1024, mb(s.traffic.Up))
	_ = os.RemoveAll(cache)
	_ = os.RemoveAll(dir)
	return s
}

// ---- buildah ----

// buildahStore is one runner's buildah state: image storage and the blob
// info cache (which containers/image otherwise keeps, for root, in
// /var/lib/containers/cache whatever --root says, and which would let a
// "fresh" runner remember which blobs the registry has).
type buildahStore struct{ root, runroot, blobCache string }

func (b *bench) newStore() buildahStore {
	st := buildahStore{root: b.t.TempDir(), runroot: b.t.TempDir(), blobCache: b.t.TempDir()}
	// Registered after the TempDir cleanups, so it runs before them.
	b.t.Cleanup(func() { b.dropStore(st) })
	return st
}

// buildah runs buildah with the store's storage under /usr/bin/time in
// dir, returning the wall time, peak RSS and CPU time.
func (b *bench) buildah(st buildahStore, dir string, args ...string) (time.Duration, int64, time.Duration) {
	timeFile := filepath.Join(b.t.TempDir(), "rss")
	global := []string{"--root", st.root, "--runroot", st.runroot, "--storage-driver", b.driver}
	// A private mount namespace per command: the store's own blob info
	// cache is bind-mounted over the system one, and the overlay mounts
	// buildah leaves go away with the namespace.
	argv := []string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c",
		`mount --bind "$0" ` + systemBlobInfoCache + ` && exec "$@"`, st.blobCache,
		"/usr/bin/time", "-f", timeFormat, "-o", timeFile, "buildah"}
	argv = append(argv, append(global, args...)...)
	cmd := exec.CommandContext(b.t.Context(), "unshare", argv...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BUILDAH_ISOLATION=chroot", "BUILDAH_LAYERS=true")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b.t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, tail(out.String(), 60))
	}
	rss, cpu := readTime(b.t, timeFile)
	return wall, rss, cpu
}

// buildahBuildPush builds dir's Containerfile as ref and pushes it: what one
// CI job does. Returns the combined sample.
func (b *bench) buildahBuildPush(st buildahStore, dir, ref, cacheRepo string, cacheFrom bool) sample {
	bud := []string{"bud", "--isolation", "chroot", "--layers", "--tls-verify=false", "--cache-to", cacheRepo}
	if cacheFrom {
		bud = append(bud, "--cache-from", cacheRepo)
	}
	bud = append(bud, "-t", ref, "-f", "Containerfile", ".")
	before := b.proxy.snapshot()
	w1, rss1, cpu1 := b.buildah(st, dir, bud...)
	w2, rss2, cpu2 := b.buildah(st, dir, "push", "--tls-verify=false", ref, "docker://"+ref)
	return sample{wall: w1 + w2, rssKB: max(rss1, rss2), cpu: cpu1 + cpu2, traffic: b.proxy.snapshot().sub(before)}
}

func (b *bench) buildahRun(r int) {
	repo := fmt.Sprintf("%s/bench-buildah-%d", b.proxy.Host, r)
	cacheRepo := repo + "-cache"
	progress("run %d: buildah (%s, storage driver %s, chroot isolation)", r, repo, b.driver)

	stA := b.newStore()
	b.record("buildah", "1", b.buildahBuildPush(stA, b.caseDir("", 1), repo+":v1", cacheRepo, false))
	b.dropStore(stA)
	if b.coldOnly {
		return
	}

	stB := b.newStore()
	b.record("buildah", "2", b.buildahBuildPush(stB, b.caseDir("", 2), repo+":v2", cacheRepo, true))
	b.record("buildah", "3", b.buildahBuildPush(stB, b.caseDir("", 3), repo+":v3", cacheRepo, true))
	b.dropStore(stB)

	stC := b.newStore()
	b.record("buildah", "4", b.buildahBuildPush(stC, b.caseDir("", 3), repo+":v3", cacheRepo, true))
	b.dropStore(stC)
	b.lastRefs["buildah"] = repo + ":v3"
}

// ---- case 5: the wide apt set ----

// wideDir writes the wide case's kiln.yaml and Containerfile into a fresh
// directory kiln (as nobody) can read.
func (b *bench) wideDir(name string) string {
	dir := testenv.UserDir(b.t)
	files := map[string]string{
		"kiln.yaml":     wideKilnSpec(name, b.proxy.Host, b.base),
		"Containerfile": wideContainerfile(b.base),
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	return dir
}

func (b *bench) kilnWide(r int) {
	name := fmt.Sprintf("bench-kiln-wide-%d", r)
	progress("run %d: kiln, wide apt set (%s)", r, name)
	cache := testenv.UserDir(b.t)
	s, _, res := b.kilnBuild(b.wideDir(name), cache, "--force")
	b.record("kiln", "5", s)
	if r == 1 {
		var keep []string
		for _, l := range strings.Split(res.Stderr, "\n") {
			if strings.HasPrefix(l, "apt: ") && !strings.HasPrefix(l, "apt: warning") || strings.HasPrefix(l, "layer") || strings.HasPrefix(l, "layers:") || strings.HasPrefix(l, "uploaded") {
				// The report names no mirror: the machine's sources are its own.
				keep = append(keep, mirrorURL.ReplaceAllString(l, "<mirror>"))
			}
		}
		b.notes = append(b.notes, "kiln's own account of case 5 (first run), its stderr less warnings:\n\n```\n"+strings.Join(keep, "\n")+"\n```")
	}
	_ = os.RemoveAll(cache)
}

func (b *bench) buildahWide(r int) {
	repo := fmt.Sprintf("%s/bench-buildah-wide-%d", b.proxy.Host, r)
	progress("run %d: buildah, wide apt set (%s)", r, repo)
	st := b.newStore()
	b.record("buildah", "5", b.buildahBuildPush(st, b.wideDir(""), repo+":v1", repo+"-cache", false))
	b.dropStore(st)
}

// ---- case 6: two platforms ----

// multiDir writes case 6's app, kiln.yaml and Containerfile into a fresh
// directory kiln (as nobody) can read.
func (b *bench) multiDir(name string) string {
	dir := testenv.UserDir(b.t)
	if err := writeMultiApp(dir, 1); err != nil {
		b.t.Fatalf("writing the app: %v", err)
	}
	files := map[string]string{
		"kiln.yaml":     multiKilnSpec(name, b.proxy.Host, b.multi, b.index),
		"Containerfile": multiContainerfile(b.multi, b.index),
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	return dir
}

func (b *bench) kilnMulti(r int) {
	name := fmt.Sprintf("bench-kiln-multi-%d", r)
	progress("run %d: kiln, two platforms (%s)", r, name)
	cache := testenv.UserDir(b.t)
	s, ref, res := b.kilnBuild(b.multiDir(name), cache, "--force")
	b.record("kiln", "6", s)
	if r == 1 {
		var keep []string
		for _, l := range strings.Split(res.Stderr, "\n") {
			if strings.HasPrefix(l, "platform") || strings.HasPrefix(l, "layer") || strings.HasPrefix(l, "layers:") || strings.HasPrefix(l, "uploaded") || strings.HasPrefix(l, "index") {
				keep = append(keep, mirrorURL.ReplaceAllString(l, "<mirror>"))
			}
		}
		b.notes = append(b.notes, "kiln's own account of case 6 (first run), its stderr's platform, layer and upload lines:\n\n```\n"+strings.Join(keep, "\n")+"\n```")
	}
	_ = os.RemoveAll(cache)
	b.multiRef["kiln"] = ref
}

func (b *bench) buildahMulti(r int) {
	repo := fmt.Sprintf("%s/bench-buildah-multi-%d", b.proxy.Host, r)
	progress("run %d: buildah, two platforms under QEMU (%s)", r, repo)
	st := b.newStore()
	dir := b.multiDir("")
	// One manifest list in local storage, one image per platform, then
	// the list and both images pushed. No --cache-to: a cold build, like
	// case 1's, but nothing here reads the cache back.
	list := fmt.Sprintf("bench-buildah-multi-%d", r)
	before := b.proxy.snapshot()
	w1, rss1, cpu1 := b.buildah(st, dir, "build", "--isolation", "chroot", "--layers", "--tls-verify=false",
		"--platform", strings.Join(multiPlatforms, ","), "--manifest", list, "-f", "Containerfile", ".")
	w2, rss2, cpu2 := b.buildah(st, dir, "manifest", "push", "--all", "--tls-verify=false", list, "docker://"+repo+":v1")
	b.record("buildah", "6", sample{wall: w1 + w2, rssKB: max(rss1, rss2), cpu: cpu1 + cpu2, traffic: b.proxy.snapshot().sub(before)})
	b.dropStore(st)
	b.multiRef["buildah"] = repo + ":v1"
}

// mirrorURL matches an apt source's URI in kiln's log lines.
var mirrorURL = regexp.MustCompile(`https?://[^ ]+`)

// systemBlobInfoCache is where containers/image keeps root's blob info cache.
const systemBlobInfoCache = "/var/lib/containers/cache"

// dropStore removes a buildah storage: whatever is still mounted under it
// (nothing, normally: buildah runs in its own mount namespaces), then the
// files.
func (b *bench) dropStore(st buildahStore) {
	if _, err := os.Stat(st.root); err != nil {
		return // already dropped
	}
	for _, dir := range []string{st.root, st.runroot, st.blobCache} {
		unmountUnder(dir)
		if err := os.RemoveAll(dir); err != nil {
			progress("removing %s: %v", dir, err)
		}
	}
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest
// first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := unescapeMount(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

// ---- checks and report ----

// verify runs both final images with podman: each must print the app's
// version line, so that the two tools are known to build working images.
func (b *bench) verify() {
	if len(b.lastRefs) == 0 && len(b.multiRef) == 0 {
		return
	}
	progress("verifying the images with podman")
	p := testenv.NewPodman(b.t)
	b.verifyMulti(p)
	for _, tool := range []string{"kiln", "buildah"} {
		ref, ok := b.lastRefs[tool]
		if !ok {
			continue
		}
		// Pull from the registry directly, not through the counting proxy.
		ref = b.reg.Host + strings.TrimPrefix(ref, b.proxy.Host)
		out, err := p.Run(ref)
		if err != nil {
			b.t.Fatalf("%s's image %s does not run: %v", tool, ref, err)
		}
		if !strings.HasPrefix(out, "benchapp 3 ") {
			b.t.Fatalf("%s's image %s printed %q, want \"benchapp 3 ...\"", tool, ref, out)
		}
		progress("  %s: %s", tool, strings.TrimSpace(out))
		b.notes = append(b.notes, fmt.Sprintf("`podman run` of %s's last image printed `%s`; %s", tool, strings.TrimSpace(out), b.layerSizes(ref)))
	}
}

// verifyMulti runs case 6's last images for both platforms with podman:
// each must print the app's version line with its machine.
func (b *bench) verifyMulti(p *testenv.Podman) {
	for _, tool := range []string{"kiln", "buildah"} {
		ref, ok := b.multiRef[tool]
		if !ok {
			continue
		}
		ref = digestOnly(b.reg.Host + strings.TrimPrefix(ref, b.proxy.Host))
		raw, err := testenv.Skopeo(b.t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
		if err != nil {
			b.t.Fatal(err)
		}
		var index struct {
			MediaType string `json:"mediaType"`
			Manifests []struct {
				Platform v1.Platform `json:"platform"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal([]byte(raw), &index); err != nil || len(index.Manifests) != len(multiPlatforms) {
			b.t.Fatalf("%s's %s is not an index of %d platforms (%v):\n%s", tool, ref, len(multiPlatforms), err, raw)
		}
		mediaType := index.MediaType
		var outs []string
		for _, pl := range []struct{ platform, machine string }{{"linux/amd64", "x86_64"}, {"linux/arm64", "aarch64"}} {
			out, err := p.RunPlatform(pl.platform, ref)
			if err != nil {
				b.t.Fatalf("%s's %s image of %s does not run: %v", tool, pl.platform, ref, err)
			}
			if !strings.HasPrefix(out, "benchapp 1 "+pl.machine+" ") {
				b.t.Fatalf("%s's %s image of %s printed %q, want \"benchapp 1 %s ...\"", tool, pl.platform, ref, out, pl.machine)
			}
			progress("  %s %s: %s", tool, pl.platform, strings.TrimSpace(out))
			outs = append(outs, "`"+strings.TrimSpace(out)+"`")
		}
		b.notes = append(b.notes, fmt.Sprintf("case 6: %s pushed a `%s`; `podman run --platform` of its two images printed %s.", tool, mediaType, strings.Join(outs, " and ")))
	}
}

// digestOnly drops the tag of a "repo:tag@sha256:..." reference (kiln
// prints those), which skopeo refuses.
func digestOnly(ref string) string {
	repo, digest, ok := strings.Cut(ref, "@")
	if !ok {
		return ref
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo + "@" + digest
}

// layerSizes describes the layers ref has on top of the parent, as stored in
// the registry (compressed).
func (b *bench) layerSizes(ref string) string {
	opts := b.reg.RemoteOptions(b.t.Context())
	layers := func(r string) []v1.Descriptor {
		parsed, err := name.ParseReference(r, b.reg.NameOptions()...)
		if err != nil {
			b.t.Fatal(err)
		}
		img, err := remote.Image(parsed, opts...)
		if err != nil {
			b.t.Fatalf("reading %s: %v", r, err)
		}
		m, err := img.Manifest()
		if err != nil {
			b.t.Fatalf("reading %s: %v", r, err)
		}
		return m.Layers
	}
	parent := len(layers(b.reg.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag))
	own := layers(ref)[parent:]
	var sizes []string
	var total int64
	for _, l := range own {
		sizes = append(sizes, mb(l.Size))
		total += l.Size
	}
	return fmt.Sprintf("its %d layers over the parent weigh %s compressed (%s).", len(own), mb(total), strings.Join(sizes, ", "))
}

// timeFormat makes /usr/bin/time write peak RSS (KiB), user and system
// seconds; user and system time include the children waited for.
const timeFormat = "%M %U %S"

func readTime(t *tb, file string) (rssKB int64, cpu time.Duration) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading /usr/bin/time output: %v", err)
	}
	// The last line is timeFormat; a line before it may say the command
	// exited non-zero.
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 3 {
		t.Fatalf("/usr/bin/time wrote %q, want %q", data, timeFormat)
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		t.Fatalf("/usr/bin/time wrote %q: %v", data, err)
	}
	for _, x := range f[1:] {
		secs, err := strconv.ParseFloat(x, 64)
		if err != nil {
			t.Fatalf("/usr/bin/time wrote %q: %v", data, err)
		}
		cpu += time.Duration(secs * float64(time.Second))
	}
	return n, cpu
}

func median[T int64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mb(n int64) string {
	switch {
	case n < 1<<20:
		return fmt.Sprintf("%.2f MB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func commandLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func machine() string {
	mem := "?"
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	cpu := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (nproc %s, %s), %s RAM, kernel %s", runtime.NumCPU(), commandLine("nproc"), cpu, mem, commandLine("uname", "-r"))
}

func kilnVersion() string {
	root, err := os.Getwd()
	if err != nil {
		return "?"
	}
	rev := commandLine("git", "-C", root, "rev-parse", "--short=12", "HEAD")
	if out, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		rev += " + uncommitted changes"
	}
	return "commit " + rev
}

func (b *bench) report(runs, bigMB int, big *sample, elapsed time.Duration) {
	w := os.Stdout
	fmt.Fprintf(w, "## kiln vs buildah\n\n")
	fmt.Fprintf(w, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "- machine: %s\n", machine())
	fmt.Fprintf(w, "- kiln: %s (%s); buildah: %s (storage driver %s, chroot isolation, run as root); registry: %s; %s\n",
		kilnVersion(), runtime.Version(), commandLine("buildah", "--version"), b.driver,
		commandLine("dpkg-query", "-W", "-f=docker-registry ${Version}", "docker-registry"), commandLine("dpkg-query", "-W", "-f=GNU time ${Version}", "time"))
	fmt.Fprintf(w, "- workload (cases 1-4): bookworm + python3 parent in a loopback registry; python3-numpy from the Debian mirror; flask and requests from a loopback wheel index; a 4 MiB code directory (%d Python modules + %d seeded random data files) in /root\n", pyModules, dataFiles)
	fmt.Fprintf(w, "- workload (case 5): the same parent; apt packages %s with their dependencies (no recommends), nothing else\n", strings.Join(widePackages, ", "))
	fmt.Fprintf(w, "- workload (case 6): a two-platform (linux/amd64, linux/arm64/v8) bookworm + python3 parent; python3-numpy; %s from the wheel index; the same code directory; kiln `platform: %s`, buildah `build --platform %s --manifest` (arm64 RUN steps under qemu-user-static) + `manifest push --all`\n",
		strings.Join(multiPackages, ", "), strings.Join(multiPlatforms, ","), strings.Join(multiPlatforms, ","))
	fmt.Fprintf(w, "- kiln CPU / wall: user + system time of kiln and its children (xz) over wall time; 2.00 is both cores of this machine busy the whole time\n")
	fmt.Fprintf(w, "- median of %d runs per case per tool; wall time is the whole job (buildah: bud + push); kiln runs as nobody\n", runs)
	fmt.Fprintf(w, "- uploaded / downloaded: request / response body bytes through a counting proxy in front of the registry (Debian mirror and wheel index traffic not included)\n")
	fmt.Fprintf(w, "- total benchmark time: %s\n\n", elapsed.Round(time.Second))

	fmt.Fprintf(w, "| case | kiln | buildah | buildah/kiln | kiln CPU / wall | kiln peak RSS | buildah peak RSS | kiln uploaded | buildah uploaded | kiln downloaded | buildah downloaded |\n")
	fmt.Fprintf(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range cases {
		k, bu := b.results["kiln"][c.id], b.results["buildah"][c.id]
		cell := func(ss []sample, f func(sample) string) string {
			if len(ss) == 0 {
				return "–"
			}
			return f(medianSample(ss))
		}
		secs := func(s sample) string { return seconds(s.wall) }
		rss := func(s sample) string { return fmt.Sprintf("%d MB", s.rssKB/1024) }
		util := func(s sample) string { return fmt.Sprintf("%.2f", s.utilisation()) }
		up := func(s sample) string { return mb(s.traffic.Up) }
		down := func(s sample) string { return mb(s.traffic.Down) }
		ratio := "–"
		if len(k) > 0 && len(bu) > 0 {
			ratio = fmt.Sprintf("%.0f×", medianSample(bu).wall.Seconds()/medianSample(k).wall.Seconds())
			if r := medianSample(bu).wall.Seconds() / medianSample(k).wall.Seconds(); r < 10 {
				ratio = fmt.Sprintf("%.1f×", r)
			}
		}
		if len(k) == 0 && len(bu) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s. %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.id, c.title,
			cell(k, secs), cell(bu, secs), ratio, cell(k, util), cell(k, rss), cell(bu, rss), cell(k, up), cell(bu, up), cell(k, down), cell(bu, down))
	}
	if big != nil {
		fmt.Fprintf(w, "| memory: one %d MiB layer of random data (kiln, source_root, pushed; 1 run) | %s | – | – | %.2f | %d MB | – | %s | – | %s | – |\n",
			bigMB, seconds(big.wall), big.utilisation(), big.rssKB/1024, mb(big.traffic.Up), mb(big.traffic.Down))
	}
	fmt.Fprintf(w, "\nEvery sample (wall s / CPU s / peak RSS MB / uploaded MB / downloaded MB in blob GETs / registry requests):\n\n")
	for _, tool := range []string{"kiln", "buildah"} {
		for _, c := range cases {
			ss := b.results[tool][c.id]
			if len(ss) == 0 {
				continue
			}
			var parts []string
			for _, s := range ss {
				parts = append(parts, fmt.Sprintf("%.1f / %.1f / %d / %.1f / %.1f in %d / %d", s.wall.Seconds(), s.cpu.Seconds(), s.rssKB/1024,
					float64(s.traffic.Up)/(1<<20), float64(s.traffic.Down)/(1<<20), s.traffic.BlobGets, s.traffic.Requests))
			}
			fmt.Fprintf(w, "- %s case %s: %s\n", tool, c.id, strings.Join(parts, ", "))
		}
	}
	fmt.Fprintf(w, "\nDifferences between the two builds: buildah's apt step also installs python3-venv (the parent has no ensurepip; kiln writes the virtualenv itself), pip runs with --no-cache-dir; kiln's tags are content hashes, buildah's v1..v3.\n")
	for _, n := range b.notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
}

func seconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// medianSample takes the median of each measure separately.
func medianSample(ss []sample) sample {
	var walls []time.Duration
	var rss, up, down []int64
	for _, s := range ss {
		walls = append(walls, s.wall)
		rss = append(rss, s.rssKB)
		up = append(up, s.traffic.Up)
		down = append(down, s.traffic.Down)
	}
	// The utilisation reported is that of the median-wall sample.
	cpu := ss[0].cpu
	for _, s := range ss {
		if s.wall == median(walls) {
			cpu = s.cpu
		}
	}
	if len(ss)%2 == 0 {
		var cpus []time.Duration
		for _, s := range ss {
			cpus = append(cpus, s.cpu)
		}
		cpu = median(cpus)
	}
	return sample{wall: median(walls), rssKB: median(rss), cpu: cpu, traffic: traffic{Up: median(up), Down: median(down)}}
}
