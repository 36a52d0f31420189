//go:build linux

package sandbox

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Handlers as the kernel lists them for Debian's qemu-user-static.
const (
	aarch64Magic = "magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
	armMagic     = "magic 7f454c4601010100000000000000000002002800\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
	s390xMagic   = "magic 7f454c4602020100000000000000000000020016\nmask ffffffffffffff00fffffffffffffffffffeffff\n"
)

func handler(enabled bool, interp, flags, magic string) string {
	state := "disabled"
	if enabled {
		state = "enabled"
	}
	return state + "\ninterpreter " + interp + "\nflags: " + flags + "\noffset 0\n" + magic
}

// TestHowToRun runs the decision over fake binfmt_misc directories and
// fake qemu-user interpreters.
func TestHowToRun(t *testing.T) {
	interp := filepath.Join(t.TempDir(), "qemu-aarch64-static")
	if err := os.WriteFile(interp, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// qemuDir holds "static" interpreters (tiny static ELF programs) for
	// aarch64 and s390x and a dynamically linked one for riscv64.
	qemuDir := t.TempDir()
	static := mustELF(t, "386")
	for _, name := range []string{"qemu-aarch64-static", "qemu-s390x"} {
		if err := os.WriteFile(filepath.Join(qemuDir, name), static, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dynamic := dynamicELF(t)
	if err := os.WriteFile(filepath.Join(qemuDir, "qemu-riscv64"), dynamic, 0o755); err != nil {
		t.Fatal(err)
	}
	qemuAarch64 := filepath.Join(qemuDir, "qemu-aarch64-static")
	emptyDir := t.TempDir()
	noProbe := func(string) error { return errors.New("exec format error") }
	okProbe := func(string) error { return nil }
	for _, tc := range []struct {
		name     string
		host     string
		plat     v1.Platform
		files    map[string]string // nil: binfmt_misc not mounted
		probe    func(string) error
		qemuDirs []string // nil: an empty directory
		kernel   string   // empty: 6.18.4
		qemu     string   // the Config's QEMU
		ok       bool
		mode     ExecMode // when ok; zero: ExecNative, or ExecHostHandler with files
		handler  string
		interp   string // the ExecQEMU interpreter
		reasonIn []string
	}{
		{name: "host arch", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "amd64"}, ok: true},
		{name: "386 the kernel runs", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "386"}, probe: okProbe, ok: true},
		{name: "386 the kernel refuses", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "386"}, probe: noProbe, files: map[string]string{"status": "enabled\n"},
			reasonIn: []string{"linux/386", "no binfmt_misc handler", "exec format error", "qemu-user-static", "qemu-i386"}},
		{name: "arm on arm64 through qemu-arm", host: "arm64", plat: v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, probe: noProbe,
			files: map[string]string{"status": "enabled\n", "qemu-arm": handler(true, "/nonexistent", "POCF", armMagic)}, ok: true, mode: ExecHostHandler, handler: "qemu-arm"},
		{name: "arm64 with a preloaded handler", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files: map[string]string{"status": "enabled\n", "register": "", "qemu-arm": handler(true, interp, "F", armMagic), "qemu-aarch64": handler(true, "/gone/after/preload", "POCF", aarch64Magic)}, ok: true, mode: ExecHostHandler, handler: "qemu-aarch64"},
		{name: "big-endian s390x", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "s390x"},
			files: map[string]string{"status": "enabled\n", "qemu-s390x": handler(true, interp, "F", s390xMagic)}, ok: true, mode: ExecHostHandler, handler: "qemu-s390x"},
		{name: "handler for another arch", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files:    map[string]string{"status": "enabled\n", "qemu-arm": handler(true, interp, "F", armMagic), "s390x": handler(true, interp, "F", s390xMagic)},
			reasonIn: []string{"linux/arm64", "amd64 machine", "no binfmt_misc handler", "apt-get install qemu-user-static", "update-binfmts --enable qemu-aarch64"}},
		{name: "disabled handler", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files:    map[string]string{"status": "enabled\n", "qemu-aarch64": handler(false, interp, "F", aarch64Magic)},
			reasonIn: []string{"handler qemu-aarch64 is disabled", "qemu-user-static"}},
		{name: "handler without F", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files:    map[string]string{"status": "enabled\n", "qemu-aarch64": handler(true, interp, "OC", aarch64Magic)},
			reasonIn: []string{"lacks the F flag", interp, "qemu-user-static"}},
		{name: "interpreter missing", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files:    map[string]string{"status": "enabled\n", "qemu-aarch64": handler(true, "/nonexistent/qemu-aarch64", "", aarch64Magic)},
			reasonIn: []string{"interpreter /nonexistent/qemu-aarch64", "missing"}},
		{name: "handler for static executables only", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files:    map[string]string{"status": "enabled\n", "static": handler(true, interp, "F", "magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00ffffffffffffffffffffffff\n")},
			reasonIn: []string{"no binfmt_misc handler"}},
		{name: "extension handler", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files:    map[string]string{"status": "enabled\n", "exe": "enabled\ninterpreter " + interp + "\nflags: F\nextension .exe\n"},
			reasonIn: []string{"no binfmt_misc handler"}},
		{name: "binfmt_misc disabled", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files:    map[string]string{"status": "disabled\n", "qemu-aarch64": handler(true, interp, "F", aarch64Magic)},
			reasonIn: []string{"binfmt_misc is disabled", "status"}},
		{name: "binfmt_misc not mounted", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "riscv64"},
			reasonIn: []string{"not mounted", "mount -t binfmt_misc", "qemu-riscv64"}},
		{name: "not linux", host: "amd64", plat: v1.Platform{OS: "windows", Architecture: "amd64"}, reasonIn: []string{"windows"}},
		{name: "unknown arch", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "vax"}, reasonIn: []string{`"vax"`}},

		// The sandbox's own QEMU.
		{name: "no handler: the sandbox registers qemu-user-static", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			qemuDirs: []string{emptyDir, qemuDir}, ok: true, mode: ExecQEMU, interp: qemuAarch64},
		{name: "a disabled handler does not stop the sandbox's QEMU", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files: map[string]string{"status": "enabled\n", "qemu-aarch64": handler(false, interp, "F", aarch64Magic)}, qemuDirs: []string{qemuDir}, ok: true, mode: ExecQEMU, interp: qemuAarch64},
		{name: "static qemu-ARCH without -static", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "s390x"},
			qemuDirs: []string{qemuDir}, ok: true, mode: ExecQEMU, interp: filepath.Join(qemuDir, "qemu-s390x")},
		{name: "the host's handler comes first", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files: map[string]string{"status": "enabled\n", "qemu-aarch64": handler(true, interp, "F", aarch64Magic)}, qemuDirs: []string{qemuDir}, ok: true, mode: ExecHostHandler, handler: "qemu-aarch64"},
		{name: "a set QEMU comes before the host's handler", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"}, qemu: qemuAarch64,
			files: map[string]string{"status": "enabled\n", "qemu-aarch64": handler(true, interp, "F", aarch64Magic)}, ok: true, mode: ExecQEMU, interp: qemuAarch64},
		{name: "a set QEMU comes before the compat probe", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "386"}, qemu: qemuAarch64,
			ok: true, mode: ExecQEMU, interp: qemuAarch64},
		{name: "a set QEMU is ignored for the host's arch", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "amd64"}, qemu: "/nonexistent", ok: true},
		{name: "a set QEMU that is missing", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"}, qemu: "/nonexistent/qemu-aarch64-static",
			qemuDirs: []string{qemuDir}, reasonIn: []string{"linux/arm64", "/nonexistent/qemu-aarch64-static", "no such file", "statically linked qemu-aarch64"}},
		{name: "a set QEMU that is relative", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"}, qemu: "qemu-aarch64-static",
			reasonIn: []string{`"qemu-aarch64-static" is not an absolute path`}},
		{name: "a set QEMU that is dynamically linked", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "riscv64"}, qemu: filepath.Join(qemuDir, "qemu-riscv64"),
			reasonIn: []string{"qemu-riscv64 is dynamically linked"}},
		{name: "a dynamically linked qemu-ARCH is not used", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "riscv64"},
			qemuDirs: []string{qemuDir}, reasonIn: []string{"linux/riscv64", "not mounted", "qemu-riscv64 is dynamically linked", "apt-get install qemu-user-static", "Linux 6.7+"}},
		{name: "no interpreter", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "ppc64le"},
			qemuDirs: []string{qemuDir}, reasonIn: []string{"cannot run them under QEMU", "no qemu-ppc64le interpreter", filepath.Join(qemuDir, "qemu-ppc64le-static"), "apt-get install qemu-user-static", "update-binfmts --enable qemu-ppc64le"}},
		{name: "a kernel without private binfmt_misc", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"}, kernel: "6.6.30-cloud",
			qemuDirs: []string{qemuDir}, reasonIn: []string{"cannot register " + qemuAarch64, "this kernel (6.6.30-cloud)", "Linux 6.7", "update-binfmts --enable qemu-aarch64", "F flag"}},
		{name: "a set QEMU on a kernel without private binfmt_misc", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"}, kernel: "5.15.0", qemu: qemuAarch64,
			reasonIn: []string{"this kernel (5.15.0)", "Linux 6.7", "update-binfmts --enable qemu-aarch64"}},
		{name: "kernel 7", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"}, kernel: "7.0",
			qemuDirs: []string{qemuDir}, ok: true, mode: ExecQEMU, interp: qemuAarch64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "binfmt_misc")
			if tc.files != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for name, content := range tc.files {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			probe := tc.probe
			if probe == nil {
				probe = func(arch string) error { t.Errorf("probed %s", arch); return errors.New("no") }
			}
			dirs, kernel := tc.qemuDirs, tc.kernel
			if dirs == nil {
				dirs = []string{emptyDir}
			}
			if kernel == "" {
				kernel = "6.18.4"
			}
			ex := howToRun(binfmtEnv{dir: dir, hostArch: tc.host, probe: probe, kernel: kernel, qemuDirs: dirs}, tc.plat, tc.qemu)
			ok, reason := ex.OK(), ex.Reason
			if ok != tc.ok {
				t.Fatalf("howToRun = %+v, want ok %v", ex, tc.ok)
			}
			if ok && reason != "" {
				t.Errorf("a yes came with a reason: %s", reason)
			}
			if ok {
				want := Execution{Mode: tc.mode, Handler: tc.handler, QEMU: tc.interp}
				if want.Mode == 0 {
					want.Mode = ExecNative
				}
				if ex != want {
					t.Errorf("howToRun = %+v, want %+v", ex, want)
				}
			}
			for _, w := range tc.reasonIn {
				if !strings.Contains(reason, w) {
					t.Errorf("reason %q does not contain %q", reason, w)
				}
			}
		})
	}
}

