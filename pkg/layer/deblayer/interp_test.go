package deblayer

import (
	"strings"
	"testing"
)

// xzPostinst is xz-utils' postinst: its slaves come from a function's
// output in a command substitution with a loop.
const xzPostinst = `#!/bin/sh
set -e

slave () {
	dir=$1 filename=$2 target=$3
	echo "--slave $dir/$filename $filename $dir/$target"
}

update-alternatives --install /usr/bin/lzma lzma /usr/bin/xz 20 $(
	slave /usr/share/man/man1 lzma.1.gz xz.1.gz
	slave /usr/bin unlzma unxz
	for util in cat more
	do
		slave /usr/bin lz$util xz$util
	done
)
`

// jrePostinst is the shape of openjdk's postinst: update-alternatives in
// a loop over a variable, a slave only when the man page exists, the
// architecture from dpkg, directories it creates.
const jrePostinst = `#!/bin/sh
set -e
multiarch=x86_64-linux-gnu
priority=1711
basedir=/usr/lib/jvm/java-17-openjdk-amd64
mandir=$basedir/man
jre_tools='java keytool'
case "$1" in
configure)
    if ! mountpoint -q /proc; then
	echo >&2 "the java command requires a mounted proc fs (/proc)."
	exit 1
    fi
    [ -d /etc/.java ] || mkdir -m 755 /etc/.java
    [ -d /etc/.java/.systemPrefs ] || mkdir -m 755 /etc/.java/.systemPrefs
    if [ ! -f /etc/.java/.systemPrefs/.system.lock ]; then
	touch /etc/.java/.systemPrefs/.system.lock
    fi
    if [ -z "$2" ]; then
	update_alternatives=y
    fi
    if [ "$update_alternatives" = y ]; then
    if [ -n "$multiarch" ] && [ "$DPKG_MAINTSCRIPT_ARCH" != $(dpkg --print-architecture) ]; then
	priority=$(expr $priority - 1)
    fi
    for i in $jre_tools; do
	unset slave1 || true
        if [ -e $mandir/man1/$i.1.gz ]; then
	    slave1="--slave /usr/share/man/man1/$i.1.gz $i.1.gz $mandir/man1/$i.1.gz"
	fi
        update-alternatives --install /usr/bin/$i $i $basedir/bin/$i $priority $slave1
    done
    fi
    ;;
esac
exit 0
`

