//go:build linux

package sandbox_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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

			script := `C=` + canary + `; D=` + canaryDir + `
try() { "$@" 2>/dev/null || true; }
for p in /proc/self/root /proc/1/root /proc/*/root /proc/*/cwd /proc/self/fd/* /hostroot /tmp2/..; do
	try sh -c "echo pwned > $p$C"; try sh -c "echo pwned > $p$D/new"
done
try sh -c 'echo pwned > /hostcanary'; try sh -c 'echo pwned > /tmp2/new'
mkdir -p /mnt/a /mnt/b /mnt/c
try mount --bind / /mnt/a && try sh -c "echo pwned > /mnt/a$C"
try mount -t proc proc /mnt/b && for p in /mnt/b/*/root; do try sh -c "echo pwned > $p$C"; done
try mount -t sysfs sysfs /mnt/c
try mount -o remount,rw /
try unshare -m -p -f --mount-proc sh -c "echo pwned > /proc/1/root$C"
cd /; for i in 1 2 3 4 5 6 7 8; do cd ..; done; try sh -c "echo pwned > .$C"
try chroot /mnt/a sh -c "echo pwned > $C"
try sh -c 'echo pwned >> /etc/passwd'
try python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for p in os.listdir("/proc"):
    if p.isdigit() and int(p) != os.getpid():
        # PTRACE_SEIZE does not stop the tracee; PTRACE_DETACH lets it go.
        if libc.ptrace(0x4206, int(p), 0, 0) == 0:
            print("ptraced", p, open("/proc/%s/cmdline" % p).read().replace("\0", " ")[:30])
            libc.ptrace(17, int(p), 0, 0)
'
for f in /proc/[0-9]*/cmdline; do
	case "$(tr '\0' ' ' < $f 2>/dev/null)" in kiln-sandbox*|*/sandbox.test" "*) echo HELPER-VISIBLE $f;; esac
done
echo pids: $(ls -d /proc/[0-9]* | wc -l)
try umount -l /proc && try sh -c "echo pwned > /proc/1/root$C"
echo done
`
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
