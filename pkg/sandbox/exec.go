package sandbox

// ExecMode is how the sandbox runs a platform's programs (see HowToRun).
type ExecMode int

// The ways programs of a platform run in the sandbox.
const (
	// ExecNone: they cannot run here; Execution.Reason says why and how
	// to fix it.
	ExecNone ExecMode = iota
	// ExecNative: the kernel runs them itself (the host's architecture,
	// or a 32-bit one the host's kernel runs).
	ExecNative
	// ExecHostHandler: the host's binfmt_misc handler for them, which
	// has the F flag, runs them (through its interpreter).
	ExecHostHandler
	// ExecQEMU: Run registers the static qemu-user interpreter
	// Execution.QEMU for them in a binfmt_misc instance of the sandbox's
	// own user namespace (Linux 6.7+); the host is unaffected.
	ExecQEMU
)

// Execution is HowToRun's answer for one platform.
type Execution struct {
	// Mode is how the programs run.
	Mode ExecMode
	// Handler names the host's binfmt_misc handler (ExecHostHandler).
	Handler string
	// QEMU is the static qemu-user interpreter the sandbox registers
	// (ExecQEMU).
	QEMU string
	// Reason says why the programs cannot run and how to fix it
	// (ExecNone).
	Reason string
}

// OK reports whether the programs run.
func (e Execution) OK() bool { return e.Mode != ExecNone }

// String says how the programs run, for a log line: "natively",
// "under the host's binfmt_misc handler qemu-aarch64", ...
func (e Execution) String() string {
	switch e.Mode {
	case ExecNative:
		return "natively"
	case ExecHostHandler:
		return "under the host's binfmt_misc handler " + e.Handler
	case ExecQEMU:
		return "under " + e.QEMU + ", registered in the sandbox's own binfmt_misc"
	}
	return "not at all: " + e.Reason
}
