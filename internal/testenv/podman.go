package testenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Podman runs podman as root with state isolated from the machine's: its
// own storage root, run root, containers.conf, registries.conf, auth file
// and certificate directory, all removed when the test ends.
type Podman struct {
	t       testing.TB
	dir     string
	root    string
	runroot string
	certDir string
	env     []string

	mu         sync.Mutex
	registries []*Registry
}

// NewPodman returns an isolated podman. It needs root (podman's rootless
// mode needs subuid ranges and more, and is not what these tests check).
func NewPodman(t testing.TB) *Podman {
	t.Helper()
	RequireRoot(t)
	Require(t, "podman", "runc")
	// podman refuses a run root longer than 50 characters, which paths
	// under t.TempDir() easily are: use a short directory in /tmp.
	dir, err := os.MkdirTemp("/tmp", "podman-")
	if err != nil {
		t.Fatalf("creating podman state dir: %v", err)
	}
	p := &Podman{
		t:       t,
		dir:     dir,
		root:    filepath.Join(dir, "root"),
		runroot: filepath.Join(dir, "run"),
		certDir: filepath.Join(dir, "certs"),
	}
	for _, d := range []string{p.root, p.runroot, p.certDir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
netns = "none"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q
tmp_dir = %q
volume_path = %q

[network]
network_config_dir = %q
`, filepath.Join(dir, "events.log"), filepath.Join(dir, "tmp"), filepath.Join(dir, "volumes"), filepath.Join(dir, "networks"))
	storage := fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = %q
runroot = %q
`, p.root, p.runroot)
	must(t, os.WriteFile(filepath.Join(dir, "containers.conf"), []byte(conf), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "storage.conf"), []byte(storage), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "policy.json"), []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "auth.json"), []byte(`{"auths":{}}`), 0o600))
	p.env = append(os.Environ(),
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(dir, "registries.conf"),
		"REGISTRY_AUTH_FILE="+filepath.Join(dir, "auth.json"),
		"TMPDIR="+filepath.Join(dir, "tmp"),
	)
	p.writeRegistriesConf()
	t.Cleanup(p.cleanup)
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeRegistriesConf writes a registries.conf that resolves no short names
// and marks loopback registries insecure (plain HTTP allowed), except the
// TLS registries added with UseRegistry, which are verified against their
// CA.
func (p *Podman) writeRegistriesConf() {
	var b strings.Builder
	b.WriteString("unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n")
	for _, loc := range []string{"127.0.0.1", "localhost"} {
		fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", loc)
	}
	for _, r := range p.registries {
		if r.TLS() {
			fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = false\n", r.Host)
		}
	}
	must(p.t, os.WriteFile(filepath.Join(p.dir, "registries.conf"), []byte(b.String()), 0o644))
}

// UseRegistry makes podman trust reg's CA (with TLS verification on) and
// log in with its credentials. Plain-HTTP registries need no call.
func (p *Podman) UseRegistry(reg *Registry) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.registries = append(p.registries, reg)
	p.writeRegistriesConf()
	if reg.CAFile != "" {
		ca, err := os.ReadFile(reg.CAFile)
		must(p.t, err)
		must(p.t, os.WriteFile(filepath.Join(p.certDir, strings.ReplaceAll(reg.Host, ":", "_")+".crt"), ca, 0o644))
	}
	auths := map[string]map[string]string{}
	for _, r := range p.registries {
		if r.Username != "" {
			auths[r.Host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))}
		}
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	must(p.t, err)
	must(p.t, os.WriteFile(filepath.Join(p.dir, "auth.json"), data, 0o600))
}

