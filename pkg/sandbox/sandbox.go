// Package sandbox runs a command rootless and daemonless in an overlay of
// read-only layer directories, and writes what it changed as a
// deterministic OCI layer tar.
//
// kiln re-executes itself (/proc/self/exe) into new user, mount, pid, IPC,
// UTS and (unless Config.Network) network namespaces; no runc, podman, bwrap
// or buildah is involved. A program using this package must call Main first
// thing in its main function (and in TestMain), so that the re-executed
// child takes its role.
//
// Inside, the command runs as uid 0 in a nested pid namespace, in a
// pivot_root into a kernel overlayfs (mounted with userxattr, Linux 5.11+)
// of the lower layers and the upper directory, with a fresh /proc, a
// minimal /dev, /tmp on tmpfs, and only lo up in a private network
// namespace. When the caller has a subordinate id range in /etc/subuid and
// /etc/subgid and the setuid newuidmap/newgidmap are installed, the
// sandbox maps the whole range, so that chown works; otherwise it maps only
// uid 0 to the caller and says so in Result.Warnings.
//
// A typical use: Run a command over the image's unpacked layers, then
// WriteDiff its upper directory into a new layer, then RemoveAll the upper
// directory (its files may belong to subordinate ids the caller cannot
// remove).
//
// Layer directories use overlayfs's own format: a whiteout is a character
// device 0:0 and an opaque directory carries user.overlay.opaque=y. Their
// owners must be host ids of the map (see IDMap.ToHost): files owned by
// unmapped ids cannot be changed inside the sandbox.
package sandbox

import (
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FormatVersion names what a command sees in the sandbox (its mounts,
// devices and id map conventions) and how WriteDiff writes what it
// changed. Callers put it in the cache key of a layer built here: bump it
// whenever either changes.
const FormatVersion = "kiln-sandbox-v1"

// Config describes one command to run.
type Config struct {
	// Lowers are the unpacked layer directories, bottom first. They are
	// mounted read-only and never changed.
	Lowers []string
	// Upper is an empty directory the command's changes land in, in
	// overlayfs's format (read it with WriteDiff).
	Upper string
	// Work is an empty directory on the same file system as Upper, for the
	// overlay's work directory and mount point. Run empties it on return
	// (after a killed run, what the caller cannot remove goes with
	// RemoveAll).
	Work string
	// Command is the program and its arguments; a program name without a
	// slash is looked up in the PATH of Env inside the sandbox.
	Command []string
	// Env is the command's whole environment ("KEY=VALUE"): nothing of the
	// caller's is passed on, and only a standard PATH (DefaultPath) is
	// added when it has none.
	Env []string
	// Dir is the working directory inside the sandbox; empty means "/".
	// It is created when missing.
	Dir string
	// Network keeps the host's network (and bind-mounts the host's
	// /etc/resolv.conf and /etc/hosts read-only); false gives the command
	// a private network namespace with only lo.
	Network bool
	// Timeout bounds the run; zero means no limit but the context's.
	Timeout time.Duration
	// Stdout and Stderr receive the command's output; nil discards it.
	Stdout, Stderr io.Writer
	// IDs maps ids inside the sandbox to host ids; the zero value means
	// HostIDMap's choice.
	IDs IDMap
	// Platform is the platform of the programs the command runs (its
	// image's); the zero value means the host's. For another, Run
	// decides as HowToRun does and fails, naming the fix, when they
	// cannot run; when QEMU is how, Run registers the interpreter for the
	// platform's ELF programs in a binfmt_misc instance of the sandbox's
	// own user namespace, so that the command and everything it starts
	// run them, and the host is unaffected.
	Platform v1.Platform
	// QEMU is a statically linked qemu-user interpreter for Platform's
	// architecture: set, Run registers it in the sandbox for a foreign
	// Platform even when the host has a handler. Empty means HowToRun's
	// choice.
	QEMU string
}

// Result is the outcome of a successful Run.
type Result struct {
	// IDs is the id map the command ran with: pass it to WriteDiff and
	// RemoveAll.
	IDs IDMap
	// Warnings are things the user should fix, such as a missing
	// subordinate id range.
	Warnings []string
}

// DefaultPath is the PATH a command gets when Config.Env has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ExitError reports a command that failed: it exited non-zero, was killed
// by a signal or ran out of time.
type ExitError struct {
	// Command is the command that failed.
	Command []string
	// Code is the exit status, or -1 when the command was killed.
	Code int
	// Signal is the signal that killed it, or 0.
	Signal int
	// TimedOut is set when the command was killed at Config.Timeout.
	TimedOut bool
	// Timeout is the limit that was exceeded.
	Timeout time.Duration
	// Tail holds the last lines of the command's output.
	Tail string
}

// Error implements error.
func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "command %q ", e.Command)
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, "timed out after %s", e.Timeout)
	case e.Signal != 0:
		fmt.Fprintf(&b, "killed by signal %d", e.Signal)
	default:
		fmt.Fprintf(&b, "exited with status %d", e.Code)
	}
	if e.Tail != "" {
		b.WriteString("; its last output:\n")
		b.WriteString(strings.TrimRight(e.Tail, "\n"))
	}
	return b.String()
}

// DiffOptions configures WriteDiff.
type DiffOptions struct {
	// IDs is the map the command ran with (Result.IDs): files are written
	// with their owners as the command saw them.
	IDs IDMap
	// LowerExists reports whether a path (slash-separated, relative to the
	// image root, e.g. "etc/passwd") exists in the lower layers; whiteouts
	// and opaque markers are written only for such paths. Nil means every
	// path exists. LowerExists builds one from layer directories.
	LowerExists func(path string) bool
	// Epoch is the latest modification time written: later ones are
	// clamped to it (the zero Time means the Unix epoch).
	Epoch time.Time
}

// skipped reports whether the diff leaves out path (relative, slash
// separated): the sandbox's own mount points and the files it provides.
func skipped(path string) bool {
	switch path {
	case "etc/resolv.conf", "etc/hosts":
		return true
	}
	top, _, _ := strings.Cut(path, "/")
	switch top {
	case "proc", "dev", "tmp":
		return true
	}
	return false
}
