package hostile

// EscapeScript returns a shell script that tries to reach the host from a
// sandboxed command: it writes "pwned" into the host file canary, and a
// file "new" into the host directory canaryDir (both writable by the
// caller), through /proc/self/root, /proc/1/root and every /proc/*/root
// and cwd, bind and proc mounts, a nested namespace, chroot and cd .. past
// the root; it ptraces every process it sees and reports a visible sandbox
// helper as "HELPER-VISIBLE". It also goes through the symlinks a test
// plants in a lower layer: /hostroot -> /, /hostcanary -> canary and
// /tmp2 -> canaryDir. It prints "done" at its end. A test checks that
// canary and canaryDir are untouched on the host.
func EscapeScript(canary, canaryDir string) string {
	return "C=" + canary + "; D=" + canaryDir + "\n" + escapeScript
}

const escapeScript = `try() { "$@" 2>/dev/null || true; }
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
