package pypi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/wheeltag"
)

// Requirement is a top-level requirement or constraint with where it came
// from, as given to Resolve.
type Requirement struct {
	pep508.Requirement
	// Source says where the requirement was written, for messages:
	// "requirements.txt:3", or "packages" for the spec's packages list.
	Source string
	// Hashes are the allowed hex SHA-256 sums from --hash options.
	Hashes []string
}

// Line is one requirement or constraint read from a requirements file.
type Line struct {
	Requirement
	// File and Line locate the requirement (the first physical line of a
	// continued line).
	File string
	Line int
	// Constraint marks a line of a -c/--constraint file: it limits the
	// versions of a project only if something else requires it.
	Constraint bool
}

// Options are the global options found in requirements files.
type Options struct {
	// IndexURL is the last -i/--index-url given, or "".
	IndexURL string
	// ExtraIndexURLs are the --extra-index-url values in order.
	ExtraIndexURLs []string
	// Pre is set by --pre: pre-releases are allowed everywhere.
	Pre bool
	// RequireHashes is set by --require-hashes or by any requirement with
	// --hash: every requirement has hashes, and every file installed must
	// match one of them.
	RequireHashes bool
}

// reqFileError is an error at a place in a requirements file.
func reqFileError(file string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
}

// ParseRequirements reads a requirements file in pip's format: comments,
// blank lines, "\" continuations, ${VAR} expansion, -r/-c includes (paths
// relative to the including file), -i/--index-url, --extra-index-url,
// --pre, --only-binary, --prefer-binary, --require-hashes, --hash per
// requirement, PEP 508 requirements with extras, markers and "name @ URL"
// references to wheels, and bare URLs or paths (relative to the file) of
// wheels. Options kiln cannot honour (-e, --find-links, --no-binary,
// --no-index, source distributions, VCS URLs, ...) are errors naming the
// file and line.
//
// In hash-checking mode every requirement line must be pinned with == (or
// be a URL) and carry at least one --hash=sha256:... option.
func ParseRequirements(path string) ([]Line, Options, error) {
	return ParseRequirementsConfined(path, nil)
}

// ParseRequirementsConfined is ParseRequirements, passing every file it
// would read (the file itself and each -r/-c include) and every local wheel
// a line names to confine first; an error from confine stops the parse,
// named by the file and line that led there. A nil confine allows all.
func ParseRequirementsConfined(path string, confine func(path string) error) ([]Line, Options, error) {
	p := &reqParser{done: map[includeKey]bool{}, confine: confine}
	if err := p.parseFile(path, false, nil); err != nil {
		return nil, Options{}, err
	}
	if p.opts.RequireHashes {
		for _, l := range p.lines {
			if l.Constraint {
				continue
			}
			if len(l.Hashes) == 0 {
				return nil, Options{}, reqFileError(l.File, l.Line, "%s has no --hash, but hash-checking mode is on (another requirement has --hash, or --require-hashes was given): add --hash=sha256:... to every requirement", l.Requirement.Requirement)
			}
			if l.URL == "" && !pinned(l.Requirement.Requirement) {
				return nil, Options{}, reqFileError(l.File, l.Line, "%s is not pinned with ==, which hash-checking mode requires: write e.g. %s==1.2.3", l.Requirement.Requirement, l.Name)
			}
		}
	}
	return p.lines, p.opts, nil
}

// pinned reports whether r's specifier is a single == (without wildcard)
// or === clause.
func pinned(r pep508.Requirement) bool {
	specs := r.Specifier.Specifiers()
	if len(specs) != 1 {
		return false
	}
	op := specs[0].Operator()
	return (op == "==" && !specs[0].Wildcard()) || op == "==="
}

