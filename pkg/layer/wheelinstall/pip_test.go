package wheelinstall_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/pkg/layer/wheelinstall"
)

// outcome is what the acceptance test expects for a fixture wheel.
type outcome int

const (
	// bothInstall: pip and Install succeed with the same tree.
	bothInstall outcome = iota
	// bothRefuse: pip and Install both refuse the wheel.
	bothRefuse
	// pipRefusesTags: pip refuses because the wheel's tags do not fit this
	// machine. Install does not judge tags (the resolver picks wheels), so
	// it installs them.
	pipRefusesTags
	// kilnRefusesRecord: pip installs the wheel, but its RECORD does not
	// list every file with a hash, so Install refuses it.
	kilnRefusesRecord
)

// expected lists the fixture wheels that do not simply install; every
// other wheel must install exactly as pip installs it.
var expected = map[string]outcome{
	"brokenwheel-1.0-py2.py3-none-any.whl":     bothRefuse, // .dist-info of another project
	"corruptwheel-1.0-py2.py3-none-any.whl":    bothRefuse, // not a zip
	"priority-1.0-py2.py3-none-any.whl":        bothRefuse, // not a zip
	"invalid.whl":                              bothRefuse, // bad file name
	"simple.dist-0.1-py1-none-invalid.whl":     pipRefusesTags,
	"simplewheel-2.0-py3-fakeabi-fakeplat.whl": pipRefusesTags,
	"simplewheel-2.0-1-py2.py3-none-any.whl":   kilnRefusesRecord, // RECORD names simplewheel-2.0-1.dist-info
	"license.dist-0.1-py2.py3-none-any.whl":    kilnRefusesRecord, // METADATA is not what RECORD says
	"license.dist-0.2-py2.py3-none-any.whl":    kilnRefusesRecord, // METADATA is not what RECORD says
}

// repoRoot walks up from the test's directory to go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// fixtureWheels returns the fixture wheels of the named directories.
func fixtureWheels(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		dir := filepath.Join(repoRoot(t), "..", "shared", "fixtures", "wheels", d)
		m, err := filepath.Glob(filepath.Join(dir, "*.whl"))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("no wheels in %s", dir)
		}
		out = append(out, m...)
	}
	return out
}

// python describes the python3 found on PATH.
type python struct {
	exe        string // sys.executable, the base interpreter
	version    string // major.minor
	fullVesion string
}