// TestCompatProbe checks the probe programs are well-formed static
// executables of their architecture and, on an amd64 host whose kernel
// runs 32-bit programs, that the 386 one runs and a broken one does not.
func TestCompatProbe(t *testing.T) {
	for arch, machine := range map[string]elf.Machine{"386": elf.EM_386, "arm": elf.EM_ARM} {
		b, err := compatELF(arch)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if f.Machine != machine || f.Class != elf.ELFCLASS32 || f.Type != elf.ET_EXEC || len(f.Progs) != 1 {
			t.Errorf("%s: machine %v class %v type %v, %d segments", arch, f.Machine, f.Class, f.Type, len(f.Progs))
		}
		if p := f.Progs[0]; f.Entry < p.Vaddr || f.Entry >= p.Vaddr+p.Filesz {
			t.Errorf("%s: entry %#x outside the segment", arch, f.Entry)
		}
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("runs the 386 probe on amd64 hosts only")
	}
	if err := probeCompat("386"); err != nil {
		if strings.Contains(err.Error(), "exec format error") {
			t.Skipf("this kernel does not run 386 programs: %v", err)
		}
		t.Fatalf("probe 386: %v", err)
	}
	// The same program for the wrong machine must not run.
	if err := probeBytes(mustELF(t, "arm")); err == nil {
		t.Errorf("an arm program ran on amd64: the probe proves nothing")
	}
}

