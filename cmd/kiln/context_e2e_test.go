package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// writeUserTree writes files (a name ending in "/" is a directory) under a new
// directory owned by nobody and returns it.
func writeUserTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := testenv.UserDir(t)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			mustNoErr(t, os.MkdirAll(p, 0o755))
			continue
		}
		mustNoErr(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		mustNoErr(t, os.WriteFile(p, []byte(content), mode))
	}
	testenv.ChownTree(t, dir, 65534, 65534)
	return dir
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantExitNaming checks that r exited with code and that its stderr holds
// every one of wants.
func wantExitNaming(t *testing.T, what string, r testenv.Result, code int, wants ...string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("%s: exit %d, want %d\n%s", what, r.Code, code, r)
	}
	for _, w := range wants {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("%s: stderr does not name %q:\n%s", what, w, r.Stderr)
		}
	}
}

// TestE2EBuildContext is issue 9's hostile spec from a pull request, run by
// CI as nobody: files outside the spec's directory (Docker's build context)
// are refused with exit 2 by every command, and --context allows them.
func TestE2EBuildContext(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "setpriv")
	top := writeUserTree(t, map[string]string{
		"secret":               "the CI runner's secret\n",
		"app/kiln.yaml":        "name: pr\nbase_image: scratch\ncopy: {../secret: /opt/secret}\n",
		"app/main.py":          "print('hi')\n",
		"abs/kiln.yaml":        "name: pr\nbase_image: scratch\ncopy: {/etc/passwd: /opt/passwd}\n",
		"link/kiln.yaml":       "name: pr\nbase_image: scratch\ncopy: {leak: /opt/leak}\n",
		"req/kiln.yaml":        "name: pr\nbase_image: scratch\nrequirements: requirements.txt\n",
		"req/requirements.txt": "-r ../secret\n",
	})
	mustNoErr(t, os.Symlink("../secret", filepath.Join(top, "link", "leak")))
	mustNoErr(t, os.Lchown(filepath.Join(top, "link", "leak"), 65534, 65534))
	home := testenv.UserDir(t)
	for _, tc := range []struct {
		dir   string
		wants []string
	}{
		{"app", []string{"kiln.yaml:3: copy", filepath.Join(top, "secret"), "outside the build context", "--context"}},
		{"abs", []string{"kiln.yaml:3: copy", "/etc/passwd", "outside the build context", "--context"}},
		{"link", []string{"kiln.yaml:3: copy", "resolves to " + filepath.Join(top, "secret"), "--context"}},
		{"req", []string{"kiln.yaml:3: requirements", "requirements.txt:1", "outside the build context", "--context"}},
	} {
		opts := testenv.RunOptions{Dir: filepath.Join(top, tc.dir), Home: home}
		for _, cmd := range []string{"name", "build", "lock", "exists"} {
			r := testenv.RunKiln(t, opts, cmd)
			wantExitNaming(t, tc.dir+": kiln "+cmd, r, 2, tc.wants...)
			if strings.Contains(r.Stdout+r.Stderr, "CI runner's secret") {
				t.Errorf("%s: kiln %s printed the secret:\n%s", tc.dir, cmd, r)
			}
		}
		if _, err := os.Stat(filepath.Join(top, tc.dir, "out")); err == nil {
			t.Errorf("%s: a refused build wrote an image to out/", tc.dir)
		}
	}
	// --context widens the context on purpose: the same specs build.
	for _, tc := range []struct{ dir, context string }{{"app", ".."}, {"abs", "/"}, {"link", top}} {
		opts := testenv.RunOptions{Dir: filepath.Join(top, tc.dir), Home: home}
		if r := testenv.RunKiln(t, opts, "build", "--context", tc.context); r.Code != 0 {
			t.Errorf("%s: kiln build --context %s: %s", tc.dir, tc.context, r)
		}
	}
	// A flag's path is relative to the current directory and must be in
	// the context too.
	r := testenv.RunKiln(t, testenv.RunOptions{Dir: filepath.Join(top, "app"), Home: home}, "name", "--copy", "../secret:/s", "-f", "kiln.yaml")
	wantExitNaming(t, "kiln name --copy ../secret", r, 2, "flag --copy", "outside the build context")
}

