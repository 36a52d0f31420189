//go:build linux

package cache

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/hostile"
	"github.com/kiln-build/kiln/internal/testenv"
	"github.com/kiln-build/kiln/pkg/sandbox"
)

// The unpacked-layer tests run the cache the way a user runs kiln: the
// test binary re-executes itself as an unprivileged user (setpriv) in
// driver mode, which performs a list of operations on a cache directory
// and reports back in a JSON file. The sandbox children it starts go
// through sandbox.Main in TestMain.

const driverEnv = "KILN_CACHE_TEST_REQUEST"

func TestMain(m *testing.M) {
	sandbox.Main()
	if p := os.Getenv(driverEnv); p != "" {
		driver(p)
		return
	}
	os.Exit(m.Run())
}

// driverOp is one operation of the driver.
type driverOp struct {
	// Kind is "unpack" (Tar, with DiffID claimed instead of the real one
	// when set), "unpack-cancelled" (Tar, the context cancelled after its
	// first MiB), "unpack-unreadable" (a layer with Tar's diffID whose bytes
	// cannot be read), "crash" (unpack Tar into a temporary directory and
	// exit without cleaning up, as a killed build does), "stale"
	// (RemoveStale) or "scratch" (a sandbox
	// run over Lowers in a Scratch that chowns to subordinate ids, then
	// Remove).
	Kind   string
	Tar    string
	DiffID string
	Lowers []string
}

// driverResult is what one operation gave.
type driverResult struct {
	Dir      string
	Err      string
	Removed  int
	Scratch  string // the scratch run's top directory
	UpperUID int    // owner of upper/x after the scratch run
}

type driverRequest struct {
	Cache    string
	Ops      []driverOp
	Response string
}

// unreadableLayer has a diffID but no readable content.
type unreadableLayer struct {
	v1.Layer
	diffID v1.Hash
}

func (l unreadableLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l unreadableLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("the layer was read: the cache did not reuse its unpacked copy")
}

// cancellingLayer cancels its reader's context after the first MiB.
type cancellingLayer struct {
	v1.Layer
	cancel context.CancelFunc
}

func (l cancellingLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Uncompressed()
	if err != nil {
		return nil, err
	}
	return &cancellingReader{ReadCloser: rc, cancel: l.cancel, left: 1 << 20}, nil
}

type cancellingReader struct {
	io.ReadCloser
	cancel context.CancelFunc
	left   int
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if r.left -= n; r.left <= 0 {
		r.cancel()
	}
	return n, err
}

// claimedLayer claims a diffID its content does not have.
type claimedLayer struct {
	v1.Layer
	diffID v1.Hash
}

