package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EAptDigestAcrossCores builds one spec with real Debian packages
// twice from empty caches, with GOMAXPROCS=1 and GOMAXPROCS=2: decoding
// .debs ahead on several workers and compressing in a goroutine of its own
// must give the image digest of a one-core build.
func TestE2EAptDigestAcrossCores(t *testing.T) {
	reg, base := e2eParent(t)
	layerLine := regexp.MustCompile(`layer apt_packages \((\d+) Debian packages\): (sha256:[0-9a-f]+), .* \(built\)`)
	var digests, layers []string
	for i, procs := range []string{"1", "2"} {
		// A cache_from of its own (absent) per build, so the second cannot
		// reuse the first's layers through the registry; cache_from is not
		// part of the image.
		spec := "name: cores\nregistry: " + reg.Host + "\nbase_image: " + base +
			"\napt_packages: [python3-numpy, curl, libxml2-utils]\ncache_from: " + reg.Host + "/cores-cache-" + procs + ":none\n"
		dir := writeSpec(t, spec, nil)
		args := []string{}
		if i > 0 {
			args = append(args, "--force")
		}
		ref, res := buildRef(t, testenv.RunOptions{Dir: dir, Home: testenv.UserDir(t), Env: []string{"GOMAXPROCS=" + procs}}, args...)
		show(t, "$ GOMAXPROCS="+procs+" kiln build", res.Stderr)
		m := layerLine.FindStringSubmatch(res.Stderr)
		if m == nil {
			t.Fatalf("GOMAXPROCS=%s: no built apt_packages layer in the build's report:\n%s", procs, res.Stderr)
		}
		if m[1] == "1" || m[1] == "2" {
			t.Fatalf("GOMAXPROCS=%s: the layer holds %s packages; the test needs several", procs, m[1])
		}
		digests = append(digests, ref[strings.Index(ref, "@")+1:])
		layers = append(layers, m[2])
	}
	if layers[0] != layers[1] || digests[0] != digests[1] {
		t.Errorf("GOMAXPROCS=1 gave layer %s and image %s; GOMAXPROCS=2 gave layer %s and image %s", layers[0], digests[0], layers[1], digests[1])
	}
}
