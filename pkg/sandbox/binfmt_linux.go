//go:build linux

package sandbox

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// binfmtDir is where the kernel lists its binfmt_misc handlers.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// CanExecute reports whether programs built for platform run in the
// sandbox, as HowToRun(platform, "") decides. When the answer is no,
// reason says why and how to fix it.
func CanExecute(platform v1.Platform) (ok bool, reason string) {
	e := HowToRun(platform, "")
	return e.OK(), e.Reason
}

// HowToRun reports how Run runs programs built for platform (for a
// Config with that Platform and QEMU). Those of the host's architecture
// run natively, and so do those of a 32-bit architecture the host's runs
// (386 on amd64, arm on arm64) when the kernel runs a tiny program of it.
// Any other architecture needs an enabled binfmt_misc handler on the
// host for its ELF executables (qemu-user-static's) with the F flag,
// which opens the interpreter when the handler is registered so that it
// runs inside the sandbox's root too; or else a static qemu-user
// interpreter, which Run registers in a binfmt_misc instance of the
// sandbox's own user namespace (Linux 6.7+): qemu when it is set, else
// the first of qemu-ARCH-static and (when it is statically linked)
// qemu-ARCH in /usr/bin and then /usr/local/bin, where Debian's, Ubuntu's
// and Fedora's qemu-user-static packages install them. A set qemu is
// used even when the host has a handler. When the programs cannot run,
// Reason says why and how to fix it.
func HowToRun(platform v1.Platform, qemu string) Execution {
	var uts unix.Utsname
	kernel := ""
	if unix.Uname(&uts) == nil {
		kernel = unix.ByteSliceToString(uts.Release[:])
	}
	return howToRun(binfmtEnv{
		dir: binfmtDir, hostArch: runtime.GOARCH, probe: probeCompat,
		kernel: kernel, qemuDirs: qemuDirs,
	}, platform, qemu)
}

// qemuDirs are where HowToRun looks for qemu-user interpreters.
var qemuDirs = []string{"/usr/bin", "/usr/local/bin"}

// binfmtEnv is what howToRun looks at: the binfmt_misc directory, the
// host's architecture (a GOARCH), a way to try a compat program, the
// kernel's release and the directories holding qemu-user interpreters.
type binfmtEnv struct {
	dir      string
	hostArch string
	probe    func(arch string) error
	kernel   string
	qemuDirs []string
}

// The first Linux release that gives a user namespace its own
// binfmt_misc instance.
const privateBinfmtMajor, privateBinfmtMinor = 6, 7

// elfArch describes an architecture's ELF executables.
type elfArch struct {
	class   byte // 1: 32-bit, 2: 64-bit
	data    byte // 1: little-endian, 2: big-endian
	machine uint16
	qemu    string // the qemu-user name of the architecture
}

// elfArchs maps OCI architecture names to their ELF headers.
var elfArchs = map[string]elfArch{
	"amd64":    {2, 1, 62, "x86_64"},
	"386":      {1, 1, 3, "i386"},
	"arm64":    {2, 1, 183, "aarch64"},
	"arm":      {1, 1, 40, "arm"},
	"ppc64le":  {2, 1, 21, "ppc64le"},
	"ppc64":    {2, 2, 21, "ppc64"},
	"s390x":    {2, 2, 22, "s390x"},
	"riscv64":  {2, 1, 243, "riscv64"},
	"mips64le": {2, 1, 8, "mips64el"},
	"mips64":   {2, 2, 8, "mips64"},
	"mipsle":   {1, 1, 8, "mipsel"},
	"mips":     {1, 2, 8, "mips"},
	"loong64":  {2, 1, 258, "loongarch64"},
}

// compatArchs maps a host architecture to the 32-bit one its kernel may
// run natively.
var compatArchs = map[string]string{"amd64": "386", "arm64": "arm"}

