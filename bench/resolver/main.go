// Command resolver compares kiln's resolver with pip's on generated
// conflict-heavy indexes: N projects of M versions whose dependencies have
// interlocking bounds, served as a static PEP 503 index with PEP 658
// metadata on a loopback port. For each scenario it reports whether each
// tool found a solution, how long it took, whether kiln's solution holds,
// and how many lines each used to explain a conflict. The report is
// Markdown on stdout.
//
//	go run ./bench/resolver [-pip /usr/share/python-wheels/pip-*.whl] [-python python3]
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/resolve/pypi"
	"github.com/kiln-build/kiln/pkg/wheeltag"
)

// scenario is one generated index and the requirements to resolve.
type scenario struct {
	name     string
	seed     uint64
	projects int
	versions int
	// top are the requirements.
	top []string
	// minWidth and widths: each dependency admits minWidth + [0, widths)
	// consecutive versions (0: 4 and 8).
	minWidth, widths int
}

// gen is the dependency structure of a scenario.
type gen struct {
	deps map[string][]string // "p03 7.0" -> requirements
}

func project(i int) string { return fmt.Sprintf("p%02d", i) }

// generate gives each version v of project i two or three dependencies on
// later projects j, each a window of versions that moves with v, so that
// newer versions of one project want newer versions of some and older
// versions of others.
func generate(sc scenario) gen {
	r := rand.New(rand.NewPCG(sc.seed, sc.seed*7+1))
	g := gen{deps: map[string][]string{}}
	for i := 0; i < sc.projects; i++ {
		// Which later projects i depends on, and how the window moves.
		var targets []int
		for k := 0; k < 2+r.IntN(2); k++ {
			if i+1 >= sc.projects {
				break
			}
			j := i + 1 + r.IntN(min(6, sc.projects-i-1))
			targets = append(targets, j)
		}
		type lane struct{ slope, offset, width int }
		lanes := make([]lane, len(targets))
		for k := range lanes {
			slope := 1
			if r.IntN(2) == 0 {
				slope = -1
			}
			minWidth, widths := sc.minWidth, sc.widths
			if minWidth == 0 {
				minWidth, widths = 4, 8
			}
			lanes[k] = lane{slope, r.IntN(sc.versions), minWidth + r.IntN(widths)}
		}
		for v := 1; v <= sc.versions; v++ {
			var reqs []string
			for k, j := range targets {
				l := lanes[k]
				c := ((l.slope*v+l.offset)%sc.versions+sc.versions)%sc.versions + 1
				lo := min(c, sc.versions+1-l.width) // the window stays within the versions
				hi := lo + l.width
				reqs = append(reqs, fmt.Sprintf("%s>=%d.0,<%d.0", project(j), lo, hi))
			}
			g.deps[fmt.Sprintf("%s %d.0", project(i), v)] = reqs
		}
	}
	return g
}

func metadata(name, version string, reqs []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)
	for _, r := range reqs {
		fmt.Fprintf(&b, "Requires-Dist: %s\n", r)
	}
	return []byte(b.String())
}

func wheel(name, version string, md []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	di := fmt.Sprintf("%s-%s.dist-info/", name, version)
	files := []struct {
		name string
		data []byte
	}{
		{name + "/__init__.py", []byte("# generated\n")},
		{di + "METADATA", md},
		{di + "WHEEL", []byte("Wheel-Version: 1.0\nGenerator: kiln-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n")},
	}
	var record strings.Builder
	for _, f := range files {
		w, _ := zw.Create(f.name)
		w.Write(f.data)
		sum := sha256.Sum256(f.data)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, strings.TrimRight(b64(sum[:]), "="), len(f.data))
	}
	fmt.Fprintf(&record, "%sRECORD,,\n", di)
	w, _ := zw.Create(di + "RECORD")
	w.Write([]byte(record.String()))
	zw.Close()
	return buf.Bytes()
}

