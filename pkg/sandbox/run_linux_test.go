//go:build linux

package sandbox_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/kiln-build/kiln/pkg/sandbox"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunCreatesFiles(t *testing.T) {
	for _, u := range []func(*testing.T) *testUser{func(*testing.T) *testUser { return nobody() }, withRange} {
		usr := u(t)
		t.Run(usr.name, func(t *testing.T) {
			base := rootfs(t, usr)
			r := runAs(t, usr, request{
				Lowers:  []string{base},
				Command: sh("id -u; mkdir -p /opt/x; echo hi > /opt/x/f; chmod 4755 /opt/x/f; ln -s f /opt/x/l; echo s > /opt/x/locked; chmod 000 /opt/x/locked; mkdir /opt/x/d; touch /opt/x/d/in; chmod 000 /opt/x/d; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'"),
			}).mustSucceed(t)
			t.Logf("output:\n%s", r.Output)
			m, names := entries(t, r.Diff)
			t.Logf("entries: %v", names)
			f, ok := m["opt/x/f"]
			if !ok || f.body != "hi\n" || f.hdr.Mode != 0o4755 || f.hdr.Uid != 0 || f.hdr.Gid != 0 {
				t.Errorf("opt/x/f = %+v", f.hdr)
			}
			// Modes the caller could not read through are no obstacle.
			if e := m["opt/x/locked"]; e.hdr == nil || e.body != "s\n" || e.hdr.Mode != 0 {
				t.Errorf("opt/x/locked = %+v %q", e.hdr, e.body)
			}
			if _, ok := m["opt/x/d/in"]; !ok || m["opt/x/d/"].hdr == nil || m["opt/x/d/"].hdr.Mode != 0 {
				t.Errorf("opt/x/d (mode 000) or its content is missing: %q", names)
			}
			if l := m["opt/x/l"]; l.hdr == nil || l.hdr.Linkname != "f" {
				t.Errorf("opt/x/l missing or wrong")
			}
			if !strings.HasPrefix(r.Output, "0\n") {
				t.Errorf("id -u inside is not 0: %q", r.Output)
			}
		})
	}
}

// users lists the two kinds of callers: nobody (no subordinate range, so a
// single-uid map) and a user with a range.
func users(t *testing.T) []*testUser {
	return []*testUser{nobody(), withRange(t)}
}

func TestRunChown(t *testing.T) {
	for _, u := range users(t) {
		t.Run(u.name, func(t *testing.T) {
			r := runAs(t, u, request{
				Lowers:  []string{rootfs(t, u)},
				Command: sh("touch /f; chown 100:101 /f; ls -n /f"),
			})
			if len(u.ids.UIDs) == 1 {
				// Without a range chown fails, and the error says why and
				// how to fix it.
				if !r.IsExit || r.Code == 0 {
					t.Fatalf("chown succeeded with a single-uid map: %+v\n%s", r.response, r.Output)
				}
				if !strings.Contains(r.Err, "Invalid argument") {
					t.Errorf("error lacks the command's last output: %s", r.Err)
				}
				if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "/etc/subuid") || !strings.Contains(r.Warnings[0], "uidmap") {
					t.Errorf("warnings = %q, want one naming /etc/subuid and uidmap", r.Warnings)
				}
				return
			}
			r.mustSucceed(t)
			if len(r.Warnings) != 0 {
				t.Errorf("warnings with a range: %q", r.Warnings)
			}
			m, _ := entries(t, r.Diff)
			if h := m["f"].hdr; h == nil || h.Uid != 100 || h.Gid != 101 {
				t.Fatalf("f = %+v, want owner 100:101", h)
			}
			// On the host, the file belongs to the range.
			var st syscallStat
			must(t, statT(filepath.Join(r.Upper, "f"), &st))
			if int(st.Uid) != rangeStart+99 || int(st.Gid) != rangeStart+100 {
				t.Errorf("host owner of f = %d:%d, want %d:%d", st.Uid, st.Gid, rangeStart+99, rangeStart+100)
			}
		})
	}
}

