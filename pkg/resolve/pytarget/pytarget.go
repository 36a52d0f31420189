// Package pytarget describes the Python interpreter of a parent image, read
// from its files without running anything: the interpreter's version and
// ABI, the architecture and the C library wheels must be built for.
package pytarget

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Libc names.
const (
	Glibc = "glibc"
	Musl  = "musl"
)

// Target is the Python interpreter of an image.
type Target struct {
	// Version is the full version, "3.11.2", or major.minor ("3.11") when
	// nothing in the image tells the micro version.
	Version string
	// Major and Minor are the version's first two components.
	Major, Minor int
	// Implementation is the wheel tag's implementation, "cp".
	Implementation string
	// ABI is the wheel tag's ABI: "cp311", or "cp313t" for a free-threaded
	// build.
	ABI string
	// Interpreter is the interpreter's absolute path in the image,
	// "/usr/bin/python3.11".
	Interpreter string
	// Arch is the machine as wheel tags spell it: "x86_64", "aarch64".
	Arch string
	// Libc is Glibc or Musl.
	Libc string
	// LibcVersion is the C library's major.minor version, "2.36" or "1.2".
	LibcVersion string
	// LibcMajor and LibcMinor are LibcVersion's components.
	LibcMajor, LibcMinor int
	// SitePackages is the absolute directory pip installs into for this
	// interpreter outside a virtual environment:
	// "/usr/local/lib/python3.11/dist-packages" for Debian's python3,
	// "<prefix>/lib/python3.X/site-packages" otherwise.
	SitePackages string
}

// Options tune Detect.
type Options struct {
	// PythonVersion is the spec's python_version ("3.11" or "3.11.2");
	// empty accepts any interpreter.
	PythonVersion string
	// Config is the parent's config: its PYTHON_VERSION environment
	// variable (set by the official python images) and architecture are
	// used when present. It may be nil.
	Config *v1.ConfigFile
	// Interpreter is the spec's python_exec, an absolute path in the
	// image ("/opt/venv/bin/python"); empty picks one as pick does.
	Interpreter string
}

// ErrNoPython is wrapped by the error Detect returns when the image has no
// Python 3 interpreter.
var ErrNoPython = errors.New("the parent image has no python3; install it with apt_packages: [python3] or use a python base image")

// interpreter is a candidate python3.X executable.
type interpreter struct {
	path         string // "usr/bin/python3.11"
	prefix       string // "usr"
	major, minor int
}

var interpRe = regexp.MustCompile(`^(usr/local|usr|opt/[^/]+)/bin/python(\d+)\.(\d+)$`)