// Bounds of the files one ParseRequirements reads through -r and -c:
// generous for real projects, small enough that a hostile tree of includes
// fails at once instead of exhausting memory.
const (
	// MaxRequirementsFiles bounds the number of files read.
	MaxRequirementsFiles = 1000
	// MaxRequirementsBytes bounds their total size.
	MaxRequirementsBytes = 64 << 20
	// MaxRequirementsDepth bounds how deep -r and -c includes nest.
	MaxRequirementsDepth = 32
)

// includeKey identifies a file read in one mode: a file included both as
// requirements and as constraints is read once as each.
type includeKey struct {
	path       string // absolute and clean
	constraint bool
}

type reqParser struct {
	lines []Line
	opts  Options
	stack []string            // files being read, outermost first, as named
	onStk map[string]int      // absolute path -> index in stack
	done  map[includeKey]bool // files already read: including one again adds nothing
	files int
	bytes int64
	// confine, when set, vets every file before it is read.
	confine func(path string) error
}

// optionNameRE matches what can be an option's name, which errors may show.
var optionNameRE = regexp.MustCompile(`^--?[A-Za-z][A-Za-z0-9-]{0,39}$`)

var commentRE = regexp.MustCompile(`(^|\s+)#.*$`)
var envVarRE = regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`)

// logicalLine is a line after joining continuations.
type logicalLine struct {
	text string
	no   int
}

// maxRequirementsFile bounds the size of one requirements file.
const maxRequirementsFile = 32 << 20

func readLogicalLines(path string) ([]logicalLine, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var out []logicalLine
	// A bound, for -r naming a device or a pipe that never ends.
	lr := &io.LimitedReader{R: f, N: maxRequirementsFile + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`))
			continue
		}
		cur.WriteString(line)
		out = append(out, logicalLine{cur.String(), start})
		cur.Reset()
	}
	read := maxRequirementsFile + 1 - lr.N
	if err := sc.Err(); err != nil {
		return nil, read, err
	}
	if lr.N == 0 {
		return nil, read, fmt.Errorf("%s is larger than %d bytes", path, maxRequirementsFile)
	}
	if cur.Len() > 0 {
		out = append(out, logicalLine{cur.String(), start})
	}
	return out, read, nil
}

func (p *reqParser) parseFile(file string, constraint bool, from *logicalLine) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	if p.onStk == nil {
		p.onStk = map[string]int{}
	}
	if i, ok := p.onStk[abs]; ok {
		if i == len(p.stack)-1 {
			return fmt.Errorf("%s includes itself (through -r or -c)", file)
		}
		cycle := append(append([]string{}, p.stack[i:]...), file)
		return fmt.Errorf("requirements files include each other in a cycle: %s; remove one of these -r/-c lines", strings.Join(cycle, " -> "))
	}
	key := includeKey{abs, constraint}
	if p.done[key] {
		return nil // read already: its lines and options are in
	}
	if len(p.stack) >= MaxRequirementsDepth {
		return fmt.Errorf("including %s: -r/-c includes nest deeper than %d files", file, MaxRequirementsDepth)
	}
	if p.files >= MaxRequirementsFiles {
		return fmt.Errorf("including %s: more than %d requirements files are included", file, MaxRequirementsFiles)
	}
	if p.confine != nil {
		if err := p.confine(file); err != nil {
			return err
		}
	}
	p.files++
	p.onStk[abs] = len(p.stack)
	p.stack = append(p.stack, file)
	defer func() {
		delete(p.onStk, abs)
		p.stack = p.stack[:len(p.stack)-1]
		p.done[key] = true
	}()
	lines, n, err := readLogicalLines(file)
	p.bytes += n
	if err != nil {
		return fmt.Errorf("reading requirements file: %w", err)
	}
	if p.bytes > MaxRequirementsBytes {
		return fmt.Errorf("reading %s: the requirements files included hold more than %d MiB together", file, MaxRequirementsBytes>>20)
	}
	for _, ll := range lines {
		text := commentRE.ReplaceAllString(ll.text, "")
		text = envVarRE.ReplaceAllStringFunc(text, func(m string) string {
			if v, ok := os.LookupEnv(m[2 : len(m)-1]); ok {
				return v
			}
			return m
		})
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "-") {
			if err := p.option(file, ll.no, text, constraint); err != nil {
				return err
			}
			continue
		}
		if err := p.requirement(file, ll.no, text, constraint); err != nil {
			return err
		}
	}
	return nil
}

