package deblayer

import (
	"archive/tar"
	"fmt"
	"strconv"
	"strings"
)

// Debian's range for dynamically allocated system users and groups
// (Debian Policy 9.2.2).
const (
	firstSystemID = 100
	lastSystemID  = 999
)

// userDB holds etc/passwd, etc/group, etc/shadow and etc/gshadow as
// colon-separated records.
type userDB struct {
	files   map[string][][]string // "passwd" -> records
	present map[string]bool       // file exists in the parent
	changed map[string]bool
}

// userFiles lists the account databases under etc/, in write order.
func userFiles() []string { return []string{"passwd", "group", "shadow", "gshadow"} }

func loadUserDB(files map[string][]byte) (*userDB, error) {
	db := &userDB{files: map[string][][]string{}, present: map[string]bool{}, changed: map[string]bool{}}
	for _, f := range userFiles() {
		b, ok := files["etc/"+f]
		if !ok {
			continue
		}
		db.present[f] = true
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if l == "" {
				continue
			}
			db.files[f] = append(db.files[f], strings.Split(l, ":"))
		}
	}
	return db, nil
}

func (db *userDB) find(file, name string) []string {
	for _, r := range db.files[file] {
		if r[0] == name {
			return r
		}
	}
	return nil
}

func (db *userDB) used(file string) map[int]bool {
	idx := 2
	used := map[int]bool{}
	for _, r := range db.files[file] {
		if len(r) > idx {
			if n, err := strconv.Atoi(r[idx]); err == nil {
				used[n] = true
			}
		}
	}
	return used
}

// freeID returns the lowest (adduser) or highest (useradd) free id in the
// system range.
func (db *userDB) freeID(file string, highest bool, prefer int) (int, error) {
	used := db.used(file)
	if prefer >= firstSystemID && prefer <= lastSystemID && !used[prefer] {
		return prefer, nil
	}
	if highest {
		for id := lastSystemID; id >= firstSystemID; id-- {
			if !used[id] {
				return id, nil
			}
		}
	} else {
		for id := firstSystemID; id <= lastSystemID; id++ {
			if !used[id] {
				return id, nil
			}
		}
	}
	return 0, fmt.Errorf("no free id in %d-%d in /etc/%s", firstSystemID, lastSystemID, file)
}

func (db *userDB) add(file string, rec []string) {
	db.files[file] = append(db.files[file], rec)
	db.changed[file] = true
}

func (db *userDB) addGroup(name string, gid int, days int64) {
	db.add("group", []string{name, "x", strconv.Itoa(gid), ""})
	if db.present["gshadow"] {
		db.add("gshadow", []string{name, "!", "", ""})
	}
}

func (db *userDB) gid(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	r := db.find("group", name)
	if r == nil || len(r) < 3 {
		return 0, fmt.Errorf("group %s does not exist", name)
	}
	return strconv.Atoi(r[2])
}