// Detect finds the target Python in files. To see an interpreter installed
// by the same build, pass the parent's files overlaid with those layers.
func Detect(files fs.FS, opts Options) (Target, error) {
	want := strings.TrimSpace(opts.PythonVersion)
	envVersion := ""
	if opts.Config != nil {
		for _, e := range opts.Config.Config.Env {
			if v, ok := strings.CutPrefix(e, "PYTHON_VERSION="); ok {
				envVersion = strings.TrimSpace(v)
			}
		}
	}

	cands, err := interpreters(files)
	if err != nil {
		return Target{}, err
	}
	if len(cands) == 0 {
		return Target{}, ErrNoPython
	}
	in := pick(files, cands, want, envVersion)
	if opts.Interpreter != "" {
		if in, err = pickExec(files, cands, opts.Interpreter); err != nil {
			return Target{}, err
		}
		if want != "" && !versionMatches(want, in.major, in.minor, "") {
			return Target{}, fmt.Errorf("%s is Python %d.%d, not %s", opts.Interpreter, in.major, in.minor, want)
		}
	}

	t := Target{
		Major:          in.major,
		Minor:          in.minor,
		Implementation: "cp",
		ABI:            fmt.Sprintf("cp%d%d", in.major, in.minor),
		Interpreter:    "/" + in.path,
	}
	mm := fmt.Sprintf("%d.%d", in.major, in.minor)

	vars := sysconfig(files, in)
	if soabi := vars["SOABI"]; soabi != "" {
		// cpython-311-x86_64-linux-gnu, cpython-313t-..., cpython-311d-...
		parts := strings.Split(soabi, "-")
		if len(parts) >= 2 && parts[0] == "cpython" {
			// The ABI flags ("t" free-threaded, "d" debug) are part of
			// the wheel ABI tag.
			t.ABI = "cp" + parts[1]
		}
	}
	if v := vars["VERSION"]; v != "" && v != mm {
		return Target{}, fmt.Errorf("the parent image's /%s says it is Python %s but its _sysconfigdata says %s; the image is inconsistent", in.path, mm, v)
	}

	pkgs := installedPackages(files)
	switch {
	case envVersion != "" && versionMatches(envVersion, in.major, in.minor, "") && in.prefix == "usr/local":
		t.Version = envVersion
	case pkgs["python"+mm+"-minimal"] != "":
		t.Version = upstream(pkgs["python"+mm+"-minimal"])
	case pkgs["libpython"+mm+"-minimal"] != "":
		t.Version = upstream(pkgs["libpython"+mm+"-minimal"])
	case pkgs["python"+mm] != "":
		t.Version = upstream(pkgs["python"+mm])
	case strings.HasPrefix(pkgs["python3"], mm+"."):
		t.Version = upstream(pkgs["python3"])
	case strings.HasPrefix(pkgs["apk:python3"], mm+"."):
		t.Version = upstream(pkgs["apk:python3"])
	default:
		t.Version = mm
	}
	if ma, mi := majorMinor(t.Version); ma != in.major || mi != in.minor {
		t.Version = mm
	}
	if want != "" && !versionMatches(want, in.major, in.minor, t.Version) {
		return Target{}, fmt.Errorf("python_version is %s but the parent image's Python is %s (/%s); set python_version: \"%d.%d\" or pick a base image with Python %s", want, t.Version, in.path, in.major, in.minor, want)
	}

	t.Arch, err = arch(files, in, opts.Config, vars["MULTIARCH"])
	if err != nil {
		return Target{}, err
	}
	if err := libc(files, &t, pkgs, vars["MULTIARCH"]); err != nil {
		return Target{}, err
	}

	switch {
	case in.prefix == "usr" && isDebian(files, pkgs):
		t.SitePackages = "/usr/local/lib/python" + mm + "/dist-packages"
	default:
		t.SitePackages = "/" + in.prefix + "/lib/python" + mm + "/site-packages"
	}
	return t, nil
}

// interpreters lists the python3.X executables in usr/local/bin, usr/bin
// and opt/*/bin, in that order.
func interpreters(files fs.FS) ([]interpreter, error) {
	var out []interpreter
	for _, pat := range []string{"usr/local/bin/python3.*", "usr/bin/python3.*", "opt/*/bin/python3.*"} {
		names, err := fs.Glob(files, pat)
		if err != nil {
			return nil, fmt.Errorf("look for %s: %w", pat, err)
		}
		for _, n := range names {
			m := interpRe.FindStringSubmatch(n)
			if m == nil {
				continue
			}
			if _, err := realpath(files, n); err != nil {
				continue // dangling
			}
			major, _ := strconv.Atoi(m[2])
			minor, _ := strconv.Atoi(m[3])
			out = append(out, interpreter{path: n, prefix: m[1], major: major, minor: minor})
		}
	}
	return out, nil
}

