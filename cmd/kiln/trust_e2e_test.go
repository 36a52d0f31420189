package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/internal/testenv"
	"github.com/kiln-build/kiln/pkg/build"
	"github.com/kiln-build/kiln/pkg/lock"
)

// evilCodeLayer is a layer whose /root/main.py prints EVIL.
func evilCodeLayer(t *testing.T) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("print('EVIL')\n")
	if err := tw.WriteHeader(&tar.Header{Name: "root/main.py", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestE2EPoisonedCacheFrom is the cache_from poisoning probe: a cache image
// whose kiln annotation maps the real code step's key to a layer printing
// EVIL. Without a lock kiln trusts it (the README says a cache image is as
// trusted as the registry pushed to); a --locked build from a kiln lock
// --with-layers lock rebuilds the step and runs the real code; and
// --verify-cache fails, naming the step and both digests.
func TestE2EPoisonedCacheFrom(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	poisonRef := reg.Host + "/poison/cache:1"
	spec := "name: trusted\nregistry: " + reg.Host + "\nbase_image: " + base + "\nsource_root: app\nentrypoint: [python3, /root/main.py]\ncache_from: " + poisonRef + "\n"
	dir := writeSpec(t, spec, map[string]string{"app/main.py": "print('GOOD')\n"})
	opts := testenv.RunOptions{Dir: dir}

	lockRes := testenv.RunKiln(t, opts, "lock", "--with-layers")
	if lockRes.Code != 0 {
		t.Fatalf("kiln lock --with-layers: %s", lockRes)
	}
	l, err := lock.Read(filepath.Join(dir, lock.FileName))
	if err != nil {
		t.Fatal(err)
	}
	show(t, "$ kiln lock --with-layers", lockRes.Stderr)
	var key, good string
	for _, st := range l.Steps {
		if st.Name == build.StepCode && len(st.Layers) == 1 {
			key, good = st.Key, st.Layers[0]
		}
	}
	if key == "" {
		t.Fatalf("kiln.lock pins no code layer: %+v", l.Steps)
	}

	// The poisoned cache image: the parent, the EVIL layer, and an
	// annotation mapping the code step's key to it.
	ctx := t.Context()
	parentRef, err := name.ParseReference(base, reg.NameOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := remote.Image(parentRef, reg.RemoteOptions(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	evil := evilCodeLayer(t)
	ed, _ := evil.Digest()
	bad := ed.String()
	img, err := mutate.AppendLayers(parent, evil)
	if err != nil {
		t.Fatal(err)
	}
	ann, _ := json.Marshal([]map[string]any{{"name": "code", "key": key, "layers": []map[string]string{{"digest": bad, "description": "code (source_root and copy)", "kind": "files"}}}})
	img = mutate.Annotations(img, map[string]string{build.CacheAnnotation: string(ann)}).(v1.Image)
	pref, _ := name.ParseReference(poisonRef, reg.NameOptions()...)
	if err := remote.Write(pref, img, reg.RemoteOptions(ctx)...); err != nil {
		t.Fatal(err)
	}
	podman := testenv.NewPodman(t)

	// Without a lock: trusted, as documented.
	ref, res := buildRef(t, opts)
	show(t, "$ kiln build   (poisoned cache_from, no lock)", res.Stderr)
	if out, err := podman.Run(ref); err != nil || strings.TrimSpace(out) != "EVIL" {
		t.Errorf("without a lock the documented trust in cache_from did not hold: podman run = %q, %v", out, err)
	}

	// --locked from a --with-layers lock: the EVIL layer is refused.
	ref, res = buildRef(t, opts, "--locked")
	show(t, "$ kiln build --locked   (poisoned cache_from)", res.Stderr)
	want := "cache: step code from cache_from has layer " + bad + ", kiln.lock says " + good + "; rebuilding"
	if !strings.Contains(res.Stderr, want) {
		t.Errorf("kiln build --locked did not report the poisoned step; want %q in:\n%s", want, res.Stderr)
	}
	if out, err := podman.Run(ref); err != nil || strings.TrimSpace(out) != "GOOD" {
		t.Errorf("kiln build --locked published the poisoned layer: podman run = %q, %v", out, err)
	}

	// --verify-cache: the build fails, naming the step and both digests.
	r := testenv.RunKiln(t, opts, "build", "--verify-cache")
	show(t, "$ kiln build --verify-cache   (poisoned cache_from)", r.Stderr)
	if r.Code != exitFailed || !strings.Contains(r.Stderr, "step code") || !strings.Contains(r.Stderr, bad) || !strings.Contains(r.Stderr, good) {
		t.Errorf("kiln build --verify-cache: %s\nwant exit 1 naming step code, %s and %s", r, bad, good)
	}
}

// flipBytes overwrites 16 bytes in the middle of p, keeping its size.
func flipBytes(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 2; i < len(data)/2+16 && i < len(data); i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// checkLayoutBlobs re-hashes every blob of an OCI layout.
func checkLayoutBlobs(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("layout %s has no blobs: %v", dir, err)
	}
	for _, e := range entries {
		if got := sha256File(t, filepath.Join(dir, "blobs", "sha256", e.Name())); got != e.Name() {
			t.Errorf("layout %s: blob %s hashes to %s", dir, e.Name(), got)
		}
	}
}

// checkTarball checks every layer of a docker-archive against its diffID
// and its compressed digest.
func checkTarball(t *testing.T, p string) {
	t.Helper()
	img, err := tarball.ImageFromPath(p, nil)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		want, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Errorf("%s: layer %d: %v", p, i, err)
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); err != nil || got != want.String() {
			t.Errorf("%s: layer %d uncompresses to %s (%v), its diffID is %s", p, i, got, err, want)
		}
	}
}

// layoutLayers returns the layer digests of the single image in an OCI
// layout.
func layoutLayers(t *testing.T, dir string) []string {
	t.Helper()
	var idx v1.IndexManifest
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	var images []v1.Descriptor
	for _, d := range idx.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] != "" { // the tagged image, not its SBOM
			images = append(images, d)
		}
	}
	if len(images) != 1 {
		t.Fatalf("index.json lists %d images, want 1: %+v", len(images), idx.Manifests)
	}
	data, err = os.ReadFile(filepath.Join(dir, "blobs", "sha256", images[0].Digest.Hex))
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.Hex)
	}
	return out
}