// splitOption splits "--name=value", "--name value", "-x value" or
// "-xvalue" into the option name and its value.
func splitOption(text string) (name, value string) {
	if strings.HasPrefix(text, "--") {
		end := strings.IndexAny(text, "= \t")
		if end < 0 {
			return text, ""
		}
		return text[:end], strings.TrimSpace(strings.TrimLeft(text[end:], "= \t"))
	}
	if len(text) <= 2 {
		return text, ""
	}
	return text[:2], strings.TrimSpace(text[2:])
}

func (p *reqParser) option(file string, no int, text string, constraint bool) error {
	name, value := splitOption(text)
	needValue := func() error {
		if value == "" {
			return reqFileError(file, no, "%s needs a value", name)
		}
		return nil
	}
	switch name {
	case "-r", "--requirement", "-c", "--constraint":
		if err := needValue(); err != nil {
			return err
		}
		if strings.Contains(value, "://") {
			return reqFileError(file, no, "%s %s: kiln reads requirement files from local paths only; download it next to the spec", name, auth.RedactURL(value))
		}
		inc := value
		if !filepath.IsAbs(inc) {
			inc = filepath.Join(filepath.Dir(file), inc)
		}
		isConstraint := constraint || name == "-c" || name == "--constraint"
		if err := p.parseFile(inc, isConstraint, nil); err != nil {
			return fmt.Errorf("%s:%d: %w", file, no, err)
		}
	case "-i", "--index-url":
		if err := needValue(); err != nil {
			return err
		}
		p.opts.IndexURL = value
	case "--extra-index-url":
		if err := needValue(); err != nil {
			return err
		}
		p.opts.ExtraIndexURLs = append(p.opts.ExtraIndexURLs, value)
	case "--pre":
		p.opts.Pre = true
	case "--require-hashes":
		p.opts.RequireHashes = true
	case "--prefer-binary":
		// kiln installs only wheels anyway.
	case "--only-binary":
		// Honoured whatever the value: kiln installs only wheels.
		if err := needValue(); err != nil {
			return err
		}
	case "--no-binary":
		if value == ":none:" {
			return nil
		}
		return reqFileError(file, no, "--no-binary %s: kiln installs wheels only and cannot build from source; remove the option (build wheels yourself and serve them from an index)", value)
	case "-e", "--editable":
		return reqFileError(file, no, "editable requirement %q: kiln cannot install editable (-e) projects; build a wheel and list its path instead", auth.RedactURL(value))
	case "-f", "--find-links":
		return reqFileError(file, no, "--find-links is not supported by kiln: serve the files from an index (pip_extra_index_url) or list wheel paths directly")
	case "--no-index":
		return reqFileError(file, no, "--no-index is not supported by kiln: list wheel paths directly, or set pip_index to an index you control")
	default:
		if !optionNameRE.MatchString(name) {
			return reqFileError(file, no, "this line starts with '-' but is not an option kiln knows; fix or remove it (the line is not shown, as it may hold a secret)")
		}
		return reqFileError(file, no, "option %s is not supported by kiln; remove it", name)
	}
	return nil
}

// wheelOnlyHint explains kiln's wheel-only policy in errors.
const wheelOnlyHint = "kiln installs wheels only: build a wheel and serve it from an index, or pin a version that has one"

