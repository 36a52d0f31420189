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
	"strings"

	"golang.org/x/sys/unix"
)

// unpackConfig is what Unpack sends its child.
type unpackConfig struct{ Dir string }

// Unpack extracts the OCI layer tar read from r into dir (an empty
// directory of the caller's) as an overlayfs lower layer for Run: OCI
// whiteouts become character devices 0:0, .wh..wh..opq makes its directory
// opaque (user.overlay.opaque=y). It runs in a user namespace with ids, so
// that owners are the host ids the map gives the tar's owners (an owner
// the map lacks becomes uid or gid 0 inside); device nodes, which a user
// namespace cannot create, are skipped. No entry can land outside dir:
// names with "..", and symlinks met on the way, resolve inside it.
func Unpack(ctx context.Context, r io.Reader, dir string, ids IDMap) error {
	if ids.IsZero() {
		return errors.New("sandbox: Unpack needs the id map Run will use")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	runtime.LockOSThread() // see Run
	defer runtime.UnlockOSThread()
	cmd, err := spawnStdin(ctx, spawnOpts{role: roleUnpack, ids: ids, payload: unpackConfig{Dir: abs}, stderr: &stderr}, r)
	if err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("sandbox: unpack into %s: %w", dir, ctx.Err())
		}
		return fmt.Errorf("sandbox: unpack into %s: %s", dir, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// unpackMain is Unpack's child, root in the user namespace.
func unpackMain(cfg unpackConfig, r io.Reader) error {
	rootfd, err := unix.Open(cfg.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	type dirMeta struct {
		name string
		hdr  *tar.Header
	}
	var dirs []dirMeta
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read the layer: %w", err)
		}
		name := path.Clean("/" + h.Name)[1:]
		if name == "" {
			continue
		}
		parent, base := path.Split(name)
		pfd, err := mkdirIn(rootfd, strings.TrimSuffix(parent, "/"))
		if err != nil {
			return fmt.Errorf("/%s: %w", name, err)
		}
		err = unpackEntry(rootfd, pfd, parent, base, h, tr)
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("/%s: %w", name, err)
		}
		if h.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirMeta{name, h})
		}
	}
	// Directories' modes and times last: creating their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		parent, base := path.Split(dirs[i].name)
		pfd, err := mkdirIn(rootfd, strings.TrimSuffix(parent, "/"))
		if err != nil {
			return err
		}
		err = setMeta(pfd, base, dirs[i].hdr, false)
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("/%s: %w", dirs[i].name, err)
		}
	}
	return nil
}

func unpackEntry(rootfd, pfd int, parent, base string, h *tar.Header, r io.Reader) error {
	if base == ".wh..wh..opq" {
		return unix.Setxattr(fmt.Sprintf("/proc/self/fd/%d", pfd), opaqueXattr, []byte("y"), 0)
	}
	if name, ok := strings.CutPrefix(base, ".wh."); ok {
		removeIn(pfd, name)
		return unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	}
	if h.Typeflag != tar.TypeDir {
		removeIn(pfd, base)
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && err != unix.EEXIST {
			return err
		}
		return nil // metadata at the end
	case tar.TypeReg:
		fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), base)
		_, err = io.Copy(f, r)
		if err2 := f.Close(); err == nil {
			err = err2
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
			return err
		}
	case tar.TypeLink:
		target := path.Clean("/" + h.Linkname)[1:]
		tparent, tbase := path.Split(target)
		tfd, err := unix.Openat2(rootfd, "./"+tparent, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if err != nil {
			return fmt.Errorf("hard link to /%s: %w", target, err)
		}
		err = unix.Linkat(tfd, tbase, pfd, base, 0)
		unix.Close(tfd)
		if err != nil {
			return fmt.Errorf("hard link to /%s: %w", target, err)
		}
		return nil // shares the target's metadata
	case tar.TypeFifo:
		if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
			return err
		}
	default: // devices cannot be created in a user namespace; the sandbox has its own /dev
		return nil
	}
	return setMeta(pfd, base, h, h.Typeflag == tar.TypeSymlink)
}

// setMeta sets base's owner, mode, kept xattrs and mtime from h.
func setMeta(pfd int, base string, h *tar.Header, symlink bool) error {
	if err := unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		// An owner outside the map: keep the caller's (0 inside).
		if err != unix.EINVAL {
			return fmt.Errorf("chown %d:%d: %w", h.Uid, h.Gid, err)
		}
	}
	if !symlink {
		if err := unix.Fchmodat(pfd, base, uint32(h.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
		p := fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
		for k, v := range h.PAXRecords {
			x, ok := strings.CutPrefix(k, paxXattr)
			if !ok || !keepXattr(x) {
				continue
			}
			if err := unix.Lsetxattr(p, x, []byte(v), 0); err != nil {
				return fmt.Errorf("set xattr %s: %w", x, err)
			}
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	return unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// mkdirIn opens the directory rel below rootfd, creating missing
// components; symlinks resolve inside rootfd.
func mkdirIn(rootfd int, rel string) (int, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(rootfd, "./"+rel, how)
	if err == nil || err != unix.ENOENT || rel == "" {
		return fd, err
	}
	parent, base := path.Split(rel)
	pfd, err := mkdirIn(rootfd, strings.TrimSuffix(parent, "/"))
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, err
	}
	return unix.Openat2(pfd, base, &unix.OpenHow{Flags: how.Flags, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
}

// removeIn removes name below pfd if it is there, a directory with its
// contents.
func removeIn(pfd int, name string) {
	if unix.Unlinkat(pfd, name, 0) == nil {
		return
	}
	if unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR) == nil {
		return
	}
	os.RemoveAll(fmt.Sprintf("/proc/self/fd/%d/%s", pfd, name))
}