func b64(b []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var out strings.Builder
	for i := 0; i < len(b); i += 3 {
		var n uint32
		k := 0
		for ; k < 3 && i+k < len(b); k++ {
			n |= uint32(b[i+k]) << (16 - 8*k)
		}
		for q := 0; q < k+1; q++ {
			out.WriteByte(enc[(n>>(18-6*q))&63])
		}
	}
	return out.String()
}

// writeIndex writes the scenario's static index under dir:
// simple/<name>/index.html with PEP 658 attributes, and files/.
func writeIndex(dir string, sc scenario, g gen) error {
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		return err
	}
	var root strings.Builder
	root.WriteString("<!DOCTYPE html><html><body>\n")
	for i := 0; i < sc.projects; i++ {
		name := project(i)
		fmt.Fprintf(&root, "<a href=\"%s/\">%s</a>\n", name, name)
		var page strings.Builder
		page.WriteString("<!DOCTYPE html><html><body>\n")
		for v := 1; v <= sc.versions; v++ {
			version := fmt.Sprintf("%d.0", v)
			md := metadata(name, version, g.deps[name+" "+version])
			whl := wheel(name, version, md)
			fn := fmt.Sprintf("%s-%s-py3-none-any.whl", name, version)
			if err := os.WriteFile(filepath.Join(dir, "files", fn), whl, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "files", fn+".metadata"), md, 0o644); err != nil {
				return err
			}
			ws, ms := sha256.Sum256(whl), sha256.Sum256(md)
			fmt.Fprintf(&page, "<a href=\"../../files/%s#sha256=%s\" data-dist-info-metadata=\"sha256=%s\" data-core-metadata=\"sha256=%s\">%s</a><br/>\n", fn, hex.EncodeToString(ws[:]), hex.EncodeToString(ms[:]), hex.EncodeToString(ms[:]), fn)
		}
		page.WriteString("</body></html>\n")
		if err := os.MkdirAll(filepath.Join(dir, "simple", name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "simple", name, "index.html"), []byte(page.String()), 0o644); err != nil {
			return err
		}
	}
	root.WriteString("</body></html>\n")
	return os.WriteFile(filepath.Join(dir, "simple", "index.html"), []byte(root.String()), 0o644)
}

// outcome is one tool's result on one scenario.
type outcome struct {
	solved   bool
	answered bool // false: gave up or timed out
	elapsed  time.Duration
	lines    int // lines of the conflict explanation
	valid    string
	note     string
	// explanation is the conflict explanation, for the report.
	explanation string
}

func runKiln(ctx context.Context, index string, sc scenario, g gen) outcome {
	store, err := cache.Open(filepath.Join(os.TempDir(), fmt.Sprintf("kiln-bench-resolver-%d", os.Getpid())))
	if err != nil {
		return outcome{note: err.Error()}
	}
	ixs, err := pypi.NewIndexes(index, nil, pypi.IndexOptions{Store: store, Netrc: "/nonexistent"})
	if err != nil {
		return outcome{note: err.Error()}
	}
	env, _ := pep508.LinuxCPython("3.11.2", "x86_64")
	var reqs []pypi.Requirement
	for _, s := range sc.top {
		r, err := pypi.ParseRequirement(s, ".")
		if err != nil {
			return outcome{note: err.Error()}
		}
		reqs = append(reqs, pypi.Requirement{Requirement: r, Source: "packages"})
	}
	start := time.Now()
	res, err := pypi.Resolve(ctx, pypi.Request{Requirements: reqs, Env: env, Target: wheeltag.Target{PythonMajor: 3, PythonMinor: 11, Arch: "x86_64", Libc: wheeltag.Glibc, LibcMajor: 2, LibcMinor: 36}, Indexes: ixs})
	o := outcome{elapsed: time.Since(start), answered: true}
	var rerr *pypi.ResolutionError
	switch {
	case err == nil:
		o.solved = true
		o.valid = check(res, g)
	case errors.As(err, &rerr):
		o.lines = strings.Count(strings.TrimSpace(err.Error()), "\n") + 1
		o.explanation = err.Error()
	default:
		o.answered = false
		o.note = firstLine(err.Error())
	}
	return o
}

