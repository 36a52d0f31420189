package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testenv"
)

// TestE2ESignalWhileReadingSpec (H3): kiln, run as nobody with -f naming a
// FIFO that is open for writing but never written, is blocked reading its
// spec; the first SIGINT or SIGTERM stops it with 130 or 143.
func TestE2ESignalWhileReadingSpec(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "setpriv")
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{
		{syscall.SIGINT, exitSIGINT},
		{syscall.SIGTERM, exitSIGTERM},
	} {
		t.Run(signalName(tc.sig), func(t *testing.T) {
			dir := testenv.UserDir(t)
			fifo := filepath.Join(dir, "kiln.yaml")
			if err := syscall.Mkfifo(fifo, 0o666); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(fifo, testenv.NobodyUID, testenv.NobodyGID); err != nil {
				t.Fatal(err)
			}
			cmd, stderr := startKilnAsNobody(t, dir, testenv.UserDir(t), "name", "-f", fifo)

			// Opening the FIFO for writing without blocking succeeds once
			// kiln has it open for reading, which it does after it started
			// watching for signals. Kept open and never written, the FIFO
			// leaves kiln's read blocked.
			w := openWriterOnceRead(t, fifo, stderr)
			defer w.Close()

			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			code := waitExit(t, cmd, 10*time.Second)
			stderr.drain(t, 10*time.Second)
			if code != tc.code {
				t.Errorf("exit code %d after %v while reading the spec, want %d\n%s", code, tc.sig, tc.code, stderr.text())
			}
			if !strings.Contains(stderr.text(), "interrupted") {
				t.Errorf("stderr does not say kiln was interrupted:\n%s", stderr.text())
			}
		})
	}
}

// openWriterOnceRead opens fifo for writing as soon as a reader has it
// open, failing if kiln exits (its stderr closes) or a minute passes first.
func openWriterOnceRead(t *testing.T, fifo string, stderr *stderrLines) *os.File {
	t.Helper()
	deadline := time.After(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			return f
		}
		if !errors.Is(err, syscall.ENXIO) {
			t.Fatalf("open %s for writing: %v", fifo, err)
		}
		select {
		case _, ok := <-stderr.seen:
			if !ok {
				t.Fatalf("kiln exited before reading its spec:\n%s", stderr.text())
			}
		case <-tick.C:
		case <-deadline:
			t.Fatalf("kiln never opened its spec for reading:\n%s", stderr.text())
		}
	}
}