func findPython(t *testing.T) python {
	t.Helper()
	if testing.Short() {
		t.Skip("runs pip; skipped in -short mode")
	}
	p, err := exec.LookPath("python3")
	if err == nil {
		var out []byte
		out, err = exec.Command(p, "-c", "import sys, pip; print(sys.executable); print('%d.%d' % sys.version_info[:2]); print('%d.%d.%d' % sys.version_info[:3])").Output()
		if err == nil {
			f := strings.Fields(string(out))
			if len(f) == 3 {
				return python{exe: f[0], version: f[1], fullVesion: f[2]}
			}
			err = fmt.Errorf("unexpected output %q", out)
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("python3 with pip is needed on CI: %v", err)
	}
	t.Skipf("python3 with pip not available: %v", err)
	return python{}
}

// pipResult is a pip installation into a fresh venv.
type pipResult struct {
	venv string // absolute path of the venv
	err  error
	log  string
}

// pipInstall makes a venv under a new temporary directory and installs
// the wheels into it with pip, as the acceptance test's reference. The venv
// sees the system site-packages (so that its python can run pip without
// a copy of pip) and pip is told to ignore what is installed there.
func pipInstall(py python, wheels []string) pipResult {
	dir, err := os.MkdirTemp("", "kwi")
	if err != nil {
		return pipResult{err: err}
	}
	venv := filepath.Join(dir, "v")
	run := func(args ...string) (string, error) {
		cmd := exec.Command("sh", append([]string{"-c", `umask 022 && exec "$@"`, "sh"}, args...)...)
		cmd.Env = append(os.Environ(), "PIP_CONFIG_FILE="+os.DevNull, "PIP_NO_INPUT=1",
			"PIP_DISABLE_PIP_VERSION_CHECK=1", "PYTHONDONTWRITEBYTECODE=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(py.exe, "-m", "venv", "--without-pip", "--system-site-packages", venv); err != nil {
		return pipResult{venv: venv, err: fmt.Errorf("venv: %v: %s", err, out)}
	}
	args := []string{filepath.Join(venv, "bin", "python"), "-m", "pip", "install",
		"--ignore-installed", "--no-deps", "--no-compile", "--no-index"}
	out, err := run(append(args, wheels...)...)
	return pipResult{venv: venv, err: err, log: out}
}

// node is one entry of an installed tree.
type node struct {
	kind string // "dir", "file", "link"
	mode fs.FileMode
	sum  string // sha256 of a file; target of a link
	data []byte // content of small text files, for diffs
}

func (n node) String() string {
	return fmt.Sprintf("%s %o %s", n.kind, n.mode, n.sum)
}

// ignored reports whether the comparison skips a tree path.
func ignored(p string) bool {
	base := path.Base(p)
	switch {
	case strings.Contains("/"+p+"/", "/__pycache__/"), strings.HasSuffix(p, ".pyc"):
		return true
	case strings.HasPrefix(p, "bin/activate"), p == "bin/Activate.ps1":
		return true
	case strings.HasSuffix(path.Dir(p), ".dist-info") && base == "direct_url.json":
		return true
	}
	return false
}

func newNode(kind string, mode fs.FileMode, data []byte) node {
	s := sha256.Sum256(data)
	n := node{kind: kind, mode: mode, sum: fmt.Sprintf("%x", s)}
	if len(data) < 4096 {
		n.data = data
	}
	return n
}

func treeFromDir(t *testing.T, root string) map[string]node {
	t.Helper()
	tree := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." || ignored(filepath.ToSlash(rel)) {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			tree[rel] = node{kind: "dir", mode: info.Mode().Perm()}
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			tree[rel] = node{kind: "link", sum: target}
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tree[rel] = newNode("file", info.Mode().Perm(), data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// treeFromTar reads the entries of a tar under prefix, checking the
// layer's invariants on the way.
func treeFromTar(t *testing.T, data []byte, prefix string, epoch time.Time) map[string]node {
	t.Helper()
	tree := map[string]node{}
	seen := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if seen[name] {
			t.Errorf("tar: %s written twice", name)
		}
		seen[name] = true
		if parent := path.Dir(name); parent != "." && !seen[parent] {
			t.Errorf("tar: %s written before its directory %s", name, parent)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("tar: %s: uid %d gid %d mtime %v, want 0 0 %v", name, h.Uid, h.Gid, h.ModTime, epoch)
		}
		rel, ok := strings.CutPrefix(name, prefix+"/")
		if !ok || ignored(rel) {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			tree[rel] = node{kind: "dir", mode: fs.FileMode(h.Mode)}
		case tar.TypeSymlink:
			tree[rel] = node{kind: "link", sum: h.Linkname}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			tree[rel] = newNode("file", fs.FileMode(h.Mode), b)
		default:
			t.Errorf("tar: %s has type %c", name, h.Typeflag)
		}
	}
	return tree
}

// normalizeRecord drops the rows of files that legitimately differ (the
// installer's name, direct_url.json) and sorts the rest.
func normalizeRecord(data []byte) string {
	var rows []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		p, _, _ := strings.Cut(line, ",")
		if strings.HasSuffix(p, ".dist-info/INSTALLER") || strings.HasSuffix(p, ".dist-info/direct_url.json") {
			continue
		}
		rows = append(rows, line)
	}
	sort.Strings(rows)
	return strings.Join(rows, "\n")
}

// compareTrees reports the differences between pip's tree and ours.
func compareTrees(t *testing.T, want, got map[string]node) {
	t.Helper()
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		w, wok := want[p]
		g, gok := got[p]
		switch {
		case !wok:
			t.Errorf("%s: installed by kiln, not by pip", p)
		case !gok:
			t.Errorf("%s: installed by pip, not by kiln", p)
		case p == "pyvenv.cfg":
			// kiln writes the same keys, with its own command line.
			for _, key := range []string{"home", "include-system-site-packages", "version"} {
				if wv, gv := cfgValue(w.data, key), cfgValue(g.data, key); wv != gv {
					t.Errorf("pyvenv.cfg %s = %q, pip's venv has %q", key, gv, wv)
				}
			}
		case strings.HasSuffix(p, ".dist-info/INSTALLER"):
			if g.kind != "file" || g.mode != w.mode || string(g.data) != "kiln\n" {
				t.Errorf("%s: %v %q, want file mode %o with kiln", p, g, g.data, w.mode)
			}
		case strings.HasSuffix(p, ".dist-info/RECORD"):
			if g.mode != w.mode {
				t.Errorf("%s: mode %o, pip %o", p, g.mode, w.mode)
			}
			if gr, wr := normalizeRecord(g.data), normalizeRecord(w.data); gr != wr {
				t.Errorf("%s differs:\nkiln:\n%s\npip:\n%s", p, gr, wr)
			}
		case w.kind != g.kind || w.mode != g.mode || w.sum != g.sum:
			t.Errorf("%s: kiln %v, pip %v", p, g, w)
			if w.data != nil && g.data != nil {
				t.Logf("kiln:\n%s\npip:\n%s", g.data, w.data)
			}
		}
	}
}

func cfgValue(cfg []byte, key string) string {
	for _, line := range strings.Split(string(cfg), "\n") {
		if k, v, ok := strings.Cut(line, " = "); ok && k == key {
			return v
		}
	}
	return "<missing>"
}

// kilnInstall writes the venv skeleton and the wheel into a tar as kiln
// would, for a venv at venv (an absolute path).
func kilnInstall(t *testing.T, py python, venv string, wheels []string, epoch time.Time) ([]byte, error) {
	t.Helper()
	prefix := strings.TrimPrefix(venv, "/")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	if err := wheelinstall.WriteVenv(tw, wheelinstall.VenvOptions{
		Prefix:            prefix,
		PythonVersion:     py.version,
		PythonFullVersion: py.fullVesion,
		Interpreter:       py.exe,
		Epoch:             epoch,
		Dirs:              dirs,
	}); err != nil {
		t.Fatalf("WriteVenv: %v", err)
	}
	scheme := wheelinstall.VenvScheme(prefix, py.version)
	scheme.Interpreter = venv + "/bin/python" // what pip in the venv writes
	for _, wheel := range wheels {
		f, err := os.Open(wheel)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		inst, err := wheelinstall.Install(context.Background(), tw, f, st.Size(), filepath.Base(wheel), scheme,
			wheelinstall.Options{Epoch: epoch, Requested: true, Dirs: dirs})
		if err != nil {
			return nil, err
		}
		if inst.Name == "" || inst.Version == "" || len(inst.Files) == 0 || !sort.StringsAreSorted(inst.Files) {
			t.Errorf("Installed = %+v, want a name, a version and sorted files", inst)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), nil
}

// TestMatchesPip is the acceptance test: every fixture wheel installs to
// the same tree as pip gives, or is refused as pip refuses it.
//
// pip takes a second to start, so wheels that both must install are
// installed in batches, one pip process and one venv per batch, with no two
// wheels of a batch sharing a project name or a file; kiln installs the
// same batch into one layer (which also checks that Dirs is shared).
func TestMatchesPip(t *testing.T) {
	py := findPython(t)
	wheels := append(fixtureWheels(t, "pip-testdata", "pypi"), syntheticWheels(t)...)
	for name := range expected {
		found := false
		for _, w := range wheels {
			found = found || filepath.Base(w) == name
		}
		if !found {
			t.Errorf("expected outcome for %s, which is not a fixture", name)
		}
	}

	// Plan the batches from a trial installation.
	type batch struct {
		wheels []string
		names  map[string]bool
		files  map[string]bool
	}
	var batches []*batch
	var singles []string
	for _, w := range wheels {
		if expected[filepath.Base(w)] != bothInstall {
			singles = append(singles, w)
			continue
		}
		name, files, err := trialInstall(t, w)
		if err != nil {
			t.Errorf("Install %s: %v", filepath.Base(w), err)
			continue
		}
		var b *batch
	find:
		for _, c := range batches {
			if c.names[name] || len(c.wheels) >= 12 {
				continue
			}
			for _, f := range files {
				if c.files[f] {
					continue find
				}
			}
			b = c
			break
		}
		if b == nil {
			b = &batch{names: map[string]bool{}, files: map[string]bool{}}
			batches = append(batches, b)
		}
		b.wheels = append(b.wheels, w)
		b.names[name] = true
		for _, f := range files {
			b.files[f] = true
		}
	}
	jobs := make([][]string, 0, len(batches)+len(singles))
	for _, b := range batches {
		jobs = append(jobs, b.wheels)
	}
	for _, w := range singles {
		jobs = append(jobs, []string{w})
	}

	results := make([]pipResult, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = pipInstall(py, job)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, r := range results {
			if r.venv != "" {
				os.RemoveAll(filepath.Dir(r.venv))
			}
		}
	})

	epoch := time.Unix(1700000000, 0)
	for i, job := range jobs {
		r := results[i]
		if len(job) > 1 || expected[filepath.Base(job[0])] == bothInstall {
			t.Run(fmt.Sprintf("batch%d", i), func(t *testing.T) {
				for _, w := range job {
					t.Log(filepath.Base(w))
				}
				if r.err != nil {
					t.Fatalf("pip: %v\n%s", r.err, r.log)
				}
				data, err := kilnInstall(t, py, r.venv, job, epoch)
				if err != nil {
					t.Fatalf("Install: %v", err)
				}
				got := treeFromTar(t, data, strings.TrimPrefix(r.venv, "/"), epoch)
				compareTrees(t, treeFromDir(t, r.venv), got)
				for _, w := range job {
					for _, p := range mustInstall[filepath.Base(w)] {
						p = strings.ReplaceAll(p, "X.Y", py.version)
						if _, ok := got[p]; !ok {
							t.Errorf("%s: %s not installed", filepath.Base(w), p)
						}
					}
				}
			})
			continue
		}
		name := filepath.Base(job[0])
		t.Run(name, func(t *testing.T) {
			if r.venv == "" {
				t.Fatalf("pip setup: %v", r.err)
			}
			_, err := kilnInstall(t, py, r.venv, job, epoch)
			switch expected[name] {
			case bothRefuse:
				if r.err == nil {
					t.Errorf("pip installed the wheel, expected a refusal")
				}
				if err == nil {
					t.Fatalf("Install succeeded; pip refused with:\n%s", r.log)
				}
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name the wheel", err)
				}
			case kilnRefusesRecord:
				if r.err != nil {
					t.Errorf("pip: %v\n%s; expected it to install", r.err, r.log)
				}
				if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "RECORD") {
					t.Errorf("Install: %v, want a RECORD refusal naming the wheel", err)
				}
			case pipRefusesTags:
				if r.err == nil || !strings.Contains(r.log, "is not a supported wheel on this platform") {
					t.Errorf("pip: err %v, log:\n%s\nwant a refusal for the tags", r.err, r.log)
				}
				if err != nil {
					t.Fatalf("Install: %v", err)
				}
			}
		})
	}
}

