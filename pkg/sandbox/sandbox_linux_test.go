//go:build linux

package sandbox_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kiln-build/kiln/internal/testenv"
	"github.com/kiln-build/kiln/pkg/sandbox"
)

// The test process is root; Run is exercised the way users run kiln: the
// test binary re-executes itself as an unprivileged user (through setpriv)
// in "driver" mode, which calls sandbox.Run and WriteDiff and reports back
// in a JSON file. Its own re-executed sandbox children go through
// sandbox.Main in TestMain.

const reqEnv = "KILN_SANDBOX_TEST_REQUEST"

// request is what the test sends the driver.
type request struct {
	Lowers    []string
	Upper     string
	Work      string
	Command   []string
	Env       []string
	Dir       string
	Network   bool
	Timeout   time.Duration
	Epoch     int64
	DiffPath  string // where the driver writes the diff tar; empty: no diff
	Response  string // where the driver writes its response
	RemoveDir string // removed by sandbox.RemoveAll after the diff
	// Unpack lists layer tars the driver extracts with sandbox.Unpack
	// before running (Command may then be empty).
	Unpack []unpackRequest
	// Platform and QEMU are the Config's.
	Platform v1.Platform
	QEMU     string
}

// unpackRequest extracts Tar into Dir.
type unpackRequest struct{ Tar, Dir string }

// response is what the driver reports.
type response struct {
	Err       string
	Code      int
	Signal    int
	TimedOut  bool
	IsExit    bool
	Warnings  []string
	IDs       sandbox.IDMap
	DiffErr   string
	RemoveErr string
}

func TestMain(m *testing.M) {
	sandbox.Main()
	if p := os.Getenv(reqEnv); p != "" {
		driver(p)
		return
	}
	code := m.Run()
	cleanupFixtures()
	os.Exit(code)
}

// driver runs one request as the unprivileged user.
func driver(reqPath string) {
	var req request
	b, err := os.ReadFile(reqPath)
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	for _, up := range req.Unpack {
		ids, _ := sandbox.HostIDMap()
		f, err := os.Open(up.Tar)
		if err == nil {
			err = sandbox.Unpack(ctx, f, up.Dir, ids)
			f.Close()
		}
		if err != nil {
			b, _ := json.Marshal(response{Err: "unpack: " + err.Error()})
			os.WriteFile(req.Response, b, 0o644)
			return
		}
	}
	res, err := sandbox.Run(ctx, sandbox.Config{
		Lowers: req.Lowers, Upper: req.Upper, Work: req.Work, Command: req.Command,
		Env: req.Env, Dir: req.Dir, Network: req.Network, Timeout: req.Timeout,
		Stdout: os.Stdout, Stderr: os.Stderr, Platform: req.Platform, QEMU: req.QEMU,
	})
	resp := response{Warnings: res.Warnings, IDs: res.IDs}
	if err != nil {
		resp.Err = err.Error()
		var ee *sandbox.ExitError
		if errors.As(err, &ee) {
			resp.IsExit, resp.Code, resp.Signal, resp.TimedOut = true, ee.Code, ee.Signal, ee.TimedOut
		}
	}
	if req.DiffPath != "" && (err == nil || resp.IsExit) {
		f, err := os.Create(req.DiffPath)
		if err == nil {
			tw := tar.NewWriter(f)
			err = sandbox.WriteDiff(ctx, tw, req.Upper, sandbox.DiffOptions{
				IDs: res.IDs, LowerExists: sandbox.LowerExists(req.Lowers), Epoch: time.Unix(req.Epoch, 0),
			})
			if err == nil {
				err = tw.Close()
			}
			if err2 := f.Close(); err == nil {
				err = err2
			}
		}
		if err != nil {
			resp.DiffErr = err.Error()
		}
	}
	if req.RemoveDir != "" {
		if err := sandbox.RemoveAll(ctx, req.RemoveDir, res.IDs); err != nil {
			resp.RemoveErr = err.Error()
		}
	}
	out, _ := json.Marshal(resp)
	if err := os.WriteFile(req.Response, out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(3)
	}
}

// testUser is an unprivileged user the driver runs as.
type testUser struct {
	name     string
	uid, gid int
	ids      sandbox.IDMap // the map HostIDMap should choose for it
}

