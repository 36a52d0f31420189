//go:build linux

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Main runs the sandbox's re-executed children: when the process is one
// (argv[0] is "kiln-sandbox"), Main does its work and exits; otherwise it
// returns at once. Call it first thing in main, and in TestMain of tests
// that use Run.
func Main() {
	if len(os.Args) != 3 || os.Args[0] != argv0 {
		return
	}
	role, phase := os.Args[1], os.Args[2]
	if phase == phaseMap && role != roleInner {
		// Wait for newuidmap, then re-execute: only a process that execs
		// after its map is written has capabilities in its namespace.
		var b [1]byte
		if n, _ := unix.Read(3, b[:]); n != 1 || b[0] != 'g' {
			os.Exit(125)
		}
		err := unix.Exec("/proc/self/exe", []string{argv0, role, phaseRun}, os.Environ())
		fmt.Fprintf(os.Stderr, "sandbox: re-execute %s: %v\n", role, err)
		os.Exit(125)
	}
	cfg := os.NewFile(3, "config")
	unix.CloseOnExec(3)
	var err error
	switch role {
	case roleHelper:
		os.Exit(helperMain(cfg))
	case roleInner:
		innerMain(cfg) // does not return
	case roleDiff:
		var c diffConfig
		if err = decode(cfg, &c); err == nil {
			err = diffMain(c, os.Stdout)
		}
	case roleUnpack:
		var c unpackConfig
		if err = decode(cfg, &c); err == nil {
			err = unpackMain(c, os.Stdin)
		}
	case roleRemove:
		var c removeConfig
		if err = decode(cfg, &c); err == nil {
			err = os.RemoveAll(c.Path)
		}
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func decode(r io.Reader, v any) error {
	if err := json.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	return nil
}

// setupError is a failure of one kind (kindSetup, ...).
type setupError struct {
	kind string
	err  error
}

func (e *setupError) Error() string { return e.err.Error() }

func fail(kind string, format string, args ...any) error {
	return &setupError{kind, fmt.Errorf(format, args...)}
}

// helperMain is pid 1 of the outer namespaces: it mounts the overlay,
// starts the inner child in a nested pid and mount namespace, waits for it
// and reports its status on fd 4.
func helperMain(cfgFile *os.File) int {
	status := os.NewFile(4, "status")
	unix.CloseOnExec(4)
	st := helperStatus{}
	var cfg helperConfig
	err := decode(cfgFile, &cfg)
	if err == nil {
		st.Exit, st.Signal, err = helperRun(cfg)
	}
	if err != nil {
		st.Kind, st.Error = kindSetup, err.Error()
		var se *setupError
		if errors.As(err, &se) {
			st.Kind = se.kind
		}
	}
	json.NewEncoder(status).Encode(st)
	return 0
}

func helperRun(cfg helperConfig) (exit, signal int, err error) {
	runtime.LockOSThread() // the inner child's parent-death signal follows this thread
	unix.Setgroups(nil)    // allowed only with a newgidmap map; harmless otherwise
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return 0, 0, fail(kindUserns, "make mounts private in the new mount namespace: %v", err)
	}
	if err := unix.Sethostname([]byte("sandbox")); err != nil {
		return 0, 0, fail(kindUserns, "set the host name in the new UTS namespace: %v", err)
	}
	if !cfg.Network {
		if err := loopbackUp(); err != nil {
			return 0, 0, fail(kindSetup, "bring up lo: %v", err)
		}
	}
	if err := mountOverlay(cfg.Lowers, cfg.Upper, cfg.Work, cfg.Root); err != nil {
		return 0, 0, err
	}
	if cfg.Binfmt != "" {
		// The inner child and the command are in this user namespace:
		// they see this instance, not the host's.
		fd, err := registerPrivate(cfg.Binfmt)
		if err != nil {
			return 0, 0, err
		}
		defer unix.Close(fd)
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	inner := exec.Command("/proc/self/exe")
	inner.Args = []string{argv0, roleInner, phaseRun}
	inner.Env = []string{}
	inner.Stdout, inner.Stderr = os.Stdout, os.Stderr
	inner.ExtraFiles = []*os.File{cfgR, errW}
	inner.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	err = inner.Start()
	cfgR.Close()
	errW.Close()
	if err != nil {
		return 0, 0, fail(kindSetup, "start the nested pid namespace: %v", err)
	}
	json.NewEncoder(cfgW).Encode(innerConfig{Root: cfg.Root, Command: cfg.Command, Env: cfg.Env, Dir: cfg.Dir, Network: cfg.Network})
	cfgW.Close()
	msg, _ := io.ReadAll(errR) // empty once the command is exec'd
	inner.Wait()
	if len(msg) > 0 {
		kind, text, _ := strings.Cut(string(msg), "\x00")
		return 0, 0, fail(kind, "%s", text)
	}
	ws := inner.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 0, int(ws.Signal()), nil
	}
	return ws.ExitStatus(), 0, nil
}

// loopbackUp brings up lo in the new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// mountOverlay mounts the overlay of lowers (bottom first) and upper at
// target with the new mount API: one lowerdir+ per layer has no length
// limit (Linux 6.8+); older kernels get the classic colon-separated
// option, which must fit in a page.
func mountOverlay(lowers []string, upper, work, target string) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fail(kindOverlay, "open overlayfs (fsopen needs Linux 5.2+, overlay in a user namespace 5.11+): %v", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetFlag(fsfd, "userxattr"); err != nil {
		return fail(kindOverlay, "overlayfs refused the userxattr option (%v%s): the kernel is too old, the rootless sandbox needs Linux 5.11+", err, fsLog(fsfd))
	}
	plus := true
	for i := len(lowers) - 1; i >= 0; i-- {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", lowers[i]); err != nil {
			if i == len(lowers)-1 && errors.Is(err, unix.EINVAL) {
				plus = false
				break
			}
			return fail(kindOverlay, "overlayfs: lower layer %s: %v%s", lowers[i], err, fsLog(fsfd))
		}
	}
	if !plus {
		var parts []string
		for i := len(lowers) - 1; i >= 0; i-- {
			parts = append(parts, strings.NewReplacer(`\`, `\\`, ":", `\:`, ",", `\,`).Replace(lowers[i]))
		}
		opt := strings.Join(parts, ":")
		if len(opt) >= os.Getpagesize()-1 {
			return fail(kindOverlay, "overlayfs: %d lower layers make a lowerdir option of %d bytes, more than a page: stacking this many needs Linux 6.8+ (lowerdir+)", len(lowers), len(opt))
		}
		if err := unix.FsconfigSetString(fsfd, "lowerdir", opt); err != nil {
			return fail(kindOverlay, "overlayfs: lowerdir: %v%s", err, fsLog(fsfd))
		}
	}
	for _, kv := range [][2]string{{"upperdir", upper}, {"workdir", work}} {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return fail(kindOverlay, "overlayfs: %s %s: %v%s", kv[0], kv[1], err, fsLog(fsfd))
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fail(kindOverlay, "mount overlayfs (upper %s, work %s, %d lower layers) with userxattr in a user namespace: %v%s: it needs Linux 5.11+, and upper and work on one file system that supports user xattrs", upper, work, len(lowers), err, fsLog(fsfd))
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fail(kindOverlay, "mount overlayfs: %v%s", err, fsLog(fsfd))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fail(kindOverlay, "attach overlayfs at %s: %v", target, err)
	}
	return nil
}

// fsLog returns the kernel's messages queued on a file system context.
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 16 {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " [kernel: " + strings.Join(msgs, "; ") + "]"
}

// innerConfig is what the helper sends the inner child.
type innerConfig struct {
	Root    string
	Command []string
	Env     []string
	Dir     string
	Network bool
}

// innerMain is pid 1 of the nested pid namespace: it mounts /proc (which
// must be mounted from inside the namespace it shows), /dev, /tmp and, with
// the network, resolv.conf and hosts; pivots into the overlay; and execs the
// command, which so becomes pid 1. Failures go to fd 4, which closes on
// exec.
func innerMain(cfgFile *os.File) {
	unix.CloseOnExec(4)
	errf := os.NewFile(4, "errors")
	report := func(err error) {
		kind := kindSetup
		var se *setupError
		if errors.As(err, &se) {
			kind = se.kind
		}
		fmt.Fprintf(errf, "%s\x00%v", kind, err)
		os.Exit(127)
	}
	var cfg innerConfig
	if err := decode(cfgFile, &cfg); err != nil {
		report(err)
	}
	if err := innerSetup(cfg); err != nil {
		report(err)
	}
	env := cfg.Env
	pathVar := DefaultPath
	hasPath := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar, hasPath = v, true
		}
	}
	if !hasPath {
		env = append(env[:len(env):len(env)], "PATH="+DefaultPath)
	}
	prog, err := lookPath(cfg.Command[0], pathVar)
	if err != nil {
		report(fail(kindExec, "%v", err))
	}
	closeExtraFDs()
	err = unix.Exec(prog, cfg.Command, env)
	report(fail(kindExec, "exec %s: %v", prog, err))
}

// lookPath finds prog in the colon-separated list dirs, as execvp does.
func lookPath(prog, dirs string) (string, error) {
	if strings.Contains(prog, "/") {
		return prog, nil
	}
	for _, d := range strings.Split(dirs, ":") {
		if d == "" {
			d = "."
		}
		p := path.Join(d, prog)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s", prog, dirs)
}

// closeExtraFDs marks every descriptor above 2 close-on-exec, so that the
// command inherits only its standard streams.
func closeExtraFDs() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
