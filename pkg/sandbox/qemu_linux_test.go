//go:build linux

package sandbox_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kiln-build/kiln/internal/testenv"
)

// arm64Program prints its architecture and argv[0], then runs itself
// with argv[0] "renamed" and prints what that child says.
const arm64Program = `package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

func main() {
	fmt.Printf("%s %s %s\n", os.Args[len(os.Args)-1], runtime.GOARCH, os.Args[0])
	if os.Args[len(os.Args)-1] == "child" {
		return
	}
	cmd := &exec.Cmd{Path: "/arm64/hello", Args: []string{"renamed", "child"}, Stdout: os.Stdout, Stderr: os.Stderr}
	if err := cmd.Run(); err != nil {
		fmt.Println("child:", err)
		os.Exit(1)
	}
}
`

const hostQEMU = "/usr/bin/qemu-aarch64-static"

// arm64Layer builds arm64Program as a static arm64 executable into a new
// layer directory every user can read, as /arm64/hello.
func arm64Layer(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			t.Skip("no go tool to build an arm64 program with")
		}
	}
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.21\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "main.go"), []byte(arm64Program), 0o644))
	layer, err := os.MkdirTemp(fixRoot, "arm64-layer-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(layer) })
	must(t, os.Chmod(layer, 0o755))
	must(t, os.Mkdir(filepath.Join(layer, "arm64"), 0o755))
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", filepath.Join(layer, "arm64", "hello"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOARCH=arm64", "GOOS=linux", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for arm64: %v\n%s", err, out)
	}
	return layer
}

// hostBinfmt lists the host's binfmt_misc handlers and their contents
// (nil when binfmt_misc is not mounted).
func hostBinfmt(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/sys/fs/binfmt_misc")
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join("/proc/sys/fs/binfmt_misc", e.Name()))
		m[e.Name()] = string(b)
	}
	return m
}

// TestRunForeignUnderPrivateQEMU runs a static arm64 program as nobody in
// the sandbox, with the interpreter registered in the sandbox's own
// binfmt_misc instance (forced through Config.QEMU, so that a handler on
// the host, which another test may register, is not what runs it): the
// program runs as arm64, the programs it starts too (with their own
// argv[0]), a native shell starts it, and the host's handlers are as
// they were.
func TestRunForeignUnderPrivateQEMU(t *testing.T) {
	if runtime.GOARCH == "arm64" {
		t.Skip("arm64 is native here")
	}
	fixtures(t)
	testenv.Require(t, filepath.Base(hostQEMU)) // Debian's qemu-user-static (make deps)
	if _, err := os.Stat(hostQEMU); err != nil {
		t.Skipf("%s missing (apt-get install qemu-user-static)", hostQEMU)
	}
	layer := arm64Layer(t)
	// A copy at a path of the test's own: a handler naming it on the host
	// could only be this test's doing.
	qemu := filepath.Join(fixRoot, "qemu-aarch64-static-"+filepath.Base(layer))
	copyFile(t, hostQEMU, qemu, 0o755)
	t.Cleanup(func() { os.Remove(qemu) })
	before := hostBinfmt(t)
	u := nobody()
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"}

	for _, usr := range users(t) {
		t.Run("static program/"+usr.name, func(t *testing.T) {
			r := runAs(t, usr, request{Lowers: []string{layer}, Command: []string{"/arm64/hello", "main"}, Platform: arm64, QEMU: qemu}).mustSucceed(t)
			if want := "main arm64 /arm64/hello\nchild arm64 renamed\n"; !strings.Contains(r.Output, want) {
				t.Errorf("output %q, want %q", r.Output, want)
			}
		})
	}
	t.Run("started by a native shell", func(t *testing.T) {
		base := rootfs(t, u)
		r := runAs(t, u, request{Lowers: []string{base, layer}, Command: sh("uname -m; /arm64/hello main"), Platform: arm64, QEMU: qemu}).mustSucceed(t)
		if want := "x86_64\nmain arm64 /arm64/hello\nchild arm64 renamed\n"; runtime.GOARCH == "amd64" && !strings.Contains(r.Output, want) {
			t.Errorf("output %q, want %q", r.Output, want)
		}
	})
	t.Run("without a platform it does not run", func(t *testing.T) {
		if h := hostBinfmt(t); len(h) > 2 {
			t.Skip("the host has binfmt_misc handlers, which may run arm64 programs")
		}
		r := runAs(t, u, request{Lowers: []string{layer}, Command: []string{"/arm64/hello"}})
		if r.Err == "" || !strings.Contains(r.Err, "exec format error") {
			if h := hostBinfmt(t); len(h) > 2 {
				t.Skip("a binfmt_misc handler appeared on the host meanwhile")
			}
			t.Errorf("an arm64 program ran without Config.Platform: %+v\n%s", r.response, r.Output)
		}
	})
	t.Run("a missing interpreter", func(t *testing.T) {
		r := runAs(t, u, request{Lowers: []string{layer}, Command: []string{"/arm64/hello"}, Platform: arm64, QEMU: "/nonexistent/qemu-aarch64-static"})
		for _, want := range []string{"cannot run programs for linux/arm64", "/nonexistent/qemu-aarch64-static", "statically linked qemu-aarch64"} {
			if !strings.Contains(r.Err, want) {
				t.Errorf("error %q lacks %q", r.Err, want)
			}
		}
	})

	after := hostBinfmt(t)
	for name, content := range after {
		if strings.Contains(content, qemu) {
			t.Errorf("the host's binfmt_misc has a handler %s naming the sandbox's interpreter:\n%s", name, content)
		}
		if _, ok := before[name]; !ok && !strings.HasPrefix(name, "qemu-") {
			t.Errorf("a new host binfmt_misc entry %s appeared", name)
		}
	}
	// On a host without handlers, the program still does not run there.
	if len(after) <= 2 {
		// Not through setpriv, whose execvp would hand the file to sh.
		cmd := exec.Command(filepath.Join(layer, "arm64", "hello"), "main")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testenv.NobodyUID, Gid: testenv.NobodyGID}}
		out, err := cmd.CombinedOutput()
		if (err == nil || !strings.Contains(err.Error(), "exec format error")) && len(hostBinfmt(t)) <= 2 {
			t.Errorf("the arm64 program on the host: %v %s; want exec format error", err, out)
		}
	}
}
