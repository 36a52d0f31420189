package main

import (
	"archive/tar"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/internal/hostile"
	"github.com/kiln-build/kiln/internal/testenv"
)

// commandsScript is what the sandbox e2e tests run: it creates files,
// adds a user (owner kept), chowns, deletes a parent file, replaces a
// parent directory (an opaque directory in the layer), sets a setuid bit
// and leaves a background process behind, which the sandbox kills before
// reading the diff.
const commandsScript = `commands:
  - mkdir -p /opt/made && echo made > /opt/made/file
  - useradd --create-home --uid 1234 --shell /bin/sh app && echo hi > /home/app/note && chown app:app /home/app/note
  - chown 4321:4322 /opt/made/file
  - rm /etc/debian_version
  - rm -rf /usr/share/doc && mkdir /usr/share/doc && echo only > /usr/share/doc/only
  - cp /bin/true /usr/local/bin/suid && chmod 4755 /usr/local/bin/suid
  - nohup sleep 1000 >/dev/null 2>&1 &
  - echo "$HOME $SOURCE_DATE_EPOCH $PWD $(id -u)" > /opt/made/env
`

// commandsCheck is what podman runs in the image to see the commands'
// effects.
const commandsCheck = `cat /opt/made/file; stat -c '%n %u:%g' /opt/made/file; stat -c '%n %U:%G' /home/app /home/app/note;
id -u app; stat -c '%n %a' /usr/local/bin/suid; test -e /etc/debian_version || echo debian_version gone;
ls /usr/share/doc; cat /opt/made/env; test -e /etc/os-release && echo os-release kept; grep ^app: /etc/shadow`