func (l claimedLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func driver(reqPath string) {
	var req driverRequest
	b, err := os.ReadFile(reqPath)
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	c, err := Open(req.Cache)
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(3)
	}
	ids, _ := sandbox.HostIDMap()
	var out []driverResult
	for _, op := range req.Ops {
		var r driverResult
		err := func() error {
			switch op.Kind {
			case "unpack-cancelled":
				l, err := tarball.LayerFromFile(op.Tar)
				if err != nil {
					return err
				}
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				r.Dir, err = c.Unpacked(cctx, cancellingLayer{l, cancel}, ids)
				return err
			case "unpack", "unpack-unreadable":
				l, err := tarball.LayerFromFile(op.Tar)
				if err != nil {
					return err
				}
				if op.Kind == "unpack-unreadable" {
					d, _ := l.DiffID()
					l = unreadableLayer{l, d}
				} else if op.DiffID != "" {
					h, err := v1.NewHash(op.DiffID)
					if err != nil {
						return err
					}
					l = claimedLayer{l, h}
				}
				r.Dir, err = c.Unpacked(ctx, l, ids)
				return err
			case "crash":
				os.MkdirAll(filepath.Join(c.root, unpackedDir), 0o755)
				tmp, err := c.newTempDir("unpack-", ids)
				if err != nil {
					return err
				}
				l, err := tarball.LayerFromFile(op.Tar)
				if err != nil {
					return err
				}
				d, _ := l.DiffID()
				if _, err := unpackInto(ctx, l, d, filepath.Join(tmp.dir, unpackedTree), ids); err != nil {
					return err
				}
				writeResponse(req.Response, append(out, driverResult{Dir: tmp.dir}))
				os.Exit(0) // killed: no rename, no removal, the lock goes with the process
			case "stale":
				res, err := c.RemoveStale()
				r.Removed = res.Removed
				return err
			case "scratch":
				s, err := c.NewScratch(ids)
				if err != nil {
					return err
				}
				r.Scratch = filepath.Dir(s.Upper)
				// chown fails when only one uid is mapped (nobody).
				_, err = sandbox.Run(ctx, sandbox.Config{Lowers: op.Lowers, Upper: s.Upper, Work: s.Work, IDs: ids,
					Command: []string{"/bin/sh", "-c", "mkdir -p /x/y && touch /x/y/f && { chown -R 100:100 /x 2>/dev/null || true; } && chmod 700 /x /x/y"}})
				if err != nil {
					return err
				}
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(s.Upper, "x"), &st); err != nil {
					return err
				}
				r.UpperUID = int(st.Uid)
				return s.Remove(ctx)
			}
			return fmt.Errorf("unknown op %q", op.Kind)
		}()
		if err != nil {
			r.Err = err.Error()
		}
		out = append(out, r)
	}
	writeResponse(req.Response, out)
}

func writeResponse(p string, out []driverResult) {
	b, _ := json.Marshal(out)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(3)
	}
}

// cacheUser is an unprivileged user the driver runs as.
type cacheUser struct {
	name       string
	uid, gid   int
	rangeStart int // its subordinate range's first id, 0 for none
}

const (
	rangeUserName = "kiln-cache-test"
	rangeStart    = 400000
	rangeSize     = 65536
)

// testUsers returns nobody (no subordinate range: one uid mapped) and a
// user with a range, created for the test with its /etc/subuid and
// /etc/subgid lines and removed at its end.
func testUsers(t *testing.T) []cacheUser {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the sandbox as unprivileged users (not in -short)")
	}
	testenv.RequireRoot(t)
	testenv.Require(t, "setpriv", "newuidmap", "newgidmap", "useradd", "userdel")
	users := []cacheUser{{name: "nobody", uid: testenv.NobodyUID, gid: testenv.NobodyGID}}
	if _, err := user.Lookup(rangeUserName); err != nil {
		if out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", rangeUserName).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
	}
	t.Cleanup(func() { exec.Command("userdel", rangeUserName).Run() })
	must(t, testenv.SetSubIDRange(rangeUserName, rangeStart, rangeSize))
	t.Cleanup(func() { testenv.SetSubIDRange(rangeUserName, 0, 0) })
	u, err := user.Lookup(rangeUserName)
	must(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return append(users, cacheUser{name: rangeUserName, uid: uid, gid: gid, rangeStart: rangeStart})
}

// harness is one user's cache and a copy of the test binary it can run.
type harness struct {
	t      *testing.T
	u      cacheUser
	dir    string // public, owned by the user
	cache  string
	binary string
}

func newHarness(t *testing.T, u cacheUser) *harness {
	pub := testenv.PublicDir(t)
	self, err := os.Executable()
	must(t, err)
	bin := filepath.Join(pub, "cache.test")
	b, err := os.ReadFile(self)
	must(t, err)
	must(t, os.WriteFile(bin, b, 0o755))
	dir := filepath.Join(pub, "home")
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.Chown(dir, u.uid, u.gid))
	// PublicDir's cleanup, as root, removes the files of subordinate ids.
	return &harness{t: t, u: u, dir: dir, cache: filepath.Join(dir, "cache"), binary: bin}
}