func howToRun(env binfmtEnv, p v1.Platform, qemu string) Execution {
	none := func(format string, args ...any) Execution {
		return Execution{Mode: ExecNone, Reason: fmt.Sprintf(format, args...)}
	}
	if p.OS != "" && p.OS != "linux" {
		return none("%s programs do not run on Linux", p.OS)
	}
	arch := p.Architecture
	if arch == env.hostArch {
		return Execution{Mode: ExecNative}
	}
	ea, known := elfArchs[arch]
	if !known {
		return none("unknown architecture %q: kiln cannot tell whether its programs run here", arch)
	}
	if qemu != "" {
		if err := checkQEMU(qemu); err != nil {
			return none("%s programs cannot run under the interpreter set for them: %v; fix: name a statically linked qemu-%s (Debian and Ubuntu: /usr/bin/qemu-%s-static, from qemu-user-static)", platformString(p), err, ea.qemu, ea.qemu)
		}
		if err := env.privateBinfmt(); err != nil {
			return none("%s programs cannot run under %s: %v; fix: run on Linux %d.%d+, or %s", platformString(p), qemu, err, privateBinfmtMajor, privateBinfmtMinor, ea.hostFix())
		}
		return Execution{Mode: ExecQEMU, QEMU: qemu}
	}
	var compatErr error
	if compatArchs[env.hostArch] == arch {
		if compatErr = env.probe(arch); compatErr == nil {
			return Execution{Mode: ExecNative}
		}
	}
	handler, hostWhy := env.hostHandler(arch, ea)
	if handler != "" {
		return Execution{Mode: ExecHostHandler, Handler: handler}
	}
	interp, qemuWhy := env.findQEMU(ea)
	if interp != "" {
		if qemuWhy = env.privateBinfmt(); qemuWhy == nil {
			return Execution{Mode: ExecQEMU, QEMU: interp}
		}
		qemuWhy = fmt.Errorf("it cannot register %s: %w", interp, qemuWhy)
	}
	msg := fmt.Sprintf("%s programs do not run on this %s machine: %s", platformString(p), env.hostArch, hostWhy)
	if compatErr != nil {
		msg += fmt.Sprintf(" (and the kernel does not run %s programs itself: %v)", arch, compatErr)
	}
	msg += fmt.Sprintf(", and the sandbox cannot run them under QEMU itself: %v", qemuWhy)
	fix := fmt.Sprintf("install qemu-user-static (Debian and Ubuntu: apt-get install qemu-user-static binfmt-support), whose qemu-%s-static kiln registers in the sandbox on Linux 6.7+; or %s", ea.qemu, ea.hostFix())
	if interp != "" {
		fix = fmt.Sprintf("run on Linux %d.%d+, or %s", privateBinfmtMajor, privateBinfmtMinor, ea.hostFix())
	}
	return none("%s; fix: %s", msg, fix)
}

// hostFix says how to give the host a handler for the architecture.
func (a elfArch) hostFix() string {
	return fmt.Sprintf("enable qemu-user-static's handler for %s on the host, with the F flag, as root (e.g. update-binfmts --enable qemu-%s, or systemctl restart systemd-binfmt)", a.qemu, a.qemu)
}

