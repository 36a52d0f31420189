package pep440

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/pyoracle"
)

// runOracle sends req to testdata/oracle.py and decodes its answer into
// resp (see pyoracle.Run).
func runOracle(t *testing.T, req, resp any) {
	t.Helper()
	pyoracle.Run(t, "testdata/oracle.py", "from pip._vendor.packaging.version import Version", req, resp)
}

// gen produces random version and specifier strings from the PEP 440
// grammar, including non-normalised spellings and near-misses.
type gen struct{ r *rand.Rand }

func (g gen) pick(xs ...string) string { return xs[g.r.Intn(len(xs))] }

func (g gen) randCase(s string) string {
	if g.r.Intn(4) != 0 {
		return s
	}
	b := []byte(s)
	for i := range b {
		if g.r.Intn(2) == 0 && b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

func (g gen) num(small bool) string {
	if small {
		return fmt.Sprint(g.r.Intn(3))
	}
	switch g.r.Intn(8) {
	case 0:
		return "0" + fmt.Sprint(g.r.Intn(20))
	case 1:
		return fmt.Sprint(g.r.Int63())
	}
	return fmt.Sprint(g.r.Intn(20))
}

func (g gen) sep() string { return g.pick("", "", "", ".", "-", "_") }

// version returns a random version string. messy adds non-normal
// spellings; small restricts numbers so that equal versions are common.
func (g gen) version(messy, small bool) string {
	var b strings.Builder
	if messy && g.r.Intn(10) == 0 {
		b.WriteString(g.pick(" ", "\t", "  \n"))
	}
	if messy && g.r.Intn(8) == 0 {
		b.WriteString(g.pick("v", "V"))
	}
	if g.r.Intn(8) == 0 {
		b.WriteString(g.num(small) + "!")
	}
	n := 1 + g.r.Intn(4)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(".")
		}
		b.WriteString(g.num(small))
	}
	if g.r.Intn(3) == 0 {
		if messy {
			b.WriteString(g.sep() + g.randCase(g.pick("a", "b", "c", "rc", "alpha", "beta", "pre", "preview")) + g.sep())
		} else {
			b.WriteString(g.pick("a", "b", "rc"))
		}
		if !messy || g.r.Intn(4) != 0 {
			b.WriteString(g.num(small))
		}
	}
	if g.r.Intn(4) == 0 {
		if messy && g.r.Intn(3) == 0 {
			b.WriteString("-" + g.num(small))
		} else if messy {
			b.WriteString(g.sep() + g.randCase(g.pick("post", "rev", "r")) + g.sep())
			if g.r.Intn(4) != 0 {
				b.WriteString(g.num(small))
			}
		} else {
			b.WriteString(".post" + g.num(small))
		}
	}
	if g.r.Intn(4) == 0 {
		if messy {
			b.WriteString(g.sep() + g.randCase("dev") + g.sep())
			if g.r.Intn(4) != 0 {
				b.WriteString(g.num(small))
			}
		} else {
			b.WriteString(".dev" + g.num(small))
		}
	}
	if g.r.Intn(5) == 0 {
		b.WriteString("+")
		k := 1 + g.r.Intn(3)
		for i := 0; i < k; i++ {
			if i > 0 {
				if messy {
					b.WriteString(g.pick(".", "-", "_"))
				} else {
					b.WriteString(".")
				}
			}
			b.WriteString(g.randCase(g.pick("ubuntu", "cpu", "cu118", "1", "01", "abc", "0", "z")))
		}
	}
	if messy && g.r.Intn(10) == 0 {
		b.WriteString(g.pick(" ", "\r\n"))
	}
	s := b.String()
	if messy && g.r.Intn(6) == 0 {
		s = g.mutate(s)
	}
	return s
}

// mutate damages s slightly to produce mostly-invalid near misses.
func (g gen) mutate(s string) string {
	i := g.r.Intn(len(s) + 1)
	switch g.r.Intn(3) {
	case 0:
		return s[:i] + g.pick(".", "-", "+", "!", "*", "x", "dev", "a", " ", "..", "é") + s[i:]
	case 1:
		if i < len(s) {
			return s[:i] + s[i+1:]
		}
	}
	return s + g.pick(".", "-", "+", "!", ".*")
}