// Fixtures shared by the tests of this process (test-only state).
var (
	fixMu      sync.Mutex
	fixRoot    string                // public directory holding the fixtures
	fixBinary  string                // a copy of the test binary every user can run
	fixRootfs  = map[string]string{} // user name -> extracted parent rootfs
	fixCleanup []func()
	rangeUser  *testUser
)

const (
	rangeUserName = "kiln-sbx-test"
	rangeStart    = 300000
	rangeSize     = 65536
)

func cleanupFixtures() {
	for i := len(fixCleanup) - 1; i >= 0; i-- {
		fixCleanup[i]()
	}
}

// fixtures prepares the public directory and the runnable test binary.
func fixtures(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the sandbox over the debootstrap parent as unprivileged users (not in -short)")
	}
	testenv.RequireRoot(t)
	testenv.Require(t, "setpriv", "tar", "newuidmap", "newgidmap")
	fixMu.Lock()
	defer fixMu.Unlock()
	if fixRoot != "" {
		return
	}
	dir, err := os.MkdirTemp("", "kiln-sandbox-test-")
	must(t, err)
	must(t, os.Chmod(dir, 0o755))
	fixCleanup = append(fixCleanup, func() { os.RemoveAll(dir) })
	self, err := os.Executable()
	must(t, err)
	bin := filepath.Join(dir, "sandbox.test")
	copyFile(t, self, bin, 0o755)
	fixRoot, fixBinary = dir, bin
}

func nobody() *testUser {
	return &testUser{name: "nobody", uid: testenv.NobodyUID, gid: testenv.NobodyGID,
		ids: sandbox.IDMap{UIDs: []sandbox.IDRange{{0, testenv.NobodyUID, 1}}, GIDs: []sandbox.IDRange{{0, testenv.NobodyGID, 1}}}}
}

// withRange returns a dedicated user with a subordinate id range, creating
// it (and its /etc/subuid and /etc/subgid lines) on first use; TestMain
// removes both at the end.
func withRange(t *testing.T) *testUser {
	t.Helper()
	fixtures(t)
	testenv.Require(t, "useradd", "userdel")
	fixMu.Lock()
	defer fixMu.Unlock()
	if rangeUser != nil {
		return rangeUser
	}
	// The user and its lines are the test's own (a crashed run may have
	// left them): they are removed at the end whoever created them.
	if _, err := user.Lookup(rangeUserName); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", rangeUserName).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
	}
	fixCleanup = append(fixCleanup, func() { exec.Command("userdel", rangeUserName).Run() })
	must(t, testenv.SetSubIDRange(rangeUserName, rangeStart, rangeSize))
	fixCleanup = append(fixCleanup, func() { testenv.SetSubIDRange(rangeUserName, 0, 0) })
	u, err := user.Lookup(rangeUserName)
	must(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	rangeUser = &testUser{name: rangeUserName, uid: uid, gid: gid, ids: sandbox.IDMap{
		UIDs: []sandbox.IDRange{{0, uid, 1}, {1, rangeStart, rangeSize}},
		GIDs: []sandbox.IDRange{{0, gid, 1}, {1, rangeStart, rangeSize}},
	}}
	return rangeUser
}

// rootfs returns the bookworm+python3 parent extracted for u: owners are
// the host ids u's map gives the image's owners, as a layer unpacked in the
// sandbox's user namespace would have them.
func rootfs(t *testing.T, u *testUser) string {
	t.Helper()
	fixtures(t)
	tarPath := testenv.ParentRootfsTar(t)
	fixMu.Lock()
	defer fixMu.Unlock()
	if d, ok := fixRootfs[u.name]; ok {
		return d
	}
	d := filepath.Join(fixRoot, "rootfs-"+u.name)
	must(t, os.Mkdir(d, 0o755))
	if out, err := exec.Command("tar", "--numeric-owner", "-xpf", tarPath, "-C", d).CombinedOutput(); err != nil {
		t.Fatalf("extract %s: %v: %s", tarPath, err, out)
	}
	chownForMap(t, d, u.ids)
	fixRootfs[u.name] = d
	return d
}

// chownForMap gives every file under dir the host owner that u's map gives
// its current owner (unmapped ids go to uid/gid 0 inside).
func chownForMap(t *testing.T, dir string, ids sandbox.IDMap) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscallStat)
		hu, hg, ok := ids.ToHost(int(st.Uid), int(st.Gid))
		if !ok {
			hu, hg, _ = ids.ToHost(0, 0)
		}
		mode := fi.Mode()
		if err := os.Lchown(p, hu, hg); err != nil {
			return err
		}
		if mode&(os.ModeSetuid|os.ModeSetgid) != 0 && mode&os.ModeSymlink == 0 {
			return os.Chmod(p, mode) // chown cleared them
		}
		return nil
	})
	if err != nil {
		t.Fatalf("chown %s: %v", dir, err)
	}
}

