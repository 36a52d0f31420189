package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// tb is the smallest testing.TB that lets this program (not a test) use
// internal/testenv: logs go to stderr, Fatal and Skip end the benchmark (a
// skipped prerequisite is a failure here), TempDir and Cleanup work as in a
// test. The embedded nil TB only supplies the unexported method; every
// exported one is defined below.
type tb struct {
	testing.TB

	ctx context.Context

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// fatal is the panic value of tb.FailNow, recovered in main.
type fatal struct{}

func newTB(ctx context.Context) *tb { return &tb{ctx: ctx} }

func (t *tb) Helper()                  {}
func (t *tb) Name() string             { return "kiln-bench" }
func (t *tb) Attr(key, value string)   {}
func (t *tb) ArtifactDir() string      { return t.TempDir() }
func (t *tb) Context() context.Context { return t.ctx }
func (t *tb) Output() io.Writer        { return os.Stderr }
func (t *tb) Log(args ...any)          { fmt.Fprintln(os.Stderr, args...) }
func (t *tb) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// internal/testenv logs whole process logs (the registry's access log) on
	// failure: keep them in a file instead of flooding the terminal.
	if len(msg) > 8000 {
		if f, err := os.CreateTemp("", "kiln-bench-log-*.txt"); err == nil {
			_, _ = f.WriteString(msg)
			f.Close()
			msg = msg[:strings.IndexByte(msg+"\n", '\n')] + " ... (" + strconv.Itoa(len(msg)) + " bytes, written to " + f.Name() + ")"
		}
	}
	fmt.Fprintln(os.Stderr, msg)
}
func (t *tb) Fail() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
}
func (t *tb) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}
func (t *tb) FailNow()                          { t.Fail(); panic(fatal{}) }
func (t *tb) Error(args ...any)                 { t.Log(args...); t.Fail() }
func (t *tb) Errorf(format string, args ...any) { t.Logf(format, args...); t.Fail() }
func (t *tb) Fatal(args ...any)                 { t.Log(args...); t.FailNow() }
func (t *tb) Fatalf(format string, args ...any) { t.Logf(format, args...); t.FailNow() }
func (t *tb) Skip(args ...any) {
	t.Log(append([]any{"bench: missing prerequisite:"}, args...)...)
	t.FailNow()
}
func (t *tb) Skipf(format string, args ...any) {
	t.Logf("bench: missing prerequisite: "+format, args...)
	t.FailNow()
}
func (t *tb) SkipNow()                 { t.FailNow() }
func (t *tb) Skipped() bool            { return false }
func (t *tb) Setenv(key, value string) { _ = os.Setenv(key, value) }
func (t *tb) Chdir(dir string) {
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
}

func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// TempDir returns a new directory removed by runCleanups.
func (t *tb) TempDir() string {
	dir, err := os.MkdirTemp("", "kiln-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// runCleanups runs the registered cleanups, last first, as testing does.
func (t *tb) runCleanups() {
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(fatal); !ok {
						fmt.Fprintf(os.Stderr, "bench: cleanup panicked: %v\n", r)
					}
				}
			}()
			f()
		}()
	}
}