// specClause returns a random clause; canonical prefix and ~= versions avoid
// known string-handling quirks of packaging 21.3 (see quirk).
func (g gen) specClause() string {
	op := g.pick("==", "!=", "<=", ">=", "<", ">", "~=", "===", "==", ">=")
	ws := ""
	if g.r.Intn(6) == 0 {
		ws = " "
	}
	v := g.version(false, true)
	switch {
	case op == "~=":
		pv := MustParse(v)
		if len(pv.release) < 2 && g.r.Intn(5) != 0 {
			v = strings.Replace(v, pv.releaseString(), pv.releaseString()+".0", 1)
		}
		if p, err := Parse(v); err == nil {
			v = p.Public().String()
		}
	case (op == "==" || op == "!=") && g.r.Intn(3) == 0:
		pv := MustParse(v)
		v = pv.BaseVersion().String() + ".*"
	case op == "===" && g.r.Intn(3) == 0:
		v = g.pick("foo", "1.0", "1.0.0", "1.0A1", "")
	case op != "==" && op != "!=" && g.r.Intn(10) == 0:
		v += "+local"
	}
	return op + ws + v
}

func (g gen) specSet() string {
	n := g.r.Intn(4)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = g.specClause()
	}
	if g.r.Intn(15) == 0 {
		parts = append(parts, g.mutate(g.specClause()))
	}
	return strings.Join(parts, g.pick(",", ", ", " ,"))
}

type versionInfo struct {
	OK      bool          `json:"ok"`
	Str     string        `json:"str"`
	Epoch   uint64        `json:"epoch"`
	Release []json.Number `json:"release"`
	Pre     bool          `json:"pre"`
	Post    bool          `json:"post"`
	Dev     bool          `json:"dev"`
	Public  string        `json:"public"`
	Base    string        `json:"base"`
	Local   string        `json:"local"`
}

func TestOracleVersions(t *testing.T) {
	g := gen{rand.New(rand.NewSource(440))}
	var inputs []string
	for i := 0; i < 6000; i++ {
		inputs = append(inputs, g.version(true, false))
	}
	var pool []string
	for i := 0; i < 300; i++ {
		pool = append(pool, g.version(i%2 == 0, true))
	}
	var pairs [][2]string
	for i := 0; i < 6000; i++ {
		a, b := pool[g.r.Intn(len(pool))], pool[g.r.Intn(len(pool))]
		if _, err := Parse(a); err != nil {
			continue
		}
		if _, err := Parse(b); err != nil {
			continue
		}
		pairs = append(pairs, [2]string{a, b})
	}
	var resp struct {
		Versions []versionInfo `json:"versions"`
		Compare  []int         `json:"compare"`
	}
	runOracle(t, map[string]any{"versions": inputs, "compare": pairs}, &resp)
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	valid := 0
	for i, in := range inputs {
		want := resp.Versions[i]
		v, err := Parse(in)
		if err != nil && want.OK && strings.Contains(err.Error(), "number too large") {
			continue // documented limitation: numbers are uint64
		}
		if (err == nil) != want.OK {
			report("Parse(%q): err=%v, packaging ok=%v", in, err, want.OK)
			continue
		}
		if err != nil {
			continue
		}
		valid++
		var rel []json.Number
		for _, n := range v.Release() {
			rel = append(rel, json.Number(fmt.Sprint(n)))
		}
		got := versionInfo{OK: true, Str: v.String(), Epoch: v.Epoch(), Release: rel, Pre: v.IsPrerelease(),
			Post: v.IsPostrelease(), Dev: v.IsDevrelease(), Public: v.Public().String(), Base: v.BaseVersion().String(), Local: v.Local()}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			report("Parse(%q):\n got %+v\nwant %+v", in, got, want)
		}
	}
	for i, p := range pairs {
		if got := Compare(MustParse(p[0]), MustParse(p[1])); got != resp.Compare[i] {
			report("Compare(%q, %q) = %d, packaging %d", p[0], p[1], got, resp.Compare[i])
		}
	}
	if valid < len(inputs)/2 {
		t.Errorf("only %d of %d generated versions were valid; generator is broken", valid, len(inputs))
	}
	if bad > 0 {
		t.Errorf("%d disagreements with packaging", bad)
	}
}

