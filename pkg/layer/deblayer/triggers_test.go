package deblayer

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// TestWriteUnpacked: with Options.Unpacked the packages are left as
// dpkg --unpack leaves them for dpkg --configure: status "install ok
// unpacked" with the conffiles' real hashes (the files are in place, so
// dpkg has no .dpkg-new to move), maintainer scripts in info/, no postinst
// effect reproduced, the preinst's system user created, interests added
// to the trigger database and the activated triggers in Unincorp.
func TestWriteUnpacked(t *testing.T) {
	parent := Parent{
		Symlinks: mergedUsr(),
		Files: map[string][]byte{
			"var/lib/dpkg/status":            []byte("Package: libc-bin\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36\n"),
			"var/lib/dpkg/triggers/File":     []byte("/usr/share/doc-base doc-base\n"),
			"var/lib/dpkg/triggers/ldconfig": []byte("libc-bin\n"),
			"var/lib/dpkg/triggers/Lock":     nil,
			"etc/passwd":                     []byte("root:x:0:0:root:/root:/bin/bash\n"),
			"etc/group":                      []byte("root:x:0:\n"),
		},
	}
	tool := testPkg{
		control: toolControl,
		members: map[string]string{
			"conffiles": "/etc/tool.conf\n",
			"preinst":   "#!/bin/sh\nset -e\nadduser --system --group --no-create-home tooluser\n",
			"postinst":  "#!/bin/sh\nset -e\nupdate-alternatives --install /usr/bin/t t /usr/bin/tool 10\n",
			"triggers":  "# comment\nactivate-noawait ldconfig\n",
		},
		data: []ent{dir("./"), dir("./etc/"), file("./etc/tool.conf", "a=1\n"), dir("./usr/"), dir("./usr/bin/"), file("./usr/bin/tool", "x"),
			dir("./lib/"), dir("./lib/mime/"), dir("./lib/mime/packages/"), file("./lib/mime/packages/tool", "m")},
	}
	mime := testPkg{
		control: "Package: shared-mime-info\nVersion: 2.2-1\nArchitecture: amd64\nDescription: mime",
		members: map[string]string{"triggers": "interest-noawait /usr/lib/mime/packages\ninterest mime-thing\nbogus-directive x\n"},
		data:    []ent{dir("./"), dir("./usr/"), dir("./usr/bin/"), file("./usr/bin/update-mime-database", "u")},
	}
	l, rep, _ := writeLayerOpts(t, parent, []Deb{tool.build(t, "tool.deb"), mime.build(t, "mime.deb")}, Options{Epoch: time.Unix(1234567890, 0), Unpacked: true})

	status := l.get(t, "var/lib/dpkg/status").body
	sum := md5.Sum([]byte("a=1\n"))
	for _, want := range []string{
		"Package: tool\nStatus: install ok unpacked\n",
		"Conffiles:\n /etc/tool.conf " + hex.EncodeToString(sum[:]) + "\n",
		"Package: shared-mime-info\nStatus: install ok unpacked\n",
		"Package: libc-bin\nStatus: install ok installed\n",
	} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	if got := l.get(t, "var/lib/dpkg/info/tool.postinst"); got.hdr.Mode != 0o755 || !strings.Contains(got.body, "update-alternatives") {
		t.Errorf("tool.postinst: mode %o, body %q", got.hdr.Mode, got.body)
	}
	for _, n := range []string{"etc/alternatives/t", "usr/bin/t", "var/lib/dpkg/alternatives/t"} {
		if _, ok := l.byName[n]; ok {
			t.Errorf("the unpacked layer reproduces the postinst's %s; dpkg --configure makes it", n)
		}
	}
	if !strings.Contains(l.get(t, "etc/passwd").body, "tooluser:") {
		t.Errorf("the preinst's system user is not in etc/passwd:\n%s", l.get(t, "etc/passwd").body)
	}
	if got, want := l.get(t, "var/lib/dpkg/triggers/File").body, "/usr/share/doc-base doc-base\n/usr/lib/mime/packages shared-mime-info/noawait\n"; got != want {
		t.Errorf("triggers/File = %q, want %q", got, want)
	}
	if got, want := l.get(t, "var/lib/dpkg/triggers/mime-thing").body, "shared-mime-info\n"; got != want {
		t.Errorf("triggers/mime-thing = %q, want %q", got, want)
	}
	if _, ok := l.byName["var/lib/dpkg/triggers/ldconfig"]; ok {
		t.Error("the layer rewrites triggers/ldconfig, which no new package is interested in")
	}
	// tool ships /lib/mime/packages/tool, which lands in /usr/lib/mime/packages: the file trigger fires.
	if got, want := l.get(t, "var/lib/dpkg/triggers/Unincorp").body, "/usr/lib/mime/packages -\nldconfig -\n"; got != want {
		t.Errorf("triggers/Unincorp = %q, want %q", got, want)
	}
	var warned bool
	for _, pr := range rep.Packages {
		for _, w := range pr.Warnings {
			warned = warned || (pr.Name == "shared-mime-info" && strings.Contains(w, "bogus-directive"))
		}
	}
	if !warned {
		t.Errorf("an unknown triggers directive gave no warning: %+v", rep.Packages)
	}
}

func TestParseTriggersAndNames(t *testing.T) {
	got := parseTriggers([]byte("interest /usr/a # trailing\n# only a comment\n\nactivate-noawait ldconfig\nbad line here\n"))
	if len(got) != 2 || got[0] != (triggerDirective{"interest", "/usr/a"}) || got[1] != (triggerDirective{"activate-noawait", "ldconfig"}) {
		t.Errorf("parseTriggers = %+v", got)
	}
	for name, want := range map[string]bool{"ldconfig": true, "/usr/share/mime": true, "": false, "a/b": false, "/usr/../etc": false, "a\tb": false} {
		if validTrigger(name) != want {
			t.Errorf("validTrigger(%q) = %v, want %v", name, !want, want)
		}
	}
}
