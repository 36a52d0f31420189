package pep508

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/pkg/pep440"

	"github.com/kiln-build/kiln/internal/pyoracle"
)

// runOracle sends req to testdata/oracle.py and decodes its answer into
// resp (see pyoracle.Run).
func runOracle(t *testing.T, req, resp any) {
	t.Helper()
	pyoracle.Run(t, "testdata/oracle.py", "from pip._vendor.packaging.markers import Marker", req, resp)
}

type gen struct{ r *rand.Rand }

func (g gen) pick(xs ...string) string { return xs[g.r.Intn(len(xs))] }

var versionVars = []string{"python_version", "python_full_version", "implementation_version", "platform_release", "platform_version"}
var stringVars = []string{"os_name", "os.name", "sys_platform", "sys.platform", "platform_machine", "platform.machine", "platform_system",
	"platform_python_implementation", "platform.python_implementation", "python_implementation", "implementation_name", "extra"}

func (g gen) ws() string { return g.pick("", " ", " ", "  ", "\t") }

func (g gen) quote(s string) string {
	if g.r.Intn(2) == 0 {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}

func (g gen) comparison() string {
	var v, val string
	if g.r.Intn(2) == 0 {
		v = versionVars[g.r.Intn(len(versionVars))]
		val = g.pick("3", "3.8", "3.9", "3.10", "3.11", "3.11.7", "3.12", "3.12.0rc1", "2.7", "3.11.*", "3.*", "3.x", "6.1", "5.15.0", "", "3.11 ", " 3.8", "1!3")
	} else {
		v = stringVars[g.r.Intn(len(stringVars))]
		val = g.pick("linux", "win32", "darwin", "posix", "nt", "x86_64", "aarch64", "AMD64", "Linux", "Windows", "CPython", "PyPy",
			"cpython", "", "lin", "x86", "test", "cuda", "dev-tools", "3.8")
		if v == "extra" {
			// Already normalised: packaging 21.3 predates PEP 685.
			val = g.pick("test", "cuda", "dev-tools", "linux", "", "3-8")
		}
	}
	op := g.pick("==", "!=", "<", "<=", ">", ">=", "~=", "===", "in", "not in", "==", "==", ">=", "<")
	sp := g.ws()
	if op == "in" || op == "not in" {
		sp = g.pick(" ", "  ")
	}
	if g.r.Intn(5) == 0 {
		return g.quote(val) + sp + op + sp + v
	}
	return v + sp + op + sp + g.quote(val)
}

func (g gen) marker(depth int) string {
	n := 1 + g.r.Intn(3)
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(g.pick(" ", "  ") + g.pick("and", "or") + g.pick(" ", "  "))
		}
		if depth < 2 && g.r.Intn(4) == 0 {
			b.WriteString("(" + g.ws() + g.marker(depth+1) + g.ws() + ")")
		} else {
			b.WriteString(g.comparison())
		}
	}
	return b.String()
}

func (g gen) env() (Environment, string) {
	full := g.pick("3.11.7", "3.8.18", "3.12.1", "3.13.0rc2", "3.10.0", "2.7.18", "3.11.0b1")
	v := pep440.MustParse(full)
	e := Environment{
		PythonVersion:                fmt.Sprintf("%d.%d", v.Major(), v.Minor()),
		PythonFullVersion:            full,
		OSName:                       g.pick("posix", "nt"),
		SysPlatform:                  g.pick("linux", "win32", "darwin"),
		PlatformMachine:              g.pick("x86_64", "aarch64", "AMD64", "arm64"),
		PlatformSystem:               g.pick("Linux", "Windows", "Darwin"),
		PlatformRelease:              g.pick("6.1.0-18-amd64", "5.15.0", "", "6.1", "10"),
		PlatformVersion:              g.pick("#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)", "", "6.1.76"),
		PlatformPythonImplementation: g.pick("CPython", "PyPy"),
		ImplementationName:           g.pick("cpython", "pypy"),
		ImplementationVersion:        full,
	}
	return e, g.pick("", "", "test", "cuda", "dev-tools", "linux")
}

func envMap(e Environment, extra string) map[string]string {
	return map[string]string{
		"python_version": e.PythonVersion, "python_full_version": e.PythonFullVersion, "os_name": e.OSName,
		"sys_platform": e.SysPlatform, "platform_machine": e.PlatformMachine, "platform_system": e.PlatformSystem,
		"platform_release": e.PlatformRelease, "platform_version": e.PlatformVersion,
		"platform_python_implementation": e.PlatformPythonImplementation, "implementation_name": e.ImplementationName,
		"implementation_version": e.ImplementationVersion, "extra": extra,
	}
}

