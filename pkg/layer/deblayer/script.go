package deblayer

import (
	"regexp"
	"strings"
)

// scriptCmd is one simple command of a maintainer script after variable
// expansion.
type scriptCmd struct {
	args []string
	// unresolved is set when an argument used a variable or command
	// substitution kiln could not evaluate.
	unresolved bool
}

func (c scriptCmd) String() string { return strings.Join(c.args, " ") }

// shellEnv evaluates the few expansions maintainer scripts use to compute
// paths: variables assigned earlier in the script, positional parameters
// of "postinst configure", and dpkg-architecture queries.
type shellEnv struct {
	vars      map[string]string
	arch      string // Debian architecture, e.g. amd64
	multiarch string // e.g. x86_64-linux-gnu
}

var heredocRE = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)

// parseScript splits a POSIX shell maintainer script into simple commands,
// in textual order. It understands enough shell for debhelper-generated
// and typical hand-written scripts: quoting, comments, line continuations,
// here-documents, ;, &&, ||, |, control keywords, case patterns and
// function definitions (whose names are returned so calls to them can be
// ignored; their bodies are parsed like top-level code).
func parseScript(src string, env *shellEnv) (cmds []scriptCmd, funcs map[string]bool) {
	funcs = map[string]bool{}
	src = strings.ReplaceAll(src, "\\\n", " ")
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if i == 0 && strings.HasPrefix(line, "#!") {
			continue
		}
		if m := heredocRE.FindStringSubmatch(stripComment(line)); m != nil {
			// Skip the here-document body.
			for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != m[1] {
				i++
			}
			i++
		}
		line = casePatternRE.ReplaceAllString(stripComment(line), "")
		for _, simple := range splitCommands(line) {
			words, unresolved := env.expandWords(simple)
			words = dropControl(words, funcs)
			if len(words) == 0 {
				continue
			}
			// Leading assignments.
			j := 0
			for j < len(words) && isAssignment(words[j]) {
				k, v, _ := strings.Cut(words[j], "=")
				env.vars[k] = v
				j++
			}
			words = words[j:]
			if len(words) == 0 {
				continue
			}
			cmds = append(cmds, scriptCmd{args: words, unresolved: unresolved})
		}
	}
	return cmds, funcs
}

// casePatternRE matches a case item's pattern at the start of a line,
// such as "configure)" or "abort-upgrade|abort-remove)".
var casePatternRE = regexp.MustCompile(`^\s*\(?[^\s()=;"'$]+(?:\s*\|\s*[^\s()=;"'$]+)*\)`)

var assignRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func isAssignment(w string) bool { return assignRE.MatchString(w) }

// stripComment removes a trailing # comment outside quotes.
func stripComment(line string) string {
	var q byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else if c == '\\' && q == '"' {
				i++
			}
		case c == '\'' || c == '"' || c == '`':
			q = c
		case c == '\\':
			i++
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t' || line[i-1] == ';'):
			return line[:i]
		}
	}
	return line
}

