//go:build linux

package sandbox

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
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

// TestCanExecute runs the decision over fake binfmt_misc directories.
func TestCanExecute(t *testing.T) {
	interp := filepath.Join(t.TempDir(), "qemu-aarch64-static")
	if err := os.WriteFile(interp, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noProbe := func(string) error { return errors.New("exec format error") }
	okProbe := func(string) error { return nil }
	for _, tc := range []struct {
		name     string
		host     string
		plat     v1.Platform
		files    map[string]string // nil: binfmt_misc not mounted
		probe    func(string) error
		ok       bool
		reasonIn []string
	}{
		{name: "host arch", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "amd64"}, ok: true},
		{name: "386 the kernel runs", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "386"}, probe: okProbe, ok: true},
		{name: "386 the kernel refuses", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "386"}, probe: noProbe, files: map[string]string{"status": "enabled\n"},
			reasonIn: []string{"linux/386", "no binfmt_misc handler", "exec format error", "qemu-user-static", "qemu-i386"}},
		{name: "arm on arm64 through qemu-arm", host: "arm64", plat: v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, probe: noProbe,
			files: map[string]string{"status": "enabled\n", "qemu-arm": handler(true, "/nonexistent", "POCF", armMagic)}, ok: true},
		{name: "arm64 with a preloaded handler", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files: map[string]string{"status": "enabled\n", "register": "", "qemu-arm": handler(true, interp, "F", armMagic), "qemu-aarch64": handler(true, "/gone/after/preload", "POCF", aarch64Magic)}, ok: true},
		{name: "big-endian s390x", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "s390x"},
			files: map[string]string{"status": "enabled\n", "qemu-s390x": handler(true, interp, "F", s390xMagic)}, ok: true},
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
			ok, reason := canExecute(binfmtEnv{dir: dir, hostArch: tc.host, probe: probe}, tc.plat)
			if ok != tc.ok {
				t.Fatalf("canExecute = %v (%s), want %v", ok, reason, tc.ok)
			}
			if ok && reason != "" {
				t.Errorf("a yes came with a reason: %s", reason)
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
