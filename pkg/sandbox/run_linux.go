//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// argv0 marks a re-executed child (see Main).
const argv0 = "kiln-sandbox"

// Roles of the re-executed children.
const (
	roleHelper = "helper" // pid 1 of the outer namespaces: mounts the overlay, starts roleInner
	roleInner  = "inner"  // pid 1 of the nested pid namespace: mounts /proc and /dev, pivots, execs the command
	roleDiff   = "diff"   // reads an upper directory inside the user namespace
	roleRemove = "rm"     // removes a tree inside the user namespace
	roleUnpack = "unpack" // extracts a layer inside the user namespace
)

// Phases of a child in a user namespace: phaseMap waits for newuidmap and
// re-executes itself, phaseRun does the work.
const (
	phaseMap = "map"
	phaseRun = "run"
)

// helperConfig is what Run sends the helper.
type helperConfig struct {
	Lowers  []string
	Upper   string
	Work    string // overlay work directory
	Root    string // overlay mount point
	Command []string
	Env     []string
	Dir     string
	Network bool
	// Binfmt is the line the helper writes to the register file of the
	// sandbox's own binfmt_misc instance; empty: none is mounted.
	Binfmt string
}

// helperStatus is what the helper sends back.
type helperStatus struct {
	Exit   int
	Signal int
	Kind   string // non-empty for a setup failure: kindUserns, kindOverlay, kindSetup or kindExec
	Error  string
}

// Kinds of setup failures.
const (
	kindUserns  = "userns"
	kindOverlay = "overlay"
	kindSetup   = "setup"
	kindExec    = "exec"
	kindBinfmt  = "binfmt"
)

// Run runs cfg.Command in the sandbox and returns when it and everything
// it started have exited. A command that fails returns an *ExitError with
// its status and the last lines of its output; a sandbox that cannot be
// set up returns an error naming the fix.
func Run(ctx context.Context, cfg Config) (Result, error) {
	res, err := run(ctx, cfg)
	var ee *ExitError
	if err != nil && !errors.As(err, &ee) && ctx.Err() == nil && InContainer() {
		if advice := containerAdvice(err.Error()); advice != "" {
			err = &containerError{err: err, advice: advice}
		}
	}
	return res, err
}

