package main

import (
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EDefaultParent: a spec without base_image builds on
// python:<python_version>-slim-bookworm; KILN_DEFAULT_BASE, set to the
// loopback registry, serves it (the bookworm + python3 parent pushed as
// library/python:3.11-slim-bookworm). kiln runs as nobody; podman runs the
// image with the wheel installed.
func TestE2EDefaultParent(t *testing.T) {
	reg, _ := e2eParent(t, "podman")
	parent := testenv.PushParentAs(t, reg, "library/python:3.11-slim-bookworm")
	index := e2eWheelIndex(t)
	spec := "name: default-parent\nregistry: " + reg.Host + "\npython_version: '3.11'\npackages: [six]\npip_index: " + index + "\n"
	dir := writeSpec(t, spec, nil)
	opts := testenv.RunOptions{Dir: dir, Env: []string{"KILN_DEFAULT_BASE=" + reg.Host}}
	ref, res := buildRef(t, opts)
	show(t, "$ KILN_DEFAULT_BASE="+reg.Host+" kiln build   (no base_image)", res.Stderr+res.Stdout)
	want := reg.Host + "/library/python:3.11-slim-bookworm"
	if !strings.Contains(res.Stderr, "the default "+want) || !strings.Contains(res.Stderr, "parent "+want+" resolved to "+parent[strings.Index(parent, "@")+1:]) {
		t.Errorf("kiln build without base_image did not build on %s (%s):\n%s", want, parent, res.Stderr)
	}
	pm := testenv.NewPodman(t)
	pm.UseRegistry(reg)
	out, err := pm.Run(ref, "python3", "-c", "import six; print('six', six.__version__)")
	if err != nil || !strings.Contains(out, "six ") {
		t.Fatalf("podman run %s python3 -c 'import six': %v\n%s", ref, err, out)
	}

	// Without KILN_DEFAULT_BASE the parent is Docker Hub's python: the
	// build names it, whether it can reach it or (offline) fails.
	noEnv := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Timeout: 2 * time.Minute}, "build", "--force", "--registry-timeout", "5s")
	if !strings.Contains(noEnv.Stderr, "the default python:3.11-slim-bookworm") || strings.Contains(noEnv.Stderr, reg.Host+"/library/python") {
		t.Errorf("kiln build without base_image nor KILN_DEFAULT_BASE: %s; want it to name python:3.11-slim-bookworm on Docker Hub", noEnv)
	}
}
