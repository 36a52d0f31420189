package lock

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// checkPins refuses a lock whose digests and hashes are not what kiln
// writes, naming the lock file, the package and the fix: a tampered or
// hand-edited hash is reported when the lock is read, not later as a
// download that does not match.
func checkPins(path string, l *Lock) error {
	if d, ok := strings.CutPrefix(l.Parent.Digest, "sha256:"); !ok || !validSHA256(d) {
		return fmt.Errorf("%s: parent: digest %q is not a valid sha256 digest (sha256: and 64 hex digits); regenerate the lock with kiln lock", path, l.Parent.Digest)
	}
	for _, d := range l.Debs {
		if d.SHA256 != "" && !validSHA256(d.SHA256) {
			return fmt.Errorf("%s: %s: sha256 %q is not a valid sha256 (64 lower-case hex digits); regenerate the lock with kiln lock", path, d.Name, d.SHA256)
		}
		if d.Size < 0 {
			return fmt.Errorf("%s: %s: size %d is negative; regenerate the lock with kiln lock", path, d.Name, d.Size)
		}
	}
	for _, w := range l.Wheels {
		if w.SHA256 != "" && !validSHA256(w.SHA256) {
			return fmt.Errorf("%s: %s: sha256 %q is not a valid sha256 (64 lower-case hex digits); regenerate the lock with kiln lock", path, firstNonEmpty(w.Filename, w.Name), w.SHA256)
		}
		if w.Size < 0 {
			return fmt.Errorf("%s: %s: size %d is negative; regenerate the lock with kiln lock", path, firstNonEmpty(w.Filename, w.Name), w.Size)
		}
	}
	return nil
}

// validSHA256 reports whether s is a SHA-256 as kiln writes it: 64
// lower-case hex digits.
func validSHA256(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