// TestE2ESourceFilesChecked covers what source_root may hold, as nobody:
// a named pipe, an unreadable file, a bad .dockerignore and a symlinked
// source_root; every error is exit 2, names the key and the file, and
// kiln name (offline) already finds it.
func TestE2ESourceFilesChecked(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "setpriv")
	testenv.RequireRoot(t)
	home := testenv.UserDir(t)
	spec := "name: app\nbase_image: scratch\nsource_root: src\n"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		wants []string // nil: the build succeeds
	}{
		{"named pipe", func(t *testing.T, dir string) {
			mustNoErr(t, syscall.Mkfifo(filepath.Join(dir, "src", "fifo"), 0o644))
		}, []string{"kiln.yaml:3: source_root", filepath.Join("src", "fifo"), "a named pipe", ".dockerignore"}},
		{"unreadable file", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "src", "id_rsa")
			mustNoErr(t, os.WriteFile(p, []byte("key"), 0o600))
			mustNoErr(t, os.Chown(p, 0, 0))
		}, []string{"kiln.yaml:3: source_root", "id_rsa", "unreadable: permission denied", ".dockerignore"}},
		{"unreadable file ignored", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "src", "id_rsa")
			mustNoErr(t, os.WriteFile(p, []byte("key"), 0o600))
			mustNoErr(t, os.Chown(p, 0, 0))
			mustNoErr(t, os.WriteFile(filepath.Join(dir, "src", ".dockerignore"), []byte("id_rsa\n"), 0o644))
		}, nil},
		{"NUL in .dockerignore", func(t *testing.T, dir string) {
			mustNoErr(t, os.WriteFile(filepath.Join(dir, "src", ".dockerignore"), []byte("*.log\nbad\x00\n"), 0o644))
		}, []string{"kiln.yaml:3: source_root", ".dockerignore:2", "NUL"}},
		{"bad .dockerignore pattern", func(t *testing.T, dir string) {
			mustNoErr(t, os.WriteFile(filepath.Join(dir, "src", ".dockerignore"), []byte("[z-\n"), 0o644))
		}, []string{".dockerignore:1", `"[z-"`}},
		{".dockerignore to a device", func(t *testing.T, dir string) {
			mustNoErr(t, os.Symlink("/dev/zero", filepath.Join(dir, "src", ".dockerignore")))
		}, []string{".dockerignore", "character device"}},
		{"whiteout", func(t *testing.T, dir string) {
			mustNoErr(t, os.WriteFile(filepath.Join(dir, "src", ".wh..wh..opq"), nil, 0o644))
		}, []string{"kiln.yaml:3: source_root", ".wh..wh..opq", "whiteout"}},
		{"symlinked source_root", func(t *testing.T, dir string) {
			mustNoErr(t, os.Rename(filepath.Join(dir, "src"), filepath.Join(dir, "real")))
			mustNoErr(t, os.Symlink("real", filepath.Join(dir, "src")))
		}, nil},
		{"symlinked source_root out", func(t *testing.T, dir string) {
			mustNoErr(t, os.RemoveAll(filepath.Join(dir, "src")))
			mustNoErr(t, os.Symlink("/etc", filepath.Join(dir, "src")))
		}, []string{"kiln.yaml:3: source_root", "resolves to /etc", "--context"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeUserTree(t, map[string]string{"kiln.yaml": spec, "src/main.py": "print('hi')\n"})
			tc.setup(t, dir)
			opts := testenv.RunOptions{Dir: dir, Home: home}
			if tc.wants == nil {
				if r := testenv.RunKiln(t, opts, "build"); r.Code != 0 {
					t.Errorf("kiln build: %s", r)
				}
				return
			}
			for _, cmd := range []string{"name", "build"} {
				wantExitNaming(t, "kiln "+cmd, testenv.RunKiln(t, opts, cmd), 2, tc.wants...)
			}
		})
	}
}

