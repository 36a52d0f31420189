package wheelinstall

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// entryPoint is one name = value line of an entry_points.txt group.
type entryPoint struct {
	name, value string
}

// parseEntryPoints reads the console_scripts and gui_scripts groups of
// entry_points.txt as Python 3.11's importlib.metadata does: lines are
// stripped, blank lines and "#" comments skipped, "[group]" starts a group,
// other lines split at the first "=". A later duplicate name replaces the
// value but keeps the first position, as a Python dict does.
func parseEntryPoints(text string) (console, gui []entryPoint, err error) {
	group := ""
	inGroup := false
	for _, raw := range pySplitLines(text) {
		line := strings.TrimFunc(raw, unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			group = strings.Trim(line, "[]")
			inGroup = true
			continue
		}
		if !inGroup {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, nil, fmt.Errorf("line %q in [%s] has no '='", line, group)
		}
		ep := entryPoint{strings.TrimFunc(name, unicode.IsSpace), strings.TrimFunc(value, unicode.IsSpace)}
		switch group {
		case "console_scripts":
			console = setEntry(console, ep)
		case "gui_scripts":
			gui = setEntry(gui, ep)
		}
	}
	return console, gui, nil
}

func setEntry(eps []entryPoint, ep entryPoint) []entryPoint {
	for i := range eps {
		if eps[i].name == ep.name {
			eps[i].value = ep.value
			return eps
		}
	}
	return append(eps, ep)
}

// pySplitLines splits like Python's str.splitlines.
func pySplitLines(s string) []string {
	var lines []string
	start := 0
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		switch rs[i] {
		case '\r':
			lines = append(lines, string(rs[start:i]))
			if i+1 < len(rs) && rs[i+1] == '\n' {
				i++
			}
			start = i + 1
		case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			lines = append(lines, string(rs[start:i]))
			start = i + 1
		}
	}
	if start < len(rs) {
		lines = append(lines, string(rs[start:]))
	}
	return lines
}

// consoleSpecs applies pip's special cases for pip and easy_install (the
// versioned wrappers are made for the target's version and any others
// dropped) and returns the "name = value" specifications to generate.
func consoleSpecs(console []entryPoint, pyVersion string) []string {
	var specs []string
	rest := append([]entryPoint(nil), console...)
	take := func(name string) (string, bool) {
		for i, ep := range rest {
			if ep.name == name {
				rest = append(rest[:i], rest[i+1:]...)
				return ep.value, true
			}
		}
		return "", false
	}
	drop := func(re *regexp.Regexp) {
		kept := rest[:0]
		for _, ep := range rest {
			if !re.MatchString(ep.name) {
				kept = append(kept, ep)
			}
		}
		rest = kept
	}
	major, _, _ := strings.Cut(pyVersion, ".")
	if v, ok := take("pip"); ok {
		specs = append(specs, "pip = "+v, "pip"+major+" = "+v, "pip"+pyVersion+" = "+v)
		drop(regexp.MustCompile(`^pip(\d+(\.\d+)?)?$`))
	}
	if v, ok := take("easy_install"); ok {
		specs = append(specs, "easy_install = "+v, "easy_install-"+pyVersion+" = "+v)
		drop(regexp.MustCompile(`^easy_install(-\d+\.\d+)?$`))
	}
	for _, ep := range rest {
		specs = append(specs, ep.name+" = "+ep.value)
	}
	return specs
}

// exportEntryRE is distlib's ENTRY_RE, with Python's Unicode \w spelled out.
var exportEntryRE = regexp.MustCompile(`([\p{L}\p{N}_]|[-.+])+` +
	`\s*=\s*([\p{L}\p{N}_]+(?:[:.][\p{L}\p{N}_]+)*)` +
	`\s*(\[\s*[\p{L}\p{N}_-]+(?:=[\p{L}\p{N}_]+)?(?:,\s*[\p{L}\p{N}_]+(?:=[\p{L}\p{N}_]+)?)*\s*\])?`)

// script is a generated entry-point wrapper.
type script struct {
	name string
	text []byte
}

// makeScript turns a specification into a wrapper as pip's ScriptMaker
// (distlib) does, refusing what pip refuses.
func makeScript(spec, interpreter string) (script, error) {
	m := exportEntryRE.FindStringSubmatchIndex(spec)
	if m == nil {
		return script{}, fmt.Errorf("invalid script entry point %q: want name = module:function", spec)
	}
	all := spec[m[0]:m[1]]
	name := all[:strings.IndexFunc(all, func(r rune) bool { return unicode.IsSpace(r) || r == '=' })]
	callable := spec[m[4]:m[5]]
	if m[6] < 0 && strings.ContainsAny(spec, "[]") {
		return script{}, fmt.Errorf("invalid script entry point %q", spec)
	}
	module, fn, ok := strings.Cut(callable, ":")
	if !ok {
		return script{}, fmt.Errorf("invalid script entry point %q: a callable suffix (module:function) is required", spec)
	}
	if strings.Contains(fn, ":") {
		return script{}, fmt.Errorf("invalid script entry point %q: more than one ':'", spec)
	}
	if name == "." || name == ".." {
		return script{}, fmt.Errorf("invalid script entry point %q: the name is not a file name", spec)
	}
	importName, _, _ := strings.Cut(fn, ".")
	text := shebang(interpreter) +
		"# -*- coding: utf-8 -*-\n" +
		"import re\n" +
		"import sys\n" +
		"from " + module + " import " + importName + "\n" +
		"if __name__ == '__main__':\n" +
		"    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n" +
		"    sys.exit(" + fn + "())\n"
	return script{name: name, text: []byte(text)}, nil
}

// shebang builds distlib's shebang for a generated script: a plain "#!"
// line, or the /bin/sh trampoline when the interpreter path has a space or
// the line would pass Linux's 127-byte limit.
func shebang(exe string) string {
	if strings.Contains(exe, " ") {
		if env, rest, ok := strings.Cut(exe, " "); ok && env == "/usr/bin/env" {
			if strings.Contains(rest, " ") && !strings.HasPrefix(rest, `"`) {
				exe = env + ` "` + rest + `"`
			}
		} else if !strings.HasPrefix(exe, `"`) {
			exe = `"` + exe + `"`
		}
	}
	if !strings.Contains(exe, " ") && len(exe)+3 <= 127 {
		return "#!" + exe + "\n"
	}
	return "#!/bin/sh\n'''exec' " + exe + " \"$0\" \"$@\"\n' '''\n"
}

// isEntrypointWrapper reports whether a .data/scripts file is a wrapper
// that setuptools made for an entry point; pip skips those.
func isEntrypointWrapper(base string, console, gui []entryPoint) bool {
	match := base
	lower := strings.ToLower(base)
	switch {
	case strings.HasSuffix(lower, ".exe"), strings.HasSuffix(lower, ".pya"):
		match = base[:len(base)-4]
	case strings.HasSuffix(lower, "-script.py"):
		match = base[:len(base)-10]
	}
	for _, eps := range [][]entryPoint{console, gui} {
		for _, ep := range eps {
			if ep.name == match {
				return true
			}
		}
	}
	return false
}