var oldWildcard = regexp.MustCompile(`(?i)(a|b|c|rc|alpha|beta|pre|preview|post|rev|r)[-_.]?[0-9]*\.\*`)

// quirk reports cases where packaging 21.3's string-based prefix
// matching disagrees with PEP 440 (and with later packaging releases),
// for which pkg/pep440 follows PEP 440: "1a1" is "1.0a1" and so matches
// "==1.0.*", and "1!1" matches "==1!1.0.*".
func quirk(refVersion string, set SpecifierSet, v Version) bool {
	for _, sp := range set.specs {
		prefix := len(sp.version.release)
		if sp.op == Compatible {
			prefix--
		} else if !sp.wildcard {
			continue
		}
		short := len(v.release) < prefix
		if strings.HasPrefix(refVersion, "21.") && short && (v.pre.label != "" || v.post.ok || v.dev.ok || v.epoch != 0) {
			return true
		}
		if !strings.HasPrefix(refVersion, "21.") && v.epoch != 0 {
			// packaging 22-23 split "2!1.0" as ["2!1", "0"] and pad it
			// as if it had no release numbers; fixed in packaging 24.
			return true
		}
	}
	return false
}

func TestOracleSpecifiers(t *testing.T) {
	g := gen{rand.New(rand.NewSource(508))}
	type specReq struct {
		Spec     string   `json:"spec"`
		Versions []string `json:"versions"`
	}
	var cases []specReq
	for i := 0; i < 3000; i++ {
		c := specReq{Spec: g.specSet()}
		for j := 0; j < 12; j++ {
			c.Versions = append(c.Versions, g.version(false, true))
		}
		cases = append(cases, c)
	}
	var resp struct {
		PackagingVersion string `json:"packaging_version"`
		Specs            []struct {
			OK          bool       `json:"ok"`
			Prereleases *bool      `json:"prereleases"`
			Results     [][3]*bool `json:"results"`
		} `json:"specs"`
	}
	runOracle(t, map[string]any{"specs": cases}, &resp)
	t.Logf("reference: packaging %s", resp.PackagingVersion)
	bad, valid, checked, skipped := 0, 0, 0, 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for i, c := range cases {
		want := resp.Specs[i]
		set, err := ParseSpecifierSet(c.Spec)
		if err != nil && want.OK && strings.HasPrefix(resp.PackagingVersion, "21.") && oldWildcard.MatchString(c.Spec) {
			continue // packaging 21.3 allowed ==1.0a1.*; PEP 440 and packaging >= 22 do not
		}
		if (err == nil) != want.OK {
			report("ParseSpecifierSet(%q): err=%v, packaging ok=%v", c.Spec, err, want.OK)
			continue
		}
		if err != nil {
			continue
		}
		valid++
		if want.Prereleases != nil && set.Prereleases() != *want.Prereleases {
			report("%q.Prereleases() = %v, packaging %v", c.Spec, set.Prereleases(), want.Prereleases)
		}
		for j, vs := range c.Versions {
			v := MustParse(vs)
			if quirk(resp.PackagingVersion, set, v) {
				skipped++
				continue
			}
			checked++
			got := [3]bool{set.Contains(v, false), set.Contains(v, true), set.Allows(v)}
			w := want.Results[j]
			if got[0] != *w[0] || got[1] != *w[1] || (w[2] != nil && got[2] != *w[2]) {
				report("SpecifierSet(%q) contains %q [pre=false, pre=true, default]: got %v, packaging %v %v %v", c.Spec, vs, got, *w[0], *w[1], w[2])
			}
		}
	}
	t.Logf("%d valid sets, %d containment checks, %d skipped as packaging quirks", valid, checked, skipped)
	if valid < len(cases)/2 {
		t.Errorf("only %d of %d generated specifier sets were valid", valid, len(cases))
	}
	if bad > 0 {
		t.Errorf("%d disagreements with packaging", bad)
	}
}
