package deblayer

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// scriptTimeout bounds one maintainer script's interpretation.
const scriptTimeout = 5 * time.Second

// maxScriptMemory bounds what an interpreted script's variables and
// arguments hold.
const maxScriptMemory = 64 << 20

// interpResult is what interpreting a maintainer script found it would do
// to the image: the update-alternatives calls (argument lists, in order)
// and the directories and empty files it creates.
type interpResult struct {
	alts  [][]string
	dirs  []tar.Header
	files []tar.Header
}

// interpret runs a maintainer script (as `script args...`) in a POSIX
// shell interpreter (mvdan.cc/sh) that cannot reach the host: every
// program the script starts is answered by kiln (update-alternatives is
// recorded, dpkg --print-architecture answered, mkdir, install -d and touch
// recorded, anything else does nothing and succeeds), file tests look at
// this layer and the parent files kiln read, globs match nothing,
// redirections write nowhere and read nothing. So loops, functions and
// command substitutions that build update-alternatives calls (openjdk's
// tools, xz-utils' lzma) are followed as the shell would. It returns
// false when the script does not parse.
func (fx *effects) interpret(p *pkgState, src string, args ...string) (*interpResult, bool) {
	lang := syntax.LangPOSIX
	if first, _, _ := strings.Cut(src, "\n"); strings.Contains(first, "bash") {
		lang = syntax.LangBash
	}
	file, err := syntax.NewParser(syntax.Variant(lang)).Parse(strings.NewReader(src), p.name)
	if err != nil {
		return nil, false
	}
	guardLoops(file)
	arch := p.archName
	if arch == "all" {
		arch = fx.arch
	}
	res := &interpResult{}
	sh := &scriptShell{fx: fx, res: res, arch: arch, multiarch: multiarchTriplet(arch)}
	env := expand.ListEnviron(
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"DPKG_MAINTSCRIPT_PACKAGE="+p.name,
		"DPKG_MAINTSCRIPT_ARCH="+arch,
		"DPKG_MAINTSCRIPT_NAME=postinst",
		"DPKG_ROOT=",
		"DEBIAN_FRONTEND=noninteractive",
		"HOME=/root",
	)
	r, err := interp.New(
		interp.Env(env),
		interp.Dir("/"),
		interp.Params(append([]string{"--"}, args...)...),
		interp.StdIO(nil, io.Discard, io.Discard),
		interp.CallHandler(sh.call),
		interp.ExecHandlers(func(interp.ExecHandlerFunc) interp.ExecHandlerFunc { return sh.exec }),
		interp.OpenHandler(sh.open),
		interp.StatHandler(sh.stat),
		interp.ReadDirHandler2(func(context.Context, string) ([]fs.DirEntry, error) { return nil, fs.ErrNotExist }),
		interp.AccessHandler(func(ctx context.Context, p string, _ interp.AccessMode) error {
			_, err := sh.stat(ctx, p, true)
			return err
		}),
	)
	if err != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	err = r.Run(ctx, file) // the exit status does not matter: what it did does
	if _, exited := interp.IsExitStatus(err); err != nil && !exited && ctx.Err() == nil {
		p.warnf("postinst stopped when kiln followed it (%v); its update-alternatives calls were read without following loops", err)
		return nil, false
	}
	if ctx.Err() != nil {
		// What a script that ran out of time did depends on the
		// machine's speed: none of it is used.
		p.warnf("postinst did not finish within %s when kiln followed it; its update-alternatives calls were read without following loops", scriptTimeout)
		return nil, false
	}
	return res, true
}

// memCheck is the command guardLoops puts at the top of every loop: it
// does nothing, but as a command it passes through scriptShell.call, which
// checks the script's memory.
const memCheck = "kiln-memory-check"

// guardLoops makes every loop of file run memCheck first in its condition
// and its body, so that a loop that only assigns (while a=$a$a; do b=1;
// done runs no command) is stopped by the memory bound too. A condition's
// status is its last command's, so the check changes no loop's course.
func guardLoops(file *syntax.File) {
	check := func() *syntax.Stmt {
		return &syntax.Stmt{Cmd: &syntax.CallExpr{Args: []*syntax.Word{{Parts: []syntax.WordPart{&syntax.Lit{Value: memCheck}}}}}}
	}
	syntax.Walk(file, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.WhileClause:
			n.Cond = append([]*syntax.Stmt{check()}, n.Cond...)
			n.Do = append([]*syntax.Stmt{check()}, n.Do...)
		case *syntax.ForClause:
			n.Do = append([]*syntax.Stmt{check()}, n.Do...)
		case *syntax.FuncDecl:
			// A recursive function that only assigns is a loop too.
			if b, ok := n.Body.Cmd.(*syntax.Block); ok {
				b.Stmts = append([]*syntax.Stmt{check()}, b.Stmts...)
			}
		}
		return true
	})
}

