package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
	"github.com/kiln-build/kiln/pkg/lock"
)

// sdistIndex serves pip's test sdists with the wheels their builds need:
// setuptools and wheel from Debian's python3-*-whl packages, simplewheel
// from pip's test data, and six from the PyPI fixtures.
func sdistIndex(t *testing.T) string {
	t.Helper()
	fixtures := filepath.Join(testenv.RepoRoot(t), "..", "shared", "fixtures")
	files := []string{
		filepath.Join(fixtures, "wheels", "pip-testdata", "simplewheel-2.0-py2.py3-none-any.whl"),
		filepath.Join(fixtures, "wheels", "pypi", "six-1.17.0-py2.py3-none-any.whl"),
	}
	for _, s := range []string{"simple-1.0", "simple-2.0", "require_simple-1.0", "pep518-3.0"} {
		files = append(files, filepath.Join(fixtures, "sdists", s+".tar.gz"))
	}
	files = append(files, testenv.DebianWheels(t, "python3-setuptools-whl")...)
	files = append(files, testenv.DebianWheels(t, "python3-wheel-whl")...)
	dir := t.TempDir()
	writeFailingSdist(t, filepath.Join(dir, "failing-1.0.tar.gz"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return testenv.WheelIndex(t, dir)
}

// TestE2ESdistBuild installs projects that exist only as source
// distributions: kiln builds their wheels in the sandbox (PEP 517, the
// build requirements as wheels, network off) as an unprivileged user; the
// next build reuses the built wheels without the sandbox; only_binary
// refuses; a failing build shows the backend's output. kiln lock pins the
// built wheels with their sdists and build requirements, so that --locked
// with an empty cache builds them again (and checks them), and kiln bundle
// carries them.
func TestE2ESdistBuild(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	index := sdistIndex(t)
	home := testenv.UserDir(t)
	head := "name: sdist-app\nregistry: " + reg.Host + "\nbase_image: " + base + "\napt_packages: [python3-pip]\npip_index: " + index + "\n"

	dir := writeSpec(t, head+"packages: [require_simple, pep518]\n", nil)
	opts := testenv.RunOptions{Dir: dir, Home: home}
	ref, res := buildRef(t, opts)
	show(t, "$ kiln build   (packages: [require_simple, pep518], sdists only)", res.Stderr+res.Stdout)
	for _, w := range []string{
		"python: building require-simple 1.0 from require_simple-1.0.tar.gz in the sandbox (network off",
		"python: building simple 2.0 from simple-2.0.tar.gz in the sandbox",
		"python: building pep518 3.0 from pep518-3.0.tar.gz in the sandbox (network off; build requirements setuptools, simplewheel, wheel)",
	} {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("the build log lacks %q:\n%s", w, res.Stderr)
		}
	}
	podman := testenv.NewPodman(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"python3", "-c", "import require_simple, simple, pep518; print('ok')"}, "ok"},
		{[]string{"python3", "-m", "pip", "check"}, "No broken requirements found."},
		{[]string{"python3", "-m", "pip", "list"}, "require-simple 1.0"},
	} {
		out, err := podman.Exec(append([]string{"run", "--rm", "--network", "none", ref}, c.args...)...)
		show(t, "$ podman run IMAGE "+strings.Join(c.args, " "), out)
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("podman run %v: %v, printed %q, want %q in it", c.args, err, out, c.want)
		}
	}

	// Another package: the step is resolved again, and the wheels built
	// from the same sdists for the same target come from the cache.
	dir2 := writeSpec(t, head+"packages: [require_simple, pep518, six]\n", nil)
	_, res2 := buildRef(t, testenv.RunOptions{Dir: dir2, Home: home})
	show(t, "$ kiln build   (+ six)", res2.Stderr)
	if strings.Contains(res2.Stderr, "in the sandbox") {
		t.Errorf("the second build started the sandbox:\n%s", res2.Stderr)
	}
	for _, w := range []string{"python: require-simple 1.0: wheel require_simple-1.0-py3-none-any.whl built from require_simple-1.0.tar.gz reused from the local cache", "python: pep518 3.0: wheel pep518-3.0-py3-none-any.whl built from pep518-3.0.tar.gz reused"} {
		if !strings.Contains(res2.Stderr, w) {
			t.Errorf("the second build's log lacks %q:\n%s", w, res2.Stderr)
		}
	}

	// kiln.lock records the built wheels with their sha256 and sdist.
	if r := testenv.RunKiln(t, opts, "lock"); r.Code != 0 {
		t.Fatalf("kiln lock: %s", r)
	}
	data, err := os.ReadFile(filepath.Join(dir, "kiln.lock"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"filename": "simple-2.0-py3-none-any.whl"`, `"built_from": {`, `"filename": "simple-2.0.tar.gz"`, `"requires": [`, `"filename": "simplewheel-2.0-py2.py3-none-any.whl"`} {
		if !strings.Contains(string(data), w) {
			t.Errorf("kiln.lock lacks %s:\n%s", w, data)
		}
	}

	// --locked on another machine (an empty cache): the wheels built from
	// sdists are built again from the pinned sdists and build
	// requirements, resolving nothing, and are the wheels the lock pins.
	home5 := testenv.UserDir(t)
	ref5, res5 := buildRef(t, testenv.RunOptions{Dir: dir, Home: home5}, "--locked")
	show(t, "$ kiln build --locked   (a fresh HOME: an empty cache)", res5.Stderr)
	for _, w := range []string{
		"python: pep518 3.0: kiln.lock pins wheel pep518-3.0-py3-none-any.whl built from pep518-3.0.tar.gz, which the local cache lacks: building it from the pinned sdist and build requirements",
		"python: building pep518 3.0 from pep518-3.0.tar.gz in the sandbox (network off; build requirements setuptools, simplewheel, wheel)",
		"python: building simple 2.0 from simple-2.0.tar.gz in the sandbox",
	} {
		if !strings.Contains(res5.Stderr, w) {
			t.Errorf("the --locked build's log lacks %q:\n%s", w, res5.Stderr)
		}
	}
	if strings.Contains(res5.Stderr, "python: resolved") {
		t.Errorf("the --locked build resolved:\n%s", res5.Stderr)
	}
	if out, err := podman.Exec("run", "--rm", "--network", "none", ref5, "python3", "-c", "import require_simple, simple, pep518; print('ok')"); err != nil || !strings.Contains(out, "ok") {
		t.Errorf("the --locked image: %v, printed %q, want the packages imported", err, out)
	}

	// kiln bundle carries the sdists and build requirements too; a build
	// from it in a fresh HOME gets the same image, the bundle serving
	// every file.
	bundleDir := filepath.Join(dir, "bundle")
	bres := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home5}, "bundle", "-o", bundleDir)
	show(t, "$ kiln bundle -o bundle", bres.Stderr)
	if bres.Code != 0 || !strings.Contains(bres.Stderr, "3 wheels, 6 files the wheels kiln built were built from (sdists and build requirements)") {
		t.Errorf("kiln bundle: %s; want the sdists in it", bres)
	}
	if bres.Code == 0 {
		ref6, res6 := buildRef(t, testenv.RunOptions{Dir: dir, Home: testenv.UserDir(t)}, "--locked", "--refresh", "--from-bundle", bundleDir)
		show(t, "$ kiln build --locked --refresh --from-bundle bundle   (a fresh HOME, no cached layers)", res6.Stderr)
		if ref6 != ref5 {
			t.Errorf("the build from the bundle gave %s, the --locked build %s", ref6, ref5)
		}
		if !strings.Contains(res6.Stderr, "python: 3 wheels: 0 downloaded (0 B), 3 from the local cache") || !strings.Contains(res6.Stderr, "with 3 wheels") || strings.Contains(res6.Stderr, "in the sandbox") {
			t.Errorf("the build from the bundle did not install the bundle's built wheels (without the sandbox):\n%s", res6.Stderr)
		}
	}

	// A lock whose built wheel the sdist does not build again: the
	// mismatch names the package, both digests and the cause.
	var l lock.Lock
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	var pinned string
	for i := range l.Wheels {
		if l.Wheels[i].Name == "simple" {
			pinned = l.Wheels[i].SHA256
			l.Wheels[i].SHA256 = strings.Repeat("0", 64)
		}
	}
	tampered, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kiln.lock"), tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	r7 := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home5}, "build", "--locked")
	show(t, "$ kiln build --locked   (kiln.lock pins another wheel for simple)", r7.Stderr)
	if want := "package simple 2.0: the wheel built from simple-2.0.tar.gz has sha256:" + pinned + ", but kiln.lock pins sha256:" + strings.Repeat("0", 64) + ": the sdist's build is not reproducible"; r7.Code == 0 || !strings.Contains(r7.Stderr, want) {
		t.Errorf("a lock pinning another built wheel: exit %d, stderr lacks %q:\n%s", r7.Code, want, r7.Stderr)
	}

	// A build that fails shows the backend's last lines.
	dir4 := writeSpec(t, head+"packages: [failing]\n", nil)
	r4 := testenv.RunKiln(t, testenv.RunOptions{Dir: dir4, Home: home}, "build")
	show(t, "$ kiln build   (packages: [failing])", r4.Stderr)
	for _, w := range []string{"building failing 1.0 from failing-1.0.tar.gz: the build backend setuptools.build_meta:__legacy__ failed (exit 1); its last output:", "RuntimeError: this project does not build (kiln test)"} {
		if r4.Code == 0 || !strings.Contains(r4.Stderr, w) {
			t.Errorf("failing sdist: exit %d, stderr lacks %q:\n%s", r4.Code, w, r4.Stderr)
		}
	}

	// only_binary keeps the refusal.
	dir3 := writeSpec(t, head+"packages: [simple]\nonly_binary: true\n", nil)
	r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir3, Home: home}, "build")
	if r.Code == 0 || !strings.Contains(r.Stderr, "simple 2.0 has only a source distribution (simple-2.0.tar.gz)") {
		t.Errorf("only_binary: exit %d, stderr:\n%s\nwant the sdist refused", r.Code, r.Stderr)
	}
}

// writeFailingSdist writes failing-1.0.tar.gz, a source distribution whose
// setup.py raises.
func writeFailingSdist(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{
		"failing-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: failing\nVersion: 1.0\n",
		"failing-1.0/setup.py": "raise RuntimeError('this project does not build (kiln test)')\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestE2EInstallProject builds the project in source_root into a wheel in
// the sandbox and installs it in a layer of its own: after a code change
// only the project's layer (and the code layer) is built again, the
// dependencies' layers are reused.
func TestE2EInstallProject(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	index := sdistIndex(t)
	home := testenv.UserDir(t)
	pyproject := "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"demo-proj\"\nversion = \"0.1.0\"\ndependencies = [\"six\"]\n"
	spec := "name: project-app\nregistry: " + reg.Host + "\nbase_image: " + base + "\napt_packages: [python3-pip]\npip_index: " + index + "\n" +
		"source_root: proj\nrequirements: proj/pyproject.toml\ninstall_project: true\n"
	dir := writeSpec(t, spec, map[string]string{
		"proj/pyproject.toml":        pyproject,
		"proj/demo_proj/__init__.py": "VALUE = 1\n",
		"proj/demo_proj/__main__.py": "import demo_proj, six\nprint('value', demo_proj.VALUE, six.__name__)\n",
	})
	opts := testenv.RunOptions{Dir: dir, Home: home}
	ref, res := buildRef(t, opts)
	show(t, "$ kiln build   (install_project: true)", res.Stderr+res.Stdout)
	if !strings.Contains(res.Stderr, "project: building demo-proj from source_root in the sandbox (network off; build requirements setuptools, wheel)") {
		t.Errorf("the build log lacks the project's build:\n%s", res.Stderr)
	}
	podman := testenv.NewPodman(t)
	run := func(ref string, args ...string) string {
		t.Helper()
		out, err := podman.Exec(append([]string{"run", "--rm", "--network", "none", "--workdir", "/tmp", ref}, args...)...)
		show(t, "$ podman run IMAGE "+strings.Join(args, " "), out)
		if err != nil {
			t.Errorf("podman run %v: %v\n%s", args, err, out)
		}
		return out
	}
	if out := run(ref, "python3", "-m", "demo_proj"); !strings.Contains(out, "value 1 six") {
		t.Errorf("the installed project printed %q, want value 1", out)
	}
	if out := run(ref, "python3", "-m", "pip", "check"); !strings.Contains(out, "No broken requirements found.") {
		t.Errorf("pip check: %q", out)
	}
	// Installed in the virtualenv, not editable (the image's PYTHONPATH
	// also has the code in /root).
	if out := run(ref, "python3", "-m", "pip", "show", "-f", "demo-proj"); !strings.Contains(out, "Location: /opt/venv/lib/python3.11/site-packages") || !strings.Contains(out, "demo_proj/__init__.py") || strings.Contains(out, "Editable") {
		t.Errorf("pip show demo-proj: %q; want it installed in the virtualenv, not editable", out)
	}

	// A code change: the dependencies' layers are reused, the project's
	// is built again.
	if err := os.WriteFile(filepath.Join(dir, "proj", "demo_proj", "__init__.py"), []byte("VALUE = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.ChownTree(t, dir, 65534, 65534)
	ref2, res2 := buildRef(t, opts)
	show(t, "$ kiln build   (after a code change)", res2.Stderr)
	for _, w := range []string{"virtualenv /opt/venv with 1 wheels", "project demo-proj"} {
		var line string
		for _, l := range strings.Split(res2.Stderr, "\n") {
			if strings.Contains(l, "layer ") && strings.Contains(l, w) {
				line = l
			}
		}
		switch {
		case line == "":
			t.Errorf("the second build's log has no layer line for %q:\n%s", w, res2.Stderr)
		case w == "project demo-proj" && !strings.HasSuffix(line, "(built)"):
			t.Errorf("the project layer was not built again: %s", line)
		case w != "project demo-proj" && strings.HasSuffix(line, "(built)"):
			t.Errorf("the dependencies' layer was built again: %s", line)
		}
	}
	if strings.Contains(res2.Stderr, "python: resolved") {
		t.Errorf("the second build resolved the dependencies again:\n%s", res2.Stderr)
	}
	if out := run(ref2, "python3", "-m", "demo_proj"); !strings.Contains(out, "value 2 six") {
		t.Errorf("after the change the project printed %q, want value 2", out)
	}
}