// knownDifference reports whether evaluating m differs by design from
// packaging's answer: pkg/pep508 follows the PEP 508 specification (and
// packaging >= 24.1, pypa/packaging#816) by falling back to string
// comparison when the left side is not a version, where packaging 21-23
// return false or raise InvalidVersion; and it includes pre-releases in
// version comparisons as packaging >= 22 does, where 21.3 excluded them.
func knownDifference(ref string, m *Marker, env Environment, extra string) bool {
	var walk func(g *group) bool
	walk = func(g *group) bool {
		for _, a := range g.atoms {
			switch a := a.(type) {
			case *group:
				if walk(a) {
					return true
				}
			case *comparison:
				lhs, rhs := a.lhs.value(env, extra), a.rhs.value(env, extra)
				sp, err := pep440.ParseSpecifier(a.op + rhs)
				if err != nil {
					continue
				}
				v, err := pep440.Parse(lhs)
				if err != nil && a.op != "===" {
					return true
				}
				if err == nil && strings.HasPrefix(ref, "21.") && v.IsPrerelease() && !sp.Prereleases() {
					return true
				}
				if err != nil && !strings.HasPrefix(ref, "21.") {
					return true // packaging 22-23 raise InvalidVersion for ===
				}
			}
		}
		return false
	}
	return walk(m.expr)
}

// redundantParens reports whether g has a parenthesised group directly
// inside another, such as "((a or b))", which packaging's str() prints
// without parentheses at all, changing the meaning; pkg/pep508 keeps one
// pair.
func redundantParens(g *group) bool {
	for _, a := range g.atoms {
		if in, ok := a.(*group); ok {
			if len(in.atoms) == 1 {
				if _, ok := in.atoms[0].(*group); ok {
					return true
				}
			}
			if redundantParens(in) {
				return true
			}
		}
	}
	return len(g.atoms) == 1 && func() bool { _, ok := g.atoms[0].(*group); return ok }()
}

type evalResult struct {
	OK      bool   `json:"ok"`
	Str     string `json:"str"`
	Results []any  `json:"results"`
}

func checkResults(t *testing.T, report func(string, ...any), ref, text string, m *Marker, envs []Environment, extras []string, want []any) int {
	checked := 0
	for j, env := range envs {
		got, err := m.Evaluate(env, extras[j])
		if knownDifference(ref, m, env, extras[j]) {
			continue
		}
		checked++
		w := want[j]
		if s, isErr := w.(string); isErr {
			if err == nil {
				report("marker %q with env %d (extra %q): got %v, packaging %s", text, j, extras[j], got, s)
			}
			continue
		}
		if err != nil || got != w.(bool) {
			report("marker %q with env %+v extra %q: got %v (err %v), packaging %v", text, env, extras[j], got, err, w)
		}
	}
	return checked
}

func TestOracleMarkers(t *testing.T) {
	g := gen{rand.New(rand.NewSource(508))}
	var envs []Environment
	var extras []string
	var envMaps []map[string]string
	for i := 0; i < 10; i++ {
		e, x := g.env()
		envs, extras = append(envs, e), append(extras, x)
		envMaps = append(envMaps, envMap(e, x))
	}
	type markerReq struct {
		Marker string              `json:"marker"`
		Envs   []map[string]string `json:"envs"`
	}
	var cases []markerReq
	for i := 0; i < 3000; i++ {
		cases = append(cases, markerReq{Marker: g.marker(0), Envs: envMaps})
	}
	var resp struct {
		PackagingVersion string       `json:"packaging_version"`
		Markers          []evalResult `json:"markers"`
	}
	runOracle(t, map[string]any{"markers": cases}, &resp)
	t.Logf("reference: packaging %s", resp.PackagingVersion)
	bad, checked := 0, 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for i, c := range cases {
		want := resp.Markers[i]
		m, err := ParseMarker(c.Marker)
		if (err == nil) != want.OK {
			report("ParseMarker(%q): err=%v, packaging ok=%v", c.Marker, err, want.OK)
			continue
		}
		if err != nil {
			continue
		}
		if got := m.String(); got != want.Str && !redundantParens(m.expr) {
			report("ParseMarker(%q).String() = %q, packaging %q", c.Marker, got, want.Str)
		}
		checked += checkResults(t, report, resp.PackagingVersion, c.Marker, m, envs, extras, want.Results)
	}
	t.Logf("%d marker evaluations compared", checked)
	if checked < len(cases)*len(envs)/2 {
		t.Errorf("only %d evaluations compared; generator or exclusions are broken", checked)
	}
	if bad > 0 {
		t.Errorf("%d disagreements with packaging", bad)
	}
}