// hostHandler returns the name of the host's handler that runs the
// architecture's programs in the sandbox, or why there is none.
func (env binfmtEnv) hostHandler(arch string, ea elfArch) (name, why string) {
	status, err := os.ReadFile(filepath.Join(env.dir, "status"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Sprintf("binfmt_misc is not mounted at %s (mount it with `mount -t binfmt_misc binfmt_misc %s` as root)", env.dir, env.dir)
	}
	if err != nil {
		return "", fmt.Sprintf("read %s: %v", filepath.Join(env.dir, "status"), err)
	}
	if strings.TrimSpace(string(status)) != "enabled" {
		return "", fmt.Sprintf("binfmt_misc is disabled (run `echo 1 > %s/status` as root)", env.dir)
	}
	entries, err := os.ReadDir(env.dir)
	if err != nil {
		return "", fmt.Sprintf("list %s: %v", env.dir, err)
	}
	samples := ea.headers()
	var notes []string
	for _, e := range entries {
		if e.Name() == "status" || e.Name() == "register" || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(env.dir, e.Name()))
		if err != nil {
			continue
		}
		h, ok := parseBinfmt(b)
		if !ok || !h.matchesAll(samples) {
			continue
		}
		switch {
		case !h.enabled:
			notes = append(notes, fmt.Sprintf("its handler %s is disabled", e.Name()))
		case strings.Contains(h.flags, "F"):
			return e.Name(), ""
		default:
			if _, err := os.Stat(h.interpreter); err != nil {
				notes = append(notes, fmt.Sprintf("the interpreter %s of handler %s is missing", h.interpreter, e.Name()))
			} else {
				notes = append(notes, fmt.Sprintf("handler %s lacks the F flag, so the kernel would look for its interpreter %s inside the sandbox's root, where it is not", e.Name(), h.interpreter))
			}
		}
	}
	if len(notes) == 0 {
		return "", fmt.Sprintf("no binfmt_misc handler in %s runs %s ELF programs", env.dir, arch)
	}
	return "", strings.Join(notes, "; ")
}

// findQEMU returns the first static qemu-user interpreter for the
// architecture in env.qemuDirs, or why there is none.
func (env binfmtEnv) findQEMU(ea elfArch) (string, error) {
	var tried, notes []string
	for _, d := range env.qemuDirs {
		for _, name := range []string{"qemu-" + ea.qemu + "-static", "qemu-" + ea.qemu} {
			p := filepath.Join(d, name)
			tried = append(tried, p)
			err := checkQEMU(p)
			if err == nil {
				return p, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				notes = append(notes, err.Error())
			}
		}
	}
	if len(notes) > 0 {
		return "", errors.New(strings.Join(notes, "; "))
	}
	if len(tried) == 0 {
		return "", fmt.Errorf("no qemu-%s interpreter", ea.qemu)
	}
	return "", fmt.Errorf("no qemu-%s interpreter (looked for %s)", ea.qemu, strings.Join(tried, ", "))
}

// checkQEMU reports why p cannot serve as the sandbox's interpreter: it
// must be an absolute path (without a colon, which ends a binfmt_misc
// field) to an executable ELF program that is statically linked, as the
// sandbox's root has not the host's libraries. A missing p gives an
// error wrapping fs.ErrNotExist.
func checkQEMU(p string) error {
	if !filepath.IsAbs(p) || strings.ContainsAny(p, ":\n") {
		return fmt.Errorf("%q is not an absolute path without colons", p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("%s is not an ELF program: %v", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked, so it would not find its libraries in the sandbox's root (install qemu-user-static for the static one)", p)
		}
	}
	return nil
}

// privateBinfmt reports why the kernel cannot give the sandbox's user
// namespace its own binfmt_misc instance.
func (env binfmtEnv) privateBinfmt() error {
	maj, min, ok := kernelVersion(env.kernel)
	if !ok {
		return nil // unknown: Run finds out
	}
	if maj < privateBinfmtMajor || maj == privateBinfmtMajor && min < privateBinfmtMinor {
		return fmt.Errorf("this kernel (%s) gives a user namespace its own binfmt_misc only from Linux %d.%d", env.kernel, privateBinfmtMajor, privateBinfmtMinor)
	}
	return nil
}

// kernelVersion parses the major and minor numbers of a kernel release
// such as "6.18.4-amd64".
func kernelVersion(release string) (major, minor int, ok bool) {
	a, rest, _ := strings.Cut(release, ".")
	b := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		b = rest[:i]
	}
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	return major, minor, err1 == nil && err2 == nil
}

