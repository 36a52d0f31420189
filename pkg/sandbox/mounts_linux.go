//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// innerSetup mounts the sandbox's file systems under cfg.Root and pivots
// into it. Every mount point is opened one component at a time without
// following symlinks, so a symlink in a layer (say /tmp -> /) cannot send a
// mount outside the root.
func innerSetup(cfg innerConfig) error {
	rootfd, err := unix.Open(cfg.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the root: %w", err)
	}
	defer unix.Close(rootfd)
	const noexec = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	if err := mountNew(rootfd, "proc", "proc", nil, noexec); err != nil {
		return err
	}
	devfd, err := mountNewFD(rootfd, "dev", "tmpfs", map[string]string{"mode": "755", "size": "4m"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(devfd)
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if err := bindHost(devfd, name, "/dev/"+name, false); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"} {
		if err := unix.Symlinkat(target, devfd, name); err != nil {
			return fmt.Errorf("create /dev/%s: %w", name, err)
		}
	}
	// A pts instance is optional: without one, only programs that want a
	// terminal fail.
	_ = mountNew(devfd, "pts", "devpts", map[string]string{"newinstance": "", "ptmxmode": "0666", "mode": "0620"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err := mountNew(devfd, "shm", "tmpfs", map[string]string{"mode": "1777"}, noexec); err != nil {
		return err
	}
	if err := mountNew(rootfd, "tmp", "tmpfs", map[string]string{"mode": "1777"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV); err != nil {
		return err
	}
	if cfg.Network {
		for _, f := range []string{"etc/resolv.conf", "etc/hosts"} {
			if _, err := os.Stat("/" + f); err != nil {
				continue
			}
			if err := bindHost(rootfd, f, "/"+f, true); err != nil {
				return err
			}
		}
	}
	if err := unix.Chdir(cfg.Root); err != nil {
		return fmt.Errorf("enter the root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into the overlay: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	dir := path.Clean("/" + cfg.Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the working directory: %w", err)
	}
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("enter the working directory: %w", err)
	}
	return nil
}

// ensure opens rel (slash-separated, below dirfd) as an O_PATH descriptor,
// creating it as a directory (dir) or empty file when missing and
// replacing whatever else is there (a symlink, say). No component is
// followed if it is a symlink.
func ensure(dirfd int, rel string, dir bool) (int, error) {
	cur, err := unix.Dup(dirfd)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(cur)
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		wantDir := dir || i < len(parts)-1
		next, err := ensureOne(cur, name, wantDir)
		unix.Close(cur)
		if err != nil {
			return -1, fmt.Errorf("prepare /%s: %w", strings.Join(parts[:i+1], "/"), err)
		}
		cur = next
	}
	return cur, nil
}

func ensureOne(dirfd int, name string, dir bool) (int, error) {
	open := func() (int, error) {
		return unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	fd, err := open()
	if err == nil {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if isDir == dir && (isDir || st.Mode&unix.S_IFMT == unix.S_IFREG) {
			return fd, nil
		}
		unix.Close(fd)
		flags := 0
		if isDir {
			flags = unix.AT_REMOVEDIR
		}
		if err := unix.Unlinkat(dirfd, name, flags); err != nil {
			return -1, err
		}
	} else if err != unix.ENOENT {
		return -1, err
	}
	if dir {
		err = unix.Mkdirat(dirfd, name, 0o755)
	} else {
		var f int
		f, err = unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(f)
		}
	}
	if err != nil {
		return -1, err
	}
	return open()
}

// mountNew mounts a new file system of type fstype at rel below dirfd.
func mountNew(dirfd int, rel, fstype string, opts map[string]string, attrs int) error {
	fd, err := mountNewFD(dirfd, rel, fstype, opts, attrs)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// mountNewFD is mountNew returning a descriptor of the new mount's root.
func mountNewFD(dirfd int, rel, fstype string, opts map[string]string, attrs int) (int, error) {
	target, err := ensure(dirfd, rel, true)
	if err != nil {
		return -1, err
	}
	defer unix.Close(target)
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("mount %s on /%s: %w", fstype, rel, err)
	}
	defer unix.Close(fsfd)
	for k, v := range opts {
		if v == "" {
			err = unix.FsconfigSetFlag(fsfd, k)
		} else {
			err = unix.FsconfigSetString(fsfd, k, v)
		}
		if err != nil {
			return -1, fmt.Errorf("mount %s on /%s: option %s: %w%s", fstype, rel, k, err, fsLog(fsfd))
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("mount %s on /%s: %w%s", fstype, rel, err, fsLog(fsfd))
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return -1, fmt.Errorf("mount %s on /%s: %w%s", fstype, rel, err, fsLog(fsfd))
	}
	if err := unix.MoveMount(mfd, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		unix.Close(mfd)
		return -1, fmt.Errorf("mount %s on /%s: %w", fstype, rel, err)
	}
	return mfd, nil
}

// bindHost bind-mounts the host's file src at rel below dirfd,
// read-only when ro.
func bindHost(dirfd int, rel, src string, ro bool) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	defer unix.Close(tree)
	if ro {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
			return fmt.Errorf("bind %s read-only: %w", src, err)
		}
	}
	target, err := ensure(dirfd, rel, false)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind %s on /%s: %w", src, rel, err)
	}
	return nil
}
