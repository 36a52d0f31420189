//go:build linux

package sandbox

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/pkg/layer/tarheader"
)

// diffConfig is what WriteDiff sends its reader.
type diffConfig struct{ Upper string }

// removeConfig is what RemoveAll sends its child.
type removeConfig struct{ Path string }

// xattr names in the PAX records of the reader's stream.
const (
	paxXattr    = "SCHILY.xattr."
	opaqueXattr = "user.overlay.opaque"
)

// WriteDiff writes the changes the sandbox left in upper to tw as OCI
// layer entries (the caller closes tw): sorted by path, in PAX format, with
// numeric owners as the command saw them, modification times clamped to
// opts.Epoch, only the security.capability and user.* extended attributes
// (not overlayfs's own user.overlay.*), overlayfs whiteouts as .wh.NAME
// entries and opaque directories with a .wh..wh..opq entry, both only for
// paths that exist in the lower layers. Nothing is written for /proc, /dev,
// /tmp, /etc/resolv.conf and /etc/hosts. A name the command created that
// starts with .wh. cannot be stored in a layer and fails.
//
// The upper directory is read by a child in a user namespace with
// opts.IDs, which can read files whatever their owners and modes.
func WriteDiff(ctx context.Context, tw *tar.Writer, upper string, opts DiffOptions) error {
	if opts.IDs.IsZero() {
		return errors.New("sandbox: WriteDiff needs the id map the command ran with (Result.IDs)")
	}
	abs, err := filepath.Abs(upper)
	if err != nil {
		return err
	}
	epoch := opts.Epoch
	if epoch.IsZero() {
		epoch = time.Unix(0, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	var stderr bytes.Buffer
	runtime.LockOSThread() // see Run
	defer runtime.UnlockOSThread()
	cmd, err := spawn(ctx, spawnOpts{role: roleDiff, ids: opts.IDs, payload: diffConfig{Upper: abs}, stdout: pw, stderr: &stderr})
	pw.Close()
	if err != nil {
		return err
	}
	copyErr := convertDiff(ctx, tw, tar.NewReader(pr), opts.LowerExists, epoch)
	if copyErr != nil {
		cancel()
	}
	waitErr := cmd.Wait()
	if msg := strings.TrimSpace(stderr.String()); waitErr != nil && msg != "" {
		return fmt.Errorf("sandbox: read %s: %s", upper, msg)
	}
	if copyErr != nil {
		return fmt.Errorf("sandbox: write the diff of %s: %w", upper, copyErr)
	}
	if waitErr != nil {
		return fmt.Errorf("sandbox: read %s: %w", upper, waitErr)
	}
	return nil
}

// convertDiff turns the reader's raw stream into layer entries.
func convertDiff(ctx context.Context, tw *tar.Writer, tr *tar.Reader, lowerExists func(string) bool, epoch time.Time) error {
	exists := func(p string) bool { return lowerExists == nil || lowerExists(p) }
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(h.Name, "/")
		mtime := h.ModTime
		if mtime.After(epoch) {
			mtime = epoch
		}
		if h.Typeflag == tar.TypeChar && h.Devmajor == 0 && h.Devminor == 0 {
			if !exists(name) {
				continue
			}
			dir, base := path.Split(name)
			if err := tw.WriteHeader(tarheader.New(tar.TypeReg, dir+".wh."+base, 0, mtime)); err != nil {
				return err
			}
			continue
		}
		out := &tar.Header{
			Name: h.Name, Typeflag: h.Typeflag, Linkname: h.Linkname, Size: h.Size,
			Mode: h.Mode, Uid: h.Uid, Gid: h.Gid,
			Devmajor: h.Devmajor, Devminor: h.Devminor,
		}
		opaque := false
		for k, v := range h.PAXRecords {
			x, ok := strings.CutPrefix(k, paxXattr)
			if !ok {
				continue
			}
			if x == opaqueXattr {
				opaque = v == "y" && h.Typeflag == tar.TypeDir
				continue
			}
			if keepXattr(x) {
				if out.PAXRecords == nil {
					out.PAXRecords = map[string]string{}
				}
				out.PAXRecords[k] = v
			}
		}
		if err := tw.WriteHeader(tarheader.Normalize(out, mtime)); err != nil {
			return fmt.Errorf("/%s: %w", name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return fmt.Errorf("/%s: %w", name, err)
			}
		}
		if opaque && exists(name) {
			if err := tw.WriteHeader(tarheader.New(tar.TypeReg, name+"/.wh..wh..opq", 0, mtime)); err != nil {
				return err
			}
		}
	}
}

// keepXattr reports whether a layer keeps the extended attribute x.
func keepXattr(x string) bool {
	return x == "security.capability" || (strings.HasPrefix(x, "user.") && !strings.HasPrefix(x, "user.overlay."))
}

// diffMain is the reader: it walks upper inside the user namespace and
// writes a raw tar stream to w, whiteouts as character devices 0:0, opaque
// markers as xattrs, owners as the namespace sees them.
func diffMain(cfg diffConfig, w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	if err := walkUpper(tw, cfg.Upper, "", links); err != nil {
		return err
	}
	return tw.Close()
}

func walkUpper(tw *tar.Writer, root, rel string, links map[[2]uint64]string) error {
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		p := path.Join(rel, n)
		if skipped(p) {
			continue
		}
		full := filepath.Join(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(full, &st); err != nil {
			return err
		}
		typ := st.Mode & unix.S_IFMT
		whiteout := typ == unix.S_IFCHR && st.Rdev == 0
		if strings.HasPrefix(n, ".wh.") && !whiteout {
			return fmt.Errorf("/%s: names starting with .wh. cannot be stored in an OCI layer (they mean deletions)", p)
		}
		h := &tar.Header{
			Name:    p,
			Mode:    int64(st.Mode & 0o7777),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
			Format:  tar.FormatPAX,
		}
		switch typ {
		case unix.S_IFDIR:
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		case unix.S_IFREG:
			h.Typeflag, h.Size = tar.TypeReg, st.Size
			if st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := links[key]; ok {
					h.Typeflag, h.Size, h.Linkname = tar.TypeLink, 0, first
				} else {
					links[key] = p
				}
			}
		case unix.S_IFLNK:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(full); err != nil {
				return err
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			h.Typeflag = tar.TypeChar
			if typ == unix.S_IFBLK {
				h.Typeflag = tar.TypeBlock
			}
			h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			h.Typeflag = tar.TypeFifo
		default: // sockets are not file contents
			continue
		}
		if !whiteout {
			if err := addXattrs(h, full); err != nil {
				return fmt.Errorf("/%s: %w", p, err)
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			if err := copyFile(tw, full, h.Size); err != nil {
				return fmt.Errorf("/%s: %w", p, err)
			}
		}
		if typ == unix.S_IFDIR {
			if err := walkUpper(tw, root, p, links); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(w io.Writer, p string, size int64) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(w, f, size)
	return err
}

// addXattrs records the extended attributes a layer keeps, plus the
// opaque marker.
func addXattrs(h *tar.Header, p string) error {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Llistxattr(p, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(p, buf)
		}
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	for _, x := range strings.Split(string(buf[:n]), "\x00") {
		if x == "" || !(x == opaqueXattr || keepXattr(x)) {
			continue
		}
		v, err := getXattr(p, x)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read xattr %s: %w", x, err)
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[paxXattr+x] = string(v)
	}
	return nil
}

func getXattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			if n, err = unix.Lgetxattr(p, name, nil); err != nil {
				return nil, err
			}
			buf = make([]byte, n)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// RemoveAll removes path and everything below it, as os.RemoveAll does,
// from inside a user namespace with ids, so that files the sandbox created
// with subordinate owners (which the caller cannot remove) go too.
func RemoveAll(ctx context.Context, path string, ids IDMap) error {
	if ids.IsZero() {
		ids, _ = HostIDMap()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	runtime.LockOSThread() // see Run
	defer runtime.UnlockOSThread()
	cmd, err := spawn(ctx, spawnOpts{role: roleRemove, ids: ids, payload: removeConfig{Path: abs}, stderr: &stderr})
	if err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("sandbox: remove %s: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
