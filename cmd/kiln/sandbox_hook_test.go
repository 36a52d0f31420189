package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestSandboxHook checks that the kiln binary hands a re-executed sandbox
// child (argv[0] "kiln-sandbox") to sandbox.Main before parsing flags: an
// unknown role is refused by the sandbox, not by kiln's usage.
func TestSandboxHook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the kiln binary")
	}
	bin := testenv.KilnBinary(t)
	cmd := exec.Command(bin)
	cmd.Args = []string{"kiln-sandbox", "no-such-role", "run"}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), `sandbox no-such-role: unknown role "no-such-role"`) {
		t.Fatalf("kiln as a sandbox child: %v\n%s", err, out)
	}
}