// scriptShell answers a maintainer script's programs, files and tests.
type scriptShell struct {
	fx              *effects
	res             *interpResult
	arch, multiarch string
}

// call rewrites builtins that would look at the host: `command -v` and
// `type` look programs up in the image instead.
func (sh *scriptShell) call(ctx context.Context, args []string) ([]string, error) {
	// A script that grows its variables without bound (a=$a$a in a
	// loop) is stopped before it exhausts memory.
	size := 0
	for _, a := range args {
		size += len(a)
	}
	interp.HandlerCtx(ctx).Env.Each(func(_ string, v expand.Variable) bool {
		size += len(v.Str)
		for _, e := range v.List {
			size += len(e)
		}
		return size <= maxScriptMemory
	})
	if size > maxScriptMemory {
		return nil, fmt.Errorf("the script's variables and arguments hold more than %d bytes", maxScriptMemory)
	}
	if len(args) >= 3 && args[0] == "command" && (args[1] == "-v" || args[1] == "-V") {
		return append([]string{"kiln-which"}, args[2:]...), nil
	}
	if len(args) >= 2 && (args[0] == "type" || args[0] == "hash") {
		return append([]string{"kiln-which"}, args[1:]...), nil
	}
	return args, nil
}

// exec answers a program the script runs.
func (sh *scriptShell) exec(ctx context.Context, args []string) error {
	hc := interp.HandlerCtx(ctx)
	out := hc.Stdout
	fail := interp.NewExitStatus(1)
	name := path.Base(args[0])
	switch name {
	case memCheck:
		return nil
	case "update-alternatives":
		for _, a := range args[1:] {
			switch a {
			case "--install":
				sh.res.alts = append(sh.res.alts, append([]string(nil), args[1:]...))
				return nil
			case "--list", "--query", "--display", "--get-selections":
				return interp.NewExitStatus(2) // no such alternative yet
			}
		}
		return nil
	case "dpkg":
		if len(args) > 1 && args[1] == "--print-architecture" {
			fmt.Fprintln(out, sh.arch)
			return nil
		}
		if len(args) > 1 && (args[1] == "--compare-versions" || args[1] == "-s" || args[1] == "--status" || args[1] == "-l") {
			return fail // a fresh install: no older version to migrate
		}
		return nil
	case "dpkg-architecture":
		for _, a := range args[1:] {
			switch strings.TrimPrefix(a, "-q") {
			case "DEB_HOST_MULTIARCH", "DEB_BUILD_MULTIARCH":
				fmt.Fprintln(out, sh.multiarch)
			case "DEB_HOST_ARCH", "DEB_BUILD_ARCH":
				fmt.Fprintln(out, sh.arch)
			}
		}
		return nil
	case "dpkg-query", "getent", "grep", "egrep", "fgrep":
		return fail
	case "which", "kiln-which":
		found := false
		for _, a := range args[1:] {
			if p, ok := sh.which(ctx, a); ok {
				fmt.Fprintln(out, p)
				found = true
			}
		}
		if !found {
			return fail
		}
		return nil
	case "basename":
		if len(args) > 1 {
			b := path.Base(args[1])
			if len(args) > 2 {
				b = strings.TrimSuffix(b, args[2])
			}
			fmt.Fprintln(out, b)
		}
		return nil
	case "dirname":
		if len(args) > 1 {
			fmt.Fprintln(out, path.Dir(args[1]))
		}
		return nil
	case "mkdir":
		sh.mkdir(ctx, args[1:], false)
		return nil
	case "install":
		sh.mkdir(ctx, args[1:], true)
		return nil
	case "touch":
		for _, a := range args[1:] {
			if strings.HasPrefix(a, "-") || !strings.HasPrefix(a, "/") {
				continue
			}
			if _, err := sh.stat(ctx, a, true); err == nil {
				continue
			}
			sh.res.files = append(sh.res.files, tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path.Clean(a), "/"), Mode: 0o644})
		}
		return nil
	}
	return nil // everything else: does nothing, succeeds
}

