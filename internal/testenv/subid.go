package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SubIDFiles are the files that give users subordinate id ranges.
var SubIDFiles = [...]string{"/etc/subuid", "/etc/subgid"}

// SetSubIDRange rewrites /etc/subuid and /etc/subgid without user's lines,
// plus "user:start:size" in each when size > 0 (size 0 only removes them).
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
			if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
				return fmt.Errorf("set %s's range in %s: %w", user, file, err)
			}
		}
		return nil
	})
}
