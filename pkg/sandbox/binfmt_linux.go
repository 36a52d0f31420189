//go:build linux

package sandbox

import (
	"bytes"
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

// CanExecute reports whether programs built for platform run on this
// machine, in the sandbox: those of the host's architecture do; a
// 32-bit architecture the host's runs (386 on amd64, arm on arm64) does
// when the kernel runs a tiny program of it; any other needs an enabled
// binfmt_misc handler for its ELF executables (qemu-user-static's) with
// the F flag, which opens the interpreter when the handler is registered
// so that it runs inside the sandbox's root too. When the answer is no,
// reason says why and how to fix it.
func CanExecute(platform v1.Platform) (ok bool, reason string) {
	return canExecute(binfmtEnv{dir: binfmtDir, hostArch: runtime.GOARCH, probe: probeCompat}, platform)
}

// binfmtEnv is what canExecute looks at: the binfmt_misc directory, the
// host's architecture (a GOARCH) and a way to try a compat program.
type binfmtEnv struct {
	dir      string
	hostArch string
	probe    func(arch string) error
}

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

func canExecute(env binfmtEnv, p v1.Platform) (bool, string) {
	if p.OS != "" && p.OS != "linux" {
		return false, fmt.Sprintf("%s programs do not run on Linux", p.OS)
	}
	arch := p.Architecture
	if arch == env.hostArch {
		return true, ""
	}
	ea, known := elfArchs[arch]
	if !known {
		return false, fmt.Sprintf("unknown architecture %q: kiln cannot tell whether its programs run here", arch)
	}
	var compatErr error
	if compatArchs[env.hostArch] == arch {
		if compatErr = env.probe(arch); compatErr == nil {
			return true, ""
		}
	}
	fix := fmt.Sprintf("install qemu-user-static (Debian and Ubuntu: apt-get install qemu-user-static binfmt-support) and enable its handler for %s (e.g. update-binfmts --enable qemu-%s, or systemctl restart systemd-binfmt)", ea.qemu, ea.qemu)
	why := func(format string, args ...any) (bool, string) {
		msg := fmt.Sprintf("%s programs do not run on this %s machine: ", platformString(p), env.hostArch) + fmt.Sprintf(format, args...)
		if compatErr != nil {
			msg += fmt.Sprintf(" (and the kernel does not run %s programs itself: %v)", arch, compatErr)
		}
		return false, msg + "; fix: " + fix
	}
	status, err := os.ReadFile(filepath.Join(env.dir, "status"))
	if errors.Is(err, fs.ErrNotExist) {
		return why("binfmt_misc is not mounted at %s (mount it with `mount -t binfmt_misc binfmt_misc %s` as root)", env.dir, env.dir)
	}
	if err != nil {
		return why("read %s: %v", filepath.Join(env.dir, "status"), err)
	}
	if strings.TrimSpace(string(status)) != "enabled" {
		return why("binfmt_misc is disabled (run `echo 1 > %s/status` as root)", env.dir)
	}
	entries, err := os.ReadDir(env.dir)
	if err != nil {
		return why("list %s: %v", env.dir, err)
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
			return true, ""
		default:
			if _, err := os.Stat(h.interpreter); err != nil {
				notes = append(notes, fmt.Sprintf("the interpreter %s of handler %s is missing", h.interpreter, e.Name()))
			} else {
				notes = append(notes, fmt.Sprintf("handler %s lacks the F flag, so the kernel would look for its interpreter %s inside the sandbox's root, where it is not", e.Name(), h.interpreter))
			}
		}
	}
	if len(notes) == 0 {
		return why("no binfmt_misc handler in %s runs %s ELF programs", env.dir, arch)
	}
	return why("%s", strings.Join(notes, "; "))
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
