package pep508

import (
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/pkg/pep440"
)

// Environment holds the values of the PEP 508 marker variables for the
// interpreter that will run the code, which for kiln is the target image's
// interpreter, not the host's.
type Environment struct {
	PythonVersion                string // "3.11"
	PythonFullVersion            string // "3.11.7"
	OSName                       string // "posix"
	SysPlatform                  string // "linux"
	PlatformMachine              string // "x86_64"
	PlatformSystem               string // "Linux"
	PlatformRelease              string // kernel release; unknowable for an image, usually ""
	PlatformVersion              string // kernel version string; usually "" for an image
	PlatformPythonImplementation string // "CPython"
	ImplementationName           string // "cpython"
	ImplementationVersion        string // "3.11.7"
}

// LinuxCPython returns the environment of CPython pythonFullVersion (such as
// "3.11.7" or "3.13.0rc2") on Linux for machine (such as "x86_64" or
// "aarch64"). PlatformRelease and PlatformVersion are left empty because
// they describe the kernel the image will later run on.
func LinuxCPython(pythonFullVersion, machine string) (Environment, error) {
	v, err := pep440.Parse(pythonFullVersion)
	if err != nil || len(v.Release()) < 2 {
		return Environment{}, fmt.Errorf("python version %q: want major.minor.micro, such as 3.11.7", pythonFullVersion)
	}
	return Environment{
		PythonVersion:                fmt.Sprintf("%d.%d", v.Major(), v.Minor()),
		PythonFullVersion:            pythonFullVersion,
		OSName:                       "posix",
		SysPlatform:                  "linux",
		PlatformMachine:              machine,
		PlatformSystem:               "Linux",
		PlatformPythonImplementation: "CPython",
		ImplementationName:           "cpython",
		ImplementationVersion:        pythonFullVersion,
	}, nil
}

// Get returns the value of the marker variable name ("python_version",
// "os.name", ...), and whether name is a marker variable other than extra.
func (e Environment) Get(name string) (string, bool) {
	switch canonicalVariable(name) {
	case "python_version":
		return e.PythonVersion, true
	case "python_full_version":
		return e.PythonFullVersion, true
	case "os_name":
		return e.OSName, true
	case "sys_platform":
		return e.SysPlatform, true
	case "platform_machine":
		return e.PlatformMachine, true
	case "platform_system":
		return e.PlatformSystem, true
	case "platform_release":
		return e.PlatformRelease, true
	case "platform_version":
		return e.PlatformVersion, true
	case "platform_python_implementation":
		return e.PlatformPythonImplementation, true
	case "implementation_name":
		return e.ImplementationName, true
	case "implementation_version":
		return e.ImplementationVersion, true
	}
	return "", false
}

// variables lists the accepted variable spellings, longest alternatives
// first, including the PEP 345 dotted forms and setuptools'
// python_implementation.
var variables = []string{
	"python_version", "python_full_version",
	"os_name", "os.name", "sys_platform", "sys.platform",
	"platform_release", "platform_system",
	"platform_version", "platform.version", "platform_machine", "platform.machine",
	"platform_python_implementation", "platform.python_implementation",
	"python_implementation",
	"implementation_name", "implementation_version",
	"extra",
}

// canonicalVariable maps alternative spellings to the PEP 508 name.
func canonicalVariable(name string) string {
	name = strings.Replace(name, ".", "_", 1)
	if name == "python_implementation" {
		return "platform_python_implementation"
	}
	return name
}

// Marker is a parsed environment marker such as
// `python_version >= "3.8" and sys_platform == "linux"`.
type Marker struct {
	expr *group
}

// group is a sequence of atoms joined by "and"/"or" (ops[i] joins atoms[i]
// and atoms[i+1]); "and" binds tighter than "or".
type group struct {
	atoms []any // *group or *comparison
	ops   []string
}

// operand is a variable or a quoted string.
type operand struct {
	isVar bool
	text  string // canonical variable name, or the string's contents
}

type comparison struct {
	lhs, rhs operand
	op       string // "==", "in", "not in", ...
}

// ParseMarker parses a PEP 508 environment marker.
func ParseMarker(s string) (*Marker, error) {
	sc := &scanner{kind: "marker", s: s}
	g, err := sc.marker()
	if err != nil {
		return nil, err
	}
	if !sc.eof() {
		return nil, sc.errorf(sc.pos, "expected end of marker, or 'and'/'or' followed by a comparison")
	}
	return &Marker{expr: g}, nil
}