// TestE2ECorruptCacheIsRepaired flips 16 bytes in cached blobs, keeping
// their sizes: the code and apt layers and the downloaded .deb. The next
// build (to an OCI layout and a docker-archive) warns about each, rebuilds
// or downloads it again, and writes the same, correct image; so does a
// --refresh build over a corrupt .deb.
func TestE2ECorruptCacheIsRepaired(t *testing.T) {
	_, base := e2eParent(t, "dpkg-deb", "apt-ftparchive")
	debs := t.TempDir()
	deb := testenv.MakeDeb(t, debs, testenv.DebPackage{
		Name: "kiln-hello", Version: "1.0-1", Depends: "python3",
		Files: map[string]string{"/usr/bin/kiln-hello": "#!/usr/bin/python3\nprint('hello')\n"},
	})
	debSum := sha256File(t, deb)
	repo := testenv.StartAptRepo(t, deb)
	key, err := os.ReadFile(repo.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	spec := "name: corrupt\nbase_image: " + base + "\napt_packages: [kiln-hello]\napt_sources:\n  - " + repo.Line + "\nsource_root: app\n"
	dir := writeSpec(t, spec, map[string]string{"repo-key.asc": string(key), "app/main.py": "print(1)\n"})
	home := testenv.UserDir(t)
	opts := testenv.RunOptions{Dir: dir, Home: home}
	blobs := filepath.Join(home, ".cache", "kiln", "blobs", "sha256")

	run := func(label, out string, extra ...string) testenv.Result {
		t.Helper()
		args := append([]string{"build", "--oci-layout", filepath.Join(dir, out), "--tarball", filepath.Join(dir, out+".tar")}, extra...)
		r := testenv.RunKiln(t, opts, args...)
		show(t, "$ kiln build "+label, r.Stderr)
		if r.Code != 0 {
			t.Fatalf("kiln build %s: %s", label, r)
		}
		checkLayoutBlobs(t, filepath.Join(dir, out))
		checkTarball(t, filepath.Join(dir, out+".tar"))
		return r
	}
	first := run("(clean)", "first")
	layers := layoutLayers(t, filepath.Join(dir, "first"))
	if len(layers) < 2 {
		t.Fatalf("the image has %d layers", len(layers))
	}
	apt, code := layers[len(layers)-2], layers[len(layers)-1]
	for _, sum := range []string{apt, code, debSum} {
		flipBytes(t, filepath.Join(blobs, sum))
	}
	second := run("(corrupt cache)", "second")
	if lastLine(second.Stdout) != lastLine(first.Stdout) {
		t.Errorf("after repairing the cache the build gave %s, a clean one %s", lastLine(second.Stdout), lastLine(first.Stdout))
	}
	for _, sum := range []string{code, debSum} {
		if !strings.Contains(second.Stderr, "warning: cache:") || !strings.Contains(second.Stderr, sum) {
			t.Errorf("no warning names the corrupt blob %s:\n%s", sum, second.Stderr)
		}
	}
	// The apt step's layer is either repaired or rebuilt from the .deb; both
	// must be reported.
	if !strings.Contains(second.Stderr, apt) {
		t.Errorf("no warning names the corrupt apt layer %s:\n%s", apt, second.Stderr)
	}

	flipBytes(t, filepath.Join(blobs, debSum))
	third := run("--refresh (corrupt .deb)", "third", "--refresh")
	if lastLine(third.Stdout) != lastLine(first.Stdout) || !strings.Contains(third.Stderr, debSum) {
		t.Errorf("--refresh over a corrupt .deb gave %s (want %s), warning:\n%s", lastLine(third.Stdout), lastLine(first.Stdout), third.Stderr)
	}
}
