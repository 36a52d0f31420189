package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// writeSpec writes kiln.yaml (and any extra files) into a fresh directory
// owned by nobody.
func writeSpec(t *testing.T, spec string, extra map[string]string) string {
	t.Helper()
	dir := testenv.UserDir(t)
	files := map[string]string{"kiln.yaml": spec}
	for k, v := range extra {
		files[k] = v
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.ChownTree(t, dir, 65534, 65534)
	return dir
}

// buildRef runs kiln build and returns the pushed reference by digest.
func buildRef(t *testing.T, opts testenv.RunOptions, args ...string) (string, testenv.Result) {
	t.Helper()
	res := testenv.RunKiln(t, opts, append([]string{"build"}, args...)...)
	if res.Code != 0 {
		t.Fatalf("kiln build %v: %s", args, res)
	}
	line := lastLine(res.Stdout)
	repoTag, digest, ok := strings.Cut(line, "@")
	if !ok {
		t.Fatalf("last stdout line %q has no digest", line)
	}
	repo := repoTag[:strings.LastIndex(repoTag, ":")]
	return repo + "@" + digest, res
}

func TestE2EAptNumpy(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	dir := writeSpec(t, "name: numpy-app\nregistry: "+reg.Host+"\nbase_image: "+base+"\napt_packages: [python3-numpy]\n", nil)
	home := testenv.UserDir(t)
	opts := testenv.RunOptions{Dir: dir, Home: home}

	ref, res := buildRef(t, opts)
	show(t, "$ kiln build   (apt_packages: [python3-numpy])", res.Stderr+res.Stdout)
	if !strings.Contains(res.Stderr, "downloaded") {
		t.Errorf("the build did not report its downloads:\n%s", res.Stderr)
	}

	podman := testenv.NewPodman(t)
	for _, tc := range []struct {
		args []string
		want string // substring of stdout; "" means any
	}{
		{[]string{"python3", "-c", "import numpy; print(numpy.ones(3).dot(numpy.arange(3)))"}, "3.0"},
		{[]string{"dpkg", "--audit"}, ""},
		{[]string{"apt-get", "check"}, ""},
		{[]string{"apt-get", "install", "-s", "python3-numpy"}, "0 newly installed"},
		{[]string{"sh", "-c", "dpkg -l python3-numpy libblas3 liblapack3 | grep -c '^ii'"}, "3"},
	} {
		out, err := podman.Exec(append([]string{"run", "--rm", "--network", "none", ref}, tc.args...)...)
		if err != nil {
			t.Errorf("podman run %v: %v", tc.args, err)
			continue
		}
		show(t, "$ podman run IMAGE "+strings.Join(tc.args, " "), out)
		if tc.want != "" && !strings.Contains(out, tc.want) {
			t.Errorf("podman run %v printed %q, want %q in it", tc.args, out, tc.want)
		}
		if strings.Contains(tc.args[0], "dpkg") && tc.args[1] == "--audit" && strings.TrimSpace(out) != "" {
			t.Errorf("dpkg --audit is not clean:\n%s", out)
		}
	}

	// A second build (forced, same cache) reuses the layer without
	// resolving anything; with --refresh it resolves again but downloads
	// nothing: every .deb is in the cache.
	_, again := buildRef(t, opts, "--force")
	if !strings.Contains(again.Stderr, "Debian packages)") || !strings.Contains(again.Stderr, "reused from the local cache") || strings.Contains(again.Stderr, "apt: http") {
		t.Errorf("the second build did not reuse the Debian layer without resolving:\n%s", again.Stderr)
	}
	_, refreshed := buildRef(t, opts, "--refresh")
	if !strings.Contains(refreshed.Stderr, " 0 downloaded") {
		t.Errorf("the --refresh build downloaded packages again:\n%s", refreshed.Stderr)
	}
}

func TestE2EAptLocalRepoLocked(t *testing.T) {
	reg, base := e2eParent(t, "podman", "dpkg-deb", "apt-ftparchive")
	debs := t.TempDir()
	deb := testenv.MakeDeb(t, debs, testenv.DebPackage{
		Name: "kiln-hello", Version: "1.0-1", Depends: "python3",
		Files: map[string]string{"/usr/bin/kiln-hello": "#!/usr/bin/python3\nprint('hello from a locked package')\n"},
	})
	repo := testenv.StartAptRepo(t, deb)
	key, err := os.ReadFile(repo.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	spec := "name: locked\nregistry: " + reg.Host + "\nbase_image: " + base + "\napt_packages: [kiln-hello]\napt_sources:\n  - " + repo.Line + "\n"
	dir := writeSpec(t, spec, map[string]string{"repo-key.asc": string(key)})
	opts := testenv.RunOptions{Dir: dir}

	lockRes := testenv.RunKiln(t, opts, "lock")
	if lockRes.Code != 0 {
		t.Fatalf("kiln lock: %s", lockRes)
	}
	data, err := os.ReadFile(filepath.Join(dir, "kiln.lock"))
	if err != nil {
		t.Fatal(err)
	}
	show(t, "$ kiln lock", lockRes.Stderr+string(data))
	if !strings.Contains(string(data), `"name": "kiln-hello"`) || !strings.Contains(string(data), repo.URL) {
		t.Errorf("kiln.lock does not pin kiln-hello from the local repository:\n%s", data)
	}

	// Air-gapped from here on: the repository serves .debs but no index.
	repo.BlockIndices()
	before := len(repo.Requests())
	ref, res := buildRef(t, opts, "--locked")
	show(t, "$ kiln build --locked", res.Stderr+res.Stdout)
	for _, r := range repo.Requests()[before:] {
		if strings.Contains(r, "/dists/") {
			t.Errorf("a --locked build fetched an index: %s", r)
		}
	}
	podman := testenv.NewPodman(t)
	out, err := podman.Run(ref, "kiln-hello")
	if err != nil || strings.TrimSpace(out) != "hello from a locked package" {
		t.Errorf("podman run kiln-hello = %q, %v", out, err)
	}

	// The lock's digest is part of the tag: an edited lock gives another tag.
	name1 := testenv.RunKiln(t, opts, "name", "--locked")
	edited := strings.Replace(string(data), `"platform"`, `"platform"`, 1)
	edited = strings.Replace(edited, "1.0-1", "1.0-2", 1)
	if err := os.WriteFile(filepath.Join(dir, "kiln.lock"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	name2 := testenv.RunKiln(t, opts, "name", "--locked")
	if name1.Code != 0 || name2.Code != 0 || name1.Stdout == name2.Stdout {
		t.Errorf("kiln name --locked did not change with the lock: %q vs %q (%s / %s)", name1.Stdout, name2.Stdout, name1.Stderr, name2.Stderr)
	}

	// A spec without signed-by is refused: kiln never installs unsigned packages.
	unsigned := writeSpec(t, strings.Replace(spec, "[signed-by=repo-key.asc] ", "", 1), nil)
	if r := testenv.RunKiln(t, testenv.RunOptions{Dir: unsigned}, "lock"); r.Code == 0 || !strings.Contains(r.Stderr, "signed-by") {
		t.Errorf("kiln lock with an unsigned apt source: %s; want a failure naming signed-by", r)
	}
}