// Command returns an exec.Cmd for podman with the isolated global options
// and environment; args follow the global options.
func (p *Podman) Command(ctx context.Context, args ...string) *exec.Cmd {
	global := []string{
		"--root", p.root,
		"--runroot", p.runroot,
		"--storage-driver", "overlay",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
		"--runtime", "runc",
		"--tmpdir", filepath.Join(p.dir, "tmp"),
	}
	cmd := exec.CommandContext(ctx, "podman", append(global, args...)...)
	cmd.Env = p.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Exec runs podman with args and returns its stdout; on failure the error
// includes stderr.
func (p *Podman) Exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(p.t.Context(), 10*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := p.Command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Pull pulls ref (a registry reference such as "HOST/repo@sha256:...",
// or any transport:reference podman accepts), failing the test on error.
func (p *Podman) Pull(ref string) {
	p.t.Helper()
	if _, err := p.Exec("pull", "--quiet", "--cert-dir", p.certDir, ref); err != nil {
		p.t.Fatal(err)
	}
}

// Run runs args in a new container of image ref with --rm and
// --network none, pulling it first if needed, and returns its stdout.
func (p *Podman) Run(ref string, args ...string) (string, error) {
	return p.Exec(append([]string{"run", "--rm", "--network", "none", "--pull", "missing", ref}, args...)...)
}

// RunPlatform runs args like Run in a container of the platform's
// ("linux/arm64") image of ref, which may be an image index. A foreign
// platform's programs run under qemu-user-static, which needs the host's
// binfmt_misc handler (RequireQemuBinfmt).
func (p *Podman) RunPlatform(platform, ref string, args ...string) (string, error) {
	return p.Exec(append([]string{"run", "--rm", "--network", "none", "--pull", "missing", "--platform", platform, ref}, args...)...)
}

// RunOCI runs args in a container of the image tagged tag in the OCI image
// layout at dir (as "oci:DIR:TAG"; with an empty tag the layout must hold a
// single image).
//
// podman names such images after the layout's path, which must then be a
// valid lower-case repository name; t.TempDir() paths are not, so the
// layout is reached through a symlink in a lower-case temp directory.
func (p *Podman) RunOCI(dir, tag string, args ...string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if abs != strings.ToLower(abs) {
		link := filepath.Join(p.dir, "oci-"+randomHex(4))
		if err := os.Symlink(abs, link); err != nil {
			return "", fmt.Errorf("linking OCI layout: %w", err)
		}
		defer os.Remove(link)
		abs = link
	}
	ref := "oci:" + abs
	if tag != "" {
		ref += ":" + tag
	}
	return p.Run(ref, args...)
}

var loadedImageRE = regexp.MustCompile(`(?m)^Loaded image(?:\(s\))?: (.+)$`)

// Load loads a docker-archive (or oci-archive) tarball with podman load -i
// and returns the loaded image names (or IDs), failing the test on error.
func (p *Podman) Load(archivePath string) []string {
	p.t.Helper()
	out, err := p.Exec("load", "-i", archivePath)
	if err != nil {
		p.t.Fatal(err)
	}
	var names []string
	for _, m := range loadedImageRE.FindAllStringSubmatch(out, -1) {
		for _, n := range strings.Split(m[1], ",") {
			names = append(names, strings.TrimSpace(n))
		}
	}
	if len(names) == 0 {
		p.t.Fatalf("podman load -i %s: no image loaded:\n%s", archivePath, out)
	}
	return names
}

// Inspect returns the decoded output of podman image inspect ref (the
// first element of the array).
func (p *Podman) Inspect(ref string) map[string]any {
	p.t.Helper()
	out, err := p.Exec("image", "inspect", ref)
	if err != nil {
		p.t.Fatal(err)
	}
	var v []map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) == 0 {
		p.t.Fatalf("decoding podman image inspect %s: %v\n%s", ref, err, out)
	}
	return v[0]
}

func (p *Podman) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Remove containers and unmount storage so the temp dir can be deleted.
	// (Not "podman system reset": it also touches state outside --root.)
	cmd := p.Command(ctx, "rm", "--all", "--force")
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Logf("podman rm --all --force: %v\n%s", err, out)
	}
	unmountUnder(p.dir)
	if err := os.RemoveAll(p.dir); err != nil {
		p.t.Logf("removing podman state: %v", err)
	}
}
