package rootfs

import (
	"math"
	"path"
	"strings"
)

// All is a Select result that keeps a whole file.
const All int64 = math.MaxInt64

// Select decides how much of a regular file's content an FS keeps: it is
// given the file's root-relative path ("etc/passwd") and size and returns
// how many leading bytes to keep, 0 for none and All (or size) for all.
// It may be asked about every path a file is reachable by through
// symlinks, and the most it returns for any of them is kept.
type Select func(name string, size int64) int64

// HeadSize is how much of a Python executable DefaultSelect keeps: enough
// for its ELF header and program headers.
const HeadSize = 4 << 10

// maxDefaultFile bounds the files DefaultSelect keeps whole.
const maxDefaultFile = 16 << 20

// DefaultSelect keeps what installing Debian packages and detecting the
// target Python need: everything under etc/ (apt sources, keyrings,
// users and groups, os-release, ld.so.conf, CA configuration), the dpkg
// database (var/lib/dpkg/status, status.d/, alternatives/ and triggers/), keyrings
// under usr/share/keyrings/, CA certificates under usr/share/ca-certificates/
// and usr/local/share/ca-certificates/, usr/lib/os-release, Alpine's
// lib/apk/db/installed, Python's _sysconfigdata_*.py under usr/lib/python3*/
// and usr/local/lib/python3*/, and the first HeadSize bytes of python3*
// executables in usr/bin/ and usr/local/bin/. Files over 16 MiB are not
// kept.
func DefaultSelect(name string, size int64) int64 {
	if size > maxDefaultFile {
		return 0
	}
	for _, p := range []string{
		"etc/",
		"var/lib/dpkg/alternatives/",
		"var/lib/dpkg/status.d/",
		"var/lib/dpkg/triggers/",
		"usr/share/keyrings/",
		"usr/share/ca-certificates/",
		"usr/local/share/ca-certificates/",
	} {
		if strings.HasPrefix(name, p) {
			return All
		}
	}
	switch name {
	case "var/lib/dpkg/status", "usr/lib/os-release", "lib/apk/db/installed":
		return All
	}
	for _, pat := range []string{
		"usr/lib/python3*/_sysconfigdata_*.py",
		"usr/local/lib/python3*/_sysconfigdata_*.py",
	} {
		if ok, _ := path.Match(pat, name); ok {
			return All
		}
	}
	for _, pat := range []string{"usr/bin/python3*", "usr/local/bin/python3*"} {
		if ok, _ := path.Match(pat, name); ok {
			return HeadSize
		}
	}
	return 0
}
