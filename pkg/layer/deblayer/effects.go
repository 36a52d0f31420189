package deblayer

import (
	"archive/tar"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// effects accumulates the reproduced effects of maintainer scripts.
type effects struct {
	w         *layerWriter
	parent    Parent
	arch      string
	multiarch string
	alts      *altDB
	users     *userDB
	caPkg     *pkgState
	homes     []tar.Header
	// cachedDirs are the library directories the written ld.so.cache
	// lists libraries of this layer in.
	cachedDirs map[string]bool
	// created are the directories and empty files postinst scripts
	// create (mkdir, install -d, touch).
	created []tar.Header
}

func newEffects(parent Parent, w *layerWriter, pkgs []*pkgState) (*effects, error) {
	fx := &effects{w: w, parent: parent, cachedDirs: map[string]bool{}}
	for _, p := range pkgs {
		if p.archName != "all" {
			fx.arch = p.archName
			break
		}
	}
	if fx.arch == "" {
		fx.arch = "amd64"
	}
	fx.multiarch = multiarchTriplet(fx.arch)
	var err error
	if fx.alts, err = loadAltDB(parent.Files); err != nil {
		return nil, err
	}
	if fx.users, err = loadUserDB(parent.Files); err != nil {
		return nil, err
	}
	return fx, nil
}

// skippedCommand reports whether a command is irrelevant in a container
// image, and why.
func skippedCommand(name string, args []string) (string, bool) {
	switch name {
	case "set", "exit", "return", "true", "false", ":", "[", "[[", "test",
		"echo", "printf", "shift", "local", "export", "unset", "break",
		"continue", "readonly", "trap", "umask", "read", "wait", "which",
		"command", "type", "hash", "sleep", "getent", "id", "dpkg-query":
		return "", true // shell plumbing, no effect on the image
	case "dpkg-maintscript-helper", "deb-systemd-helper", "deb-systemd-invoke",
		"invoke-rc.d", "update-rc.d", "systemctl", "dpkg-trigger",
		"update-initramfs", "dpkg-statoverride":
		return "service/packaging bookkeeping, irrelevant in a container", true
	case ".", "source", "db_version", "db_capb", "db_get", "db_set",
		"db_input", "db_go", "db_stop", "db_purge", "db_fset", "db_fget",
		"db_metaget", "db_reset", "db_register", "db_unregister",
		"db_subst", "db_title", "db_settitle":
		return "debconf, non-interactive defaults used", true
	}
	if name == "dpkg" && len(args) > 1 && args[1] == "--compare-versions" {
		return "", true
	}
	if strings.HasPrefix(name, "db_") {
		return "debconf, non-interactive defaults used", true
	}
	return "", false
}

// shellEnv returns the environment p's scripts are read in.
func (fx *effects) shellEnv(p *pkgState) *shellEnv {
	arch := p.archName
	if arch == "all" {
		arch = fx.arch
	}
	return &shellEnv{vars: map[string]string{}, arch: arch, multiarch: multiarchTriplet(arch)}
}

// preinst reproduces the users and groups p's preinst creates: preinst
// scripts mostly clean up after older versions, and only the users and
// groups they create matter for a fresh install.
func (fx *effects) preinst(p *pkgState) {
	pre, ok := p.arch.members["preinst"]
	if !ok {
		return
	}
	cmds, _ := parseScript(string(pre), fx.shellEnv(p))
	for _, c := range cmds {
		switch path.Base(c.args[0]) {
		case "adduser", "addgroup", "useradd", "groupadd":
			fx.run(p, "preinst", c, nil)
		}
	}
}

// configure reproduces the effects of p's maintainer scripts.
func (fx *effects) configure(p *pkgState) {
	fx.preinst(p)
	if p.name == "ca-certificates" {
		fx.caPkg = p
		p.report.Skipped = append(p.report.Skipped, "postinst: debconf and update-ca-certificates reproduced by kiln (etc/ca-certificates.conf, etc/ssl/certs)")
		return
	}
	post, ok := p.arch.members["postinst"]
	if !ok {
		return
	}
	cmds, funcs := parseScript(string(post), fx.shellEnv(p))
	// The interpreter follows the script's loops, functions and command
	// substitutions, which the reader above does not; its
	// update-alternatives calls are used unless it found none where the
	// reader found some (a script that stopped early under it).
	res, ok := fx.interpret(p, string(post), "configure", "")
	static := false
	for _, c := range cmds {
		static = static || (path.Base(c.args[0]) == "update-alternatives" && !c.unresolved && !funcs["update-alternatives"])
	}
	useInterp := ok && (len(res.alts) > 0 || !static)
	for _, c := range cmds {
		if useInterp && path.Base(c.args[0]) == "update-alternatives" {
			continue
		}
		fx.run(p, "postinst", c, funcs)
	}
	if !ok {
		return
	}
	if useInterp {
		for _, a := range res.alts {
			if err := fx.alts.command(a); err != nil {
				p.warnf("postinst runs `update-alternatives %s`: %v; not reproduced", strings.Join(a, " "), err)
			}
		}
	}
	fx.created = append(fx.created, res.dirs...)
	fx.created = append(fx.created, res.files...)
}

func (fx *effects) run(p *pkgState, script string, c scriptCmd, funcs map[string]bool) {
	name := path.Base(c.args[0])
	if funcs[name] {
		return
	}
	if why, ok := skippedCommand(name, c.args); ok {
		if why != "" {
			p.report.Skipped = append(p.report.Skipped, fmt.Sprintf("%s: %s (%s)", script, c, why))
		}
		return
	}
	if c.unresolved {
		switch name {
		case "update-alternatives", "adduser", "addgroup", "useradd", "groupadd":
			p.warnf("%s runs `%s` with arguments kiln cannot evaluate; not reproduced", script, c)
			return
		}
	}
	var err error
	switch name {
	case "update-alternatives":
		err = fx.alts.command(c.args[1:])
	case "ldconfig":
		p.report.Skipped = append(p.report.Skipped, fmt.Sprintf("%s: %s (kiln writes /etc/ld.so.cache)", script, c))
	case "adduser", "addgroup", "useradd", "groupadd":
		var home *tar.Header
		home, err = fx.users.command(name, c.args[1:], fx.w.epoch.Unix())
		if home != nil {
			fx.homes = append(fx.homes, *home)
		}
	case "update-ca-certificates":
		p.report.Skipped = append(p.report.Skipped, fmt.Sprintf("%s: %s (reproduced when ca-certificates is installed)", script, c))
	default:
		p.warnf("%s runs `%s`; kiln does not run maintainer scripts and does not reproduce this command", script, c)
	}
	if err != nil {
		p.warnf("%s runs `%s`: %v; not reproduced", script, c, err)
	}
}

// writeUsers emits the users and groups scripts create, and their homes.
func (fx *effects) writeUsers() error {
	if err := fx.users.write(fx.w); err != nil {
		return err
	}
	for _, h := range fx.homes {
		if err := fx.w.generated(h, nil); err != nil {
			return err
		}
	}
	return nil
}

// writeCreated emits what postinst scripts create that the layer does not
// hold yet.
func (fx *effects) writeCreated() error {
	for _, h := range fx.created {
		p, err := fx.w.res.resolve(h.Name, h.Typeflag == tar.TypeDir)
		if err != nil {
			continue
		}
		if _, ok := fx.w.emitted[p]; ok {
			continue
		}
		if err := fx.w.generated(h, nil); err != nil {
			return err
		}
	}
	return nil
}

// write emits the reproduced effects.
func (fx *effects) write() error {
	if err := fx.alts.write(fx.w); err != nil {
		return err
	}
	if err := fx.writeUsers(); err != nil {
		return err
	}
	if fx.caPkg != nil {
		if err := writeCACertificates(fx.w, fx.parent, fx.caPkg); err != nil {
			return fmt.Errorf("reproduce update-ca-certificates: %w", err)
		}
	}
	if err := fx.writeCreated(); err != nil {
		return err
	}
	if err := fx.writeLDCache(); err != nil {
		return fmt.Errorf("write /etc/ld.so.cache: %w", err)
	}
	fx.checkLibraryDirs()
	return nil
}

// checkLibraryDirs reports directories packages add to the dynamic linker
// configuration outside the default search path.
func (fx *effects) checkLibraryDirs() {
	std := map[string]bool{}
	for _, d := range []string{"/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib"} {
		std[d] = true
		std[d+"/"+fx.multiarch] = true
	}
	dirsOf := func(b []byte) []string {
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || l[0] == '#' || strings.HasPrefix(l, "include") {
				continue
			}
			out = append(out, path.Clean(l))
		}
		return out
	}
	for p, b := range fx.parent.Files {
		if p == "etc/ld.so.conf" || strings.HasPrefix(p, "etc/ld.so.conf.d/") {
			for _, d := range dirsOf(b) {
				std[d] = true
			}
		}
	}
	var keys []string
	for p := range fx.w.keep {
		if strings.HasPrefix(p, "etc/ld.so.conf.d/") || p == "etc/ld.so.conf" {
			keys = append(keys, p)
		}
	}
	sort.Strings(keys)
	seen := map[string]bool{}
	for _, p := range keys {
		for _, d := range dirsOf(fx.w.keep[p]) {
			if std[d] || seen[d] {
				continue
			}
			seen[d] = true
			fx.w.report.LibraryDirs = append(fx.w.report.LibraryDirs, d)
			if fx.cachedDirs[d] {
				continue // its libraries are in the ld.so.cache kiln wrote
			}
			fx.w.report.Warnings = append(fx.w.report.Warnings, fmt.Sprintf("/%s adds %s to the dynamic linker path, where this layer ships no library kiln could list in /etc/ld.so.cache; libraries put there later need `ldconfig` (in commands), or set LD_LIBRARY_PATH=%s in the image environment", p, d, d))
		}
	}
}

