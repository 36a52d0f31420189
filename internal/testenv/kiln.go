package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// KilnPackage is the import path of the kiln command, relative to the
// repository root.
const KilnPackage = "./cmd/kiln"

// KilnBinary builds ./cmd/kiln once per source state and returns the path of
// the binary (see GoBinary).
func KilnBinary(t testing.TB) string {
	t.Helper()
	return GoBinary(t, KilnPackage)
}

// GoBinary builds the main package pkg (a path relative to the repository
// root, e.g. "./cmd/kiln") into <repo root>/.cache/testenv/bin, keyed by a
// hash of the Go toolchain version, every .go file, go.mod and go.sum of the
// repository, so that parallel test packages build it only once (under a
// file lock) and unchanged sources are not rebuilt. The binary is statically
// linked (CGO_ENABLED=0) and executable by every user.
func GoBinary(t testing.TB, pkg string) string {
	t.Helper()
	root := RepoRoot(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		if _, err2 := os.Stat("/usr/local/go/bin/go"); err2 == nil {
			goBin = "/usr/local/go/bin/go"
		} else {
			skipOrFail(t, "go toolchain not found on PATH or in /usr/local/go/bin")
		}
	}
	sum, err := sourceHash(root, pkg)
	if err != nil {
		t.Fatalf("hashing Go sources: %v", err)
	}
	binDir := filepath.Join(CacheDir(t), "bin")
	must(t, os.MkdirAll(binDir, 0o755))
	base := filepath.Base(filepath.Clean(pkg))
	out := filepath.Join(binDir, base+"-"+sum[:16])
	if fileExists(out) {
		return out
	}
	err = withFileLock(filepath.Join(binDir, base+".lock"), func() error {
		if fileExists(out) {
			return nil
		}
		tmp := out + ".tmp-" + randomHex(4)
		defer os.Remove(tmp)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", tmp, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		return os.Rename(tmp, out)
	})
	if err != nil {
		t.Fatalf("building %s: %v", pkg, err)
	}
	return out
}

// sourceHash hashes the toolchain version, pkg, go.mod, go.sum and every .go
// file under root (skipping hidden directories such as .git and .cache).
func sourceHash(root, pkg string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s/%s\x00", runtime.Version(), pkg, runtime.GOOS, runtime.GOARCH)
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasSuffix(p, ".go") || rel == "go.mod" || rel == "go.sum" {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for _, rel := range files {
		f, err := os.Open(filepath.Join(root, rel))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00", rel)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// RunOptions configures RunKiln and RunAsNobody.
type RunOptions struct {
	// Dir is the working directory; it must be usable by uid 65534 (see
	// UserDir). Empty means a fresh UserDir.
	Dir string
	// Home is HOME; empty means a fresh UserDir. Reuse one across runs to
	// share kiln's cache between them.
	Home string
	// CacheHome is XDG_CACHE_HOME; empty means Home/.cache.
	CacheHome string
	// Env holds extra "KEY=VALUE" variables (e.g. SOURCE_DATE_EPOCH, TZ),
	// added after (and so overriding) the defaults.
	Env []string
	// Umask, e.g. "077", is set with the shell's umask before exec; empty
	// keeps the test process's umask.
	Umask string
	// Stdin is the standard input; nil means /dev/null.
	Stdin io.Reader
	// Timeout bounds the run; zero means 10 minutes. On timeout the whole
	// process group is killed and Result.Code is -1.
	Timeout time.Duration
	// As is the user to run as (when the test runs as root); nil means
	// nobody. Fresh Dir and Home directories are owned by it.
	As *Account
}

// Result is the outcome of a command run by RunKiln or RunAsNobody.
type Result struct {
	Stdout, Stderr string
	// Code is the exit status; -1 when killed by a signal or timed out.
	Code int
}

// String formats the result for test failure messages.
func (r Result) String() string {
	return fmt.Sprintf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// RunKiln runs the kiln binary (KilnBinary) with args as the unprivileged
// user nobody (see RunAsNobody). A non-zero exit is reported in Result, not
// as a test failure.
func RunKiln(t testing.TB, opts RunOptions, args ...string) Result {
	t.Helper()
	return RunAsNobody(t, opts, append([]string{KilnBinary(t)}, args...)...)
}

// RunAsNobody runs argv as uid/gid 65534 (or opts.As) with no
// supplementary groups (via setpriv) when the test runs as root, or as the current user otherwise. The
// environment is clean: PATH, HOME, XDG_CACHE_HOME, USER, LOGNAME, LANG=C.UTF-8
// and opts.Env; nothing else of the test's environment leaks in. The test
// fails only if the command cannot be started.
func RunAsNobody(t testing.TB, opts RunOptions, argv ...string) Result {
	t.Helper()
	if len(argv) == 0 {
		t.Fatal("RunAsNobody: no command")
	}
	acct := Nobody()
	if opts.As != nil {
		acct = *opts.As
	}
	if opts.Dir == "" {
		opts.Dir = AccountDir(t, acct)
	}
	if opts.Home == "" {
		opts.Home = AccountDir(t, acct)
	}
	if opts.CacheHome == "" {
		opts.CacheHome = filepath.Join(opts.Home, ".cache")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Minute
	}
	var full []string
	if os.Geteuid() == 0 {
		Require(t, "setpriv")
		full = append(full, "setpriv", fmt.Sprintf("--reuid=%d", acct.UID), fmt.Sprintf("--regid=%d", acct.GID), "--clear-groups", "--")
	}
	if opts.Umask != "" {
		full = append(full, "/bin/sh", "-c", `umask "$0" && exec "$@"`, opts.Umask)
	}
	full = append(full, argv...)

	ctx, cancel := context.WithTimeout(t.Context(), opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Dir = opts.Dir
	cmd.Env = append([]string{
		"PATH=" + ParentPath,
		"HOME=" + opts.Home,
		"XDG_CACHE_HOME=" + opts.CacheHome,
		"USER=" + acct.Name,
		"LOGNAME=" + acct.Name,
		"LANG=C.UTF-8",
	}, opts.Env...)
	cmd.Stdin = opts.Stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		t.Fatalf("running %q: %v", argv, err)
	}
	if ctx.Err() != nil {
		res.Code = -1
		res.Stderr += fmt.Sprintf("\n[testenv: killed after %s]", opts.Timeout)
	}
	return res
}

// UserDir returns a new empty directory owned by uid/gid 65534 (when the
// test runs as root), mode 0755, in a world-traversable location, removed
// when the test ends.
func UserDir(t testing.TB) string {
	t.Helper()
	return AccountDir(t, Nobody())
}

// AccountDir is UserDir for the user acct.
func AccountDir(t testing.TB, acct Account) string {
	t.Helper()
	dir := PublicDir(t)
	if os.Geteuid() == 0 {
		must(t, os.Chown(dir, acct.UID, acct.GID))
	}
	return dir
}

// ChownTree changes the owner of dir and everything below it (not following
// symlinks) to uid:gid, e.g. to hand test fixtures to RunKiln's user.
func ChownTree(t testing.TB, dir string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatalf("chown -R %d:%d %s: %v", uid, gid, dir, err)
	}
}
