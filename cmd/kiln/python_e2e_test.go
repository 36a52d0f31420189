package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/internal/testenv"
)

func TestE2EPythonPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "podman", "docker-registry", "debootstrap", "setpriv")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.ParentImage(t, reg)
	index := testenv.WheelIndex(t, filepath.Join(testenv.RepoRoot(t), "..", "shared", "fixtures", "wheels", "pypi"))
	base := reg.Host + "/" + testenv.ParentRepository + ":" + testenv.ParentTag
	spec := "name: pyapp\nregistry: " + reg.Host + "\nbase_image: " + base + "\n" +
		"python_version: '3.11'\napt_packages: [python3-pip]\n" +
		"packages: [flask, requests, pydantic, pyyaml, orjson]\npip_index: " + index + "\n"
	dir := writeSpec(t, spec, nil)
	home := testenv.UserDir(t)
	opts := testenv.RunOptions{Dir: dir, Home: home}

	ref, res := buildRef(t, opts)
	show(t, "$ kiln build   (packages: [flask, requests, pydantic, pyyaml, orjson])", res.Stderr+res.Stdout)

	podman := testenv.NewPodman(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"python3", "-c", "import flask, requests, pydantic, yaml, orjson; print(orjson.dumps({'ok': yaml.safe_load('[1, 2]')}).decode())"}, `{"ok":[1,2]}`},
		{[]string{"flask", "--version"}, "Flask 3.1.3"},
		{[]string{"python3", "-m", "pip", "check"}, "No broken requirements found."},
		{[]string{"sh", "-c", "echo $VIRTUAL_ENV; command -v python3; cat /opt/venv/lib/python3.11/site-packages/flask-3.1.3.dist-info/INSTALLER"}, "/opt/venv\n/opt/venv/bin/python3\nkiln"},
	} {
		out, err := podman.Exec(append([]string{"run", "--rm", "--network", "none", ref}, tc.args...)...)
		show(t, "$ podman run IMAGE "+strings.Join(tc.args, " "), out)
		if err != nil {
			t.Errorf("podman run %v: %v", tc.args, err)
			continue
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("podman run %v printed %q, want %q in it", tc.args, out, tc.want)
		}
	}

	// kiln lock pins every wheel; a --locked build gives the same image.
	if r := testenv.RunKiln(t, opts, "lock"); r.Code != 0 {
		t.Fatalf("kiln lock: %s", r)
	}
	data, err := os.ReadFile(filepath.Join(dir, "kiln.lock"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"filename": "Flask-3.1.3-py3-none-any.whl"`, `"name": "pydantic-core"`, `"requested": true`} {
		if !strings.Contains(string(data), w) {
			t.Errorf("kiln.lock lacks %s", w)
		}
	}
	locked, lres := buildRef(t, opts, "--locked")
	if !strings.Contains(lres.Stderr, "0 downloaded") {
		t.Errorf("the locked build downloaded again:\n%s", lres.Stderr)
	}
	// The manifests differ only in the build record (the lock is an
	// input); the filesystem and config must be the same.
	if a, b := configDigest(t, locked), configDigest(t, ref); a != b {
		t.Errorf("the --locked build's config is %s, the resolved build's %s: same packages must give the same image", a, b)
	}

	// A python_version the parent does not have fails, naming both.
	bad := writeSpec(t, strings.Replace(spec, "'3.11'", "'3.12'", 1), nil)
	r := testenv.RunKiln(t, testenv.RunOptions{Dir: bad, Home: home}, "build")
	if r.Code != 2 || !strings.Contains(r.Stderr, "3.12") || !strings.Contains(r.Stderr, "3.11") || !strings.Contains(r.Stderr, "python_version") {
		t.Errorf("python_version 3.12 on a 3.11 parent: %s; want exit 2 naming both versions", r)
	}
}

// configDigest returns the config blob digest of the image at ref (which
// names a plain-HTTP loopback registry).
func configDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