// altDB is the update-alternatives administrative database.
type altDB struct {
	groups  map[string]*altGroup
	touched map[string]bool
}

type altSlave struct{ name, link string }

type altChoice struct {
	path   string
	prio   int
	slaves map[string]string // slave name -> path
}

type altGroup struct {
	name, link, mode string
	slaves           []altSlave
	choices          []altChoice
}

func loadAltDB(files map[string][]byte) (*altDB, error) {
	db := &altDB{groups: map[string]*altGroup{}, touched: map[string]bool{}}
	for p, b := range files {
		name, ok := strings.CutPrefix(p, "var/lib/dpkg/alternatives/")
		if !ok || name == "" || strings.Contains(name, "/") {
			continue
		}
		g, err := parseAltFile(name, string(b))
		if err != nil {
			return nil, fmt.Errorf("parse parent /%s: %w", p, err)
		}
		db.groups[name] = g
	}
	return db, nil
}

func parseAltFile(name, s string) (*altGroup, error) {
	lines := strings.Split(s, "\n")
	i := 0
	next := func() (string, bool) {
		if i >= len(lines) {
			return "", false
		}
		i++
		return lines[i-1], true
	}
	g := &altGroup{name: name}
	var ok bool
	if g.mode, ok = next(); !ok || (g.mode != "auto" && g.mode != "manual") {
		return nil, fmt.Errorf("first line must be auto or manual")
	}
	if g.link, ok = next(); !ok {
		return nil, fmt.Errorf("missing master link")
	}
	for {
		sn, ok := next()
		if !ok {
			return nil, fmt.Errorf("truncated slave list")
		}
		if sn == "" {
			break
		}
		sl, ok := next()
		if !ok {
			return nil, fmt.Errorf("truncated slave list")
		}
		g.slaves = append(g.slaves, altSlave{sn, sl})
	}
	for {
		p, ok := next()
		if !ok || p == "" {
			break
		}
		ps, _ := next()
		prio, err := strconv.Atoi(ps)
		if err != nil {
			return nil, fmt.Errorf("priority of %s: %w", p, err)
		}
		c := altChoice{path: p, prio: prio, slaves: map[string]string{}}
		for _, s := range g.slaves {
			sp, _ := next()
			if sp != "" {
				c.slaves[s.name] = sp
			}
		}
		g.choices = append(g.choices, c)
	}
	return g, nil
}

// command applies "update-alternatives <args>".
func (db *altDB) command(args []string) error {
	for len(args) > 0 && (args[0] == "--quiet" || args[0] == "--force" || args[0] == "--verbose") {
		args = args[1:]
	}
	if len(args) == 0 {
		return fmt.Errorf("no action")
	}
	switch args[0] {
	case "--install":
		if len(args) < 5 {
			return fmt.Errorf("--install needs <link> <name> <path> <priority>")
		}
		link, name, p := args[1], args[2], args[3]
		prio, err := strconv.Atoi(args[4])
		if err != nil {
			return fmt.Errorf("priority %q: %w", args[4], err)
		}
		g, ok := db.groups[name]
		if !ok {
			g = &altGroup{name: name, mode: "auto"}
			db.groups[name] = g
		}
		g.link = link
		c := altChoice{path: p, prio: prio, slaves: map[string]string{}}
		rest := args[5:]
		for len(rest) > 0 {
			if rest[0] != "--slave" || len(rest) < 4 {
				return fmt.Errorf("unexpected arguments %q (want --slave <link> <name> <path>)", strings.Join(rest, " "))
			}
			sl, sn, sp := rest[1], rest[2], rest[3]
			rest = rest[4:]
			found := false
			for i := range g.slaves {
				if g.slaves[i].name == sn {
					g.slaves[i].link = sl
					found = true
				}
			}
			if !found {
				g.slaves = append(g.slaves, altSlave{sn, sl})
			}
			c.slaves[sn] = sp
		}
		replaced := false
		for i := range g.choices {
			if g.choices[i].path == p {
				g.choices[i] = c
				replaced = true
			}
		}
		if !replaced {
			g.choices = append(g.choices, c)
		}
		db.touched[name] = true
		return nil
	case "--remove", "--remove-all":
		// A fresh install has nothing of its own to remove.
		return nil
	}
	return fmt.Errorf("action %s is not supported", args[0])
}