// mkdir records `mkdir [-p] [-m MODE] DIR...` or `install -d [-m MODE]
// [-o U] [-g G] DIR...` (install without -d copies files: ignored).
func (sh *scriptShell) mkdir(ctx context.Context, args []string, install bool) {
	mode := int64(0o755)
	isDir := !install
	var dirs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-m" || a == "--mode":
			if i+1 < len(args) {
				if m, err := strconv.ParseInt(args[i+1], 8, 32); err == nil {
					mode = m & 0o7777
				}
				i++
			}
		case strings.HasPrefix(a, "--mode="):
			if m, err := strconv.ParseInt(strings.TrimPrefix(a, "--mode="), 8, 32); err == nil {
				mode = m & 0o7777
			}
		case install && (a == "-o" || a == "-g" || a == "--owner" || a == "--group"):
			i++
		case install && (a == "-d" || a == "--directory"):
			isDir = true
		case strings.HasPrefix(a, "-"):
		default:
			dirs = append(dirs, a)
		}
	}
	if !isDir {
		return
	}
	for _, d := range dirs {
		if !strings.HasPrefix(d, "/") {
			continue
		}
		d = strings.TrimPrefix(path.Clean(d), "/")
		if d == "" {
			continue
		}
		if _, err := sh.stat(ctx, "/"+d, true); err == nil {
			continue
		}
		sh.res.dirs = append(sh.res.dirs, tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode})
	}
}

// which finds a program in the image's PATH directories.
func (sh *scriptShell) which(ctx context.Context, prog string) (string, bool) {
	if strings.Contains(prog, "/") {
		_, err := sh.stat(ctx, prog, true)
		return prog, err == nil
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if fi, err := sh.stat(ctx, d+"/"+prog, true); err == nil && !fi.IsDir() {
			return d + "/" + prog, true
		}
	}
	return "", false
}

// open gives reads nothing (debconf's confmodule a stub whose db_*
// functions succeed with an empty answer) and writes nowhere.
func (sh *scriptShell) open(_ context.Context, p string, flag int, _ os.FileMode) (io.ReadWriteCloser, error) {
	if flag&(os.O_WRONLY|os.O_RDWR) != 0 || p == "/dev/null" {
		return discardRWC{}, nil
	}
	if p == "/usr/share/debconf/confmodule" {
		return readOnly{strings.NewReader(debconfStub)}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
}

// debconfStub stands for /usr/share/debconf/confmodule: every db_*
// command succeeds with an empty answer (non-interactive defaults).
const debconfStub = `db_get() { RET=""; return 0; }
db_metaget() { RET=""; return 0; }
db_version() { return 0; }
db_capb() { return 0; }
db_input() { return 0; }
db_go() { return 0; }
db_set() { return 0; }
db_fset() { return 0; }
db_fget() { RET="false"; return 0; }
db_register() { return 0; }
db_unregister() { return 0; }
db_subst() { return 0; }
db_reset() { return 0; }
db_purge() { return 0; }
db_stop() { return 0; }
db_title() { return 0; }
db_settitle() { return 0; }
db_x_loadtemplatefile() { return 0; }
`

// stat answers file tests from the layer written so far and the parent
// files kiln read.
func (sh *scriptShell) stat(_ context.Context, name string, _ bool) (fs.FileInfo, error) {
	w := sh.fx.w
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	notExist := &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	if p == "" || p == "proc" || p == "dev" || p == "tmp" || p == "dev/null" {
		return fakeInfo{name: path.Base("/" + p), mode: fs.ModeDir | 0o755}, nil
	}
	final, err := w.res.resolve(p, true)
	if err != nil {
		return nil, notExist
	}
	if t, ok := w.emitted[final]; ok {
		mode := fs.FileMode(0o644)
		switch t {
		case tar.TypeDir:
			mode = fs.ModeDir | 0o755
		case tar.TypeSymlink:
			mode = fs.ModeSymlink | 0o777
		}
		return fakeInfo{name: path.Base(final), mode: mode}, nil
	}
	if _, ok := sh.fx.parent.Files[final]; ok {
		return fakeInfo{name: path.Base(final), mode: 0o644}, nil
	}
	for _, created := range sh.res.dirs {
		if created.Name == final {
			return fakeInfo{name: path.Base(final), mode: fs.ModeDir | 0o755}, nil
		}
	}
	prefix := final + "/"
	for e := range w.emitted {
		if strings.HasPrefix(e, prefix) {
			return fakeInfo{name: path.Base(final), mode: fs.ModeDir | 0o755}, nil
		}
	}
	return nil, notExist
}

// readOnly is a file the script can read and not write.
type readOnly struct{ io.Reader }

func (readOnly) Write([]byte) (int, error) { return 0, fs.ErrPermission }
func (readOnly) Close() error              { return nil }

type discardRWC struct{}

func (discardRWC) Read([]byte) (int, error)    { return 0, io.EOF }
func (discardRWC) Write(b []byte) (int, error) { return len(b), nil }
func (discardRWC) Close() error                { return nil }

// fakeInfo is the fs.FileInfo stat gives.
type fakeInfo struct {
	name string
	mode fs.FileMode
}

func (f fakeInfo) Name() string       { return f.name }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Unix(0, 0) }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }
