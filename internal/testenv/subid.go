package testenv

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/pkg/atomicfile"
)

// SubIDFiles are the files that give users subordinate id ranges.
var SubIDFiles = [...]string{"/etc/subuid", "/etc/subgid"}

// SetSubIDRange replaces /etc/subuid and /etc/subgid, each atomically,
// with copies without user's lines plus "user:start:size" in each when
// size > 0 (size 0 only removes them).
// Test packages run in parallel and each edits its own user's lines, so
// every read-modify-write holds a lock that all test processes share:
// without it one package's rewrite could drop another's line.
func SetSubIDRange(user string, start, size int) error {
	lock := filepath.Join(os.TempDir(), "kiln-test-subid.lock")
	return withFileLock(lock, func() error {
		for _, file := range SubIDFiles {
			b, err := os.ReadFile(file)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			var keep []string
			for _, l := range strings.Split(string(b), "\n") {
				if l != "" && !strings.HasPrefix(l, user+":") {
					keep = append(keep, l)
				}
			}
			if size > 0 {
				keep = append(keep, fmt.Sprintf("%s:%d:%d", user, start, size))
			}
			out := strings.Join(keep, "\n")
			if out != "" {
				out += "\n"
			}
			// Replaced, not rewritten in place: newuidmap in another test
			// process may read the file at any moment, and a truncated
			// file would refuse its range.
			if err := atomicfile.Write(file, atomicfile.Options{}, func(w io.Writer) error {
				_, err := io.WriteString(w, out)
				return err
			}); err != nil {
				return fmt.Errorf("set %s's range in %s: %w", user, file, err)
			}
		}
		return nil
	})
}

// Account is a local user that tests run programs as.
type Account struct {
	Name     string
	UID, GID int
}

// Nobody is the account RunAsNobody runs as by default: nobody, with no
// subordinate id range.
func Nobody() Account { return Account{Name: "nobody", UID: NobodyUID, GID: NobodyGID} }

// RangeAccount returns the system user name, creating it (with its own
// group and no home) and giving it the subordinate id range start:size in
// /etc/subuid and /etc/subgid, as an administrator does for rootless
// builds. The user and its lines are removed when the test ends; each test
// uses a name of its own. It needs root and useradd.
func RangeAccount(t testing.TB, name string, start, size int) Account {
	t.Helper()
	RequireRoot(t)
	Require(t, "useradd", "userdel", "newuidmap", "newgidmap")
	if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd %s: %v: %s", name, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	must(t, SetSubIDRange(name, start, size))
	t.Cleanup(func() { SetSubIDRange(name, 0, 0) })
	u, err := user.Lookup(name)
	must(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return Account{Name: name, UID: uid, GID: gid}
}
