package rootfs

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"time"
)

// IOFS returns f as an io/fs file system (fs.FS, fs.ReadFileFS,
// fs.ReadLinkFS, fs.GlobFS), so that consumers can take an fs.FS and their
// tests an fstest.MapFS. Its paths follow fs.ValidPath ("etc/passwd"; "."
// is the root), stricter than FS's own methods, which also take
// "/etc/passwd" and "./etc/passwd". A regular file whose content the
// Select did not keep all of opens, and reading it gives what was kept (an
// executable's ELF header, say), then fails with ErrNotCaptured.
func (f *FS) IOFS() fs.FS { return ioFS{f} }

type ioFS struct{ f *FS }

var (
	_ fs.ReadFileFS = ioFS{}
	_ fs.ReadLinkFS = ioFS{}
	_ fs.GlobFS     = ioFS{}
)

func valid(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// Open implements fs.FS, following symlinks.
func (v ioFS) Open(name string) (fs.File, error) {
	if err := valid("open", name); err != nil {
		return nil, err
	}
	n, err := v.f.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	info := fileInfo{e: n.entryAs(name), name: path.Base(name)}
	if n.e.IsDir() {
		kids := sortedKids(n)
		ents := make([]fs.DirEntry, len(kids))
		for i, k := range kids {
			ents[i] = fs.FileInfoToDirEntry(fileInfo{e: k.e, name: k.e.Name()})
		}
		return &openDir{info: info, ents: ents}, nil
	}
	of := &openFile{info: info, r: bytes.NewReader(n.data)}
	if n.e.IsRegular() && !n.complete() {
		of.err = &fs.PathError{Op: "read", Path: name, Err: ErrNotCaptured}
	}
	return of, nil
}

// ReadFile implements fs.ReadFileFS (see FS.ReadFile).
func (v ioFS) ReadFile(name string) ([]byte, error) {
	if err := valid("read", name); err != nil {
		return nil, err
	}
	return v.f.ReadFile(name)
}

// Glob implements fs.GlobFS (see FS.Glob).
func (v ioFS) Glob(pattern string) ([]string, error) { return fs.Glob(globOnly{v}, pattern) }

// globOnly hides Glob, so that fs.Glob walks with ReadDir as its contract
// says.
type globOnly struct{ v ioFS }

func (g globOnly) Open(name string) (fs.File, error) { return g.v.Open(name) }

// Lstat implements fs.ReadLinkFS: the entry at name, a final symlink not
// followed.
func (v ioFS) Lstat(name string) (fs.FileInfo, error) {
	if err := valid("lstat", name); err != nil {
		return nil, err
	}
	e, err := v.f.Lstat(name)
	if err != nil {
		return nil, err
	}
	return fileInfo{e: e, name: path.Base("/" + name)}, nil
}

// ReadLink implements fs.ReadLinkFS (see FS.Readlink).
func (v ioFS) ReadLink(name string) (string, error) {
	if err := valid("readlink", name); err != nil {
		return "", err
	}
	return v.f.Readlink(name)
}

// fileInfo is an Entry as an fs.FileInfo.
type fileInfo struct {
	e    Entry
	name string
}

func (i fileInfo) Name() string {
	if i.name == "" || i.name == "/" {
		return "."
	}
	return i.name
}
func (i fileInfo) Size() int64        { return i.e.Size }
func (i fileInfo) Mode() fs.FileMode  { return i.e.Mode }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.e.IsDir() }
func (i fileInfo) Sys() any           { return nil }

type openFile struct {
	info fileInfo
	r    *bytes.Reader
	err  error // for a file whose content was not kept
}

func (o *openFile) Stat() (fs.FileInfo, error) { return o.info, nil }
func (o *openFile) Close() error               { return nil }

func (o *openFile) Read(p []byte) (int, error) {
	if o.r.Len() == 0 && o.err != nil {
		return 0, o.err
	}
	return o.r.Read(p)
}

type openDir struct {
	info fileInfo
	ents []fs.DirEntry
	off  int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *openDir) Close() error               { return nil }
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.e.Path, Err: fs.ErrInvalid}
}

// ReadDir implements fs.ReadDirFile.
func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.ents[d.off:]
	if n <= 0 {
		d.off = len(d.ents)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.off += len(rest)
	return rest, nil
}
