package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2EIndexCredentialsNotDerived checks that nothing derived from an
// index password is published: the python step's inputs in the image's
// dev.kiln.cache.v1 annotation hold the index URL without its user
// information (no hash of the URL with the password, which a dictionary
// recovers), kiln.lock holds neither, and the image tag is the one the
// same spec without credentials gets.
func TestE2EIndexCredentialsNotDerived(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	const user, password = "probeuser", "dict10nary-w0rd"
	index := testenv.StartWheelIndex(t, filepath.Join(testenv.RepoRoot(t), "..", "shared", "fixtures", "wheels", "pypi"),
		testenv.WheelIndexOptions{Username: user, Password: password})
	// Every string containing the password that kiln could have hashed.
	var derived []string
	for _, s := range []string{index.AuthURL(), strings.TrimSuffix(index.AuthURL(), "/"), password, user + ":" + password} {
		sum := sha256.Sum256([]byte(s))
		derived = append(derived, hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:8]))
	}
	scan := newSecretScan(t, append([]string{password}, derived...)...)

	home := testenv.UserDir(t)
	spec := func(ix string) string {
		return fmt.Sprintf("name: pyderived\nregistry: %s\nbase_image: %s\npackages: [six]\npip_index: %s\n", reg.Host, base, ix)
	}
	dir := writeSpec(t, spec(index.AuthURL()), nil)
	opts := testenv.RunOptions{Dir: dir, Home: home}
	out := filepath.Join(dir, "out")
	res := testenv.RunKiln(t, opts, "build", "--explain", "--oci-layout", filepath.Join(out, "layout"))
	scan.result("build", res)
	if res.Code != 0 {
		t.Fatalf("kiln build: %s", res)
	}
	lockRes := testenv.RunKiln(t, opts, "lock")
	scan.result("lock", lockRes)
	if lockRes.Code != 0 {
		t.Fatalf("kiln lock: %s", lockRes)
	}
	lockData, err := os.ReadFile(filepath.Join(dir, "kiln.lock"))
	if err != nil {
		t.Fatal(err)
	}
	scan.bytes("kiln.lock", lockData)

	p, err := layout.FromPath(filepath.Join(out, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil || len(im.Manifests) == 0 {
		t.Fatalf("layout index: %v", err)
	}
	img, err := ii.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	ann := m.Annotations["dev.kiln.cache.v1"]
	scan.bytes("cache annotation", []byte(ann))
	var steps []struct {
		Name   string            `json:"name"`
		Inputs map[string]string `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(ann), &steps); err != nil {
		t.Fatalf("cache annotation %q: %v", ann, err)
	}
	found := false
	for _, st := range steps {
		if v, ok := st.Inputs["pip_index"]; ok {
			found = true
			if v != index.URL {
				t.Errorf("step %s: pip_index input %q, want the URL without credentials %q", st.Name, v, index.URL)
			}
		}
	}
	if !found {
		t.Errorf("no step of %s has a pip_index input", ann)
	}

	// The tag does not depend on the credentials either.
	for _, ix := range []string{index.AuthURL(), index.URL} {
		d := writeSpec(t, spec(ix), nil)
		r := testenv.RunKiln(t, testenv.RunOptions{Dir: d, Home: home}, "name")
		if r.Code != 0 {
			t.Fatalf("kiln name: %s", r)
		}
		if got, want := lastLine(r.Stdout), lastLine(res.Stdout); !strings.HasPrefix(want, got+"@") {
			t.Errorf("kiln name with pip_index %s gives %s; the build published %s", ix, got, want)
		}
	}
}