func TestRunWhiteoutsAndOpaqueDirs(t *testing.T) {
	for _, u := range users(t) {
		t.Run(u.name, func(t *testing.T) {
			r := runAs(t, u, request{
				Lowers: []string{rootfs(t, u)},
				Command: sh(`rm /etc/issue
rm -rf /usr/share/doc; mkdir /usr/share/doc; echo new > /usr/share/doc/new
touch /scratch; rm /scratch
mkdir /newdir; touch /newdir/a; rm /newdir/a`),
			}).mustSucceed(t)
			m, names := entries(t, r.Diff)
			for _, want := range []string{"etc/.wh.issue", "usr/share/doc/", "usr/share/doc/.wh..wh..opq", "usr/share/doc/new", "newdir/"} {
				if _, ok := m[want]; !ok {
					t.Errorf("diff lacks %s; has %q", want, names)
				}
			}
			for _, unwanted := range []string{".wh.scratch", "scratch", "newdir/.wh.a", "newdir/.wh..wh..opq"} {
				if _, ok := m[unwanted]; ok {
					t.Errorf("diff has %s (not in the lower layers); has %q", unwanted, names)
				}
			}
			for _, n := range names {
				if strings.HasPrefix(n, "proc/") || strings.HasPrefix(n, "dev/") || strings.HasPrefix(n, "tmp/") || n == "etc/hosts" || n == "etc/resolv.conf" {
					t.Errorf("diff has %s", n)
				}
			}
			for n, e := range m {
				for k := range e.hdr.PAXRecords {
					if strings.Contains(k, "overlay") {
						t.Errorf("%s keeps overlayfs's %s", n, k)
					}
				}
			}
		})
	}
}

