// Package tarheader holds the one convention kiln uses for the tar header
// of every layer entry it writes (the code layer, wheels, .debs and the
// sandbox's diff), so that a layer's bytes depend on its content alone.
package tarheader

import (
	"archive/tar"
	"strings"
	"time"
)

// xattrPrefix starts the PAX records that hold extended attributes.
const xattrPrefix = "SCHILY.xattr."

// Normalize rewrites h, in place, to kiln's convention and returns it:
//   - PAX format (Go adds a PAX record only where a field does not fit
//     USTAR, such as a long name);
//   - a directory's name ends in "/", no other name does;
//   - the mode keeps its permission, setuid, setgid and sticky bits only;
//   - the modification time is mtime in whole seconds, with no access or
//     change time;
//   - owners are numeric (Uid, Gid as given); user and group names are
//     dropped, so a layer never depends on the names on the build host;
//   - of the PAX records only extended attributes (SCHILY.xattr.*) are kept.
//
// The caller sets the type, name, size, link target, owners and device
// numbers; a change to this convention changes layer bytes, so it needs
// a bump of layer.FormatVersion.
func Normalize(h *tar.Header, mtime time.Time) *tar.Header {
	h.Name = strings.TrimSuffix(h.Name, "/")
	if h.Typeflag == tar.TypeDir {
		h.Name += "/"
	}
	h.Mode &= 0o7777
	h.ModTime = mtime.Truncate(time.Second)
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	h.Uname, h.Gname = "", ""
	h.Format = tar.FormatPAX
	var keep map[string]string
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, xattrPrefix) {
			if keep == nil {
				keep = map[string]string{}
			}
			keep[k] = v
		}
	}
	h.PAXRecords = keep
	return h
}

// New returns a normalized header for an entry of type typ named name
// with mode mode, owned by root, modified at mtime.
func New(typ byte, name string, mode int64, mtime time.Time) *tar.Header {
	return Normalize(&tar.Header{Typeflag: typ, Name: name, Mode: mode}, mtime)
}
