package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestCheckBinfmtEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, entry, wantErr string
	}{
		{"ours", "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\noffset 0\nmagic 7f45\nmask ffff\n", ""},
		{"debian", "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n", ""},
		{"no F", "enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: OC\noffset 0\n", "not F"},
		{"disabled", "disabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\n", "is disabled"},
		{"no flags", "enabled\ninterpreter /usr/bin/qemu-aarch64-static\n", "no flags line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "qemu-aarch64")
			if err := os.WriteFile(p, []byte(tc.entry), 0o644); err != nil {
				t.Fatal(err)
			}
			err := checkBinfmtEntry(p)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("checkBinfmtEntry: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("checkBinfmtEntry: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestQemuBinfmtMatchesDebian checks the register line against Debian's
// qemu-user-static configuration: the same name, magic and mask, with the
// static interpreter and flag F.
func TestQemuBinfmtMatchesDebian(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("/usr/lib/binfmt.d/qemu-aarch64.conf")
	if err != nil {
		skipOrFail(t, "qemu-user-static's binfmt.d file: %v", err)
	}
	b, ok := qemuBinfmtFor("arm64")
	if !ok {
		t.Fatal("no emulator for arm64")
	}
	deb := strings.Split(strings.TrimSpace(string(data)), ":")
	ours := strings.Split(b.registerLine(), ":")
	if len(deb) != 8 || len(ours) != 8 {
		t.Fatalf("register lines: %q and %q", data, b.registerLine())
	}
	for i, field := range []string{"", "name", "type", "offset", "magic", "mask"} {
		if deb[i] != ours[i] {
			t.Errorf("%s: Debian has %q, we have %q", field, deb[i], ours[i])
		}
	}
	if ours[6] != "/usr/bin/qemu-aarch64-static" || ours[7] != "F" {
		t.Errorf("interpreter and flags %q, %q", ours[6], ours[7])
	}
	if _, ok := qemuBinfmtFor("s390x"); ok {
		t.Errorf("s390x has an emulator but the test knows none")
	}
}

func TestRequireQemuBinfmt(t *testing.T) {
	t.Parallel()
	// Concurrent calls, as from several test processes, all succeed.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := qemuBinfmtFor("arm64")
			if err := registerBinfmt(BinfmtMiscDir, b); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	RequireQemuBinfmt(t, "arm64")
	if err := checkBinfmtEntry(filepath.Join(BinfmtMiscDir, "qemu-aarch64")); err != nil {
		t.Fatal(err)
	}
	// registerBinfmt relies on the kernel refusing a second handler of the
	// same name with EEXIST.
	b, _ := qemuBinfmtFor("arm64")
	if err := writeRegister(filepath.Join(BinfmtMiscDir, "register"), b.registerLine()); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("registering qemu-aarch64 again: %v, want EEXIST", err)
	}
}
