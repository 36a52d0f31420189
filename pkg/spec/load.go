package spec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// readFile reads the spec file at path, refusing what is not a regular file
// or a pipe, and anything over MaxFileSize.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, &Error{Pos: Pos{File: path}, Msg: "spec file not found", Hint: "create it, or name another with --file"}
	case err != nil:
		return nil, &Error{Pos: Pos{File: path}, Msg: fmt.Sprintf("cannot read the spec file: %v", err), Hint: "make it readable, or name another with --file"}
	}
	if err := checkFileType(path, fi); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Pos: Pos{File: path}, Msg: fmt.Sprintf("cannot read the spec file: %v", err), Hint: "make it readable, or name another with --file"}
	}
	defer f.Close()
	// Again on what was opened: the path may have changed since the Stat.
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("read spec %s: %w", path, err)
	}
	if err := checkFileType(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read spec %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, &Error{Pos: Pos{File: path}, Msg: fmt.Sprintf("larger than %d KiB, too big for a spec file", MaxFileSize>>10), Hint: "a spec is a few lines of YAML; name the right file with --file"}
	}
	return data, nil
}

// checkFileType refuses a spec "file" that is a directory, device or socket
// (a symlink is judged by what it points to). Pipes are accepted, for
// `kiln name -f <(generate-spec)`.
func checkFileType(path string, fi os.FileInfo) error {
	mode := fi.Mode()
	if mode.IsRegular() || mode&os.ModeNamedPipe != 0 {
		return nil
	}
	what := "not a regular file"
	switch {
	case mode.IsDir():
		what = "a directory"
	case mode&os.ModeCharDevice != 0:
		what = "a character device"
	case mode&os.ModeDevice != 0:
		what = "a block device"
	case mode&os.ModeSocket != 0:
		what = "a socket"
	}
	if target, err := filepath.EvalSymlinks(path); err == nil && target != filepath.Clean(path) {
		what += " (through the symlink to " + target + ")"
	}
	return &Error{Pos: Pos{File: path}, Msg: "is " + what + ", not a spec file", Hint: "name a YAML file with --file"}
}