// check verifies a solution: every pinned version's requirements hold.
func check(res pypi.Result, g gen) string {
	got := map[string]pep440.Version{}
	for _, d := range res.Distributions {
		v, _ := pep440.Parse(d.Version)
		got[d.Name] = v
	}
	for _, d := range res.Distributions {
		for _, r := range g.deps[d.Name+" "+d.Version] {
			req, _ := pep508.ParseRequirement(r)
			v, ok := got[req.Name]
			if !ok || !req.Specifier.Contains(v, true) {
				return fmt.Sprintf("no: %s %s needs %s", d.Name, d.Version, r)
			}
		}
	}
	return "yes"
}

func runPip(ctx context.Context, python, pipWheel, index string, sc scenario, timeout time.Duration) outcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	report := filepath.Join(os.TempDir(), fmt.Sprintf("kiln-bench-pip-%d.json", os.Getpid()))
	defer os.Remove(report)
	args := []string{filepath.Join(pipWheel, "pip"), "install", "--dry-run", "--ignore-installed", "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--only-binary", ":all:", "--report", report, "--index-url", index}
	args = append(args, sc.top...)
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Env = append(os.Environ(), "PIP_CONFIG_FILE=/dev/null", "PYTHONDONTWRITEBYTECODE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	o := outcome{elapsed: time.Since(start), answered: true}
	switch {
	case ctx.Err() != nil:
		o.answered = false
		o.note = fmt.Sprintf("no answer in %s", timeout)
	case err == nil:
		o.solved = true
	case strings.Contains(stderr.String(), "ResolutionTooDeep"):
		o.answered = false
		o.note = "ResolutionTooDeep"
	case strings.Contains(stderr.String(), "ResolutionImpossible") || strings.Contains(stderr.String(), "conflicting dependencies") || strings.Contains(stderr.String(), "No matching distribution"):
		// The explanation: from pip's first ERROR line to its end,
		// without the progress lines before it.
		text := stderr.String()
		if i := strings.Index(text, "ERROR: "); i >= 0 {
			text = text[i:]
		}
		o.lines = strings.Count(strings.TrimSpace(text), "\n") + 1
		o.explanation = strings.TrimSpace(text)
	default:
		o.answered = false
		o.note = firstLine(stderr.String())
	}
	return o
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func (o outcome) cell() string {
	switch {
	case !o.answered:
		return "no answer (" + o.note + ")"
	case o.solved:
		return "solved"
	}
	unit := "lines"
	if o.lines == 1 {
		unit = "line"
	}
	return fmt.Sprintf("no solution, explained in %d %s (%d characters)", o.lines, unit, utf8.RuneCountInString(strings.TrimSpace(o.explanation)))
}

func main() { os.Exit(run()) }

func run() int {
	pipDefault, _ := filepath.Glob("/usr/share/python-wheels/pip-*.whl")
	pipWheel := flag.String("pip", "", "pip wheel to run (default: /usr/share/python-wheels/pip-*.whl)")
	python := flag.String("python", "python3", "the Python that runs pip")
	timeout := flag.Duration("timeout", 3*time.Minute, "time limit for one pip run")
	kilnOnly := flag.Bool("kiln-only", false, "run kiln's resolver only, not pip")
	only := flag.String("scenario", "", "run this scenario only (A-J)")
	flag.Parse()
	if *pipWheel == "" && len(pipDefault) > 0 {
		*pipWheel = pipDefault[len(pipDefault)-1]
	}
	if *pipWheel == "" {
		fmt.Fprintln(os.Stderr, "resolver bench: no pip wheel; install python3-pip-whl or pass -pip")
		return 2
	}
	pyVersion, _ := exec.Command(*python, "--version").CombinedOutput()
	pipVersion, _ := exec.Command(*python, filepath.Join(*pipWheel, "pip"), "--version").CombinedOutput()
	scenarios := []scenario{
		{name: "A", seed: 1, projects: 30, versions: 20, top: []string{"p00", "p01", "p02"}},
		{name: "B", seed: 2, projects: 30, versions: 20, top: []string{"p00", "p01", "p02", "p03"}},
		{name: "C", seed: 3, projects: 30, versions: 20, top: []string{"p00", "p01", "p02", "p29<=3.0"}},
		{name: "D", seed: 4, projects: 30, versions: 20, top: []string{"p00", "p02", "p04", "p27>=18.0"}},
		{name: "E", seed: 5, projects: 30, versions: 20, top: []string{"p00", "p01", "p02", "p03", "p04", "p05"}},
		{name: "F", seed: 6, projects: 30, versions: 20, top: []string{"p00", "p10", "p20", "p25==10.0"}},
		{name: "G", seed: 7, projects: 30, versions: 20, top: []string{"p00", "p01", "p02"}, minWidth: 9, widths: 6},
		{name: "H", seed: 8, projects: 30, versions: 20, top: []string{"p00", "p01", "p02", "p03"}, minWidth: 9, widths: 6},
		{name: "I", seed: 9, projects: 30, versions: 20, top: []string{"p00", "p05", "p10"}, minWidth: 7, widths: 6},
		{name: "J", seed: 10, projects: 30, versions: 20, top: []string{"p00", "p01"}, minWidth: 6, widths: 6},
	}
	ctx := context.Background()
	fmt.Printf("## kiln's resolver vs pip's on generated conflict-heavy indexes\n\n")
	fmt.Printf("- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Printf("- machine: %d CPUs (%s/%s); %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, strings.TrimSpace(string(pyVersion)))
	fmt.Printf("- pip: %s (`pip install --dry-run --ignore-installed --only-binary :all: --report`, time limit %s)\n", strings.TrimSpace(string(pipVersion)), *timeout)
	fmt.Printf("- kiln: pkg/resolve/pypi in-process (%s), target CPython 3.11 x86_64; both read the same loopback PEP 503 index with PEP 658 metadata\n", runtime.Version())
	fmt.Printf("- each index: 30 projects x 20 versions; version v of p_i needs 2-3 of p_(i+1..i+6) within a window of consecutive versions (A-F: 4-11 wide; G, H: 9-14; I: 7-12; J: 6-11) that moves with v (up or down), seeded\n\n")
	var explained []string
	fmt.Println("| scenario | requirements | kiln | kiln time | kiln solution holds | pip | pip time |")
	fmt.Println("| --- | --- | --- | ---: | --- | --- | ---: |")
	for _, sc := range scenarios {
		if *only != "" && sc.name != *only {
			continue
		}
		g := generate(sc)
		dir, err := os.MkdirTemp("", "kiln-bench-index-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := writeIndex(dir, sc, g); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
		go srv.Serve(ln)
		index := "http://" + ln.Addr().String() + "/simple/"
		fmt.Fprintf(os.Stderr, "scenario %s: kiln...\n", sc.name)
		k := runKiln(ctx, index, sc, g)
		var p outcome
		if *kilnOnly {
			p.note = "not run"
		} else {
			fmt.Fprintf(os.Stderr, "scenario %s: pip...\n", sc.name)
			p = runPip(ctx, *python, *pipWheel, index, sc, *timeout)
		}
		srv.Close()
		valid := k.valid
		if valid == "" {
			valid = "-"
		}
		fmt.Printf("| %s | `%s` | %s | %.2f s | %s | %s | %.2f s |\n", sc.name, strings.Join(sc.top, " "), k.cell(), k.elapsed.Seconds(), valid, p.cell(), p.elapsed.Seconds())
		if *kilnOnly && k.explanation != "" {
			fmt.Fprintf(os.Stderr, "scenario %s, kiln's explanation:\n%s\n", sc.name, k.explanation)
		}
		if len(explained) == 0 && k.explanation != "" && p.explanation != "" {
			explained = []string{sc.name, k.explanation, p.explanation}
		}
	}
	if explained != nil {
		fmt.Printf("\nScenario %s, kiln's explanation:\n\n```\n%s\n```\n\npip's:\n\n```\n%s\n```\n", explained[0], explained[1], explained[2])
	}
	return 0
}