// pickExec chooses the candidate exec names: exec itself, the one in its
// directory it links to (a virtual environment's python), or the one it
// resolves to.
func pickExec(files fs.FS, cands []interpreter, exec string) (interpreter, error) {
	clean := strings.TrimPrefix(path.Clean(exec), "/")
	real, err := realpath(files, clean)
	if err != nil {
		return interpreter{}, fmt.Errorf("%s is not in the image", exec)
	}
	var names []string
	for _, c := range cands {
		if c.path == clean {
			return c, nil
		}
		names = append(names, "/"+c.path)
	}
	var same interpreter
	found := false
	for _, c := range cands {
		r, err := realpath(files, c.path)
		if err != nil || r != real {
			continue
		}
		if path.Dir(c.path) == path.Dir(clean) {
			return c, nil
		}
		if !found {
			same, found = c, true
		}
	}
	if found {
		return same, nil
	}
	return interpreter{}, fmt.Errorf("%s is not one of the image's python3.X interpreters (%s)", exec, strings.Join(names, ", "))
}

// pick chooses among the candidates: the one the spec asks for, the one
// PYTHON_VERSION names, the one python3 points to, the newest.
func pick(files fs.FS, cands []interpreter, want, env string) interpreter {
	if want != "" && strings.Contains(want, ".") {
		ma, mi := majorMinor(want)
		for _, c := range cands {
			if c.major == ma && c.minor == mi {
				return c
			}
		}
	}
	if env != "" {
		ma, mi := majorMinor(env)
		for _, c := range cands {
			if c.major == ma && c.minor == mi && c.prefix == "usr/local" {
				return c
			}
		}
	}
	for _, link := range []string{"usr/local/bin/python3", "usr/bin/python3"} {
		real, err := realpath(files, link)
		if err != nil {
			continue
		}
		for _, c := range cands {
			if r, err := realpath(files, c.path); err == nil && r == real {
				return c
			}
		}
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if c.major > best.major || c.major == best.major && c.minor > best.minor {
			best = c
		}
	}
	return best
}

// majorMinor parses "3.11" or "3.11.2"; it returns 0, 0 on failure.
func majorMinor(v string) (int, int) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return ma, mi
}

// versionMatches reports whether the spec's python_version want matches
// major (for want "3"), or major.minor and, when want has a third component and full is known, the
// full version.
func versionMatches(want string, major, minor int, full string) bool {
	if !strings.Contains(want, ".") {
		ma, err := strconv.Atoi(want) // python_version: 3
		return err == nil && ma == major
	}
	ma, mi := majorMinor(want)
	if ma != major || mi != minor {
		return false
	}
	if strings.Count(want, ".") >= 2 && strings.Count(full, ".") >= 2 {
		return want == full
	}
	return true
}

var sysconfigRe = regexp.MustCompile(`[{\s]'(VERSION|SOABI|MULTIARCH|LDVERSION|prefix)':\s*'([^'\\]*)'`)

// sysconfig reads the keys Detect uses from the interpreter's
// _sysconfigdata_*.py, a Python dict literal, without running it.
func sysconfig(files fs.FS, in interpreter) map[string]string {
	vars := map[string]string{}
	names, _ := fs.Glob(files, fmt.Sprintf("%s/lib/python%d.%d/_sysconfigdata_*.py", in.prefix, in.major, in.minor))
	for _, n := range names {
		b, err := fs.ReadFile(files, n)
		if err != nil {
			continue
		}
		for _, m := range sysconfigRe.FindAllSubmatch(b, -1) {
			if _, ok := vars[string(m[1])]; !ok {
				vars[string(m[1])] = string(m[2])
			}
		}
		if len(vars) > 0 {
			break
		}
	}
	return vars
}

