package deblayer

import (
	"archive/tar"
	"fmt"
	"path"
	"sort"
	"strings"
)

// triggersDir is dpkg's trigger state directory, root-relative.
const triggersDir = "var/lib/dpkg/triggers/"

// triggerDB is dpkg's record of trigger interests: File holds the file
// triggers ("<path> <package>[/noawait]" lines), and one file per named
// trigger lists its interested packages.
type triggerDB struct {
	file    [][2]string         // path, package[/noawait]
	named   map[string][]string // trigger -> packages[/noawait]
	touched map[string]bool     // trigger files to write ("File" or a name)
}

// loadTriggerDB reads the parent's var/lib/dpkg/triggers.
func loadTriggerDB(files map[string][]byte) *triggerDB {
	db := &triggerDB{named: map[string][]string{}, touched: map[string]bool{}}
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		name, ok := strings.CutPrefix(p, triggersDir)
		if !ok || name == "" || strings.Contains(name, "/") {
			continue
		}
		switch name {
		case "Unincorp", "Lock":
			continue
		case "File":
			for _, l := range strings.Split(string(files[p]), "\n") {
				if f := strings.Fields(l); len(f) == 2 {
					db.file = append(db.file, [2]string{f[0], f[1]})
				}
			}
		default:
			for _, l := range strings.Split(string(files[p]), "\n") {
				if l = strings.TrimSpace(l); l != "" {
					db.named[name] = append(db.named[name], l)
				}
			}
		}
	}
	return db
}

// triggerDirective is one line of a package's triggers control file.
type triggerDirective struct{ kind, name string }

// parseTriggers parses a triggers control file (deb-triggers(5)).
func parseTriggers(b []byte) []triggerDirective {
	var out []triggerDirective
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		out = append(out, triggerDirective{f[0], f[1]})
	}
	return out
}

// validTrigger reports whether name can be a trigger name or file trigger
// path written into dpkg's database: printable, no spaces, no "..".
func validTrigger(name string) bool {
	if name == "" || strings.Contains(name, "..") {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	if strings.HasPrefix(name, "/") {
		return true
	}
	return !strings.Contains(name, "/")
}

// writeTriggers does to the trigger state what `dpkg --unpack` of pkgs
// does: the packages' interests are added to var/lib/dpkg/triggers (File
// for paths, a file per named trigger), and the triggers their unpacking
// activates are written to triggers/Unincorp, which the next dpkg run
// incorporates (marking the interested packages triggers-pending): every
// file trigger with a file of a new package at or under its path, and
// every trigger a new package activates in its triggers control file.
func writeTriggers(w *layerWriter, parent Parent, pkgs []*pkgState) error {
	db := loadTriggerDB(parent.Files)
	activated := map[string]bool{}
	for _, p := range pkgs {
		for _, d := range parseTriggers(p.arch.members["triggers"]) {
			if !validTrigger(d.name) {
				p.warnf("triggers control file names %q, which is not a trigger name; ignored", d.name)
				continue
			}
			who := p.infoName()
			switch d.kind {
			case "interest", "interest-await", "interest-noawait":
				if d.kind == "interest-noawait" {
					who += "/noawait"
				}
				if strings.HasPrefix(d.name, "/") {
					db.file = append(db.file, [2]string{d.name, who})
					db.touched["File"] = true
				} else {
					db.named[d.name] = append(db.named[d.name], who)
					db.touched[d.name] = true
				}
			case "activate", "activate-await", "activate-noawait":
				activated[d.name] = true
			default:
				p.warnf("triggers control file has directive %q, which kiln does not know; ignored", d.kind)
			}
		}
	}
	// File triggers: dpkg activates one for each file unpacked at or under
	// its path, matched by the path as shipped (and, on a merged-/usr
	// parent, as it lands).
	for _, ft := range db.file {
		if activated[ft[0]] {
			continue
		}
		for _, p := range pkgs {
			if pkgTouches(w, p, ft[0]) {
				activated[ft[0]] = true
				break
			}
		}
	}
	var names []string
	for n := range db.touched {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var b strings.Builder
		if n == "File" {
			for _, ft := range db.file {
				fmt.Fprintf(&b, "%s %s\n", ft[0], ft[1])
			}
		} else {
			for _, who := range db.named[n] {
				b.WriteString(who + "\n")
			}
		}
		if err := w.generated(tar.Header{Typeflag: tar.TypeReg, Name: triggersDir + n, Mode: 0o644}, []byte(b.String())); err != nil {
			return err
		}
	}
	var acts []string
	for n := range activated {
		acts = append(acts, n)
	}
	sort.Strings(acts)
	var b strings.Builder
	for _, n := range acts {
		b.WriteString(n + " -\n") // "-": activated without an awaiting package
	}
	if len(acts) == 0 {
		return nil
	}
	return w.generated(tar.Header{Typeflag: tar.TypeReg, Name: triggersDir + "Unincorp", Mode: 0o644}, []byte(b.String()))
}

// pkgTouches reports whether p ships a file at or under dir (a "/"-rooted
// path), as shipped or as it lands after the parent's symlinks.
func pkgTouches(w *layerWriter, p *pkgState, dir string) bool {
	dir = path.Clean(dir)
	under := func(f string) bool { return f == dir || strings.HasPrefix(f, dir+"/") }
	for _, f := range p.list {
		if f == "/." {
			continue
		}
		if under(f) {
			return true
		}
		if r, err := w.res.resolve(strings.TrimPrefix(f, "/"), false); err == nil && under("/"+r) {
			return true
		}
	}
	return false
}