// TestE2ECopyIntoMergedUsr copies into /bin and /lib on the debootstrap
// parent, whose /bin and /lib are symlinks into /usr: they must survive,
// and the tool must run.
func TestE2ECopyIntoMergedUsr(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	dir := writeUserTree(t, map[string]string{
		"kiln.yaml": "name: tools\nregistry: " + reg.Host + "\nbase_image: " + base + "\n" +
			"copy: {tool: /bin/tool, helper: /lib/mylib/helper, data/: /opt/data/}\n",
		"tool":       "#!/bin/sh\necho \"tool ran: $(/lib/mylib/helper)\"\n",
		"helper":     "#!/bin/sh\necho helper\n",
		"data/a.txt": "a\n",
	})
	home := testenv.UserDir(t)
	ref, res := buildRef(t, testenv.RunOptions{Dir: dir, Home: home})
	podman := testenv.NewPodman(t)
	out, err := podman.Exec("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", ref, "-c", "/bin/tool; readlink /bin /lib; ls /usr/bin/tool; cat /opt/data/a.txt")
	if err != nil {
		t.Fatalf("podman run: %v\nbuild:\n%s", err, res)
	}
	for _, want := range []string{"tool ran: helper", "usr/bin\nusr/lib", "/usr/bin/tool", "a\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("podman run printed %q, want %q in it", out, want)
		}
	}
	// A second build with a fresh local cache reuses the step from the
	// registry's cache.
	again := testenv.RunKiln(t, testenv.RunOptions{Dir: dir, Home: testenv.UserDir(t)}, "build", "--force")
	if again.Code != 0 || lastLine(again.Stdout) != lastLine(res.Stdout) {
		t.Errorf("rebuild: %s\nwant the same reference as %s", again, lastLine(res.Stdout))
	}
}

// buildPureWheel returns a py3-none-any wheel of dist 1.0 with one module
// holding VALUE = value, with a valid RECORD.
func buildPureWheel(t *testing.T, dist, value string) []byte {
	t.Helper()
	info := dist + "-1.0.dist-info/"
	files := []struct{ name, data string }{
		{dist + "/__init__.py", fmt.Sprintf("VALUE = %q\n", value)},
		{info + "METADATA", "Metadata-Version: 2.1\nName: " + dist + "\nVersion: 1.0\n"},
		{info + "WHEEL", "Wheel-Version: 1.0\nGenerator: kiln-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f.name)
		mustNoErr(t, err)
		_, err = w.Write([]byte(f.data))
		mustNoErr(t, err)
		sum := sha256.Sum256([]byte(f.data))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.data))
	}
	record.WriteString(info + "RECORD,,\n")
	w, err := zw.Create(info + "RECORD")
	mustNoErr(t, err)
	_, err = w.Write([]byte(record.String()))
	mustNoErr(t, err)
	mustNoErr(t, zw.Close())
	return buf.Bytes()
}

// TestE2ELocalWheelRebuilt rebuilds a local wheel under the same name:
// the tag changes, and the build installs the new wheel instead of reusing
// the layer of the old one, for packages and for requirements files.
func TestE2ELocalWheelRebuilt(t *testing.T) {
	reg, base := e2eParent(t, "podman")
	podman := testenv.NewPodman(t)
	for _, tc := range []struct{ name, keys string }{
		{"packages", "packages: [./dist/localpkg-1.0-py3-none-any.whl]\n"},
		{"requirements", "requirements: requirements.txt\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeUserTree(t, map[string]string{
				"kiln.yaml":        "name: wheel-" + tc.name + "\nregistry: " + reg.Host + "\nbase_image: " + base + "\n" + tc.keys,
				"requirements.txt": "./dist/localpkg-1.0-py3-none-any.whl\n",
				"dist/":            "",
			})
			home := testenv.UserDir(t)
			opts := testenv.RunOptions{Dir: dir, Home: home}
			wheel := filepath.Join(dir, "dist", "localpkg-1.0-py3-none-any.whl")
			var names []string
			for _, value := range []string{"first", "second"} {
				mustNoErr(t, os.WriteFile(wheel, buildPureWheel(t, "localpkg", value), 0o644))
				mustNoErr(t, os.Chown(wheel, 65534, 65534))
				name := testenv.RunKiln(t, opts, "name")
				if name.Code != 0 {
					t.Fatalf("kiln name: %s", name)
				}
				names = append(names, strings.TrimSpace(name.Stdout))
				ref, res := buildRef(t, opts, "--force")
				if strings.Contains(res.Stderr, "already exists") {
					t.Errorf("the %s wheel: kiln build found the old image:\n%s", value, res.Stderr)
				}
				out, err := podman.Exec("run", "--rm", "--network", "none", ref, "python3", "-c", "import localpkg; print(localpkg.VALUE)")
				if err != nil || strings.TrimSpace(out) != value {
					t.Errorf("the %s wheel: the image's localpkg.VALUE = %q, %v; want %q\n%s", value, out, err, value, res.Stderr)
				}
			}
			if names[0] == names[1] {
				t.Errorf("kiln name gave %s for both wheels", names[0])
			}
		})
	}
}