func run(ctx context.Context, cfg Config) (Result, error) {
	if len(cfg.Command) == 0 {
		return Result{}, errors.New("sandbox: no command")
	}
	if cfg.Upper == "" || cfg.Work == "" {
		return Result{}, errors.New("sandbox: Upper and Work must be set")
	}
	res := Result{IDs: cfg.IDs}
	if res.IDs.IsZero() {
		var warn string
		res.IDs, warn = HostIDMap()
		if warn != "" {
			res.Warnings = append(res.Warnings, warn)
		}
	}
	hc := helperConfig{Command: cfg.Command, Env: cfg.Env, Dir: cfg.Dir, Network: cfg.Network}
	if cfg.Platform.Architecture != "" {
		ex := HowToRun(cfg.Platform, cfg.QEMU)
		switch ex.Mode {
		case ExecNone:
			return res, fmt.Errorf("sandbox: cannot run programs for %s here: %s", platformString(cfg.Platform), ex.Reason)
		case ExecQEMU:
			hc.Binfmt = elfArchs[cfg.Platform.Architecture].registerLine(ex.QEMU, binfmtFlags)
		}
	}
	var err error
	for _, l := range cfg.Lowers {
		a, err := filepath.Abs(l)
		if err != nil {
			return res, err
		}
		hc.Lowers = append(hc.Lowers, a)
	}
	if hc.Upper, err = filepath.Abs(cfg.Upper); err != nil {
		return res, err
	}
	work, err := filepath.Abs(cfg.Work)
	if err != nil {
		return res, err
	}
	hc.Work, hc.Root = filepath.Join(work, "work"), filepath.Join(work, "root")
	dirs := []string{hc.Work, hc.Root}
	if len(hc.Lowers) == 0 { // overlayfs needs a lower layer
		empty := filepath.Join(work, "empty")
		hc.Lowers, dirs = []string{empty}, append(dirs, empty)
	}
	defer emptyDir(work)
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o700); err != nil {
			return res, fmt.Errorf("sandbox: prepare work directory: %w", err)
		}
	}
	var su, sw unix.Stat_t
	if err := unix.Stat(hc.Upper, &su); err != nil {
		return res, fmt.Errorf("sandbox: upper directory: %w", err)
	}
	if err := unix.Stat(work, &sw); err != nil {
		return res, fmt.Errorf("sandbox: work directory: %w", err)
	}
	if su.Dev != sw.Dev {
		return res, fmt.Errorf("sandbox: upper directory %s and work directory %s are on different file systems: overlayfs needs them on one", hc.Upper, work)
	}
	if hc.Dir == "" {
		hc.Dir = "/"
	}

	runCtx := ctx
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	tail := &tailBuffer{max: 64 << 10}
	stdout, stderr := io.Writer(tail), io.Writer(tail)
	if cfg.Stdout != nil {
		stdout = io.MultiWriter(cfg.Stdout, tail)
	}
	if cfg.Stderr != nil {
		stderr = io.MultiWriter(cfg.Stderr, tail)
	}
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
	if !cfg.Network {
		flags |= unix.CLONE_NEWNET
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		return res, err
	}
	defer stR.Close()
	// The helper's parent-death signal fires when the thread that started
	// it exits: keep this goroutine on its thread until the helper is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd, err := spawn(runCtx, spawnOpts{
		role: roleHelper, ids: res.IDs, flags: flags, payload: hc,
		extra: []*os.File{stW}, stdout: stdout, stderr: stderr,
	})
	stW.Close()
	if err != nil {
		return res, err
	}
	raw, _ := io.ReadAll(stR)
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return res, fmt.Errorf("sandbox: run %q: %w", cfg.Command, ctx.Err())
	}
	if runCtx.Err() != nil {
		return res, &ExitError{Command: cfg.Command, Code: -1, TimedOut: true, Timeout: cfg.Timeout, Tail: tail.lines(20)}
	}
	var st helperStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return res, fmt.Errorf("sandbox: the helper died without a status (%v); its output:\n%s", waitErr, tail.lines(20))
	}
	switch st.Kind {
	case "":
	case kindUserns:
		return res, fmt.Errorf("sandbox: %s: %s", st.Error, usernsFix())
	case kindOverlay, kindBinfmt:
		return res, fmt.Errorf("sandbox: %s", st.Error)
	case kindExec:
		return res, fmt.Errorf("sandbox: run %q: %s", cfg.Command, st.Error)
	default:
		return res, fmt.Errorf("sandbox: set up for %q: %s", cfg.Command, st.Error)
	}
	if st.Exit != 0 || st.Signal != 0 {
		code := st.Exit
		if st.Signal != 0 {
			code = -1
		}
		return res, &ExitError{Command: cfg.Command, Code: code, Signal: st.Signal, Tail: tail.lines(20)}
	}
	return res, nil
}

// spawnOpts configures spawn.
type spawnOpts struct {
	role    string
	ids     IDMap
	flags   uintptr // namespaces besides the user namespace
	payload any     // sent as JSON on the child's fd 3
	extra   []*os.File
	stdout  io.Writer
	stderr  io.Writer
}

// spawn starts /proc/self/exe as role in a new user namespace (and o.flags'
// namespaces) with o.ids, and sends it o.payload on fd 3; o.extra become
// fds 4 and up. A single-id map is written by Go between clone and exec;
// a larger one by newuidmap and newgidmap once the child runs, after which
// the child re-executes itself to gain its capabilities.
func spawn(ctx context.Context, o spawnOpts) (*exec.Cmd, error) {
	return spawnStdin(ctx, o, nil)
}

