package sandbox

import (
	"os"
	"path/filepath"
	"strings"
)

// LowerExists returns a DiffOptions.LowerExists for layer directories in
// overlayfs's format (bottom first), resolving paths as the overlay does:
// the topmost layer with an entry decides, a whiteout (character device
// 0:0) hides the path, and a non-directory or an opaque directory
// (user.overlay.opaque=y) on the way hides the layers below it.
func LowerExists(lowers []string) func(path string) bool {
	return func(p string) bool {
		parts := strings.Split(strings.Trim(p, "/"), "/")
		for i := len(lowers) - 1; i >= 0; i-- {
			cur := lowers[i]
			for j, part := range parts {
				cur = filepath.Join(cur, part)
				fi, err := os.Lstat(cur)
				if err != nil {
					break // absent here: look below
				}
				if isWhiteout(fi) {
					return false
				}
				if j == len(parts)-1 {
					return true
				}
				if !fi.IsDir() {
					return false
				}
				if isOpaque(cur) {
					// Layers below are hidden under cur: the rest must be here.
					for _, rest := range parts[j+1:] {
						cur = filepath.Join(cur, rest)
						fi, err := os.Lstat(cur)
						if err != nil || isWhiteout(fi) {
							return false
						}
					}
					return true
				}
			}
		}
		return false
	}
}