// splitCommands splits a line at ;, ;;, &&, ||, | and & outside quotes and
// command substitutions, and returns each part's raw words.
func splitCommands(line string) [][]string {
	var out [][]string
	var words []string
	var cur strings.Builder
	inWord := false
	flushWord := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	flushCmd := func() {
		flushWord()
		if len(words) > 0 {
			out = append(out, words)
		}
		words = nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			flushWord()
		case c == '&' && (i > 0 && (line[i-1] == '>' || line[i-1] == '<') || i+1 < len(line) && line[i+1] == '>'):
			// part of a redirection: 2>&1, >&2, &>/dev/null
			cur.WriteByte(c)
			inWord = true
		case c == ';' || c == '&' || c == '|':
			flushCmd()
			if i+1 < len(line) && (line[i+1] == c) {
				i++
			}
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(line) && line[j] != c {
				if line[j] == '\\' && c != '\'' {
					j++
				}
				j++
			}
			if j >= len(line) {
				j = len(line) - 1
			}
			cur.WriteString(line[i : j+1])
			inWord = true
			i = j
		case c == '$' && i+1 < len(line) && line[i+1] == '(':
			depth := 0
			j := i + 1
			for ; j < len(line); j++ {
				if line[j] == '(' {
					depth++
				} else if line[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if j >= len(line) {
				j = len(line) - 1
			}
			cur.WriteString(line[i : j+1])
			inWord = true
			i = j
		case c == '\\' && i+1 < len(line):
			cur.WriteByte(c)
			cur.WriteByte(line[i+1])
			inWord = true
			i++
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flushCmd()
	return out
}

var shellKeywords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true,
	"do": true, "done": true, "while": true, "until": true, "!": true,
	"{": true, "}": true, "esac": true, "(": true, ")": true,
}

// dropControl removes control keywords, case patterns, redirections and
// function definitions from a command's words.
func dropControl(words []string, funcs map[string]bool) []string {
	for len(words) > 0 {
		w := words[0]
		switch {
		case shellKeywords[w]:
			words = words[1:]
			continue
		case w == "case" || w == "for":
			return nil
		case strings.HasSuffix(w, "()"):
			funcs[strings.TrimSuffix(w, "()")] = true
			return nil
		case len(words) > 1 && words[1] == "()":
			funcs[w] = true
			return nil
		case strings.HasSuffix(w, ")") && !strings.Contains(w, "("):
			// case pattern such as "configure)" or "abort-upgrade|...)"
			words = words[1:]
			continue
		}
		break
	}
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if r := redirRE.FindStringSubmatch(w); r != nil {
			if r[1] == "" && i+1 < len(words) {
				i++ // "> /dev/null"
			}
			continue
		}
		out = append(out, w)
	}
	return out
}

var redirRE = regexp.MustCompile(`^[0-9]*(?:>>|>&|<&|&>|>|<)(.*)$`)

var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=]([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*|[0-9#@*?])`)

// expandWords removes quoting from words and expands variables and known
// command substitutions.
func (e *shellEnv) expandWords(raw []string) ([]string, bool) {
	var out []string
	unresolved := false
	for _, w := range raw {
		s, ok := e.expand(w)
		if !ok {
			unresolved = true
		}
		out = append(out, s)
	}
	return out, unresolved
}

func (e *shellEnv) expand(w string) (string, bool) {
	var b strings.Builder
	ok := true
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(w[i+1:], '\'')
			if j < 0 {
				j = len(w) - i - 1
			}
			b.WriteString(w[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			// Expansions inside double quotes are handled below; drop the
			// quote characters themselves.
		case c == '\\' && i+1 < len(w):
			b.WriteByte(w[i+1])
			i++
		case c == '`' || (c == '$' && i+1 < len(w) && w[i+1] == '('):
			var inner string
			if c == '`' {
				j := strings.IndexByte(w[i+1:], '`')
				if j < 0 {
					j = len(w) - i - 1
				}
				inner = w[i+1 : i+1+j]
				i += j + 1
			} else {
				depth, j := 0, i+1
				for ; j < len(w); j++ {
					if w[j] == '(' {
						depth++
					} else if w[j] == ')' {
						depth--
						if depth == 0 {
							break
						}
					}
				}
				inner = w[i+2 : min(j, len(w))]
				i = j
			}
			v, good := e.substitute(inner)
			if !good {
				ok = false
				b.WriteString("$(" + inner + ")")
			} else {
				b.WriteString(v)
			}
		case c == '$':
			m := varRE.FindStringSubmatchIndex(w[i:])
			if m == nil || m[0] != 0 {
				b.WriteByte(c)
				continue
			}
			name := ""
			def, hasDef := "", false
			if m[2] >= 0 {
				name = w[i+m[2] : i+m[3]]
				if m[4] >= 0 {
					def, hasDef = w[i+m[4]:i+m[5]], true
				}
			} else {
				name = w[i+m[6] : i+m[7]]
			}
			v, good := e.lookup(name)
			if !good && hasDef {
				v, good = def, true
			}
			if !good {
				ok = false
				v = w[i : i+m[1]]
			}
			b.WriteString(v)
			i += m[1] - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ok
}

func (e *shellEnv) lookup(name string) (string, bool) {
	switch name {
	case "1":
		return "configure", true
	case "2", "3", "4", "5", "DPKG_ROOT":
		return "", true
	case "#":
		return "1", true
	case "DPKG_MAINTSCRIPT_ARCH":
		return e.arch, true
	}
	v, ok := e.vars[name]
	return v, ok
}

// substitute evaluates a command substitution kiln knows the output of.
func (e *shellEnv) substitute(cmd string) (string, bool) {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return "", true
	}
	switch f[0] {
	case "dpkg-architecture":
		for i, a := range f[1:] {
			q := strings.TrimPrefix(a, "-q")
			if a == "-q" && i+2 < len(f) {
				q = f[i+2]
			} else if q == a {
				continue
			}
			switch q {
			case "DEB_HOST_MULTIARCH", "DEB_BUILD_MULTIARCH", "DEB_TARGET_MULTIARCH":
				return e.multiarch, true
			case "DEB_HOST_ARCH", "DEB_BUILD_ARCH", "DEB_TARGET_ARCH":
				return e.arch, true
			}
		}
	case "dpkg":
		if len(f) == 2 && f[1] == "--print-architecture" {
			return e.arch, true
		}
	}
	return "", false
}

// multiarchTriplet maps a Debian architecture to its multiarch tuple.
func multiarchTriplet(arch string) string {
	switch arch {
	case "amd64":
		return "x86_64-linux-gnu"
	case "arm64":
		return "aarch64-linux-gnu"
	case "armhf":
		return "arm-linux-gnueabihf"
	case "armel":
		return "arm-linux-gnueabi"
	case "i386":
		return "i386-linux-gnu"
	case "ppc64el":
		return "powerpc64le-linux-gnu"
	case "s390x":
		return "s390x-linux-gnu"
	case "riscv64":
		return "riscv64-linux-gnu"
	case "mips64el":
		return "mips64el-linux-gnuabi64"
	}
	return arch + "-linux-gnu"
}