func mustELF(t *testing.T, arch string) []byte {
	b, err := compatELF(arch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dynamicELF returns a dynamically linked program (the host's true).
func dynamicELF(t *testing.T) []byte {
	t.Helper()
	p, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true program")
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Skipf("%s: %v", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Skipf("%s is statically linked", p)
	return nil
}

// TestRegisterLine checks the generated handlers: each is the kernel's
// register syntax, takes the architecture's executables and shared
// objects and no other architecture's, and matches what Debian's
// qemu-user-static registers where the test knows it.
func TestRegisterLine(t *testing.T) {
	debian := map[string]string{ // magic and mask as the kernel lists them
		"arm64": aarch64Magic,
		"arm":   armMagic,
		"s390x": s390xMagic,
	}
	for arch, ea := range elfArchs {
		t.Run(arch, func(t *testing.T) {
			line := ea.registerLine("/usr/bin/qemu-"+ea.qemu+"-static", "PF")
			fields := strings.Split(line, ":")
			if len(fields) != 8 || fields[0] != "" || fields[1] != "qemu-"+ea.qemu || fields[2] != "M" || fields[3] != "" ||
				fields[6] != "/usr/bin/qemu-"+ea.qemu+"-static" || fields[7] != "PF" {
				t.Fatalf("line %q: want :qemu-%s:M::magic:mask:interpreter:PF", line, ea.qemu)
			}
			magic, mask := unescape(t, fields[4]), unescape(t, fields[5])
			if len(magic) != 20 || len(mask) != 20 {
				t.Fatalf("magic %x mask %x: want 20 bytes each", magic, mask)
			}
			h := binfmtHandler{enabled: true, magic: magic, mask: mask}
			if !h.matchesAll(ea.headers()) {
				t.Errorf("the handler does not take %s executables and shared objects", arch)
			}
			for other, oa := range elfArchs {
				for _, hdr := range oa.headers() {
					if other != arch && h.matchesAll([][]byte{hdr}) {
						t.Errorf("the handler takes a %s program", other)
					}
				}
			}
			// The OS ABI byte (GNU/Linux is 3, most programs have 0) is
			// not looked at; the ELF version is.
			hdr := ea.headers()[0]
			hdr[7] = 3
			if !h.matchesAll([][]byte{hdr}) {
				t.Errorf("the handler refuses an ELFOSABI_GNU program")
			}
			hdr[6] = 2
			if h.matchesAll([][]byte{hdr}) {
				t.Errorf("the handler takes ELF version 2")
			}
			if want, ok := debian[arch]; ok {
				if got := fmt.Sprintf("magic %x\nmask %x\n", magic, mask); got != want {
					t.Errorf("got\n%swant (Debian's)\n%s", got, want)
				}
			}
		})
	}
}

// unescape decodes a register field written as \xHH escapes only.
func unescape(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for s != "" {
		if len(s) < 4 || s[:2] != "\\x" {
			t.Fatalf("field %q: want \\xHH escapes only", s)
		}
		b, err := hex.DecodeString(s[2:4])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b[0])
		s = s[4:]
	}
	return out
}

// TestKernelVersion parses kernel releases.
func TestKernelVersion(t *testing.T) {
	for _, tc := range []struct {
		release      string
		major, minor int
		ok           bool
	}{
		{"6.18.44-fc-v1045", 6, 18, true},
		{"6.7", 6, 7, true},
		{"5.15.0-91-generic", 5, 15, true},
		{"6.10rc1", 6, 10, true},
		{"", 0, 0, false},
		{"linux", 0, 0, false},
	} {
		major, minor, ok := kernelVersion(tc.release)
		if ok != tc.ok || ok && (major != tc.major || minor != tc.minor) {
			t.Errorf("kernelVersion(%q) = %d, %d, %v; want %d, %d, %v", tc.release, major, minor, ok, tc.major, tc.minor, tc.ok)
		}
	}
}