// TestE2ECommands: kiln as an unprivileged user with a subordinate id
// range runs the spec's commands in its sandbox; podman sees exactly their
// effects; two builds from empty caches give one digest; a code change
// reuses the commands layer from cache_from without unpacking a layer or
// starting the sandbox.
func TestE2ECommands(t *testing.T) {
	reg, base := e2eParent(t, "podman", "newuidmap", "newgidmap", "useradd")
	acct := testenv.RangeAccount(t, "kiln-e2e-cmds", 500000, 65536)
	spec := "name: cmds\nregistry: " + reg.Host + "\nbase_image: " + base + "\nsource_root: app\n" + commandsScript
	dir := writeSpec(t, spec, map[string]string{"app/main.py": "print('v1')\n"})
	testenv.ChownTree(t, dir, acct.UID, acct.GID)
	run := func(home string, args ...string) (string, testenv.Result) {
		t.Helper()
		return buildRef(t, testenv.RunOptions{Dir: dir, Home: home, As: &acct}, args...)
	}

	home1 := testenv.AccountDir(t, acct)
	ref1, first := run(home1, "--explain")
	show(t, "$ kiln build   (commands, as a user with a subuid range)", first.Stderr)
	for _, want := range []string{"commands: running in the sandbox (network off", "layer commands: ", "(built)"} {
		if !strings.Contains(first.Stderr, want) {
			t.Errorf("the first build's log lacks %q:\n%s", want, first.Stderr)
		}
	}
	if strings.Contains(first.Stderr, "only uid 0 is mapped") {
		t.Errorf("a user with a subuid range was warned about a single-uid map:\n%s", first.Stderr)
	}

	p := testenv.NewPodman(t)
	p.UseRegistry(reg)
	p.Pull(ref1)
	out, err := p.Run(ref1, "/bin/sh", "-c", commandsCheck)
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	show(t, "$ podman run IMAGE sh -c CHECKS", out)
	for _, want := range []string{
		"made\n",
		"/opt/made/file 4321:4322\n",
		"/home/app app:app\n", "/home/app/note app:app\n",
		"1234\n",
		"/usr/local/bin/suid 4755\n",
		"debian_version gone\n",
		"app:!::0:",         // useradd took SOURCE_DATE_EPOCH (day 0: aging off) as the last password change, not today
		"/root 0 /root 0\n", // HOME, SOURCE_DATE_EPOCH (the default epoch), the workdir, uid 0
		"os-release kept\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("podman's view lacks %q:\n%s", want, out)
		}
	}
	if docs := between(out, "debian_version gone\n", "/root "); docs != "only\n" {
		t.Errorf("/usr/share/doc in the image lists %q, want only the commands' file (an opaque directory hides the parent's)", docs)
	}

	// The layer holds what the commands changed and nothing per-run.
	entries := commandsLayerEntries(t, reg, ref1)
	show(t, "the commands layer", strings.Join(entries, "\n"))
	for _, want := range []string{"etc/.wh.debian_version", "usr/share/doc/.wh..wh..opq", "usr/share/doc/only", "home/app/note", "etc/passwd", "etc/shadow", "opt/made/file", "usr/local/bin/suid"} {
		if !slices.Contains(entries, want) {
			t.Errorf("the commands layer lacks %s", want)
		}
	}
	for _, e := range entries {
		if strings.HasPrefix(e, "tmp/") || strings.HasPrefix(e, "proc/") || strings.HasPrefix(e, "dev/") || e == "etc/resolv.conf" || e == "etc/hosts" {
			t.Errorf("the commands layer holds the sandbox's own %s", e)
		}
	}

	// From an empty cache, ignoring kiln-cache: the same digest.
	ref2, second := run(testenv.AccountDir(t, acct), "--refresh", "--force")
	if !strings.Contains(second.Stderr, "commands: running in the sandbox") {
		t.Fatalf("the second build did not run the commands:\n%s", second.Stderr)
	}
	if ref2 != ref1 {
		t.Errorf("two builds from empty caches gave %s and %s", ref1, ref2)
	}

	// A code change on a fresh runner: the commands layer comes from
	// kiln-cache; no layer is unpacked and the sandbox does not start.
	if err := os.WriteFile(filepath.Join(dir, "app/main.py"), []byte("print('v2')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	home3 := testenv.AccountDir(t, acct)
	ref3, third := run(home3, "--explain")
	show(t, "$ kiln build   (code changed, fresh runner)", third.Stderr)
	if strings.Contains(third.Stderr, "running in the sandbox") || strings.Contains(third.Stderr, "layers below them") {
		t.Errorf("a code change ran the commands again:\n%s", third.Stderr)
	}
	if !strings.Contains(third.Stderr, "explain: commands") || !strings.Contains(third.Stderr, "reused from cache_from") {
		t.Errorf("the commands step was not reused from cache_from:\n%s", third.Stderr)
	}
	if found := findNamed(t, home3, "unpacked"); found != "" {
		t.Errorf("the build reusing the commands layer unpacked layers (%s exists)", found)
	}
	if ref3 == ref1 {
		t.Errorf("a code change kept the digest %s", ref1)
	}
	p.Pull(ref3)
	if out, err := p.Run(ref3, "/bin/sh", "-c", "python3 /root/main.py; cat /opt/made/file"); err != nil || out != "v2\nmade\n" {
		t.Errorf("podman run of the rebuilt image: %q, %v; want v2 and the commands' file", out, err)
	}
}

// TestE2ECommandsSingleUID: without a subordinate id range, kiln maps only
// uid 0, warns naming the fix, and commands that need no other owner still
// build an image podman runs. The commands run after packages, with the
// virtualenv first on PATH.
func TestE2ECommandsSingleUID(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	index := e2eWheelIndex(t)
	spec := "name: cmds-single\nregistry: " + reg.Host + "\nbase_image: " + base + "\npackages: [six]\npip_index: " + index + "\n" + `commands:
  - echo made > /made
  - rm /etc/debian_version
  - cp /bin/true /usr/local/bin/suid && chmod 4755 /usr/local/bin/suid
  - python -c 'import six, sys; print(six.__version__, sys.prefix)' >> /made
`
	ref, res := buildRef(t, testenv.RunOptions{Dir: writeSpec(t, spec, nil)})
	show(t, "$ kiln build   (commands, as nobody without a subuid range)", res.Stderr)
	for _, want := range []string{"commands: warning: only uid 0 is mapped", "usermod --add-subuids", "uidmap"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the build's log lacks %q:\n%s", want, res.Stderr)
		}
	}
	p := testenv.NewPodman(t)
	p.UseRegistry(reg)
	p.Pull(ref)
	out, err := p.Run(ref, "/bin/sh", "-c", "cat /made; stat -c '%a %u' /usr/local/bin/suid; test -e /etc/debian_version || echo gone")
	if err != nil || out != "made\n1.17.0 /opt/venv\n4755 0\ngone\n" {
		t.Errorf("podman run: %q, %v; want the file, a setuid root binary and the parent file gone", out, err)
	}
}