// installedPackages returns the versions of the installed packages in the
// dpkg database (status and distroless status.d) and Alpine's apk database.
func installedPackages(files fs.FS) map[string]string {
	pkgs := map[string]string{}
	var stanzas [][]byte
	if b, err := fs.ReadFile(files, "var/lib/dpkg/status"); err == nil {
		stanzas = append(stanzas, b)
	}
	if names, err := fs.Glob(files, "var/lib/dpkg/status.d/*"); err == nil {
		for _, n := range names {
			if b, err := fs.ReadFile(files, n); err == nil {
				stanzas = append(stanzas, b)
			}
		}
	}
	for _, b := range stanzas {
		for _, st := range bytes.Split(b, []byte("\n\n")) {
			f := fields(st, ":")
			if f["Package"] == "" || f["Version"] == "" {
				continue
			}
			if s, ok := f["Status"]; ok && !strings.HasSuffix(s, " installed") {
				continue
			}
			name := f["Package"]
			if a := f["Architecture"]; a != "" && a != "all" {
				// Prefer a native package over a foreign one: keep the first.
				if _, dup := pkgs[name]; dup {
					continue
				}
			}
			pkgs[name] = f["Version"]
		}
	}
	if b, err := fs.ReadFile(files, "lib/apk/db/installed"); err == nil {
		for _, st := range bytes.Split(b, []byte("\n\n")) {
			f := fields(st, ":")
			if f["P"] != "" && f["V"] != "" {
				pkgs["apk:"+f["P"]] = f["V"]
			}
		}
	}
	return pkgs
}

