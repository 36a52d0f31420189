package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// BinfmtMiscDir is where the host's binfmt_misc file system is mounted.
const BinfmtMiscDir = "/proc/sys/fs/binfmt_misc"

// qemuBinfmt is the binfmt_misc registration of one qemu-user emulator.
type qemuBinfmt struct {
	name        string // handler name, as Debian's binfmt.d file names it
	interpreter string // statically linked emulator, usable inside a chroot
	magic, mask string // ELF header match, escaped as in a register line
}

// qemuBinfmtFor returns the emulator of a GOARCH-style architecture, with
// the magic and mask of Debian's /usr/lib/binfmt.d/qemu-*.conf
// (qemu-user-static).
func qemuBinfmtFor(arch string) (qemuBinfmt, bool) {
	switch arch {
	case "arm64":
		return qemuBinfmt{
			name:        "qemu-aarch64",
			interpreter: "/usr/bin/qemu-aarch64-static",
			magic:       `\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00`,
			mask:        `\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`,
		}, true
	}
	return qemuBinfmt{}, false
}

// registerLine returns the line that registers b with binfmt_misc: flag F
// makes the kernel open the interpreter now, so that it also runs programs
// in chroots and containers that do not hold it.
func (b qemuBinfmt) registerLine() string {
	return ":" + b.name + ":M::" + b.magic + ":" + b.mask + ":" + b.interpreter + ":F"
}

// RequireQemuBinfmt makes the host run linux/arch programs (arch as in
// GOARCH; only "arm64" is known) under qemu-user-static: it mounts
// binfmt_misc at BinfmtMiscDir if it is not mounted, and registers the
// emulator (for arm64, qemu-aarch64 with interpreter
// /usr/bin/qemu-aarch64-static) with flag F unless a handler of that name is
// already registered with flag F. It installs nothing: qemu-user-static
// must be installed (scripts/install-deps.sh does).
//
// The handler is kept when the test ends, since test processes running at
// the same time rely on it; calling RequireQemuBinfmt again, from any
// process, is cheap and safe. It needs root; without root or the emulator
// it skips the test (fails it on CI).
func RequireQemuBinfmt(t testing.TB, arch string) {
	t.Helper()
	b, ok := qemuBinfmtFor(arch)
	if !ok {
		t.Fatalf("RequireQemuBinfmt: no qemu emulator known for architecture %q (known: arm64)", arch)
	}
	RequireRoot(t)
	if _, err := os.Stat(b.interpreter); err != nil {
		skipOrFail(t, "running %s programs needs %s: install qemu-user-static (e.g. with .ci/run): %v", arch, b.interpreter, err)
	}
	lock := filepath.Join(os.TempDir(), "kiln-testenv-binfmt.lock")
	if err := withFileLock(lock, func() error { return registerBinfmt(BinfmtMiscDir, b) }); err != nil {
		t.Fatalf("registering the %s emulator with binfmt_misc: %v", arch, err)
	}
}

// registerBinfmt mounts binfmt_misc at dir if needed and registers b there
// unless an enabled handler of that name with flag F exists.
func registerBinfmt(dir string, b qemuBinfmt) error {
	if err := mountBinfmtMisc(dir); err != nil {
		return err
	}
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err != nil {
		return fmt.Errorf("reading binfmt_misc status: %w", err)
	} else if strings.TrimSpace(string(status)) != "enabled" {
		return fmt.Errorf("binfmt_misc is %s at %s: enable it with echo 1 > %s/status", strings.TrimSpace(string(status)), dir, dir)
	}
	entry := filepath.Join(dir, b.name)
	if !fileExists(entry) {
		err := writeRegister(filepath.Join(dir, "register"), b.registerLine())
		// Another process may have registered it since we looked: the
		// kernel refuses a second handler of the same name with EEXIST.
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("writing %q to %s/register: %w", b.registerLine(), dir, err)
		}
	}
	return checkBinfmtEntry(entry)
}

// mountBinfmtMisc mounts the binfmt_misc file system at dir unless it is
// mounted there already (its register file exists).
func mountBinfmtMisc(dir string) error {
	if fileExists(filepath.Join(dir, "register")) {
		return nil
	}
	if err := syscall.Mount("binfmt_misc", dir, "binfmt_misc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting binfmt_misc at %s: %w", dir, err)
	}
	if !fileExists(filepath.Join(dir, "register")) {
		return fmt.Errorf("mounted binfmt_misc at %s but it has no register file", dir)
	}
	return nil
}

// writeRegister writes line to binfmt_misc's register file in one write,
// as the kernel requires.
func writeRegister(register, line string) error {
	f, err := os.OpenFile(register, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(line))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// checkBinfmtEntry checks that the binfmt_misc handler file entry is enabled
// and has flag F (so that it works in chroots), whoever registered it.
func checkBinfmtEntry(entry string) error {
	data, err := os.ReadFile(entry)
	if err != nil {
		return fmt.Errorf("reading binfmt_misc handler: %w", err)
	}
	lines := strings.Split(string(data), "\n")
	if lines[0] != "enabled" {
		return fmt.Errorf("binfmt_misc handler %s is %s: enable it with echo 1 > %s", entry, lines[0], entry)
	}
	for _, l := range lines {
		if flags, ok := strings.CutPrefix(l, "flags: "); ok {
			if strings.Contains(flags, "F") {
				return nil
			}
			return fmt.Errorf("binfmt_misc handler %s has flags %q, not F, so it does not work in chroots: remove it with echo -1 > %s and run again", entry, flags, entry)
		}
	}
	return fmt.Errorf("binfmt_misc handler %s has no flags line:\n%s", entry, data)
}