// TestE2ECommandsFailure: a failing command fails the build with its exit
// status and last output lines, and a command past commands_timeout is
// killed, naming the limit.
func TestE2ECommandsFailure(t *testing.T) {
	reg, base := e2eParent(t)
	for _, tc := range []struct {
		name, commands string
		want           []string
	}{
		{"exit status", "commands:\n  - echo building\n  - echo step two failed >&2; exit 3\n",
			[]string{"exited with status 3", "step two failed"}},
		{"timeout", "commands_timeout: 2s\ncommands:\n  - echo started; sleep 600\n",
			[]string{"timed out after 2s", "started"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := "name: cmds-fail\nregistry: " + reg.Host + "\nbase_image: " + base + "\n" + tc.commands
			res := testenv.RunKiln(t, testenv.RunOptions{Dir: writeSpec(t, spec, nil)}, "build")
			if res.Code != 1 {
				t.Fatalf("kiln build: want exit 1: %s", res)
			}
			for _, w := range append([]string{"commands"}, tc.want...) {
				if !strings.Contains(res.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, res.Stderr)
				}
			}
		})
	}
}

// TestE2ECommandsNetwork: with the network off (the default) a command
// cannot reach a server on the host's loopback; with commands_network:
// true it can, and --explain marks the layer as not reproducible.
func TestE2ECommandsNetwork(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "served by the host") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	fetch := fmt.Sprintf("python3 -c \"import urllib.request; print(urllib.request.urlopen('http://%s/', timeout=5).read().decode())\" > /fetched", ln.Addr())
	spec := func(network bool) string {
		return fmt.Sprintf("name: cmds-net\nregistry: %s\nbase_image: %s\ncommands_network: %v\ncommands:\n  - %q\n", reg.Host, base, network, fetch)
	}

	off := testenv.RunKiln(t, testenv.RunOptions{Dir: writeSpec(t, spec(false), nil)}, "build")
	show(t, "$ kiln build   (network off)", off.Stderr)
	if off.Code == 0 || !strings.Contains(off.Stderr, "exited with status 1") || !strings.Contains(off.Stderr, "URLError") {
		t.Errorf("with the network off the command reached the host's loopback server, or failed otherwise: %s", off)
	}

	ref, on := buildRef(t, testenv.RunOptions{Dir: writeSpec(t, spec(true), nil)}, "--explain")
	show(t, "$ kiln build --explain   (commands_network: true)", on.Stderr)
	if !strings.Contains(on.Stderr, "network on") || !strings.Contains(on.Stderr, "explain:   not reproducible: commands_network") {
		t.Errorf("the build with the network on does not say so in --explain:\n%s", on.Stderr)
	}
	p := testenv.NewPodman(t)
	p.UseRegistry(reg)
	p.Pull(ref)
	if out, err := p.Run(ref, "cat", "/fetched"); err != nil || out != "served by the host\n" {
		t.Errorf("podman run cat /fetched: %q, %v", out, err)
	}
}

