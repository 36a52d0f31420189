package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EBuildSpecArgument: kiln build path/to/kiln.yaml and kiln build
// path/to/dir, run as nobody from another directory, read that spec with
// its paths relative to its own directory, push the same image, and podman
// runs it.
func TestE2EBuildSpecArgument(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	spec := "name: specarg\nregistry: " + reg.Host + "\nbase_image: " + base + "\ncopy: {data/hello.txt: /opt/specarg/hello.txt}\n"
	root := writeSpec(t, "", map[string]string{"proj/kiln.yaml": spec, "proj/data/hello.txt": "from the spec's directory\n"})
	home := testenv.UserDir(t)
	opts := testenv.RunOptions{Dir: root, Home: home}

	byFile, res := buildRef(t, opts, filepath.Join("proj", "kiln.yaml"))
	show(t, "$ kiln build proj/kiln.yaml", res.Stderr+res.Stdout)
	byDir, res := buildRef(t, opts, "--force", "proj")
	show(t, "$ kiln build --force proj", res.Stderr+res.Stdout)
	if byFile != byDir {
		t.Errorf("kiln build proj/kiln.yaml pushed %s, kiln build proj pushed %s; want one image", byFile, byDir)
	}
	byFlag, _ := buildRef(t, opts, "--force", "-f", filepath.Join(root, "proj", "kiln.yaml"))
	if byFlag != byFile {
		t.Errorf("kiln build -f proj/kiln.yaml pushed %s, kiln build proj/kiln.yaml %s", byFlag, byFile)
	}
	// The root's own (empty) kiln.yaml was not read: both builds named the
	// image after proj/kiln.yaml.
	if !strings.Contains(byFile, "/specarg@") {
		t.Errorf("kiln build proj/kiln.yaml pushed %s, not the specarg image", byFile)
	}
	pm := testenv.NewPodman(t)
	pm.UseRegistry(reg)
	out, err := pm.Run(byDir, "cat", "/opt/specarg/hello.txt")
	if err != nil {
		t.Fatalf("podman run %s: %v\n%s", byDir, err, out)
	}
	if !strings.Contains(out, "from the spec's directory") {
		t.Errorf("podman run %s cat /opt/specarg/hello.txt = %q", byDir, out)
	}
}