// command applies adduser, addgroup, useradd or groupadd with args. It
// returns a home directory to create, if any.
func (db *userDB) command(cmd string, args []string, epoch int64) (*tar.Header, error) {
	days := epoch / 86400
	opts := map[string]string{}
	var pos []string
	// Options taking a value, per command.
	valued := map[string]bool{
		"--home": true, "--shell": true, "--ingroup": true, "--gecos": true,
		"--comment": true, "--uid": true, "--gid": true, "--firstuid": true,
		"--lastuid": true, "--firstgid": true, "--lastgid": true,
		"--add-extra-groups": false, "--conf": true,
		"-d": true, "-s": true, "-g": true, "-G": true, "-c": true, "-u": true,
		"-K": true, "-k": true, "-e": true, "-f": true, "-p": true,
		"--home-dir": true, "--groups": true, "--key": true, "--password": true,
	}
	if cmd == "groupadd" {
		valued["-f"] = false // --force
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "--") {
				opts[k] = v
				continue
			}
			if valued[a] && i+1 < len(args) {
				opts[a] = args[i+1]
				i++
				continue
			}
			opts[a] = ""
			continue
		}
		pos = append(pos, a)
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := opts[k]; ok {
				return true
			}
		}
		return false
	}
	get := func(def string, keys ...string) string {
		for _, k := range keys {
			if v, ok := opts[k]; ok {
				return v
			}
		}
		return def
	}
	system := has("--system", "-r")
	if len(pos) == 0 {
		return nil, fmt.Errorf("no user or group name")
	}
	name := pos[0]

	switch cmd {
	case "addgroup", "groupadd":
		if cmd == "addgroup" && len(pos) == 2 {
			return nil, db.addMember(pos[0], pos[1])
		}
		if !system {
			return nil, fmt.Errorf("only system groups (--system) are supported")
		}
		if db.find("group", name) != nil {
			return nil, nil
		}
		prefer, _ := strconv.Atoi(get("", "--gid", "-g"))
		gid, err := db.freeID("group", cmd == "groupadd", prefer)
		if err != nil {
			return nil, err
		}
		db.addGroup(name, gid, days)
		return nil, nil
	}

	// adduser / useradd
	if cmd == "adduser" && len(pos) == 2 && !system {
		return nil, db.addMember(pos[0], pos[1])
	}
	if !system {
		return nil, fmt.Errorf("only system users (--system) are supported")
	}
	if db.find("passwd", name) != nil {
		return nil, nil
	}
	highest := cmd == "useradd"
	var gid int
	var err error
	switch {
	case has("--ingroup", "-g", "--gid"):
		gid, err = db.gid(get("", "--ingroup", "-g", "--gid"))
		if err != nil {
			return nil, err
		}
	case (cmd == "adduser" && has("--group")) || (cmd == "useradd" && !has("-N", "--no-user-group")):
		gid = -1 // a group named like the user, allocated below
	default:
		gid = 65534 // nogroup
	}
	prefer, _ := strconv.Atoi(get("", "--uid", "-u"))
	uid, err := db.freeID("passwd", highest, prefer)
	if err != nil {
		return nil, err
	}
	if gid == -1 {
		if r := db.find("group", name); r != nil {
			gid, _ = strconv.Atoi(r[2])
		} else {
			// Keep the gid equal to the uid when it is free.
			if gid, err = db.freeID("group", highest, uid); err != nil {
				return nil, err
			}
			db.addGroup(name, gid, days)
		}
	}
	home := get("/nonexistent", "--home", "-d", "--home-dir")
	shell := get("/usr/sbin/nologin", "--shell", "-s")
	if cmd == "useradd" && !has("-s", "--shell") {
		shell = "/bin/sh"
	}
	gecos := get("", "--gecos", "--comment", "-c")
	db.add("passwd", []string{name, "x", strconv.Itoa(uid), strconv.Itoa(gid), gecos, home, shell})
	if db.present["shadow"] {
		db.add("shadow", []string{name, "!", strconv.FormatInt(days, 10), "0", "99999", "7", "", "", ""})
	}
	create := cmd == "adduser" && !has("--no-create-home") || cmd == "useradd" && has("-m", "--create-home")
	if create && home != "/nonexistent" && home != "/" {
		return &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(home, "/"), Mode: 0o755, Uid: uid, Gid: gid}, nil
	}
	return nil, nil
}

// addMember adds user to group's member list.
func (db *userDB) addMember(user, group string) error {
	for _, f := range []string{"group", "gshadow"} {
		r := db.find(f, group)
		if r == nil {
			if f == "group" {
				return fmt.Errorf("group %s does not exist", group)
			}
			continue
		}
		last := len(r) - 1
		members := []string{}
		if r[last] != "" {
			members = strings.Split(r[last], ",")
		}
		for _, m := range members {
			if m == user {
				return nil
			}
		}
		r[last] = strings.Join(append(members, user), ",")
		db.changed[f] = true
	}
	return nil
}

func (db *userDB) write(w *layerWriter) error {
	shadowGID := 0
	if r := db.find("group", "shadow"); r != nil && len(r) > 2 {
		shadowGID, _ = strconv.Atoi(r[2])
	}
	for _, f := range userFiles() {
		if !db.changed[f] {
			continue
		}
		var b strings.Builder
		for _, r := range db.files[f] {
			b.WriteString(strings.Join(r, ":") + "\n")
		}
		h := tar.Header{Typeflag: tar.TypeReg, Name: "etc/" + f, Mode: 0o644}
		if f == "shadow" || f == "gshadow" {
			h.Mode, h.Gid, h.Uname, h.Gname = 0o640, shadowGID, "root", "shadow"
		}
		if err := w.generated(h, []byte(b.String())); err != nil {
			return err
		}
	}
	return nil
}