// trialInstall installs a wheel into a scratch layer and returns its
// canonical project name and its files relative to the venv, case-folded.
func trialInstall(t *testing.T, wheel string) (string, []string, error) {
	t.Helper()
	f, err := os.Open(wheel)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	inst, err := wheelinstall.Install(context.Background(), tar.NewWriter(io.Discard), f, st.Size(), filepath.Base(wheel),
		wheelinstall.VenvScheme("v", "3.11"), wheelinstall.Options{})
	if err != nil {
		return "", nil, err
	}
	var files []string
	for _, p := range inst.Files {
		files = append(files, strings.ToLower(p))
	}
	name := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(inst.Name))
	return name, files, nil
}

// synthetic are wheels made by the test for what the fixtures lack: every
// .data scheme, platlib roots, script shebang variants, pip's special entry
// points, names that RECORD must quote.
var synthetic = []testWheel{
	{
		name: "data_full", version: "1.0",
		entryPoints: "# comment\n[console_scripts]\ndfcli = data_full.cli:main\ndfcli = data_full.cli:main2\n" +
			"pip = data_full.cli:pipmain\npip3.8 = x:y\neasy_install = data_full:ei\n" +
			"df-extra = data_full.cli:main [extra]\ndf.dotted = data_full.sub.mod:Klass.method\n\n" +
			"[gui_scripts]\ndfgui = data_full.gui:run\n[other]\nignored = a:b\n",
		files: []zfile{
			{name: "data_full/__init__.py", data: "x = 1\n"},
			{name: "data_full/tool.sh", data: "#!/bin/sh\necho hi\n", mode: 0o100755},
			{name: "data_full/odd", data: "x", mode: 0o000755}, // no file type: not executable for pip
			{name: "data_full-1.0.data/headers/data_full.h", data: "int x;\n"},
			{name: "data_full-1.0.data/data/share/data_full/readme.txt", data: "read me\n"},
			{name: "data_full-1.0.data/purelib/data_full_pure.py", data: "y = 2\n"},
			{name: "data_full-1.0.data/platlib/data_full_plat/__init__.py", data: "z = 3\n"},
			{name: "data_full-1.0.data/scripts/runme", data: "#!python -u\r\nprint('hi')\r\n", mode: 0o100755},
			{name: "data_full-1.0.data/scripts/plain", data: "#!/bin/sh\necho plain\n", mode: 0o100644},
			{name: "data_full-1.0.data/scripts/gui", data: "#!pythonw\nimport x\n"},
			{name: "data_full-1.0.data/scripts/short", data: "#!python", mode: 0o100755},
			{name: "data_full-1.0.data/scripts/tiny", data: "#!", mode: 0o100755},
			{name: "data_full-1.0.data/scripts/empty", data: ""},
			{name: "data_full-1.0.data/scripts/dfcli.exe", data: "MZ"},
			{name: "data_full-1.0.data/scripts/dfcli-script.py", data: "#!python\n"},
		},
	},
	{
		name: "uni_pkg", version: "2.0", purelib: true,
		files: []zfile{
			{name: "uni_pkg/__init__.py", data: ""},
			{name: "uni_pkg/\u00fcn\u00ef.py", data: "# \u00fc\n"},
			{name: "uni_pkg/a,b \"c\".txt", data: "quoted\n"},
			{name: "uni_pkg/sub/", data: ""},
		},
	},
}

