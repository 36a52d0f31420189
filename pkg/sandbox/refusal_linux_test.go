//go:build linux

package sandbox_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRunRefusals(t *testing.T) {
	u := nobody()
	for _, tc := range []struct {
		name string
		wrap []string
		req  func(t *testing.T) request
		want []string
	}{
		{
			// user.max_user_namespaces is per user namespace: a driver in
			// one where it is 0 cannot create the sandbox's.
			name: "no user namespaces",
			wrap: []string{"unshare", "--user", "--map-root-user", "/bin/sh", "-c", `echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"`, "sh"},
			req:  func(t *testing.T) request { return request{Command: []string{"/bin/true"}} },
			want: []string{"cannot create a user namespace", "user.max_user_namespaces"},
		},
		{
			name: "upper and work on different file systems",
			req: func(t *testing.T) request {
				work, err := os.MkdirTemp("/dev/shm", "kiln-sandbox-work-")
				must(t, err)
				t.Cleanup(func() { os.RemoveAll(work) })
				must(t, os.Chown(work, u.uid, u.gid))
				return request{Command: []string{"/bin/true"}, Work: work}
			},
			want: []string{"are on different file systems: overlayfs needs them on one"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req(t)
			req.Lowers = []string{rootfs(t, u)}
			r := runWrapped(t, u, tc.wrap, req)
			if r.Err == "" || r.IsExit {
				t.Fatalf("Run = %+v, want a setup error\n%s", r.response, r.Output)
			}
			t.Logf("error: %s", r.Err)
			for _, w := range tc.want {
				if !strings.Contains(r.Err, w) {
					t.Errorf("error lacks %q: %s", w, r.Err)
				}
			}
		})
	}
}

// TestRunDiesWithCaller kills the calling process (as SIGKILL would kill
// kiln) while the command runs: nothing of the sandbox may survive.
func TestRunDiesWithCaller(t *testing.T) {
	u := nobody()
	fixtures(t)
	d := userDir(t, u)
	upper, work := filepath.Join(d, "upper"), filepath.Join(d, "work")
	for _, p := range []string{upper, work} {
		must(t, os.Mkdir(p, 0o755))
		must(t, os.Chown(p, u.uid, u.gid))
	}
	marker := "876543219"
	req := request{Lowers: []string{rootfs(t, u)}, Upper: upper, Work: work, Command: sh("echo started; sleep " + marker), Response: filepath.Join(d, "response.json")}
	reqPath := filepath.Join(d, "request.json")
	writeJSON(t, reqPath, req)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "setpriv", "--reuid="+strconv.Itoa(u.uid), "--regid="+strconv.Itoa(u.gid), "--clear-groups", "--", fixBinary)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", reqEnv + "=" + reqPath}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	sc := bufio.NewScanner(out)
	started := false
	for !started && sc.Scan() {
		started = sc.Text() == "started"
	}
	if !started {
		cmd.Wait()
		t.Fatalf("the command did not start: %s", stderr.String())
	}
	for len(findProcesses(t, "sleep\x00"+marker)) == 0 { // echo ran, sleep is being exec'd
		if ctx.Err() != nil {
			t.Fatal("the command's sleep never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, cmd.Process.Kill())
	cmd.Wait()
	for ctx.Err() == nil {
		if len(findProcesses(t, "sleep\x00"+marker)) == 0 && len(findProcesses(t, "kiln-sandbox\x00")) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("sandbox processes outlived the killed caller: %v %v", findProcesses(t, "sleep\x00"+marker), findProcesses(t, "kiln-sandbox\x00"))
}
