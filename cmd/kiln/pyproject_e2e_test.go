package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// lockFixture reads a file of pkg/resolve/pylock/testdata: lock files the
// real tools (pip 25.1, Poetry 1.3) wrote over the fixture wheels served
// at http://127.0.0.1:38613/simple/ (see its README).
func lockFixture(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "pkg", "resolve", "pylock", "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestE2EPythonProjects builds images from a pyproject.toml and from each
// lock format, as an unprivileged user: the packages import and pip check
// is clean; a lock made for another platform fails naming what is missing.
func TestE2EPythonProjects(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	index := e2eWheelIndex(t)
	// The locks name the index they were made against; the live one has
	// another port.
	live := strings.TrimSuffix(index, "simple/")
	relocate := func(s string) string { return strings.ReplaceAll(s, "http://127.0.0.1:38613/", live) }
	head := "registry: " + reg.Host + "\nbase_image: " + base + "\napt_packages: [python3-pip]\n"
	home := testenv.UserDir(t)
	podman := testenv.NewPodman(t)
	const imports = "import flask, requests, pydantic, yaml; print('ok', flask.__name__, pydantic.VERSION)"

	for _, tc := range []struct {
		name  string
		spec  string
		files map[string]string
		// run is a Python program that must print "ok ..."; absent
		// lists modules that must not be installed.
		run, absent string
		log         string
	}{
		{
			name:  "pyproject",
			spec:  "name: pyproject-app\nrequirements: pyproject.toml\nextras: [yaml]\ngroups: [fast]\npip_index: " + index + "\n",
			files: map[string]string{"pyproject.toml": lockFixture(t, "uv/pyproject.toml")},
			run:   imports + "; import orjson", log: "python: resolved 19 distributions",
		},
		{
			// pip_index replaces the lock's URLs: files are matched by
			// name and sha256 on the live index.
			name:  "pylock",
			spec:  "name: pylock-app\nrequirements: pylock.toml\npip_index: " + index + "\n",
			files: map[string]string{"pylock.toml": lockFixture(t, "pip/pylock.toml")},
			run:   imports, absent: "orjson", log: "python: 18 distributions pinned by pylock.toml",
		},
		{
			// The lock's own URLs, no pip_index.
			name:  "uv",
			spec:  "name: uv-app\nrequirements: uv.lock\ngroups: [fast]\n",
			files: map[string]string{"uv.lock": relocate(lockFixture(t, "uv/uv.lock")), "pyproject.toml": lockFixture(t, "uv/pyproject.toml")},
			run:   "import flask, requests, pydantic, orjson; print('ok')", absent: "yaml", log: "python: 18 distributions pinned by uv.lock",
		},
		{
			// poetry.lock names no URLs: the files are found on the lock's
			// source by name and checked against the lock's hash.
			name:  "poetry",
			spec:  "name: poetry-app\nrequirements: poetry.lock\nextras: [yaml]\n",
			files: map[string]string{"poetry.lock": relocate(lockFixture(t, "poetry/poetry.lock")), "pyproject.toml": relocate(lockFixture(t, "poetry/pyproject.toml"))},
			run:   imports, absent: "orjson", log: "python: 18 distributions pinned by poetry.lock",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeSpec(t, head+tc.spec, tc.files)
			ref, res := buildRef(t, testenv.RunOptions{Dir: dir, Home: home})
			show(t, "$ kiln build   ("+tc.name+")", res.Stderr+res.Stdout)
			if !strings.Contains(res.Stderr, tc.log) {
				t.Errorf("the build log lacks %q:\n%s", tc.log, res.Stderr)
			}
			type check struct {
				args []string
				want string
			}
			checks := []check{
				{[]string{"python3", "-c", tc.run}, "ok"},
				{[]string{"python3", "-m", "pip", "check"}, "No broken requirements found."},
			}
			if tc.absent != "" {
				checks = append(checks, check{[]string{"python3", "-c", "import importlib.util as u; print('absent' if u.find_spec('" + tc.absent + "') is None else 'present')"}, "absent"})
			}
			for _, c := range checks {
				out, err := podman.Exec(append([]string{"run", "--rm", "--network", "none", ref}, c.args...)...)
				show(t, "$ podman run IMAGE "+strings.Join(c.args, " "), out)
				if err != nil {
					t.Errorf("podman run %v: %v\n%s", c.args, err, out)
					continue
				}
				if !strings.Contains(out, c.want) {
					t.Errorf("podman run %v printed %q, want %q in it", c.args, out, c.want)
				}
			}
		})
	}

	// kiln lock pins what the lock file pins; --locked builds the same
	// image without reading an index.
	t.Run("kiln lock", func(t *testing.T) {
		dir := writeSpec(t, head+"name: uv-locked\nrequirements: uv.lock\n", map[string]string{"uv.lock": relocate(lockFixture(t, "uv/uv.lock"))})
		opts := testenv.RunOptions{Dir: dir, Home: home}
		ref, _ := buildRef(t, opts)
		if r := testenv.RunKiln(t, opts, "lock"); r.Code != 0 {
			t.Fatalf("kiln lock: %s", r)
		}
		data, err := os.ReadFile(filepath.Join(dir, "kiln.lock"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"filename": "pydantic_core-2.46.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"`) {
			t.Errorf("kiln.lock does not pin uv.lock's pydantic-core wheel:\n%s", data)
		}
		locked, _ := buildRef(t, opts, "--locked")
		if a, b := configDigest(t, locked), configDigest(t, ref); a != b {
			t.Errorf("the --locked build's config is %s, the uv.lock build's %s", a, b)
		}
	})

	// With pip_index the lock's files are looked up there by name, and
	// must have the lock's hash.
	for _, tc := range []struct {
		name, lock, want string
	}{
		{"hash differs on the index", strings.Replace(lockFixture(t, "pip/pylock.toml"), "28f6edacdb45c842d1814c94546fc1f2c50c8a8dcfca0c537e9bd85937039b67", strings.Repeat("ab", 32), 1),
			"blinker-1.9.0-py3-none-any.whl on " + index + " has sha256 28f6edacdb45c842d1814c94546fc1f2c50c8a8dcfca0c537e9bd85937039b67, but the lock says abab"},
		{"file not on the index", strings.ReplaceAll(lockFixture(t, "pip/pylock.toml"), "blinker-1.9.0-py3-none-any.whl", "blinker-1.9.0-py2.py3-none-any.whl"),
			"blinker 1.9.0: the index " + index + " has no file blinker-1.9.0-py2.py3-none-any.whl, which the lock pins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeSpec(t, head+"name: bad-lock\nrequirements: pylock.toml\npip_index: "+index+"\n", map[string]string{"pylock.toml": tc.lock})
			r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "build")
			if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("kiln build: exit %d, stderr:\n%s\nwant a failure with %q", r.Code, r.Stderr, tc.want)
			}
		})
	}

	// pip lock pins the wheels of the machine it runs on: a pylock.toml
	// made on an arm64 machine has aarch64 wheels for the binary packages,
	// which the amd64 target cannot use.
	t.Run("other platform", func(t *testing.T) {
		arm := strings.ReplaceAll(lockFixture(t, "pip/pylock.toml"), "x86_64", "aarch64")
		dir := writeSpec(t, head+"name: arm-lock\nrequirements: pylock.toml\npip_index: "+index+"\n", map[string]string{"pylock.toml": arm})
		r := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: home}, "build")
		show(t, "$ kiln build   (a pylock.toml made on arm64)", r.Stderr)
		for _, w := range []string{"requirements", "pylock.toml does not cover the target cp311-linux_x86_64", "no wheel of markupsafe 3.0.3 fits (the lock has MarkupSafe-3.0.3-cp311-cp311-manylinux_2_17_aarch64", "pydantic-core 2.46.4", "lock again"} {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("kiln build of an arm64 lock: stderr lacks %q:\n%s", w, r.Stderr)
			}
		}
		if r.Code == 0 || strings.Contains(r.Stdout, "@sha256:") {
			t.Errorf("kiln build of an arm64 lock: exit %d, stdout %q; want a failure and no image", r.Code, r.Stdout)
		}
	})
}