// run is one sandbox run's outcome.
type run struct {
	response
	Output string
	Diff   []byte
	Upper  string
}

// userDir returns a new directory owned by u.
func userDir(t *testing.T, u *testUser) string {
	t.Helper()
	d, err := os.MkdirTemp(fixRoot, "run-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	must(t, os.Chown(d, u.uid, u.gid))
	must(t, os.Chmod(d, 0o755))
	return d
}

// runAs runs req as u through the driver; Upper, Work, DiffPath and
// Response are filled in when empty.
func runAs(t *testing.T, u *testUser, req request) run {
	t.Helper()
	return runWrapped(t, u, nil, req)
}

// runWrapped is runAs with the driver started through the command wrap
// (e.g. an unshare that changes the driver's limits).
func runWrapped(t *testing.T, u *testUser, wrap []string, req request) run {
	t.Helper()
	fixtures(t)
	d := userDir(t, u)
	for _, p := range []*string{&req.Upper, &req.Work} {
		if *p == "" {
			*p = filepath.Join(d, fmt.Sprintf("d%p", p))
			must(t, os.Mkdir(*p, 0o755))
			must(t, os.Chown(*p, u.uid, u.gid))
		}
	}
	if req.DiffPath == "" {
		req.DiffPath = filepath.Join(d, "diff.tar")
	}
	req.Response = filepath.Join(d, "response.json")
	if req.Epoch == 0 {
		req.Epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	}
	r := runDriverRaw(t, u, wrap, d, req)
	if r.DiffErr != "" {
		t.Fatalf("WriteDiff: %s\noutput:\n%s", r.DiffErr, r.Output)
	}
	return r
}

// mustSucceed fails the test unless the run succeeded.
func (r run) mustSucceed(t *testing.T) run {
	t.Helper()
	if r.Err != "" {
		t.Fatalf("Run: %s\noutput:\n%s", r.Err, r.Output)
	}
	return r
}

// entry is one tar entry of a diff.
type entry struct {
	hdr  *tar.Header
	body string
}

func entries(t *testing.T, diff []byte) (map[string]entry, []string) {
	t.Helper()
	m := map[string]entry{}
	var names []string
	tr := tar.NewReader(bytes.NewReader(diff))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m, names
		}
		must(t, err)
		b, err := io.ReadAll(tr)
		must(t, err)
		m[h.Name] = entry{h, string(b)}
		names = append(names, h.Name)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	must(t, err)
	_, err = io.Copy(out, in)
	must(t, err)
	must(t, out.Close())
	must(t, os.Chmod(dst, mode))
}

func sh(script string) []string { return []string{"/bin/sh", "-ec", script} }

func writeJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	must(t, os.WriteFile(p, b, 0o644))
}

// runDriver runs the driver for a request whose paths are all set, and
// returns its response whatever it says.
func runDriver(t *testing.T, u *testUser, d string, req request) response {
	t.Helper()
	if req.DiffPath == "" {
		req.DiffPath = filepath.Join(d, "diff.tar")
	}
	req.Response = filepath.Join(d, "response.json")
	if req.Epoch == 0 {
		req.Epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	}
	return runDriverRaw(t, u, nil, d, req).response
}

func runDriverRaw(t *testing.T, u *testUser, wrap []string, d string, req request) run {
	t.Helper()
	reqPath := filepath.Join(d, "request.json")
	writeJSON(t, reqPath, req)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	argv := append([]string{"--reuid=" + strconv.Itoa(u.uid), "--regid=" + strconv.Itoa(u.gid), "--clear-groups", "--"}, wrap...)
	cmd := exec.CommandContext(ctx, "setpriv", append(argv, fixBinary)...)
	cmd.Dir = d
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", reqEnv + "=" + reqPath}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("driver as %s: %v\n%s", u.name, err, out.String())
	}
	var r run
	rb, err := os.ReadFile(req.Response)
	must(t, err)
	must(t, json.Unmarshal(rb, &r.response))
	r.Output, r.Upper = out.String(), req.Upper
	r.Diff, _ = os.ReadFile(req.DiffPath)
	return r
}
