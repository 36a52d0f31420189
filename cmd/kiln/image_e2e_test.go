package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
	"github.com/kiln-build/kiln/pkg/sandbox"
)

// kilnImageRun is how the docs run kiln's own image: unprivileged, no
// capabilities, no privilege escalation, with only the workspace and a
// Docker config mounted. The e2e adds --network host to reach its loopback
// registry, index and apt repository.
var kilnImageRun = []string{"--user", "1000", "--cap-drop=all", "--security-opt", "no-new-privileges"}

// kilnImageArgs are the arguments the image is run with, in the workspace:
// kiln build, with the workspace's kiln.yaml.
var kilnImageArgs = []string{"build", "."}

// kilnImageMounts are the mounts of kilnImageRun: the workspace (the
// build context, read-only) and the Docker config with the registry
// credentials.
func kilnImageMounts(workspace, dockerConfig string) []string {
	return []string{"-v", workspace + ":/workspace:ro", "-v", dockerConfig + ":/home/kiln/.docker:ro"}
}

// TestE2EKilnImage: kiln builds its own image from image/kiln.yaml (what
// make image does, here over the test parent), and that image, run in
// podman as uid 1000 with every capability dropped, builds an apt + wheels
// + code image from a mounted workspace and pushes it with the mounted
// Docker config; podman runs the result.
func TestE2EKilnImage(t *testing.T) {
	reg, base := e2eParent(t, "podman", "dpkg-deb", "apt-ftparchive")

	// kiln's image, from this repository's spec and a static binary.
	ctxDir := testenv.UserDir(t)
	specData, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "image", "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(testenv.KilnBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string][]byte{"image/kiln.yaml": specData, "out/image/kiln": bin} {
		full := filepath.Join(ctxDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testenv.ChownTree(t, ctxDir, testenv.NobodyUID, testenv.NobodyGID)
	kilnRef, res := buildRef(t, testenv.RunOptions{Dir: ctxDir}, "image/kiln.yaml", "--context", ".", "--base-image", base, "--registry", reg.Host)
	show(t, "$ kiln build image/kiln.yaml --context .   (make image)", res.Stderr+res.Stdout)

	// A workspace: Debian package, wheel and code.
	repo, key := e2eAptRepo(t, testenv.DebPackage{
		Name: "kiln-incontainer", Version: "1.0-1",
		Files: map[string]string{"/usr/share/kiln-incontainer/README": "installed by kiln in a container\n"},
	})
	spec := "name: from-container\nregistry: " + reg.Host + "\nbase_image: " + base + "\n" +
		"apt_packages: [kiln-incontainer]\napt_sources:\n  - " + repo.Line + "\n" +
		"packages: [six]\npip_index: " + e2eWheelIndex(t) + "\nsource_root: app\nentrypoint: [python3, /root/main.py]\n"
	ws := writeSpec(t, spec, map[string]string{"repo-key.asc": string(key), "app/main.py": "import six\nprint('built in a container with six', six.__version__)\n"})
	dockerConfig := testenv.UserDir(t)
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(`{"auths": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}

	pm := testenv.NewPodman(t)
	pm.UseRegistry(reg)
	args := append([]string{"run", "--rm"}, kilnImageRun...)
	args = append(args, "--network", "host")
	args = append(args, kilnImageMounts(ws, dockerConfig)...)
	args = append(append(args, kilnRef), kilnImageArgs...)
	out, err := pm.Exec(args...)
	if err != nil {
		t.Fatalf("podman run kiln's image build .: %v\n%s", err, out)
	}
	show(t, "$ podman "+strings.Join(args, " "), out)
	m := regexp.MustCompile(`(\S+/from-container):\S+@(sha256:[0-9a-f]{64})`).FindStringSubmatch(lastLine(out))
	if m == nil {
		t.Fatalf("kiln in its image printed no reference as its last line:\n%s", out)
	}
	built := m[1] + "@" + m[2]
	got, err := pm.Exec("run", "--rm", "--network", "none", "--entrypoint", "sh", built, "-c", "cat /usr/share/kiln-incontainer/README && python3 /root/main.py")
	if err != nil {
		t.Fatalf("podman run %s: %v\n%s", built, err, got)
	}
	for _, w := range []string{"installed by kiln in a container", "built in a container with six"} {
		if !strings.Contains(got, w) {
			t.Errorf("podman run %s printed %q, want %q", built, got, w)
		}
	}

	// commands in the container: with the flags above the sandbox cannot
	// start, and kiln says what the container needs; with those flags
	// too, the commands run.
	cmdsWS := writeSpec(t, "name: cmds-in-container\nregistry: "+reg.Host+"\nbase_image: "+base+"\ncommands: [\"echo ran > /ran\"]\n", nil)
	runKiln := func(extra ...string) (string, error) {
		args := append([]string{"run", "--rm"}, kilnImageRun...)
		args = append(append(args, extra...), "--network", "host")
		args = append(args, kilnImageMounts(cmdsWS, dockerConfig)...)
		return pm.Exec(append(append(args, kilnRef), kilnImageArgs...)...)
	}
	if out, err := runKiln(); err == nil || !strings.Contains(err.Error(), strings.Join(sandbox.ContainerFlags(), " ")) {
		t.Errorf("commands in the container without the sandbox's flags: %v\n%s\nwant a failure naming %q", err, out, sandbox.ContainerFlags())
	}
	out, err = runKiln(sandbox.ContainerFlags()...)
	if err != nil {
		t.Fatalf("commands in the container with %q: %v\n%s", sandbox.ContainerFlags(), err, out)
	}
	m = regexp.MustCompile(`(\S+/cmds-in-container):\S+@(sha256:[0-9a-f]{64})`).FindStringSubmatch(lastLine(out))
	if m == nil {
		t.Fatalf("kiln in its image printed no reference as its last line:\n%s", out)
	}
	if got, err := pm.Run(m[1]+"@"+m[2], "cat", "/ran"); err != nil || got != "ran\n" {
		t.Errorf("the commands' layer: cat /ran = %q, %v", got, err)
	}
}
