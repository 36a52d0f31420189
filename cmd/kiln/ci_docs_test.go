package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// docsImage is the reference the CI examples run: where make image
// IMAGE=... publishes kiln's own image.
const docsImage = "ghcr.io/kiln-build/kiln:latest"

// ciDoc reads and parses examples/ci/name, failing unless it is YAML and
// the README shows it verbatim.
func ciDoc(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "ci", name))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```yaml\n"+string(data)+"```\n") {
		t.Errorf("README does not show examples/ci/%s verbatim in a yaml code block", name)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("examples/ci/%s: %v", name, err)
	}
	return doc
}

// dig follows keys (strings for mappings, ints for sequences) into v.
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is not a mapping", path, v)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: %T has no item %d", path, v, k)
			}
			v = l[k]
		}
	}
	return v
}

// mountTargets are the container paths (and options) of kilnImageMounts.
func mountTargets() []string {
	var out []string
	for _, m := range kilnImageMounts("HOST", "HOST") {
		if m != "-v" {
			out = append(out, strings.TrimPrefix(m, "HOST:"))
		}
	}
	return out
}

// TestCIDocs: the GitHub Actions workflow, the GitLab CI job and the
// Kubernetes Job in examples/ci parse, are the README's examples, and run
// one image with the flags, mounts and arguments TestE2EKilnImage runs it
// with in podman (or, in Kubernetes, their securityContext equivalents).
func TestCIDocs(t *testing.T) {
	t.Run("github-actions", func(t *testing.T) {
		doc := ciDoc(t, "github-actions.yml")
		var run string
		for _, st := range dig(t, doc, "jobs", "build", "steps").([]any) {
			if r, _ := dig(t, st, "run").(string); strings.Contains(r, "podman run") {
				run = r
			}
		}
		if run == "" {
			t.Fatal("no step runs podman run")
		}
		var words []string
		for _, w := range strings.Fields(run) {
			words = append(words, strings.Trim(w, `"`))
		}
		i := slices.Index(words, docsImage)
		if i < 0 {
			t.Fatalf("podman run does not run %s: %q", docsImage, run)
		}
		if got := words[i+1:]; !reflect.DeepEqual(got, kilnImageArgs) {
			t.Errorf("the image runs with %q, the e2e with %q", got, kilnImageArgs)
		}
		opts := strings.Join(words[:i], " ")
		if !strings.Contains(opts, strings.Join(kilnImageRun, " ")) {
			t.Errorf("podman run options %q lack the e2e's %q", opts, kilnImageRun)
		}
		var targets []string
		for j, w := range words[:i] {
			if w == "-v" && j+1 < i {
				_, target, _ := strings.Cut(words[j+1], ":")
				targets = append(targets, target)
			}
		}
		if !reflect.DeepEqual(targets, mountTargets()) {
			t.Errorf("mounts %q, the e2e's %q", targets, mountTargets())
		}
	})
	t.Run("gitlab-ci", func(t *testing.T) {
		doc := ciDoc(t, "gitlab-ci.yml")
		if img := dig(t, doc, "build-image", "image", "name"); img != docsImage {
			t.Errorf("the job runs %v, want %s", img, docsImage)
		}
		script := dig(t, doc, "build-image", "script").([]any)
		if last := script[len(script)-1]; last != "kiln "+strings.Join(kilnImageArgs, " ") {
			t.Errorf("the job's last command is %q, want kiln %s", last, strings.Join(kilnImageArgs, " "))
		}
	})
	t.Run("kubernetes-job", func(t *testing.T) {
		doc := ciDoc(t, "kubernetes-job.yaml")
		c := dig(t, doc, "spec", "template", "spec", "containers", 0)
		if img := dig(t, c, "image"); img != docsImage {
			t.Errorf("the Job runs %v, want %s", img, docsImage)
		}
		var args []string
		for _, a := range dig(t, c, "args").([]any) {
			args = append(args, a.(string))
		}
		if !reflect.DeepEqual(args, kilnImageArgs) || dig(t, c, "workingDir") != "/workspace" {
			t.Errorf("the Job runs %q in %v, the e2e %q in /workspace", args, dig(t, c, "workingDir"), kilnImageArgs)
		}
		// --user 1000, --cap-drop=all, --security-opt no-new-privileges.
		sc := dig(t, c, "securityContext")
		if dig(t, sc, "runAsUser") != 1000 || dig(t, sc, "allowPrivilegeEscalation") != false || !reflect.DeepEqual(dig(t, sc, "capabilities", "drop"), []any{"ALL"}) {
			t.Errorf("securityContext %v is not --user 1000 --cap-drop=all --security-opt no-new-privileges", sc)
		}
		var targets []string
		for _, m := range dig(t, c, "volumeMounts").([]any) {
			target := dig(t, m, "mountPath").(string)
			if dig(t, m, "readOnly") == true {
				target += ":ro"
			}
			targets = append(targets, target)
		}
		if !reflect.DeepEqual(targets, mountTargets()) {
			t.Errorf("volumeMounts %q, the e2e's mounts %q", targets, mountTargets())
		}
		if p := dig(t, doc, "spec", "template", "spec", "volumes", 1, "secret", "items", 0, "path"); p != "config.json" {
			t.Errorf("the registry Secret is mounted as %v, want config.json (what $DOCKER_CONFIG/config.json reads)", p)
		}
	})
	// The image is what make image builds: uid 1000, entrypoint kiln.
	data, err := os.ReadFile(filepath.Join("..", "..", "image", "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`user: "1000:1000"`, `entrypoint: ["/usr/local/bin/kiln"]`, "workdir: /workspace", "DOCKER_CONFIG: /home/kiln/.docker"} {
		if !strings.Contains(string(data), w) {
			t.Errorf("image/kiln.yaml does not say %s", w)
		}
	}
}