func (g gen) requirement() string {
	var b strings.Builder
	b.WriteString(g.ws())
	b.WriteString(g.pick("requests", "Foo.Bar", "foo_bar-baz", "a", "torch", "A1", "zope.interface", "scikit-learn"))
	b.WriteString(g.ws())
	if g.r.Intn(3) == 0 {
		xs := []string{}
		for i := g.r.Intn(3); i >= 0; i-- {
			xs = append(xs, g.pick("security", "socks", "cuda", "dev", "Dev_Tools", "test"))
		}
		b.WriteString("[" + g.ws() + strings.Join(xs, g.ws()+","+g.ws()) + g.ws() + "]" + g.ws())
	}
	if g.r.Intn(6) == 0 {
		b.WriteString("@" + g.ws() + g.pick("https://example.com/pkg-1.0.whl", "file:///tmp/pkg.whl", "git+https://github.com/a/b.git@v1#egg=b", "http://x/y.tar.gz"))
		if g.r.Intn(2) == 0 {
			b.WriteString(" " + g.ws() + ";" + g.ws() + g.marker(1))
		}
		return b.String()
	}
	clauses := []string{}
	used := map[string]bool{}
	for i := g.r.Intn(4); i > 0; i-- {
		op := g.pick(">=", "<", "==", "!=", "~=", "<=", ">")
		if used[op] {
			continue
		}
		used[op] = true
		v := g.pick("1.0", "2.1.3", "0.9rc1", "3", "1.4.post1", "2.0.dev1")
		if op == "~=" && !strings.Contains(v, ".") {
			v += ".0"
		}
		if (op == "==" || op == "!=") && g.r.Intn(3) == 0 {
			v = g.pick("1.*", "2.1.*")
		}
		clauses = append(clauses, op+g.ws()+v)
	}
	spec := strings.Join(clauses, g.ws()+","+g.ws())
	if len(clauses) > 0 && g.r.Intn(3) == 0 {
		spec = "(" + g.ws() + spec + g.ws() + ")"
	}
	b.WriteString(spec)
	if g.r.Intn(2) == 0 {
		b.WriteString(g.ws() + ";" + g.ws() + g.marker(1))
	}
	b.WriteString(g.ws())
	return b.String()
}

func TestOracleRequirements(t *testing.T) {
	g := gen{rand.New(rand.NewSource(503))}
	var envs []Environment
	var extras []string
	var envMaps []map[string]string
	for i := 0; i < 5; i++ {
		e, x := g.env()
		envs, extras = append(envs, e), append(extras, x)
		envMaps = append(envMaps, envMap(e, x))
	}
	type reqReq struct {
		Req  string              `json:"req"`
		Envs []map[string]string `json:"envs"`
	}
	var cases []reqReq
	for i := 0; i < 2000; i++ {
		cases = append(cases, reqReq{Req: g.requirement(), Envs: envMaps})
	}
	names := []string{"Foo.Bar", "foo__bar", "FOO-._bar", "a", "Zope.Interface", "scikit_learn", "x--y"}
	var resp struct {
		PackagingVersion string `json:"packaging_version"`
		Reqs             []struct {
			OK        bool     `json:"ok"`
			Name      string   `json:"name"`
			Extras    []string `json:"extras"`
			Specifier string   `json:"specifier"`
			URL       string   `json:"url"`
			Marker    string   `json:"marker"`
			Results   []any    `json:"results"`
		} `json:"reqs"`
		Names []string `json:"names"`
	}
	runOracle(t, map[string]any{"reqs": cases, "names": names}, &resp)
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for i, n := range names {
		if got := NormalizeName(n); got != resp.Names[i] {
			report("NormalizeName(%q) = %q, packaging %q", n, got, resp.Names[i])
		}
	}
	valid := 0
	for i, c := range cases {
		want := resp.Reqs[i]
		r, err := ParseRequirement(c.Req)
		if (err == nil) != want.OK {
			report("ParseRequirement(%q): err=%v, packaging ok=%v", c.Req, err, want.OK)
			continue
		}
		if err != nil {
			continue
		}
		valid++
		gotExtras := append([]string{}, r.Extras...)
		if want.Extras == nil {
			want.Extras = []string{}
		}
		if r.Name != want.Name || fmt.Sprint(gotExtras) != fmt.Sprint(want.Extras) || r.Specifier.String() != want.Specifier || r.URL != want.URL {
			report("ParseRequirement(%q) = name %q extras %q spec %q url %q; packaging %q %q %q %q",
				c.Req, r.Name, gotExtras, r.Specifier, r.URL, want.Name, want.Extras, want.Specifier, want.URL)
		}
		if (r.Marker != nil) != (want.Marker != "") {
			report("ParseRequirement(%q) marker = %v, packaging %q", c.Req, r.Marker, want.Marker)
			continue
		}
		if r.Marker != nil {
			checkResults(t, report, resp.PackagingVersion, c.Req, r.Marker, envs, extras, want.Results)
		}
	}
	if valid < len(cases)*3/4 {
		t.Errorf("only %d of %d requirements valid; generator is broken", valid, len(cases))
	}
	if bad > 0 {
		t.Errorf("%d disagreements with packaging", bad)
	}
}
