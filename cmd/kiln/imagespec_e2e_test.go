package main

import (
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EImageSpecFile: a spec file as flytekit writes it (builder: kiln,
// source_copy_mode: none, copy's list form, kiln's own keys under
// builder_options) builds, as nobody, an image podman runs: the copied
// files are under /root, source_root is not, and the options applied.
func TestE2EImageSpecFile(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	spec := "name: imagespec\nregistry: " + reg.Host + "\nbase_image: " + base + "\nbuilder: kiln\n" +
		"source_root: app\nsource_copy_mode: none\ncopy: [data/hello.txt, conf]\n" +
		"builder_options:\n  labels: {org.example.built-by: kiln}\n  workdir: /root/data\n"
	dir := writeSpec(t, spec, map[string]string{
		"app/main.py":    "print('not copied')\n",
		"data/hello.txt": "hello from the list form\n",
		"conf/app.ini":   "[app]\n",
	})
	ref, res := buildRef(t, testenv.RunOptions{Dir: dir})
	show(t, "$ kiln build   (a flytekit ImageSpec file)", res.Stderr+res.Stdout)
	pm := testenv.NewPodman(t)
	pm.UseRegistry(reg)
	out, err := pm.Run(ref, "sh", "-c", "pwd; cat /root/data/hello.txt /root/conf/app.ini; test -e /root/main.py && echo main.py copied || echo no main.py")
	if err != nil {
		t.Fatalf("podman run %s: %v\n%s", ref, err, out)
	}
	for _, w := range []string{"/root/data\n", "hello from the list form", "[app]", "no main.py"} {
		if !strings.Contains(out, w) {
			t.Errorf("podman run %s printed %q, want it to contain %q", ref, out, w)
		}
	}
	labels, _ := pm.Inspect(ref)["Labels"].(map[string]any)
	if labels["org.example.built-by"] != "kiln" {
		t.Errorf("the image's labels are %v; builder_options.labels was not applied", labels)
	}
}