// best returns the choice auto mode selects: the highest priority, the
// first by path on ties.
func (g *altGroup) best() (altChoice, bool) {
	var best altChoice
	found := false
	for _, c := range g.choices {
		if !found || c.prio > best.prio {
			best, found = c, true
		}
	}
	return best, found
}

func (db *altDB) write(w *layerWriter) error {
	var names []string
	for n := range db.touched {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := db.groups[n]
		sort.Slice(g.slaves, func(i, j int) bool { return g.slaves[i].name < g.slaves[j].name })
		sort.SliceStable(g.choices, func(i, j int) bool { return g.choices[i].path < g.choices[j].path })
		var b strings.Builder
		b.WriteString(g.mode + "\n" + g.link + "\n")
		for _, s := range g.slaves {
			b.WriteString(s.name + "\n" + s.link + "\n")
		}
		b.WriteString("\n")
		for _, c := range g.choices {
			b.WriteString(c.path + "\n" + strconv.Itoa(c.prio) + "\n")
			for _, s := range g.slaves {
				b.WriteString(c.slaves[s.name] + "\n")
			}
		}
		b.WriteString("\n")
		if err := w.generated(tar.Header{Typeflag: tar.TypeReg, Name: "var/lib/dpkg/alternatives/" + n, Mode: 0o644}, []byte(b.String())); err != nil {
			return err
		}
		if g.mode != "auto" {
			w.report.Warnings = append(w.report.Warnings, fmt.Sprintf("alternative %s is in manual mode in the parent image; its links were left as they are", n))
			continue
		}
		best, ok := g.best()
		if !ok {
			continue
		}
		if err := altLink(w, g.link, n, best.path); err != nil {
			return err
		}
		for _, s := range g.slaves {
			if sp, ok := best.slaves[s.name]; ok {
				if err := altLink(w, s.link, s.name, sp); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// altLink writes link -> /etc/alternatives/name -> target.
func altLink(w *layerWriter, link, name, target string) error {
	if err := w.generated(tar.Header{Typeflag: tar.TypeSymlink, Name: "etc/alternatives/" + name, Linkname: target, Mode: 0o777}, nil); err != nil {
		return fmt.Errorf("alternative %s: %w", name, err)
	}
	l := strings.TrimPrefix(link, "/")
	if err := w.generated(tar.Header{Typeflag: tar.TypeSymlink, Name: l, Linkname: "/etc/alternatives/" + name, Mode: 0o777}, nil); err != nil {
		return fmt.Errorf("alternative %s: %w", name, err)
	}
	if t, err := w.res.resolve(strings.TrimPrefix(target, "/"), false); err == nil {
		if _, ok := w.emitted[t]; !ok {
			w.report.Warnings = append(w.report.Warnings, fmt.Sprintf("alternative %s points to %s, which this layer does not ship (fine if the parent image has it)", name, target))
		}
	}
	return nil
}