// TestInterpretedAlternatives: emulating, kiln follows update-alternatives
// through functions, loops and command substitutions, with slaves, and
// creates the directories and files postinsts make.
func TestInterpretedAlternatives(t *testing.T) {
	xz := testPkg{
		control: "Package: xz-utils\nVersion: 5.4.1-1\nArchitecture: amd64\nDescription: xz",
		members: map[string]string{"postinst": xzPostinst},
		data:    []ent{dir("./"), dir("./usr/"), dir("./usr/bin/"), file("./usr/bin/xz", "x"), file("./usr/bin/unxz", "x"), file("./usr/bin/xzcat", "x"), file("./usr/bin/xzmore", "x")},
	}
	const jvm = "./usr/lib/jvm/java-17-openjdk-amd64/"
	jre := testPkg{
		control: "Package: openjdk-17-jre-headless\nVersion: 17.0.21\nArchitecture: amd64\nDescription: jre",
		members: map[string]string{"postinst": jrePostinst},
		data: []ent{dir("./"), dir("./usr/"), dir("./usr/lib/"), dir("./usr/lib/jvm/"), dir(jvm), dir(jvm + "bin/"),
			file(jvm+"bin/java", "j"), file(jvm+"bin/keytool", "k"), dir(jvm + "man/"), dir(jvm + "man/man1/"), file(jvm+"man/man1/java.1.gz", "m")},
	}
	l, rep, _ := writeLayer(t, Parent{Symlinks: mergedUsr()}, []Deb{xz.build(t, "xz.deb"), jre.build(t, "jre.deb")})
	for link, target := range map[string]string{
		"usr/bin/lzma":                 "/etc/alternatives/lzma",
		"etc/alternatives/lzma":        "/usr/bin/xz",
		"etc/alternatives/unlzma":      "/usr/bin/unxz",
		"etc/alternatives/lzcat":       "/usr/bin/xzcat",
		"etc/alternatives/lzmore":      "/usr/bin/xzmore",
		"etc/alternatives/lzma.1.gz":   "/usr/share/man/man1/xz.1.gz",
		"usr/bin/java":                 "/etc/alternatives/java",
		"etc/alternatives/java":        "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
		"etc/alternatives/keytool":     "/usr/lib/jvm/java-17-openjdk-amd64/bin/keytool",
		"etc/alternatives/java.1.gz":   "/usr/lib/jvm/java-17-openjdk-amd64/man/man1/java.1.gz",
		"usr/share/man/man1/java.1.gz": "/etc/alternatives/java.1.gz",
	} {
		if got := l.get(t, link).hdr.Linkname; got != target {
			t.Errorf("%s -> %s, want %s", link, got, target)
		}
	}
	if _, ok := l.byName["etc/alternatives/keytool.1.gz"]; ok {
		t.Error("keytool got a man page slave though its man page is not shipped")
	}
	alt := l.get(t, "var/lib/dpkg/alternatives/java").body
	if !strings.Contains(alt, "/usr/lib/jvm/java-17-openjdk-amd64/bin/java\n1711\n") {
		t.Errorf("alternatives/java records\n%s\nwant priority 1711 (same architecture: not lowered)", alt)
	}
	if e := l.get(t, "etc/.java/.systemPrefs/"); e.hdr.Mode != 0o755 || e.hdr.Typeflag != '5' {
		t.Errorf("etc/.java/.systemPrefs: %+v", e.hdr)
	}
	l.get(t, "etc/.java/.systemPrefs/.system.lock")
	for _, pr := range rep.Packages {
		for _, w := range pr.Warnings {
			if strings.Contains(w, "update-alternatives") {
				t.Errorf("%s: %s", pr.Name, w)
			}
		}
	}
}

// TestInterpretBounded: a postinst that loops for ever or grows its
// variables without bound is stopped, with a warning, and what it did is
// not used (it would depend on the machine's speed): the script is read
// as the reader without loops reads it.
func TestInterpretBounded(t *testing.T) {
	for name, script := range map[string]string{
		"memory": "#!/bin/sh\na=x\nwhile :; do a=$a$a; done\n",
		// No command runs in these loops: only assignments.
		"assignments":       "#!/bin/sh\na=x\nwhile a=$a$a; do b=1; done\n",
		"until assignments": "#!/bin/sh\na=x\nuntil ! a=$a$a; do :; done\n",
		"for assignments":   "#!/bin/sh\na=x\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35; do a=$a$a; done\n",
		"recursion":         "#!/bin/sh\na=x\nf() { a=$a$a; f; }\nf\n",
		"time":              "#!/bin/sh\nwhile :; do update-alternatives --install /usr/bin/x x /usr/bin/y 1; done\n",
	} {
		t.Run(name, func(t *testing.T) {
			pkg := testPkg{
				control: "Package: hog\nVersion: 1\nArchitecture: amd64\nDescription: hog",
				members: map[string]string{"postinst": script},
				data:    []ent{dir("./"), dir("./usr/"), dir("./usr/bin/"), file("./usr/bin/y", "y")},
			}
			l, rep, _ := writeLayer(t, Parent{}, []Deb{pkg.build(t, "hog.deb")})
			if alt, ok := l.byName["var/lib/dpkg/alternatives/x"]; name == "time" && (!ok || strings.Count(alt.body, "/usr/bin/y\n") != 1) {
				t.Errorf("a script that ran out of time: alternatives/x is %q, want the one call read without following the loop", alt.body)
			}
			warnings := strings.Join(rep.Packages[0].Warnings, "\n")
			if len(rep.Packages[0].Warnings) == 0 || !strings.Contains(warnings, "kiln followed it") {
				t.Errorf("no warning: %q", rep.Packages[0].Warnings)
			}
			// A script that grows its variables is stopped by the memory
			// bound, not by running out of time (by then it would hold
			// gigabytes).
			if name != "time" && !strings.Contains(warnings, "hold more than") {
				t.Errorf("a script growing its variables was not stopped by the memory bound: %q", warnings)
			}
		})
	}
}
