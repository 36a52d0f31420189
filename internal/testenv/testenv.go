// Package testenv provides end-to-end test fixtures for kiln: a real
// container registry (optionally with TLS and basic auth), a counting (and
// later fault-injecting) proxy in front of it, a Debian bookworm parent image
// with python3, an isolated podman, skopeo and umoci helpers, a PEP 503/691
// wheel index, and helpers to build and run the kiln binary as an
// unprivileged user.
//
// The package is meant to be imported only from tests. Helpers that need a
// tool that is missing skip the test, except when the environment variable
// CI is "true", in which case they fail it: on CI a missing tool is a broken
// machine, not a reason to silently test less.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// NobodyUID and NobodyGID are the user and group kiln is run as by RunKiln
// (Debian's nobody/nogroup).
const (
	NobodyUID = 65534
	NobodyGID = 65534
)

// InCI reports whether the tests run on CI (environment variable CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Require skips the test when one of the named executables is not on PATH,
// or fails it when running on CI (see InCI).
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		skipOrFail(t, "required tools not found on PATH: %v (install them, e.g. with .ci/run)", missing)
	}
}

// RequireRoot skips the test when not running as root, or fails it on CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "test needs root (uid 0), running as uid %d", os.Geteuid())
	}
}

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

// RepoRoot returns the root of the kiln repository: the nearest directory
// above the working directory that holds a go.mod file.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// CacheDir returns <repo root>/.cache/testenv, creating it. Artifacts in it
// (the parent image rootfs, the kiln binary) are shared by all test packages
// and survive between runs; delete the directory to rebuild them.
func CacheDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), ".cache", "testenv")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating test cache dir: %v", err)
	}
	return dir
}

// withFileLock runs fn while holding an exclusive flock on path, so that
// parallel test processes (go test runs packages in parallel) build a shared
// cache artifact only once.
func withFileLock(path string, fn func() error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening lock file %s: %w", path, err)
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("locking %s: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// syncBuffer is an io.Writer safe for concurrent use that keeps everything
// written to it, for process logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// PublicDir returns a new empty directory, mode 0755, that every user on the
// machine can traverse (unlike t.TempDir, whose parent is 0700 and owned by
// the test's user). It is removed when the test ends.
func PublicDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kiln-testenv-")
	if err != nil {
		t.Fatalf("creating public temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("chmod %s: %v", dir, err)
	}
	return dir
}