// MustParseMarker is like [ParseMarker] but panics on error.
func MustParseMarker(s string) *Marker {
	m, err := ParseMarker(s)
	if err != nil {
		panic(err)
	}
	return m
}

// marker = atom (BOOLOP atom)*
func (sc *scanner) marker() (*group, error) {
	g := &group{}
	a, err := sc.atom()
	if err != nil {
		return nil, err
	}
	g.atoms = append(g.atoms, a)
	for {
		var op string
		switch {
		case sc.keyword("and"):
			op = "and"
		case sc.keyword("or"):
			op = "or"
		default:
			return g, nil
		}
		a, err := sc.atom()
		if err != nil {
			return nil, err
		}
		g.ops = append(g.ops, op)
		g.atoms = append(g.atoms, a)
	}
}

// atom = WS? ( "(" WS? marker WS? ")" | item ) WS?
func (sc *scanner) atom() (any, error) {
	sc.ws()
	var a any
	if open := sc.pos; sc.lit("(") {
		sc.ws()
		g, err := sc.marker()
		if err != nil {
			return nil, err
		}
		sc.ws()
		if !sc.lit(")") {
			return nil, sc.errorf(sc.pos, "expected ')' to close the '(' at position %d", open)
		}
		a = g
	} else {
		c, err := sc.item()
		if err != nil {
			return nil, err
		}
		a = c
	}
	sc.ws()
	return a, nil
}

// item = var WS? op WS? var
func (sc *scanner) item() (*comparison, error) {
	lhs, err := sc.operand()
	if err != nil {
		return nil, err
	}
	sc.ws()
	op, err := sc.op()
	if err != nil {
		return nil, err
	}
	sc.ws()
	rhs, err := sc.operand()
	if err != nil {
		return nil, err
	}
	c := &comparison{lhs: lhs, op: op, rhs: rhs}
	// PEP 685: extra names compare in normalised form.
	if lhs.isVar && lhs.text == "extra" && !rhs.isVar {
		c.rhs.text = NormalizeName(rhs.text)
	} else if rhs.isVar && rhs.text == "extra" && !lhs.isVar {
		c.lhs.text = NormalizeName(lhs.text)
	}
	return c, nil
}

func (sc *scanner) operand() (operand, error) {
	if sc.boundary(sc.pos) {
		for _, v := range variables {
			if sc.keyword(v) {
				return operand{isVar: true, text: canonicalVariable(v)}, nil
			}
		}
	}
	if q := sc.peek(); q == '"' || q == '\'' {
		end := strings.IndexByte(sc.s[sc.pos+1:], q)
		if end < 0 {
			return operand{}, sc.errorf(sc.pos, "unterminated string, add a closing %c", q)
		}
		text := sc.s[sc.pos+1 : sc.pos+1+end]
		sc.pos += end + 2
		return operand{text: text}, nil
	}
	return operand{}, sc.errorf(sc.pos, "expected a marker variable (python_version, sys_platform, platform_machine, extra, ...) or a quoted string")
}

func (sc *scanner) op() (string, error) {
	for _, op := range []string{"===", "==", "~=", "!=", "<=", ">=", "<", ">"} {
		if sc.lit(op) {
			return op, nil
		}
	}
	if sc.keyword("in") {
		return "in", nil
	}
	if start := sc.pos; sc.keyword("not") {
		if !sc.ws() || !sc.keyword("in") {
			return "", sc.errorf(start, "expected 'not in'")
		}
		return "not in", nil
	}
	return "", sc.errorf(sc.pos, "expected a marker operator, one of <=, <, !=, ==, >=, >, ~=, ===, in, not in")
}

// String returns the marker in packaging's normal form, with double
// quotes and single spaces: `python_version >= "3.8" and (a or b)`.
func (m *Marker) String() string {
	if m == nil || m.expr == nil {
		return ""
	}
	var b strings.Builder
	m.expr.format(&b, true)
	return b.String()
}