// fields parses "Name: value" lines; continuation lines are skipped.
func fields(stanza []byte, sep string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(stanza))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, sep)
		if !ok {
			continue
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// upstream returns the upstream part of a Debian or Alpine version:
// "2.36-9+deb12u4" -> "2.36", "1:3.11.2-6" -> "3.11.2", "1.2.4-r2" -> "1.2.4".
func upstream(v string) string {
	if _, rest, ok := strings.Cut(v, ":"); ok {
		v = rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	// Debian's "3.11.2~rc1" or "+dfsg" suffixes.
	if i := strings.IndexAny(v, "~+"); i >= 0 {
		v = v[:i]
	}
	return v
}

// goArch maps Go/OCI architectures to wheel tag machines.
var goArch = map[string]string{
	"amd64":   "x86_64",
	"arm64":   "aarch64",
	"386":     "i686",
	"arm":     "armv7l",
	"ppc64le": "ppc64le",
	"s390x":   "s390x",
	"riscv64": "riscv64",
}

// elfArch maps ELF machines to wheel tag machines.
var elfArch = map[elf.Machine]string{
	elf.EM_X86_64:  "x86_64",
	elf.EM_AARCH64: "aarch64",
	elf.EM_386:     "i686",
	elf.EM_ARM:     "armv7l",
	elf.EM_PPC64:   "ppc64le",
	elf.EM_S390:    "s390x",
	elf.EM_RISCV:   "riscv64",
}

// arch returns the target machine: from the image config, else the
// interpreter's ELF header, else the sysconfig MULTIARCH.
func arch(files fs.FS, in interpreter, cfg *v1.ConfigFile, multiarch string) (string, error) {
	if cfg != nil && cfg.Architecture != "" {
		a, ok := goArch[cfg.Architecture]
		if !ok {
			return "", fmt.Errorf("the parent image's architecture %q is not one kiln can pick wheels for", cfg.Architecture)
		}
		if a == "armv7l" && cfg.Variant == "v6" {
			a = "armv6l"
		}
		return a, nil
	}
	if head, err := readHead(files, in.path, 64); err == nil {
		if m, ok := elfMachine(head); ok {
			if a, ok := elfArch[m]; ok {
				return a, nil
			}
			return "", fmt.Errorf("the parent image's /%s is built for %s, not a machine kiln can pick wheels for", in.path, m)
		}
	}
	if m, _, ok := strings.Cut(multiarch, "-"); ok && m != "" {
		return m, nil
	}
	return "", fmt.Errorf("cannot tell the architecture of the parent image's /%s: its config has none and its ELF header is unreadable; set the image config's architecture", in.path)
}

// elfMachine reads e_machine from an ELF header.
func elfMachine(head []byte) (elf.Machine, bool) {
	if len(head) < 20 || string(head[:4]) != elf.ELFMAG {
		return 0, false
	}
	var bo binary.ByteOrder
	switch elf.Data(head[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return 0, false
	}
	return elf.Machine(bo.Uint16(head[18:20])), true
}

var libcFileRe = regexp.MustCompile(`libc-(\d+\.\d+)\.so$`)

// libc finds the C library and its version: musl by its dynamic loader,
// glibc by dpkg's libc6 (or libc6 variants), else a libc-X.Y.so file.
func libc(files fs.FS, t *Target, pkgs map[string]string, multiarch string) error {
	musl, _ := fs.Glob(files, "lib/ld-musl-*.so.1")
	if len(musl) > 0 || strings.HasSuffix(multiarch, "-musl") {
		t.Libc = Musl
		if v := pkgs["apk:musl"]; v != "" {
			t.LibcVersion = upstream(v)
		} else {
			return fmt.Errorf("the parent image uses musl but has no apk database entry for it (lib/apk/db/installed); kiln cannot tell its version for musllinux wheels")
		}
	} else {
		t.Libc = Glibc
		for _, p := range []string{"libc6", "libc6-amd64", "libc6.1", "libc0.1"} {
			if v := pkgs[p]; v != "" {
				t.LibcVersion = upstream(v)
				break
			}
		}
		if t.LibcVersion == "" {
			for _, pat := range []string{"lib*/libc-*.so", "lib*/*/libc-*.so", "usr/lib*/libc-*.so", "usr/lib*/*/libc-*.so"} {
				names, _ := fs.Glob(files, pat)
				for _, n := range names {
					if m := libcFileRe.FindStringSubmatch(n); m != nil {
						t.LibcVersion = m[1]
					}
				}
				if t.LibcVersion != "" {
					break
				}
			}
		}
		if t.LibcVersion == "" {
			return fmt.Errorf("cannot tell the glibc version of the parent image: it has no dpkg entry for libc6 and no libc-X.Y.so; use a Debian or Ubuntu based parent")
		}
	}
	ma, mi := majorMinor(t.LibcVersion)
	if ma == 0 && mi == 0 {
		return fmt.Errorf("the parent image's %s version %q is not major.minor[.patch]", t.Libc, t.LibcVersion)
	}
	t.LibcMajor, t.LibcMinor = ma, mi
	t.LibcVersion = fmt.Sprintf("%d.%d", ma, mi)
	return nil
}

// isDebian reports whether the image is Debian-like, where pip installs
// into dist-packages under /usr/local.
func isDebian(files fs.FS, pkgs map[string]string) bool {
	if _, err := realpath(files, "usr/lib/python3/dist-packages"); err == nil {
		return true
	}
	_, ok := pkgs["dpkg"]
	return ok
}

// readHead returns up to max leading bytes of the file at name: what a
// file system that kept only the start of a file (such as an executable's
// ELF header) can give.
func readHead(files fs.FS, name string, max int) ([]byte, error) {
	f, err := files.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, max)
	n, err := io.ReadFull(f, buf)
	if n == 0 && err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// maxLinks bounds the symlinks realpath follows, as Linux's ELOOP does.
const maxLinks = 40

// realpath returns name (an io/fs path) with every symlink resolved, as an
// io/fs path: through files' fs.ReadLinkFS, with absolute link targets
// taken from the root of files. A missing entry or a loop is an error.
func realpath(files fs.FS, name string) (string, error) {
	var done []string
	rest := strings.Split(name, "/")
	for links := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		p := path.Join(append(done, c)...)
		info, err := fs.Lstat(files, p)
		if err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if links++; links > maxLinks {
			return "", &fs.PathError{Op: "realpath", Path: name, Err: errors.New("too many levels of symbolic links")}
		}
		target, err := fs.ReadLink(files, p)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		rest = append(strings.Split(strings.TrimPrefix(target, "/"), "/"), rest...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}
