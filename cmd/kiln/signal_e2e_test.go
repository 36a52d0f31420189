package main

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testenv"
)

// stderrLines collects a process's stderr and reports lines as they come.
type stderrLines struct {
	mu    sync.Mutex
	lines []string
	seen  chan string
	done  chan struct{} // closed when stderr reaches EOF
}

// drain waits until stderr has reached EOF (every process holding it has
// exited), at most bound, so that text holds the last lines too.
func (s *stderrLines) drain(t *testing.T, bound time.Duration) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(bound):
		t.Errorf("stderr still open %v after kiln exited", bound)
	}
}

func (s *stderrLines) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// startKilnAsNobody starts kiln as uid 65534 (setpriv execs it, so the
// process is kiln itself) and returns it with its stderr.
func startKilnAsNobody(t *testing.T, dir, home string, args ...string) (*exec.Cmd, *stderrLines) {
	t.Helper()
	cmd := exec.Command("setpriv", append([]string{fmt.Sprintf("--reuid=%d", testenv.NobodyUID), fmt.Sprintf("--regid=%d", testenv.NobodyGID), "--clear-groups", "--", testenv.KilnBinary(t)}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + testenv.ParentPath, "HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The pipe is ours, not exec's: cmd.Wait closes a StderrPipe as soon as
	// kiln exits, which can drop its last lines before they are read.
	pipe, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	s := &stderrLines{seen: make(chan string, 1000), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer pipe.Close()
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
			select {
			case s.seen <- sc.Text():
			default: // nobody is watching; text still has it
			}
		}
		close(s.seen)
	}()
	return cmd, s
}

// waitExit waits for cmd, killing it if it outlives the bound, and returns
// its exit code (-1 if killed).
func waitExit(t *testing.T, cmd *exec.Cmd, bound time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(bound):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return -1
	}
}

// leftovers lists temporary files kiln left: anything in the cache's tmp/
// and any .tmp- file or directory under out.
func leftovers(t *testing.T, home, out string) []string {
	t.Helper()
	var found []string
	entries, err := os.ReadDir(filepath.Join(home, ".cache", "kiln", "tmp"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		found = append(found, "cache tmp/"+e.Name())
	}
	_ = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func TestE2ESignals(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	testenv.Require(t, "docker-registry", "setpriv")
	testenv.RequireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	proxy := testenv.NewCountingProxy(t, reg)
	base := proxy.Host + "/" + tinyParent(t, reg)

	// A source tree large enough that building its layer takes a while.
	big := make([]byte, 48<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf("name: sig\nregistry: %s\nbase_image: %s\nsource_root: app\n", proxy.Host, base)
	buildArgs := func(out string) []string {
		return []string{"--registry-stall-timeout", "10m", "--oci-layout", filepath.Join(out, "layout"), "--tarball", filepath.Join(out, "image.tar")}
	}

	for _, tc := range []struct {
		phase string
		sig   syscall.Signal
		code  int
		stall func(r *http.Request, k testenv.RequestKind) bool // the request held to keep kiln in the phase
		line  string                                            // or a stderr line that starts the phase
	}{
		{phase: "resolve", sig: syscall.SIGINT, code: 130, stall: func(r *http.Request, k testenv.RequestKind) bool {
			return k == testenv.KindManifestGet && strings.Contains(r.URL.Path, "tiny/parent")
		}},
		{phase: "layer build", sig: syscall.SIGTERM, code: 143, line: "resolved to", stall: func(r *http.Request, k testenv.RequestKind) bool {
			return k == testenv.KindBlobHead || k == testenv.KindUploadPatch
		}},
		{phase: "push", sig: syscall.SIGINT, code: 130, stall: func(r *http.Request, k testenv.RequestKind) bool {
			return k == testenv.KindUploadPatch
		}},
		{phase: "push", sig: syscall.SIGTERM, code: 143, stall: func(r *http.Request, k testenv.RequestKind) bool {
			return k == testenv.KindManifestPut || k == testenv.KindUploadPatch
		}},
	} {
		t.Run(fmt.Sprintf("%s %v", tc.phase, tc.sig), func(t *testing.T) {
			// New content for every case, so that each has layers to build
			// and blobs to push.
			name := fmt.Sprintf("%s %v", tc.phase, tc.sig)
			dir := writeSpec(t, spec, map[string]string{"app/main.py": fmt.Sprintf("print(%q)\n", name), "app/model.bin": name + string(big)})
			home := testenv.UserDir(t)
			out := testenv.UserDir(t)
			held := make(chan struct{}, 100)
			proxy.SetFault(func(r *http.Request, k testenv.RequestKind, _ int) testenv.Fault {
				if tc.stall(r, k) {
					held <- struct{}{}
					return testenv.Fault{Delay: 10 * time.Minute}
				}
				return testenv.Fault{}
			})
			defer proxy.SetFault(nil)
			cmd, stderr := startKilnAsNobody(t, dir, home, append([]string{"build", "--force"}, buildArgs(out)...)...)
			if tc.line != "" {
				for l := range stderr.seen {
					if strings.Contains(l, tc.line) {
						break
					}
				}
			} else {
				select {
				case <-held:
				case <-time.After(2 * time.Minute):
					t.Fatalf("kiln never reached the %s phase:\n%s", tc.phase, stderr.text())
				}
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			code := waitExit(t, cmd, 2*time.Minute)
			stderr.drain(t, 30*time.Second)
			if code != tc.code {
				t.Errorf("exit code %d after %v in the %s phase, want %d\n%s", code, tc.sig, tc.phase, tc.code, stderr.text())
			}
			if !strings.Contains(stderr.text(), "interrupted") {
				t.Errorf("stderr does not say kiln was interrupted:\n%s", stderr.text())
			}
			if left := leftovers(t, home, out); len(left) > 0 {
				t.Errorf("temporary files left after %v in the %s phase: %v", tc.sig, tc.phase, left)
			}
			// The cache is consistent: a rerun completes with the digest of
			// an uninterrupted build.
			proxy.SetFault(nil)
			ref, res := buildRef(t, testenv.RunOptions{Dir: dir, Home: home}, append(buildArgs(out), "--force")...)
			want, _ := buildRef(t, testenv.RunOptions{Dir: dir, Home: testenv.UserDir(t)}, "--force")
			wantDigest := want[strings.Index(want, "@")+1:]
			if got := ref[strings.Index(ref, "@")+1:]; got != wantDigest {
				t.Errorf("rerun after the interrupt gave %s, an uninterrupted build %s\n%s", got, wantDigest, res.Stderr)
			}
			if left := leftovers(t, home, out); len(left) > 0 {
				t.Errorf("temporary files left after the rerun: %v", left)
			}
		})
	}
}