func (p *reqParser) requirement(file string, no int, text string, constraint bool) error {
	// Per-requirement options start at the first token beginning with "-".
	fields := strings.Fields(text)
	var reqToks, optToks []string
	for i, f := range fields {
		if strings.HasPrefix(f, "-") {
			optToks = fields[i:]
			break
		}
		reqToks = append(reqToks, f)
	}
	var hashes []string
	for i := 0; i < len(optToks); i++ {
		name, value := splitOption(optToks[i])
		if name != "--hash" {
			return reqFileError(file, no, "option %s on a requirement is not supported by kiln; remove it", name)
		}
		if value == "" && i+1 < len(optToks) {
			i++
			value = optToks[i]
		}
		algo, sum, ok := strings.Cut(value, ":")
		if !ok || sum == "" {
			return reqFileError(file, no, "--hash %q: write --hash=sha256:<64 hex digits>", value)
		}
		if algo != "sha256" {
			return reqFileError(file, no, "--hash %s: kiln checks sha256 hashes only; use --hash=sha256:...", algo)
		}
		sum = strings.ToLower(sum)
		if !isHexSHA256(sum) {
			return reqFileError(file, no, "--hash sha256:%s is not 64 hex digits", sum)
		}
		hashes = append(hashes, sum)
	}
	if len(hashes) > 0 && !constraint {
		p.opts.RequireHashes = true
	}
	spec := strings.Join(reqToks, " ")
	r, err := parseRequirementSpec(spec, filepath.Dir(file))
	if err != nil {
		if !looksLikeRequirement(spec, filepath.Dir(file)) {
			return reqFileError(file, no, "%s", notARequirement(spec, err))
		}
		return reqFileError(file, no, "%v", err)
	}
	if u, err := url.Parse(r.URL); err == nil && u.Scheme == "file" && p.confine != nil {
		if err := p.confine(filepath.FromSlash(u.Path)); err != nil {
			return reqFileError(file, no, "%v", err)
		}
	}
	if constraint {
		if len(r.Extras) > 0 {
			return reqFileError(file, no, "constraint %s has extras, which constraints cannot have; remove [%s]", spec, strings.Join(r.Extras, ","))
		}
	}
	p.lines = append(p.lines, Line{
		Requirement: Requirement{Requirement: r, Source: fmt.Sprintf("%s:%d", file, no), Hashes: hashes},
		File:        file, Line: no, Constraint: constraint,
	})
	return nil
}

// looksLikeRequirement reports whether spec, which failed to parse, was
// meant as a requirement: a PEP 508 requirement (whose URL was refused), a
// URL of a known scheme, or the path of a wheel or of something that
// exists. Only then may an error show the line: a file included by mistake
// (-r /proc/self/environ, -r ~/.docker/config.json) must not have its
// content printed, as it may hold secrets.
func looksLikeRequirement(spec, dir string) bool {
	if !isURLOrPath(spec) {
		_, err := pep508.ParseRequirement(spec)
		return err == nil
	}
	loc, _, _ := strings.Cut(spec, ";")
	loc = strings.TrimSpace(loc)
	for _, vcs := range []string{"git+", "hg+", "svn+", "bzr+"} {
		if strings.HasPrefix(loc, vcs) {
			return true
		}
	}
	u, err := url.Parse(loc)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https":
		return u.Host != ""
	case "file":
		return true
	case "":
		if strings.HasSuffix(loc, ".whl") {
			return true
		}
		p := loc
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		_, err := os.Stat(p)
		return err == nil
	}
	return false
}

// notARequirement describes a line that is neither a requirement nor an
// option without showing any of it: err's message is kept only when it
// quotes nothing of the line.
func notARequirement(line string, err error) string {
	const msg = "this line is not a requirement (name, version specifier, extras, marker), a wheel URL or a wheel path, nor an option; fix or remove it (the line is not shown, as it may hold a secret)"
	var se *pep508.SyntaxError
	if !errors.As(err, &se) {
		return msg
	}
	detail := fmt.Sprintf("%s at position %d", se.Msg, se.Pos)
	if quotes(detail, line) {
		return msg
	}
	return msg + ": " + detail
}