func (g *group) format(b *strings.Builder, top bool) {
	if len(g.atoms) == 1 {
		switch inner := g.atoms[0].(type) {
		case *group:
			inner.format(b, top)
			return
		case *comparison:
			b.WriteString(inner.lhs.String() + " " + inner.op + " " + inner.rhs.String())
			return
		}
	}
	if !top {
		b.WriteByte('(')
	}
	for i, a := range g.atoms {
		if i > 0 {
			b.WriteString(" " + g.ops[i-1] + " ")
		}
		switch a := a.(type) {
		case *group:
			a.format(b, false)
		case *comparison:
			b.WriteString(a.lhs.String() + " " + a.op + " " + a.rhs.String())
		}
	}
	if !top {
		b.WriteByte(')')
	}
}

// String serialises an operand, preferring double quotes.
func (o operand) String() string {
	if o.isVar {
		return o.text
	}
	if strings.Contains(o.text, `"`) {
		return "'" + o.text + "'"
	}
	return `"` + o.text + `"`
}

// UndefinedComparisonError reports a marker comparison that has no
// meaning, such as `os_name ~= "posix"`.
type UndefinedComparisonError struct {
	Marker   string
	LHS, RHS string
	Op       string
}

// Error implements error.
func (e *UndefinedComparisonError) Error() string {
	return fmt.Sprintf("marker %q: %q %s %q is undefined: %s needs PEP 440 versions on both sides", e.Marker, e.LHS, e.Op, e.RHS, e.Op)
}

// Evaluate reports whether the marker holds in env. With no extras the
// variable extra is "", as when evaluating a distribution's base
// requirements; with extras the marker holds if it holds for any of them
// (names are compared after PEP 503 normalisation, per PEP 685).
//
// Comparisons follow packaging: when the right-hand side forms a valid
// PEP 440 specifier with the operator and the left-hand side is a valid
// version, they compare as versions (pre-releases included); otherwise
// they compare as Python strings, and ~= or === between non-versions is an
// error. A nil Marker is true.
func (m *Marker) Evaluate(env Environment, extras ...string) (bool, error) {
	if m == nil || m.expr == nil {
		return true, nil
	}
	if len(extras) == 0 {
		extras = []string{""}
	}
	any := false
	for _, e := range extras {
		ok, err := m.expr.eval(m, env, NormalizeName(e))
		if err != nil {
			return false, err
		}
		any = any || ok
	}
	return any, nil
}

// eval evaluates every comparison, like packaging, so that errors are
// reported regardless of short-circuiting.
func (g *group) eval(m *Marker, env Environment, extra string) (bool, error) {
	result := false
	cur := true
	for i, a := range g.atoms {
		if i > 0 && g.ops[i-1] == "or" {
			result = result || cur
			cur = true
		}
		var ok bool
		var err error
		switch a := a.(type) {
		case *group:
			ok, err = a.eval(m, env, extra)
		case *comparison:
			ok, err = a.eval(m, env, extra)
		}
		if err != nil {
			return false, err
		}
		cur = cur && ok
	}
	return result || cur, nil
}

func (o operand) value(env Environment, extra string) string {
	if !o.isVar {
		return o.text
	}
	if o.text == "extra" {
		return extra
	}
	v, _ := env.Get(o.text)
	return v
}

func (c *comparison) eval(m *Marker, env Environment, extra string) (bool, error) {
	lhs, rhs := c.lhs.value(env, extra), c.rhs.value(env, extra)
	return compare(m, lhs, c.op, rhs)
}

func compare(m *Marker, lhs, op, rhs string) (bool, error) {
	if sp, err := pep440.ParseSpecifier(op + rhs); err == nil {
		if v, err := pep440.Parse(lhs); err == nil {
			return sp.Contains(v, true), nil
		}
		if op == "===" {
			return strings.ToLower(lhs) == strings.ToLower(sp.Version()), nil
		}
	}
	switch op {
	case "==":
		return lhs == rhs, nil
	case "!=":
		return lhs != rhs, nil
	case "<":
		return lhs < rhs, nil
	case "<=":
		return lhs <= rhs, nil
	case ">":
		return lhs > rhs, nil
	case ">=":
		return lhs >= rhs, nil
	case "in":
		return strings.Contains(rhs, lhs), nil
	case "not in":
		return !strings.Contains(rhs, lhs), nil
	}
	return false, &UndefinedComparisonError{Marker: m.String(), LHS: lhs, Op: op, RHS: rhs}
}