func platformString(p v1.Platform) string {
	s := "linux/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// headers returns the first bytes of an executable and of a
// position-independent executable (or shared library) of the architecture.
func (a elfArch) headers() [][]byte {
	var out [][]byte
	for _, typ := range []uint16{2, 3} { // ET_EXEC, ET_DYN
		b := make([]byte, 20)
		copy(b, "\x7fELF")
		b[4], b[5], b[6] = a.class, a.data, 1
		var order binary.ByteOrder = binary.LittleEndian
		if a.data == 2 {
			order = binary.BigEndian
		}
		order.PutUint16(b[16:], typ)
		order.PutUint16(b[18:], a.machine)
		out = append(out, b)
	}
	return out
}

// binfmtFlags are the flags of the handler the sandbox registers: F opens
// the interpreter at once, in the helper's view of the host's files,
// so that it runs after the pivot into the image; P passes the program's
// own argv[0] on (qemu-user 6.0+ reads the flag from AT_FLAGS), which
// multi-call programs and login shells look at.
const binfmtFlags = "PF"

// registerPrivate mounts a new binfmt_misc instance for the calling
// process's user namespace (which then takes the place of the host's
// handlers for every process in it) and writes line to its register
// file. It returns the mount's descriptor: the instance and its handler
// live while it is open.
func registerPrivate(line string) (int, error) {
	name, _, _ := strings.Cut(strings.TrimPrefix(line, ":"), ":")
	var uts unix.Utsname
	unix.Uname(&uts)
	release := unix.ByteSliceToString(uts.Release[:])
	refused := func(err error, log string) error {
		return fail(kindBinfmt, "mount a binfmt_misc instance of the sandbox's own to register %s: %v%s: "+
			"this needs Linux %d.%d+ (this kernel is %s); fix: run on a newer kernel, or register qemu-user-static's handler on the host with the F flag as root "+
			"(Debian and Ubuntu: apt-get install qemu-user-static binfmt-support; update-binfmts --enable %s)",
			name, err, log, privateBinfmtMajor, privateBinfmtMinor, release, name)
	}
	fsfd, err := unix.Fsopen("binfmt_misc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, refused(err, "")
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, refused(err, fsLog(fsfd))
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, refused(err, fsLog(fsfd))
	}
	reg, err := unix.Openat(mfd, "register", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		_, err = unix.Write(reg, []byte(line))
		unix.Close(reg)
	}
	if err != nil {
		unix.Close(mfd)
		return -1, fail(kindBinfmt, "register %s in the sandbox's binfmt_misc (%s): %v", name, line, err)
	}
	return mfd, nil
}

// registerLine returns the line that registers interp, with flags, for
// the architecture's ELF executables and shared objects (or
// position-independent executables) in a binfmt_misc register file, as
// qemu-user-static's binfmt.d files do: the magic is the ELF
// identification (class, byte order, version) and the type and machine
// fields; the mask leaves out the OS ABI byte and the type's low bit (2
// is an executable, 3 a shared object). The name is qemu-ARCH.
func (a elfArch) registerLine(interp, flags string) string {
	magic := a.headers()[0]
	mask := bytes.Repeat([]byte{0xff}, len(magic))
	mask[7] = 0 // EI_OSABI
	if a.data == 2 {
		mask[17] = 0xfe // e_type, big-endian
	} else {
		mask[16] = 0xfe
	}
	esc := func(b []byte) string {
		var s strings.Builder
		for _, c := range b {
			fmt.Fprintf(&s, "\\x%02x", c)
		}
		return s.String()
	}
	return fmt.Sprintf(":qemu-%s:M::%s:%s:%s:%s", a.qemu, esc(magic), esc(mask), interp, flags)
}

// binfmtHandler is one parsed /proc/sys/fs/binfmt_misc entry.
type binfmtHandler struct {
	enabled     bool
	interpreter string
	flags       string
	offset      int
	magic, mask []byte
}

// parseBinfmt parses a handler file; an extension handler (or anything
// unreadable) is not ok.
func parseBinfmt(b []byte) (binfmtHandler, bool) {
	var h binfmtHandler
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if i == 0 {
			h.enabled = line == "enabled"
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		v = strings.TrimSpace(v)
		var err error
		switch strings.TrimSuffix(k, ":") {
		case "interpreter":
			h.interpreter = v
		case "flags":
			h.flags = v
		case "offset":
			h.offset, err = strconv.Atoi(v)
		case "magic":
			h.magic, err = hex.DecodeString(v)
		case "mask":
			h.mask, err = hex.DecodeString(v)
		case "extension":
			return h, false
		}
		if err != nil {
			return h, false
		}
	}
	if len(h.magic) == 0 || h.offset < 0 || (h.mask != nil && len(h.mask) != len(h.magic)) {
		return h, false
	}
	return h, true
}

// matchesAll reports whether the handler takes every one of the file
// beginnings, as the kernel compares them: masked bytes at the offset.
func (h binfmtHandler) matchesAll(samples [][]byte) bool {
	for _, s := range samples {
		if h.offset+len(h.magic) > len(s) {
			return false
		}
		got := s[h.offset : h.offset+len(h.magic)]
		for i := range h.magic {
			m := byte(0xff)
			if h.mask != nil {
				m = h.mask[i]
			}
			if got[i]&m != h.magic[i]&m {
				return false
			}
		}
	}
	return true
}

// compatPrograms are tiny static programs that exit 0, by architecture.
var compatPrograms = map[string][]byte{
	"386": {0xb8, 0x01, 0, 0, 0, 0x31, 0xdb, 0xcd, 0x80},             // mov eax,1; xor ebx,ebx; int 0x80
	"arm": {0, 0, 0xa0, 0xe3, 0x01, 0x70, 0xa0, 0xe3, 0, 0, 0, 0xef}, // mov r0,#0; mov r7,#1; svc 0
}

// compatELF returns a static 32-bit little-endian executable for arch that
// exits 0.
func compatELF(arch string) ([]byte, error) {
	code, ok := compatPrograms[arch]
	ea := elfArchs[arch]
	if !ok || ea.class != 1 || ea.data != 1 {
		return nil, fmt.Errorf("no probe program for %s", arch)
	}
	const base, ehsize, phsize = 0x10000, 52, 32
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	var flags uint32
	if arch == "arm" {
		flags = 0x05000200 // EABI version 5, soft-float
	}
	binary.Write(&b, le, struct {
		Type, Machine                       uint16
		Version, Entry, Phoff, Shoff, Flags uint32
		Ehsize, Phentsize, Phnum, Shentsize uint16
		Shnum, Shstrndx                     uint16
	}{2, ea.machine, 1, base + ehsize + phsize, ehsize, 0, flags, ehsize, phsize, 1, 0, 0, 0})
	size := uint32(ehsize + phsize + len(code))
	binary.Write(&b, le, struct {
		Type, Offset, Vaddr, Paddr, Filesz, Memsz, Flags, Align uint32
	}{1, 0, base, base, size, size, 5, 0x1000})
	b.Write(code)
	return b.Bytes(), nil
}

// probeCompat runs a tiny arch program from memory (so a noexec /tmp does
// not matter) and returns why it did not run and exit 0.
func probeCompat(arch string) error {
	prog, err := compatELF(arch)
	if err != nil {
		return err
	}
	return probeBytes(prog)
}

// probeBytes runs the executable prog from memory.
func probeBytes(prog []byte) error {
	fd, err := unix.MemfdCreate("kiln-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "kiln-probe")
	defer f.Close()
	if _, err := f.Write(prog); err != nil {
		return err
	}
	cmd := exec.Command(fmt.Sprintf("/proc/self/fd/%d", fd))
	cmd.Env = []string{}
	if out, err := cmd.CombinedOutput(); err != nil {
		if len(out) > 0 {
			return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
		}
		return err
	}
	return nil
}