// quotes reports whether s contains any 4 consecutive bytes of line.
func quotes(s, line string) bool {
	if len(line) > 1<<16 {
		return true
	}
	for i := 0; i+4 <= len(line); i++ {
		if strings.Contains(s, line[i:i+4]) {
			return true
		}
	}
	return false
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// ParseRequirement parses one requirement as a spec's packages list or a
// requirements file line gives it: a PEP 508 requirement, or a URL or path
// (relative to dir) of a wheel, optionally followed by "; marker".
func ParseRequirement(spec, dir string) (pep508.Requirement, error) {
	return parseRequirementSpec(spec, dir)
}

func parseRequirementSpec(spec, dir string) (pep508.Requirement, error) {
	if isURLOrPath(spec) {
		loc, marker, _ := strings.Cut(spec, ";")
		loc = strings.TrimSpace(loc)
		u, err := wheelLocation(loc, dir)
		if err != nil {
			return pep508.Requirement{}, err
		}
		fn, err := wheeltag.ParseFilename(path.Base(mustURL(u).Path))
		if err != nil {
			return pep508.Requirement{}, fmt.Errorf("%s: %v", auth.RedactURL(loc), err)
		}
		r := pep508.Requirement{Name: fn.Name, URL: u}
		if m := strings.TrimSpace(marker); m != "" {
			r.Marker, err = pep508.ParseMarker(m)
			if err != nil {
				return pep508.Requirement{}, err
			}
		}
		return r, nil
	}
	r, err := pep508.ParseRequirement(spec)
	if err != nil {
		return r, err
	}
	if r.URL != "" {
		u, err := wheelLocation(r.URL, dir)
		if err != nil {
			return pep508.Requirement{}, fmt.Errorf("%s: %w", r.Name, err)
		}
		r.URL = u
	}
	return r, nil
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	return u
}

// nameAtRE matches the start of a PEP 508 "name[extras] @ url" requirement.
var nameAtRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@`)

// isURLOrPath reports whether a requirement is a bare URL or path rather
// than a PEP 508 requirement.
func isURLOrPath(s string) bool {
	if nameAtRE.MatchString(s) {
		return false
	}
	if strings.Contains(s, "://") {
		return true
	}
	first := strings.TrimSuffix(strings.Fields(s)[0], ";")
	return strings.HasPrefix(first, ".") || strings.HasPrefix(first, "/") || strings.HasSuffix(first, ".whl") || strings.Contains(first, "/")
}

// wheelLocation returns loc as an absolute URL of a wheel (file:// for a
// local path, relative paths taken from dir), or an error for anything that
// is not a wheel.
func wheelLocation(loc, dir string) (string, error) {
	if strings.HasPrefix(loc, "git+") || strings.HasPrefix(loc, "hg+") || strings.HasPrefix(loc, "svn+") || strings.HasPrefix(loc, "bzr+") {
		return "", fmt.Errorf("%s is a version-control URL; %s", auth.RedactURL(loc), wheelOnlyHint)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("%s is not a valid URL or path", auth.RedactURL(loc))
	}
	switch u.Scheme {
	case "http", "https", "file":
	case "":
		p := loc
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		u = &url.URL{Scheme: "file", Path: filepath.Clean(p)}
	default:
		return "", fmt.Errorf("%s: unsupported URL scheme %q (use https, http or a local path)", auth.RedactURL(loc), u.Scheme)
	}
	if !strings.HasSuffix(u.Path, ".whl") {
		if fi, err := os.Stat(u.Path); u.Scheme == "file" && err == nil && fi.IsDir() {
			return "", fmt.Errorf("%s is a project directory; %s", u.Path, wheelOnlyHint)
		}
		return "", fmt.Errorf("%s is not a wheel (.whl); %s", auth.RedactURL(loc), wheelOnlyHint)
	}
	return u.String(), nil
}