// mustInstall lists paths (relative to the venv, X.Y the Python version)
// that some wheels must install, so that the comparison with pip cannot
// pass by both sides missing them.
var mustInstall = map[string][]string{
	"data_full-1.0-py3-none-any.whl": {
		"include/site/pythonX.Y/data-full/data_full.h",
		"share/data_full/readme.txt",
		"lib/pythonX.Y/site-packages/data_full_pure.py",
		"lib/pythonX.Y/site-packages/data_full_plat/__init__.py",
		"bin/runme", "bin/plain", "bin/gui", "bin/short", "bin/dfcli", "bin/dfgui",
		"bin/pip", "bin/pip3", "bin/pipX.Y", "bin/easy_install", "bin/easy_install-X.Y",
		"bin/df-extra", "bin/df.dotted",
	},
	"uni_pkg-2.0-py3-none-any.whl":          {"lib/pythonX.Y/site-packages/uni_pkg/\u00fcn\u00ef.py"},
	"Flask-3.1.3-py3-none-any.whl":          {"bin/flask"},
	"mypy-0.782-py3-none-any.whl":           {"bin/mypy", "bin/dmypy", "bin/stubgen", "bin/stubtest"},
	"setuptools-0.9.8-py2.py3-none-any.whl": {"bin/easy_install", "bin/easy_install-X.Y"},
}

// syntheticWheels writes the synthetic wheels to a temporary directory.
func syntheticWheels(t *testing.T) []string {
	dir := t.TempDir()
	var out []string
	for _, w := range synthetic {
		p := filepath.Join(dir, w.filename())
		if err := os.WriteFile(p, w.build(t), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
