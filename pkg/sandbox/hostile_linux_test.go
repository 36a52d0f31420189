//go:build linux

package sandbox_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/hostile"
	"github.com/kiln-build/kiln/internal/testenv"
)

// TestRunHostileCommands runs commands that try to reach the host through
// /proc, a symlink planted in a lower layer, mounts, ptrace and chroot
// tricks, and checks that a canary file on the host, writable by the
// caller, is untouched, as are the lower layers.
func TestRunHostileCommands(t *testing.T) {
	for _, u := range users(t) {
		t.Run(u.name, func(t *testing.T) {
			base := rootfs(t, u)
			canaryDir := userDir(t, u)
			canary := filepath.Join(canaryDir, "canary")
			must(t, os.WriteFile(canary, []byte("original\n"), 0o666))
			must(t, os.Chown(canary, u.uid, u.gid))
			planted := userDir(t, u)
			must(t, os.Symlink("/", filepath.Join(planted, "hostroot")))
			must(t, os.Symlink(canary, filepath.Join(planted, "hostcanary")))
			must(t, os.Symlink(canaryDir, filepath.Join(planted, "tmp2")))
			passwd, err := os.ReadFile(filepath.Join(base, "etc/passwd"))
			must(t, err)

			script := hostile.EscapeScript(canary, canaryDir)
			r := runAs(t, u, request{Lowers: []string{base, planted}, Command: []string{"/bin/bash", "-c", script}}).mustSucceed(t)
			t.Logf("output:\n%s", r.Output)
			if !strings.Contains(r.Output, "done") {
				t.Fatalf("the script did not finish:\n%s", r.Output)
			}
			if strings.Contains(r.Output, "\nHELPER-VISIBLE") {
				t.Errorf("the command sees the sandbox's helper:\n%s", r.Output)
			}
			got, err := os.ReadFile(canary)
			must(t, err)
			if string(got) != "original\n" {
				t.Errorf("host canary changed to %q", got)
			}
			if _, err := os.Lstat(filepath.Join(canaryDir, "new")); err == nil {
				t.Errorf("the command created %s on the host", filepath.Join(canaryDir, "new"))
			}
			if got, _ := os.ReadFile(filepath.Join(base, "etc/passwd")); string(got) != string(passwd) {
				t.Errorf("the lower layer's etc/passwd changed")
			}
			if fi, err := os.Lstat(filepath.Join(planted, "hostroot")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the planted lower layer changed: %v", err)
			}
		})
	}
}

// TestRunNoControllingTerminal runs the caller on a terminal: the command
// must not get it as its controlling terminal, or it could push keystrokes
// into the user's shell (TIOCSTI).
func TestRunNoControllingTerminal(t *testing.T) {
	testenv.Require(t, "script")
	u := nobody()
	probe := "if (exec 3</dev/tty) 2>/dev/null; then echo HAS-TTY; else echo no-tty; fi"
	control := exec.Command("script", "-qe", "/dev/null", "-c", "sh -c '"+probe+"'")
	if out, _ := control.CombinedOutput(); !strings.Contains(string(out), "HAS-TTY") {
		t.Fatalf("script gives no controlling terminal here: %s", out)
	}
	r := runWrapped(t, u, []string{"script", "-qe", "/dev/null", "-c"}, request{
		Lowers:  []string{rootfs(t, u)},
		Command: sh(probe),
	}).mustSucceed(t)
	if !strings.Contains(r.Output, "no-tty") || strings.Contains(r.Output, "HAS-TTY") {
		t.Errorf("the command has the caller's terminal:\n%s", r.Output)
	}
}
