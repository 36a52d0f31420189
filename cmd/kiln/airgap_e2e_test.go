package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EAirGapped: on the connected side kiln lock, kiln build --locked
// and kiln bundle; then, in a network namespace whose only interface is lo
// (made by the test, with an empty registry inside), kiln as nobody builds
// --locked --from-bundle and gets the connected build's digest, pushing
// the parent's layers that registry lacks. Nothing else is reachable: not
// the apt repository, the wheel index or the parent's registry.
func TestE2EAirGapped(t *testing.T) {
	reg, base := e2eParent(t, "unshare", "python3", "dpkg-deb", "apt-ftparchive")
	repo, key := e2eAptRepo(t, testenv.DebPackage{
		Name: "kiln-gap-probe", Version: "1.0-1",
		Files: map[string]string{"/usr/share/kiln-gap-probe/README": "across the gap\n"},
	})
	index := e2eWheelIndex(t)
	spec := "name: gapped\nregistry: " + reg.Host + "\nbase_image: " + base +
		"\napt_packages: [kiln-gap-probe]\napt_sources:\n  - " + repo.Line +
		"\npackages: [six]\npip_index: " + index + "\nsource_root: app\n"
	dir := writeSpec(t, spec, map[string]string{"repo-key.asc": string(key), "app/main.py": "print('hi')\n"})
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "lock"); r.Code != 0 {
		t.Fatalf("kiln lock: %s", r)
	}
	connected, res := buildRef(t, testenv.RunOptions{Dir: dir}, "--locked")
	show(t, "$ kiln build --locked   (connected)", res.Stderr)
	bundleDir := filepath.Join(dir, "bundle")
	b := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "bundle", "-o", bundleDir)
	show(t, "$ kiln bundle -o bundle", b.Stderr)
	if b.Code != 0 || !strings.Contains(b.Stderr, "1 Debian packages, 1 wheels") {
		t.Fatalf("kiln bundle: %s", b)
	}
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "bundle", "-o", bundleDir); r.Code == 0 || !strings.Contains(r.Stderr, "already exists") {
		t.Errorf("kiln bundle over an existing directory: %s; want a refusal", r)
	}

	// The air gap: a fresh network namespace with only lo, an empty
	// registry inside on the same address, kiln as nobody with an empty cache.
	gap := testenv.PublicDir(t)
	storage := filepath.Join(gap, "storage")
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %q\nhttp:\n  addr: %q\n", storage, reg.Host)
	if err := os.WriteFile(filepath.Join(gap, "config.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	home := testenv.UserDir(t)
	script := fmt.Sprintf(`set -e
ip link set lo up 2>/dev/null || true
docker-registry serve %[1]s/config.yml >%[1]s/registry.log 2>&1 &
registry=$!
for i in $(seq 300); do
	python3 -c 'import urllib.request,sys; urllib.request.urlopen("http://%[2]s/v2/", timeout=1)' 2>/dev/null && break
	sleep 0.1
done
python3 -c 'import socket; print("interfaces:", " ".join(n for _, n in socket.if_nameindex()))' >&2
cd %[3]s
set +e
setpriv --reuid=%[4]d --regid=%[5]d --clear-groups -- env -i PATH=%[6]s HOME=%[7]s XDG_CACHE_HOME=%[7]s/.cache USER=nobody LANG=C.UTF-8 \
	%[8]s build --locked --from-bundle %[9]s
code=$?
kill $registry
exit $code
`, gap, reg.Host, dir, testenv.NobodyUID, testenv.NobodyGID, testenv.ParentPath, home, testenv.KilnBinary(t), bundleDir)
	cmd := exec.CommandContext(t.Context(), "unshare", "--net", "--", "/bin/sh", "-c", script)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	show(t, "$ kiln build --locked --from-bundle bundle   (in a network namespace with only lo)", stderr.String())
	if err != nil {
		regLog, _ := os.ReadFile(filepath.Join(gap, "registry.log"))
		t.Fatalf("the air-gapped build: %v\nstdout: %s\nstderr: %s\nregistry: %s", err, stdout.String(), stderr.String(), regLog)
	}
	if !strings.Contains(stderr.String(), "interfaces: lo\n") {
		t.Errorf("the namespace has other interfaces than lo: %s", stderr.String())
	}
	gapped := lastLine(stdout.String())
	if want := connected[strings.Index(connected, "@"):]; !strings.HasSuffix(gapped, want) {
		t.Errorf("the air-gapped build gave %s, the connected one %s", gapped, connected)
	}
	// The parent's layer, absent from the air-gapped registry, was pushed.
	parentLayer := parentLayerDigest(t, reg)
	if _, err := os.Stat(filepath.Join(storage, "docker/registry/v2/blobs/sha256", parentLayer[:2], parentLayer, "data")); err != nil {
		t.Errorf("the air-gapped registry lacks the parent's layer %s: %v", parentLayer, err)
	}

	// A build from a bundle without --locked is refused, naming the fix.
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir}, "build", "--from-bundle", bundleDir); r.Code != 2 || !strings.Contains(r.Stderr, "add --locked") {
		t.Errorf("--from-bundle without --locked: %s", r)
	}
}

// parentLayerDigest returns the hex digest of the test parent's one layer.
func parentLayerDigest(t *testing.T, reg *testenv.Registry) string {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--format", "{{range .Layers}}{{.}}{{end}}", "docker://"+reg.Host+"/"+testenv.ParentRepository+":"+testenv.ParentTag).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect the parent: %v: %s", err, out)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "sha256:")
}