// spawnStdin is spawn with stdin as the child's standard input.
func spawnStdin(ctx context.Context, o spawnOpts, stdin io.Reader) (*exec.Cmd, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer cfgW.Close()
	single := o.ids.single()
	phase := phaseRun
	if !single {
		phase = phaseMap
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{argv0, o.role, phase}
	cmd.Env = []string{}
	cmd.ExtraFiles = append([]*os.File{cfgR}, o.extra...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, o.stdout, o.stderr
	cmd.WaitDelay = 10 * time.Second
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWUSER | o.flags,
		Pdeathsig:  syscall.SIGKILL,
		// A new session has no controlling terminal: the command cannot
		// open the caller's /dev/tty (and push keystrokes into its shell
		// with TIOCSTI), and the terminal's ^C reaches only the caller,
		// which then cancels the run.
		Setsid: true,
	}
	if single {
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: o.ids.UIDs[0].Inside, HostID: o.ids.UIDs[0].Host, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: o.ids.GIDs[0].Inside, HostID: o.ids.GIDs[0].Host, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
	err = cmd.Start()
	cfgR.Close()
	if err != nil {
		return nil, fmt.Errorf("sandbox: cannot create a user namespace: %w: %s", err, usernsFix())
	}
	fail := func(err error) (*exec.Cmd, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	if !single {
		pid := strconv.Itoa(cmd.Process.Pid)
		for _, m := range []struct {
			tool string
			rs   []IDRange
		}{{"newuidmap", o.ids.UIDs}, {"newgidmap", o.ids.GIDs}} {
			args := []string{pid}
			for _, r := range m.rs {
				args = append(args, strconv.Itoa(r.Inside), strconv.Itoa(r.Host), strconv.Itoa(r.Size))
			}
			out, err := exec.CommandContext(ctx, m.tool, args...).CombinedOutput()
			if err != nil {
				hint := fmt.Sprintf("check the ranges in /etc/subuid and /etc/subgid, and that %s is setuid root, as Debian's uidmap package installs it", m.tool)
				if apparmorRestricts() {
					hint = usernsFix()
				}
				return fail(fmt.Errorf("sandbox: %s %s: %w: %s (%s)", m.tool, strings.Join(args, " "), err, bytes.TrimSpace(out), hint))
			}
		}
		if _, err := cfgW.Write([]byte{'g'}); err != nil {
			return fail(fmt.Errorf("sandbox: start %s: %w", o.role, err))
		}
	}
	if err := json.NewEncoder(cfgW).Encode(o.payload); err != nil {
		return fail(fmt.Errorf("sandbox: start %s: %w", o.role, err))
	}
	return cmd, nil
}

// readSysctl returns the value of the sysctl file p, or "".
func readSysctl(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

// apparmorRestricts reports whether AppArmor denies capabilities in
// unprivileged user namespaces (Ubuntu 24.04's default).
func apparmorRestricts() bool {
	return readSysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1"
}

// usernsFix says why user namespaces may be unavailable and what to do.
func usernsFix() string {
	read := readSysctl
	switch {
	case read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
		return "unprivileged user namespaces are disabled: run `sysctl -w kernel.unprivileged_userns_clone=1` as root (and set it in /etc/sysctl.d)"
	case read("/proc/sys/user/max_user_namespaces") == "0":
		return "user namespaces are disabled: run `sysctl -w user.max_user_namespaces=15000` as root (and set it in /etc/sysctl.d)"
	case apparmorRestricts():
		return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1, the default on Ubuntu 24.04): " +
			"install an AppArmor profile for the kiln binary that allows `userns,` (see /etc/apparmor.d/ for examples), or run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` as root"
	}
	return "the sandbox needs unprivileged user namespaces (Linux 5.11+, with kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0, and no seccomp or AppArmor policy denying them)"
}

// emptyDir removes dir's contents, making directories writable first (the
// overlay's work directory has mode 000). Errors are ignored: what remains
// is owned by ids only the user namespace can remove (see RemoveAll).
func emptyDir(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if d != nil && d.IsDir() {
				os.Chmod(q, 0o700)
			}
			return nil
		})
		os.RemoveAll(p)
	}
}

// UsernsAvailable reports whether the kernel's settings let an
// unprivileged user create the user namespaces Run needs, from the sysctls
// that commonly forbid them (it starts nothing, so a seccomp policy that
// denies them is only found by Run). When the answer is no, reason says
// why and how to fix it.
func UsernsAvailable() (ok bool, reason string) {
	if readSysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0" ||
		readSysctl("/proc/sys/user/max_user_namespaces") == "0" || apparmorRestricts() {
		return false, usernsFix()
	}
	return true, ""
}
