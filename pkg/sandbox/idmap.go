package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// IDRange maps Size consecutive ids starting at Inside (in the sandbox) to
// ids starting at Host.
type IDRange struct {
	Inside, Host, Size int
}

// IDMap maps the sandbox's user and group ids to the host's.
type IDMap struct {
	UIDs, GIDs []IDRange
}

// IsZero reports whether m maps nothing (and so means "choose").
func (m IDMap) IsZero() bool { return len(m.UIDs) == 0 && len(m.GIDs) == 0 }

// single reports whether m maps only one uid and one gid, which the caller
// can write itself; larger maps need newuidmap and newgidmap.
func (m IDMap) single() bool {
	return len(m.UIDs) == 1 && m.UIDs[0].Size == 1 && len(m.GIDs) == 1 && m.GIDs[0].Size == 1
}

// ToHost returns the host uid and gid of the sandbox's uid and gid, and
// whether both are mapped.
func (m IDMap) ToHost(uid, gid int) (hostUID, hostGID int, ok bool) {
	hu, ok1 := translate(m.UIDs, uid, true)
	hg, ok2 := translate(m.GIDs, gid, true)
	return hu, hg, ok1 && ok2
}

// ToInside returns the sandbox's uid and gid for host ids, and whether
// both are mapped.
func (m IDMap) ToInside(hostUID, hostGID int) (uid, gid int, ok bool) {
	u, ok1 := translate(m.UIDs, hostUID, false)
	g, ok2 := translate(m.GIDs, hostGID, false)
	return u, g, ok1 && ok2
}

func translate(rs []IDRange, id int, toHost bool) (int, bool) {
	for _, r := range rs {
		from, to := r.Host, r.Inside
		if toHost {
			from, to = r.Inside, r.Host
		}
		if id >= from && id < from+r.Size {
			return to + id - from, true
		}
	}
	return 0, false
}

// String formats m as newuidmap's arguments would list it.
func (m IDMap) String() string {
	f := func(rs []IDRange) string {
		var parts []string
		for _, r := range rs {
			parts = append(parts, fmt.Sprintf("%d:%d:%d", r.Inside, r.Host, r.Size))
		}
		return strings.Join(parts, ",")
	}
	return "uid " + f(m.UIDs) + " gid " + f(m.GIDs)
}

// SingleIDMap maps uid and gid 0 inside to the caller's uid and gid, and
// nothing else: chown fails inside.
func SingleIDMap() IDMap {
	return IDMap{
		UIDs: []IDRange{{0, os.Getuid(), 1}},
		GIDs: []IDRange{{0, os.Getgid(), 1}},
	}
}

// The files HostIDMap reads.
const (
	subuidFile = "/etc/subuid"
	subgidFile = "/etc/subgid"
)

// HostIDMap chooses the id map for the calling user: uid 0 inside is the
// caller, and ids 1 and up are the caller's first range in /etc/subuid and
// /etc/subgid (looked up by user name or uid) when both files have one and
// newuidmap and newgidmap are installed. Otherwise it returns SingleIDMap
// and a warning naming the fix.
func HostIDMap() (IDMap, string) {
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	sub, errU := findRange(subuidFile, name, uid)
	subg, errG := findRange(subgidFile, name, uid)
	_, errNU := exec.LookPath("newuidmap")
	_, errNG := exec.LookPath("newgidmap")
	var missing []string
	if errU != nil {
		missing = append(missing, errU.Error())
	}
	if errG != nil {
		missing = append(missing, errG.Error())
	}
	if errNU != nil || errNG != nil {
		missing = append(missing, "newuidmap or newgidmap is not installed (Debian and Ubuntu: apt-get install uidmap)")
	}
	if len(missing) > 0 {
		warn := fmt.Sprintf("sandbox: only uid 0 is mapped (to uid %d), so chown fails in commands (apt, dpkg and useradd need it): %s; "+
			"fix: give user %s a range, e.g. `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s` as root, and install uidmap",
			uid, strings.Join(missing, "; "), name, name)
		return SingleIDMap(), warn
	}
	return IDMap{
		UIDs: []IDRange{{0, uid, 1}, {1, sub.Host, sub.Size}},
		GIDs: []IDRange{{0, gid, 1}, {1, subg.Host, subg.Size}},
	}, ""
}

// findRange returns the first range of file for user name or uid.
func findRange(file, name string, uid int) (IDRange, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return IDRange{}, fmt.Errorf("%s does not exist", file)
	}
	if err != nil {
		return IDRange{}, err
	}
	defer f.Close()
	r, ok, err := parseSubIDs(f, name, uid)
	if err != nil {
		return IDRange{}, fmt.Errorf("read %s: %w", file, err)
	}
	if !ok {
		return IDRange{}, fmt.Errorf("%s has no range for %s", file, name)
	}
	return r, nil
}

// parseSubIDs scans lines "name-or-uid:start:count" for the first entry of
// name or uid with a positive count.
func parseSubIDs(r io.Reader, name string, uid int) (IDRange, bool, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != name && f[0] != strconv.Itoa(uid)) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || start < 0 || count <= 0 {
			continue
		}
		return IDRange{Inside: 1, Host: start, Size: count}, true, nil
	}
	return IDRange{}, false, sc.Err()
}