// run performs ops as the user and returns their results.
func (h *harness) run(ops ...driverOp) []driverResult {
	t := h.t
	t.Helper()
	res, err := h.tryRun(ops...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tryRun is run for other goroutines than the test's: it returns what
// went wrong.
func (h *harness) tryRun(ops ...driverOp) ([]driverResult, error) {
	resp := filepath.Join(h.dir, fmt.Sprintf("response-%d.json", time.Now().UnixNano()))
	reqPath := resp + ".req"
	b, err := json.Marshal(driverRequest{Cache: h.cache, Ops: ops, Response: resp})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(reqPath, b, 0o644); err != nil {
		return nil, err
	}
	if out, err := h.exec([]string{driverEnv + "=" + reqPath}, h.binary); err != nil {
		return nil, fmt.Errorf("driver as %s: %v\n%s", h.u.name, err, out)
	}
	var res []driverResult
	rb, err := os.ReadFile(resp)
	if err != nil {
		return nil, err
	}
	return res, json.Unmarshal(rb, &res)
}

// ids is the map HostIDMap gives the user.
func (u cacheUser) ids() sandbox.IDMap {
	if u.rangeStart == 0 {
		return sandbox.IDMap{UIDs: []sandbox.IDRange{{Inside: 0, Host: u.uid, Size: 1}}, GIDs: []sandbox.IDRange{{Inside: 0, Host: u.gid, Size: 1}}}
	}
	return sandbox.IDMap{
		UIDs: []sandbox.IDRange{{Inside: 0, Host: u.uid, Size: 1}, {Inside: 1, Host: u.rangeStart, Size: rangeSize}},
		GIDs: []sandbox.IDRange{{Inside: 0, Host: u.gid, Size: 1}, {Inside: 1, Host: u.rangeStart, Size: rangeSize}},
	}
}

// exec runs argv as the user, with a clean environment plus env, and
// returns its output.
func (h *harness) exec(env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(h.t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "setpriv", append([]string{"--reuid=" + strconv.Itoa(h.u.uid), "--regid=" + strconv.Itoa(h.u.gid), "--clear-groups", "--"}, argv...)...)
	cmd.Dir = h.dir
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + h.dir}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// entries lists unpacked/ (nil when it does not exist).
func (h *harness) entries() []string {
	es, _ := os.ReadDir(filepath.Join(h.cache, unpackedDir))
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// temporaries lists what unpacked/ holds besides entries and key locks.
func (h *harness) temporaries() []string {
	var tmps []string
	for _, n := range h.entries() {
		if strings.HasPrefix(n, tmpDirPrefix) {
			tmps = append(tmps, n)
		}
	}
	return tmps
}

// hostID is the host id the user's sandbox map gives id inside.
func (u cacheUser) hostID(id int, primary int) int {
	if id == 0 || u.rangeStart == 0 {
		return primary
	}
	return u.rangeStart + id - 1
}

func writeTar(t *testing.T, p string, ents []tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, e := range ents {
		h := e.h
		h.Size, h.ModTime, h.Format = int64(len(e.body)), mtime, tar.FormatPAX
		must(t, tw.WriteHeader(&h))
		_, err := tw.Write([]byte(e.body))
		must(t, err)
	}
	must(t, tw.Close())
	must(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

type tarEntry struct {
	h    tar.Header
	body string
}

func sha256File(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	must(t, err)
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestUnpacked unpacks a layer into the cache as each user: owners go
// through the user's id map, whiteouts and opaque directories are
// overlayfs's, nothing lands outside the tree; a second call reuses it
// without reading the layer; a layer that is not its diffID leaves no
// entry; a killed unpacking is removed by RemoveStale; a sandbox run in a
// Scratch leaves files of subordinate owners that Remove removes; and kiln cache
// prune removes every unpacked layer.
func TestUnpacked(t *testing.T) {
	for _, u := range testUsers(t) {
		t.Run(u.name, func(t *testing.T) {
			h := newHarness(t, u)
			layer := writeTar(t, filepath.Join(h.dir, "layer.tar"), []tarEntry{
				{tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
				{tar.Header{Name: "etc/secret/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 100, Gid: 101}, ""},
				{tar.Header{Name: "etc/secret/key", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 100, Gid: 101}, "k\n"},
				{tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755}, "su\n"},
				{tar.Header{Name: "usr/bin/su2", Typeflag: tar.TypeLink, Linkname: "usr/bin/su"}, ""},
				{tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: "/"}, ""},
				{tar.Header{Name: "lnk/escaped", Typeflag: tar.TypeReg, Mode: 0o644}, "no\n"},
				{tar.Header{Name: "../../outside", Typeflag: tar.TypeReg, Mode: 0o644}, "no\n"},
				{tar.Header{Name: ".wh.gone", Typeflag: tar.TypeReg}, ""},
				{tar.Header{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
				{tar.Header{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg}, ""},
			})
			other := writeTar(t, filepath.Join(h.dir, "other.tar"), []tarEntry{{tar.Header{Name: "other", Typeflag: tar.TypeReg, Mode: 0o644}, "o\n"}})
			res := h.run(
				driverOp{Kind: "unpack", Tar: layer},
				driverOp{Kind: "unpack-unreadable", Tar: layer},
				driverOp{Kind: "unpack", Tar: other, DiffID: "sha256:" + strings.Repeat("0", 64)},
			)
			if res[0].Err != "" {
				t.Fatalf("Unpacked: %s", res[0].Err)
			}
			tree := res[0].Dir
			if !strings.HasPrefix(tree, filepath.Join(h.cache, unpackedDir)+"/") || !strings.Contains(tree, strings.TrimPrefix(sha256File(t, layer), "sha256:")) {
				t.Errorf("unpacked into %s, want an entry named by the diffID under %s", tree, filepath.Join(h.cache, unpackedDir))
			}
			if res[1].Err != "" || res[1].Dir != tree {
				t.Errorf("second Unpacked of the same diffID: %q, %s; want %s reused without reading the layer", res[1].Dir, res[1].Err, tree)
			}
			if !strings.Contains(res[2].Err, "hashes to") || res[2].Dir != "" {
				t.Errorf("a layer whose content is not its diffID: %q, %q; want an error saying what it hashes to", res[2].Dir, res[2].Err)
			}
			if n := len(h.entries()); n != 3 { // the entry and two key locks
				t.Errorf("unpacked/ holds %v, want one entry and two key locks", h.entries())
			}

			var st syscall.Stat_t
			must(t, syscall.Lstat(filepath.Join(tree, "etc/secret/key"), &st))
			if wu, wg := u.hostID(100, u.uid), u.hostID(101, u.gid); int(st.Uid) != wu || int(st.Gid) != wg || st.Mode&0o7777 != 0o600 {
				t.Errorf("etc/secret/key: owner %d:%d mode %o, want %d:%d 600", st.Uid, st.Gid, st.Mode&0o7777, wu, wg)
			}
			must(t, syscall.Lstat(filepath.Join(tree, "usr/bin/su"), &st))
			if int(st.Uid) != u.uid || st.Mode&0o7777 != 0o4755 || st.Nlink != 2 {
				t.Errorf("usr/bin/su: owner %d mode %o links %d, want %d 4755 2", st.Uid, st.Mode&0o7777, st.Nlink, u.uid)
			}
			must(t, syscall.Lstat(filepath.Join(tree, "gone"), &st))
			if st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
				t.Errorf("the whiteout of gone is mode %o rdev %d, want a character device 0:0", st.Mode, st.Rdev)
			}
			if v, err := unix.Lgetxattr(filepath.Join(tree, "opq"), "user.overlay.opaque", make([]byte, 8)); err != nil || v != 1 {
				t.Errorf("opq is not opaque: %d, %v", v, err)
			}
			for _, p := range []string{"escaped", "outside"} {
				if _, err := os.Lstat(filepath.Join(tree, p)); err != nil {
					t.Errorf("%s did not land inside the tree: %v", p, err)
				}
			}
			for _, p := range []string{"/escaped", filepath.Join(h.dir, "outside"), filepath.Join(filepath.Dir(tree), "outside")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s exists: an entry escaped the tree", p)
				}
			}

			// A killed unpacking: its temporary is left, then removed once
			// old and unlocked; a fresh one is kept.
			res = h.run(driverOp{Kind: "crash", Tar: other})
			crashed := res[0].Dir
			if res[0].Err != "" || crashed == "" {
				t.Fatalf("crash: %+v", res[0])
			}
			if res := h.run(driverOp{Kind: "stale"}); res[0].Err != "" || res[0].Removed != 0 {
				t.Errorf("RemoveStale right after the crash: %+v, want nothing removed (it may be a live writer's)", res[0])
			}
			old := time.Now().Add(-time.Hour)
			must(t, os.Chtimes(crashed, old, old))
			if res := h.run(driverOp{Kind: "stale"}); res[0].Err != "" || res[0].Removed != 1 {
				t.Errorf("RemoveStale: %+v, want the crashed unpacking removed", res[0])
			}
			if _, err := os.Lstat(crashed); err == nil {
				t.Errorf("%s, left by a killed unpacking, is still there", crashed)
			}

			// A sandbox run in a Scratch over the real parent.
			parent := h.run(driverOp{Kind: "unpack", Tar: testenv.ParentRootfsTar(t)})[0]
			if parent.Err != "" {
				t.Fatalf("unpack the parent: %s", parent.Err)
			}
			sc := h.run(driverOp{Kind: "scratch", Lowers: []string{parent.Dir}})[0]
			if sc.Err != "" {
				t.Fatalf("scratch run: %s", sc.Err)
			}
			if want := u.hostID(100, u.uid); sc.UpperUID != want {
				t.Errorf("upper/x owner %d, want %d", sc.UpperUID, want)
			}
			if _, err := os.Lstat(sc.Scratch); err == nil {
				t.Errorf("Scratch.Remove left %s", sc.Scratch)
			}
			if tmps := h.temporaries(); len(tmps) != 0 {
				t.Errorf("temporaries left: %v", tmps)
			}

			// kiln cache prune, as the user: the trees hold directories of
			// subordinate owners (mode 700) that only the sandbox removes.
			out, err := h.exec(nil, testenv.KilnBinary(t), "cache", "prune", "--max-size", "0", "--cache-dir", h.cache)
			if err != nil || !strings.Contains(out, "removed 2 files") || !strings.Contains(out, "the cache now holds 0 B") {
				t.Errorf("kiln cache prune: %v\n%s\nwant both unpacked layers removed", err, out)
			}
			if es := h.entries(); len(es) != 0 {
				t.Errorf("after kiln cache prune unpacked/ holds %v", es)
			}
		})
	}
}

// TestUnpackedHostile unpacks the hostile corpus's layer tars as a user
// with a subordinate range: the ones a runtime confines land inside the
// tree, the others fail and leave no entry and no temporary, and nothing
// reaches the canary. sandbox.Unpack refuses (rather than confines) a file
// written through a symlink the same layer planted: refused is also safe.
func TestUnpackedHostile(t *testing.T) {
	us := testUsers(t)
	h := newHarness(t, us[len(us)-1])
	cases, err := hostile.Corpus()
	must(t, err)
	var ops []driverOp
	var layers []hostile.Case
	for _, c := range cases {
		if c.Kind != hostile.Layer {
			continue
		}
		p := filepath.Join(h.dir, c.File)
		must(t, os.WriteFile(p, c.Data, 0o644))
		ops = append(ops, driverOp{Kind: "unpack", Tar: p})
		layers = append(layers, c)
	}
	if len(layers) == 0 {
		t.Fatal("the corpus has no layer tars")
	}
	res := h.run(ops...)
	throughSymlink := map[string]string{"layer-symlink-abs-through.tar": "/a/through", "layer-symlink-rel-through.tar": "/usr/up/rel"}
	confined := 0
	for i, c := range layers {
		r := res[i]
		if entry, ok := throughSymlink[c.File]; ok {
			if r.Err == "" || !strings.Contains(r.Err, entry) {
				t.Errorf("%s (%s): %q, %q; want an error naming %s", c.File, c.What, r.Dir, r.Err, entry)
			}
			continue
		}
		switch c.Want {
		case hostile.Confine:
			confined++
			if r.Err != "" {
				t.Errorf("%s (%s): %s", c.File, c.What, r.Err)
				continue
			}
			if _, err := os.Lstat(filepath.Join(r.Dir, c.Inside)); err != nil && c.Inside != "dev/null" {
				t.Errorf("%s (%s): %s is not inside the tree: %v", c.File, c.What, c.Inside, err)
			}
		case hostile.Reject:
			if r.Err == "" {
				t.Errorf("%s (%s): unpacked into %s, want an error", c.File, c.What, r.Dir)
			}
		}
	}
	if _, err := os.Lstat(hostile.CanaryDir); err == nil {
		t.Errorf("%s exists: a hostile layer escaped", hostile.CanaryDir)
	}
	if tmps := h.temporaries(); len(tmps) != 0 {
		t.Errorf("failed unpackings left temporaries: %v", tmps)
	}
	var entries int
	for _, n := range h.entries() {
		if !strings.HasPrefix(n, keyLockPfx) {
			entries++
		}
	}
	if entries != confined {
		t.Errorf("unpacked/ holds %d entries (%v), want %d: one per confined layer, none for a rejected one", entries, h.entries(), confined)
	}
}

// TestUnpackedConcurrent unpacks the parent in two builds at once, over an
// entry a crash left without its record, after one interrupted unpacking:
// both get the same new entry, the planted one is not trusted, and no
// temporary is left.
func TestUnpackedConcurrent(t *testing.T) {
	us := testUsers(t)
	u := us[len(us)-1]
	h := newHarness(t, u)
	parent := testenv.ParentRootfsTar(t)
	l, err := tarball.LayerFromFile(parent)
	must(t, err)
	diffID, err := l.DiffID()
	must(t, err)
	planted := filepath.Join(h.cache, unpackedDir, unpackedKey(diffID, u.ids()), unpackedTree, "planted")
	must(t, os.MkdirAll(filepath.Dir(planted), 0o755))
	must(t, os.WriteFile(planted, nil, 0o644))
	testenv.ChownTree(t, h.dir, u.uid, u.gid)

	// An interrupted build leaves nothing behind.
	if r := h.run(driverOp{Kind: "unpack-cancelled", Tar: parent})[0]; !strings.Contains(r.Err, "context canceled") || r.Dir != "" {
		t.Errorf("Unpacked cancelled midway: %q, %q; want the context's error", r.Dir, r.Err)
	}
	if tmps := h.temporaries(); len(tmps) != 0 {
		t.Errorf("the cancelled unpacking left %v", tmps)
	}

	type result struct {
		res []driverResult
		err error
	}
	ch := make(chan result, 2)
	for range 2 {
		go func() {
			res, err := h.tryRun(driverOp{Kind: "unpack", Tar: parent})
			ch <- result{res, err}
		}()
	}
	var dirs []string
	for range 2 {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.res[0].Err != "" {
			t.Fatalf("Unpacked: %s", r.res[0].Err)
		}
		dirs = append(dirs, r.res[0].Dir)
	}
	if dirs[0] != dirs[1] || dirs[0] != filepath.Dir(planted) {
		t.Errorf("the builds got %q, want both %s", dirs, filepath.Dir(planted))
	}
	if _, err := os.Lstat(planted); err == nil {
		t.Errorf("the entry without a record was trusted: %s is still there", planted)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "usr/bin/python3")); err != nil {
		t.Errorf("the parent's python3 is not in the tree: %v", err)
	}
	if tmps := h.temporaries(); len(tmps) != 0 {
		t.Errorf("temporaries left: %v", tmps)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