// commandsLayerEntries lists the entries of the commands layer of the
// image ref.
func commandsLayerEntries(t *testing.T, reg *testenv.Registry, ref string) []string {
	t.Helper()
	_, tr := commandsLayer(t, reg, ref)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(h.Name, "/"))
	}
}

// commandsLayer returns the config of the image ref (read with opts, e.g.
// a platform) and a reader of its commands layer: the layer whose history
// says "kiln: commands:". The layer is closed when the test ends.
func commandsLayer(t *testing.T, reg *testenv.Registry, ref string, opts ...remote.Option) (*v1.ConfigFile, *tar.Reader) {
	t.Helper()
	r, err := name.ParseReference(ref, reg.NameOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, append(reg.RemoteOptions(t.Context()), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, h := range cf.History {
		if h.EmptyLayer {
			continue
		}
		if strings.HasPrefix(h.CreatedBy, "kiln: commands:") {
			rc, err := layers[i].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rc.Close() })
			return cf, tar.NewReader(rc)
		}
		i++
	}
	t.Fatalf("%s has no commands layer", ref)
	return nil, nil
}

// TestE2ECommandsEscape: commands that try to reach the host (through
// /proc, symlinks planted in a lower layer by a Debian package, mounts,
// chroot and ptrace; see hostile.EscapeScript) leave a host file and
// directory that kiln's user can write untouched, and the build still
// completes. The commands run after the code (commands_after_code), which
// ships the script.
func TestE2ECommandsEscape(t *testing.T) {
	reg, base := e2eParent(t, "dpkg-deb", "apt-ftparchive")
	canaryDir := testenv.UserDir(t)
	canary := filepath.Join(canaryDir, "canary")
	if err := os.WriteFile(canary, []byte("original\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	testenv.ChownTree(t, canaryDir, testenv.NobodyUID, testenv.NobodyGID)
	repo, key := e2eAptRepo(t, testenv.DebPackage{
		Name: "kiln-planted", Version: "1.0-1",
		Links: map[string]string{"/hostroot": "/", "/hostcanary": canary, "/tmp2": canaryDir},
	})
	spec := "name: cmds-escape\nregistry: " + reg.Host + "\nbase_image: " + base +
		"\napt_packages: [kiln-planted]\napt_sources:\n  - " + repo.Line +
		"\nsource_root: app\ncommands_after_code: true\ncommands:\n  - sh /root/escape.sh\n"
	dir := writeSpec(t, spec, map[string]string{"repo-key.asc": string(key), "app/escape.sh": hostile.EscapeScript(canary, canaryDir)})
	_, res := buildRef(t, testenv.RunOptions{Dir: dir})
	show(t, "$ kiln build   (commands that try to escape)", res.Stderr)
	if !strings.Contains(res.Stderr, "commands| done") {
		t.Fatalf("the escape script did not finish:\n%s", res.Stderr)
	}
	if strings.Contains(res.Stderr, "HELPER-VISIBLE") {
		t.Errorf("the commands see kiln's sandbox helper:\n%s", res.Stderr)
	}
	if got, err := os.ReadFile(canary); err != nil || string(got) != "original\n" {
		t.Errorf("the host canary is %q (%v), want it untouched", got, err)
	}
	if _, err := os.Lstat(filepath.Join(canaryDir, "new")); err == nil {
		t.Errorf("the commands created %s on the host", filepath.Join(canaryDir, "new"))
	}
	// (Other tests add users meanwhile: only the script's mark is looked for.)
	if got, _ := os.ReadFile("/etc/passwd"); strings.Contains(string(got), "pwned") {
		t.Errorf("the commands wrote into the host's /etc/passwd")
	}
}

// between returns the part of s after the first from and before the next
// to.
func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	mid, _, _ := strings.Cut(rest, to)
	return mid
}

// findNamed returns the first path under root whose base name is name, or "".
func findNamed(t *testing.T, root, name string) string {
	t.Helper()
	var found string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == name && found == "" {
			found = p
		}
		return nil
	})
	return found
}