func TestRunXattrsAndCapabilities(t *testing.T) {
	u := withRange(t)
	// security.capability v2: cap_net_bind_service (10) permitted and effective.
	r := runAs(t, u, request{
		Lowers: []string{rootfs(t, u)},
		Command: []string{"python3", "-c", `
import os, struct
open('/f', 'w').close()
os.setxattr('/f', 'user.kiln', b'kept')
os.setxattr('/f', 'security.capability', struct.pack('<IIIII', 0x02000001, 1 << 10, 0, 0, 0))
`},
	}).mustSucceed(t)
	m, _ := entries(t, r.Diff)
	h := m["f"].hdr
	if h == nil {
		t.Fatal("no f in the diff")
	}
	if got := h.PAXRecords["SCHILY.xattr.user.kiln"]; got != "kept" {
		t.Errorf("user.kiln = %q", got)
	}
	want := string([]byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	if got := h.PAXRecords["SCHILY.xattr.security.capability"]; got != want {
		t.Errorf("security.capability = %x, want %x (v2, no host root id)", got, want)
	}
}

func TestRunKillsBackgroundProcesses(t *testing.T) {
	u := nobody()
	marker := "987654321"
	r := runAs(t, u, request{
		Lowers: []string{rootfs(t, u)},
		// The first sleeps keep stdout open; setsid escapes the session
		// but not the pid namespace.
		Command: sh("sleep " + marker + " & setsid sleep " + marker + " > /dev/null 2>&1 < /dev/null & echo started"),
	}).mustSucceed(t)
	if !strings.Contains(r.Output, "started") {
		t.Errorf("output = %q", r.Output)
	}
	if pids := findProcesses(t, "sleep\x00"+marker); len(pids) > 0 {
		t.Errorf("background processes survived the run: pids %v", pids)
	}
}

func TestRunNetwork(t *testing.T) {
	u := nobody()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	connect := []string{"/bin/bash", "-c", fmt.Sprintf("echo > /dev/tcp/127.0.0.1/%d && echo connected; cat /etc/hosts > /dev/null; ip=$(cat /proc/net/dev | grep -c :); echo interfaces=$ip", port)}
	for _, tc := range []struct {
		network bool
		want    string
	}{
		{false, "interfaces=1"},
		{true, "connected"},
	} {
		t.Run(fmt.Sprintf("network=%v", tc.network), func(t *testing.T) {
			r := runAs(t, u, request{Lowers: []string{rootfs(t, u)}, Command: connect, Network: tc.network})
			if !strings.Contains(r.Output, tc.want) {
				t.Fatalf("output lacks %q: %s\n%s", tc.want, r.Err, r.Output)
			}
			if !tc.network {
				if strings.Contains(r.Output, "connected") || len(accepted) > 0 {
					t.Fatalf("connected to the host's loopback without the network:\n%s", r.Output)
				}
				return
			}
			r.mustSucceed(t)
			<-accepted
		})
	}
}

func TestRunNetworkBindsResolvConf(t *testing.T) {
	u := nobody()
	host, err := os.ReadFile("/etc/hosts")
	must(t, err)
	r := runAs(t, u, request{
		Lowers:  []string{rootfs(t, u)},
		Network: true,
		Command: sh("cat /etc/hosts; if echo x >> /etc/hosts; then echo WRITABLE; fi"),
	}).mustSucceed(t)
	if !strings.Contains(r.Output, string(host)) || strings.Contains(r.Output, "WRITABLE") {
		t.Errorf("/etc/hosts inside is not the host's, read-only:\n%s", r.Output)
	}
	m, names := entries(t, r.Diff)
	if _, ok := m["etc/hosts"]; ok {
		t.Errorf("diff has etc/hosts: %q", names)
	}
}

// findProcesses returns the pids whose command line contains s.
func findProcesses(t *testing.T, s string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	must(t, err)
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestRunDeterministicDiff(t *testing.T) {
	for _, u := range users(t) {
		t.Run(u.name, func(t *testing.T) {
			req := request{
				Lowers: []string{rootfs(t, u)},
				Command: sh(`echo stamp > /etc/stamp; mkdir -p /opt/a/b; for i in 3 1 2; do echo $i > /opt/a/b/$i; done
ln /opt/a/b/1 /opt/a/hard; ln -s b /opt/a/sym; rm /etc/issue; rm -rf /usr/share/doc; mkdir /usr/share/doc; touch /usr/bin/sh-new; chmod 2755 /usr/bin/sh-new`),
			}
			a := runAs(t, u, req).mustSucceed(t)
			time.Sleep(1100 * time.Millisecond) // different wall-clock times
			b := runAs(t, u, req).mustSucceed(t)
			if len(a.Diff) == 0 || !bytes.Equal(a.Diff, b.Diff) {
				_, na := entries(t, a.Diff)
				_, nb := entries(t, b.Diff)
				t.Fatalf("two runs wrote different diffs (%d and %d bytes):\n%q\n%q", len(a.Diff), len(b.Diff), na, nb)
			}
			m, _ := entries(t, a.Diff)
			epoch := time.Unix(req.Epoch, 0)
			if h := m["opt/a/hard"].hdr; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "opt/a/b/1" {
				t.Errorf("opt/a/hard = %+v, want a hard link to opt/a/b/1", h)
			}
			for n, e := range m {
				if e.hdr.ModTime.After(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) && !epoch.IsZero() {
					t.Errorf("%s: mtime %s after the epoch", n, e.hdr.ModTime)
				}
				if e.hdr.Uname != "" || e.hdr.Gname != "" {
					t.Errorf("%s has user or group names", n)
				}
			}
			if h := m["usr/bin/sh-new"].hdr; h == nil || h.Mode != 0o2755 {
				t.Errorf("usr/bin/sh-new = %+v, want mode 2755", h)
			}
		})
	}
}

func TestRunManyLowers(t *testing.T) {
	u := nobody()
	lowers := []string{rootfs(t, u)}
	d := userDir(t, u)
	for i := range 120 {
		l := filepath.Join(d, fmt.Sprintf("layer-with-a-long-name-to-overflow-one-page-%03d", i))
		must(t, os.MkdirAll(filepath.Join(l, "layers"), 0o755))
		must(t, os.WriteFile(filepath.Join(l, "layers", strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644))
		must(t, os.WriteFile(filepath.Join(l, "layers", "top"), []byte(strconv.Itoa(i)), 0o644))
		lowers = append(lowers, l)
	}
	if n := len(strings.Join(lowers, ":")); n <= os.Getpagesize() {
		t.Fatalf("lowerdir string is only %d bytes: the test does not exceed a page", n)
	}
	r := runAs(t, u, request{Lowers: lowers, Command: sh("ls /layers | wc -l; cat /layers/top; echo")}).mustSucceed(t)
	if r.Output != "121\n119\n" {
		t.Errorf("output = %q, want 121 files and the top layer's /layers/top", r.Output)
	}
}

func TestRunFailures(t *testing.T) {
	u := nobody()
	for _, tc := range []struct {
		name    string
		req     request
		timeout bool
		code    int
		want    []string
	}{
		{"exit status and tail", request{Command: sh("for i in $(seq 1 100); do echo line$i; done; exit 3")}, false, 3, []string{"exited with status 3", "line100", "line81"}},
		{"timeout", request{Command: sh("echo before; sleep 600"), Timeout: 2 * time.Second}, true, -1, []string{"timed out after 2s", "before"}},
		{"not found", request{Command: []string{"no-such-program"}}, false, 0, []string{"no-such-program: not found in PATH"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Lowers = []string{rootfs(t, u)}
			r := runAs(t, u, tc.req)
			if r.Err == "" {
				t.Fatalf("no error; output:\n%s", r.Output)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Err, w) {
					t.Errorf("error lacks %q: %s", w, r.Err)
				}
			}
			if strings.Contains(r.Err, "line80\n") {
				t.Errorf("tail is not bounded to 20 lines: %s", r.Err)
			}
			if tc.code != 0 && (!r.IsExit || r.Code != tc.code || r.TimedOut != tc.timeout) {
				t.Errorf("response = %+v, want code %d, timed out %v", r.response, tc.code, tc.timeout)
			}
		})
	}
}

func TestRunEnvAndDir(t *testing.T) {
	u := nobody()
	r := runAs(t, u, request{
		Lowers:  []string{rootfs(t, u)},
		Command: []string{"sh", "-c", `pwd; echo "$FOO"; echo "$PATH"; hostname; ls /dev | tr '\n' ' '`},
		Env:     []string{"FOO=bar"},
		Dir:     "/work/src",
	}).mustSucceed(t)
	want := "/work/src\nbar\n" + sandbox.DefaultPath + "\nsandbox\n"
	if !strings.HasPrefix(r.Output, want) {
		t.Errorf("output = %q, want prefix %q", r.Output, want)
	}
	for _, dev := range []string{"null", "zero", "full", "random", "urandom", "tty", "shm", "pts", "ptmx", "fd"} {
		if !strings.Contains(r.Output, " "+dev+" ") && !strings.HasSuffix(r.Output, " "+dev) && !strings.Contains(r.Output, "\n"+dev+" ") {
			t.Errorf("/dev lacks %s: %q", dev, r.Output)
		}
	}
}

// TestRunRangeOwnedFiles checks what a real tool needs from a range
// (useradd writes /etc/shadow with group shadow and creates a home owned by
// the new user), that WriteDiff reads files the caller could not (mode 0600
// under a 0700 directory of another id) and that RemoveAll removes them.
func TestRunRangeOwnedFiles(t *testing.T) {
	u := withRange(t)
	d := userDir(t, u)
	upper := filepath.Join(d, "upper")
	must(t, os.Mkdir(upper, 0o755))
	must(t, os.Chown(upper, u.uid, u.gid))
	r := runAs(t, u, request{
		Lowers:    []string{rootfs(t, u)},
		Upper:     upper,
		Command:   sh("useradd -m -u 1234 builder; mkdir -m 700 /opt/secret; echo s3cret > /opt/secret/f; chmod 600 /opt/secret/f; chown -R 1234:1234 /opt/secret"),
		RemoveDir: upper,
	}).mustSucceed(t)
	m, _ := entries(t, r.Diff)
	if h := m["home/builder/"].hdr; h == nil || h.Uid != 1234 {
		t.Errorf("home/builder = %+v, want owner 1234", h)
	}
	if h := m["etc/shadow"].hdr; h == nil || h.Gid != 42 {
		t.Errorf("etc/shadow = %+v, want group shadow (42)", h)
	}
	if e := m["opt/secret/f"]; e.hdr == nil || e.body != "s3cret\n" || e.hdr.Uid != 1234 || e.hdr.Mode != 0o600 {
		t.Errorf("opt/secret/f = %+v %q", e.hdr, e.body)
	}
	if r.RemoveErr != "" {
		t.Fatalf("RemoveAll: %s", r.RemoveErr)
	}
	if _, err := os.Lstat(upper); err == nil {
		t.Errorf("RemoveAll left %s", upper)
	}
}

func TestRunRefusesWhiteoutNames(t *testing.T) {
	u := nobody()
	d := userDir(t, u)
	upper, work := filepath.Join(d, "upper"), filepath.Join(d, "work")
	for _, p := range []string{upper, work} {
		must(t, os.Mkdir(p, 0o755))
		must(t, os.Chown(p, u.uid, u.gid))
	}
	req := request{Lowers: []string{rootfs(t, u)}, Upper: upper, Work: work, Command: sh("touch /etc/.wh.passwd")}
	resp := runDriver(t, u, d, req)
	if !strings.Contains(resp.DiffErr, "etc/.wh.passwd: names starting with .wh. cannot be stored") {
		t.Errorf("WriteDiff error = %q", resp.DiffErr)
	}
}

// TestRunAptInstall runs apt-get with the network (the parent's own apt
// sources): apt drops to _apt and dpkg chowns, which works with a range and
// fails with a single-uid map.
func TestRunAptInstall(t *testing.T) {
	for _, u := range users(t) {
		t.Run(u.name, func(t *testing.T) {
			r := runAs(t, u, request{
				Lowers:  []string{rootfs(t, u)},
				Network: true,
				Command: sh("apt-get update -q; apt-get install -q -y --no-install-recommends cowsay"),
			})
			if len(u.ids.UIDs) == 1 {
				if r.Err == "" {
					t.Fatalf("apt-get succeeded with a single-uid map:\n%s", r.Output)
				}
				if !strings.Contains(r.Err, "setgroups") {
					t.Errorf("error lacks apt's setgroups failure: %s", r.Err)
				}
				return
			}
			r.mustSucceed(t)
			m, _ := entries(t, r.Diff)
			if e := m["usr/games/cowsay"]; e.hdr == nil || e.hdr.Mode != 0o755 || e.hdr.Uid != 0 {
				t.Errorf("usr/games/cowsay = %+v", e.hdr)
			}
		})
	}
}
