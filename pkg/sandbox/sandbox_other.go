//go:build !linux

package sandbox

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"runtime"
)

// errNotLinux is what every entry point returns off Linux.
var errNotLinux = NotLinuxError(runtime.GOOS, runtime.GOARCH)

// Available reports, off Linux, that the sandbox cannot run here.
func Available() error { return errNotLinux }

// Main does nothing off Linux.
func Main() {}

// Run fails off Linux.
func Run(ctx context.Context, cfg Config) (Result, error) { return Result{}, errNotLinux }

// WriteDiff fails off Linux.
func WriteDiff(ctx context.Context, tw *tar.Writer, upper string, opts DiffOptions) error {
	return errNotLinux
}

// Unpack fails off Linux.
func Unpack(ctx context.Context, r io.Reader, dir string, ids IDMap) error { return errNotLinux }

// RemoveAll fails off Linux.
func RemoveAll(ctx context.Context, path string, ids IDMap) error { return errNotLinux }

func isWhiteout(fi os.FileInfo) bool { return false }

func isOpaque(dir string) bool { return false }

// UsernsAvailable reports false: the sandbox needs Linux.
func UsernsAvailable() (ok bool, reason string) { return false, errNotLinux.Error() }
