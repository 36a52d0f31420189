package rootfs

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"time"
)

// FS implements io/fs: fs.FS, fs.ReadFileFS, fs.ReadLinkFS, fs.StatFS,
// fs.ReadDirFS and fs.GlobFS, so that consumers take an fs.FS and their
// tests an fstest.MapFS. Its io/fs methods take io/fs paths
// (fs.ValidPath: "etc/passwd"; "." is the root), stricter than the
// methods returning an Entry, which also take "/etc/passwd". A regular
// file whose content the Select did not keep all of opens, and reading it
// gives what was kept (an executable's ELF header, say), then fails with
// ErrNotCaptured.
var (
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.GlobFS     = (*FS)(nil)
)

// IOFS returns f.
//
// Deprecated: an *FS is an fs.FS itself; use it directly.
func (f *FS) IOFS() fs.FS { return f }

func valid(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// Open implements fs.FS, following symlinks.
func (f *FS) Open(name string) (fs.File, error) {
	if err := valid("open", name); err != nil {
		return nil, err
	}
	n, err := f.lookup("open", name, true)
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

// Glob implements fs.GlobFS, with fs.Glob's semantics.
func (f *FS) Glob(pattern string) ([]string, error) { return fs.Glob(globOnly{f}, pattern) }

// globOnly hides Glob, so that fs.Glob walks with ReadDir as its contract
// says.
type globOnly struct{ f *FS }

func (g globOnly) Open(name string) (fs.File, error) { return g.f.Open(name) }

// Stat implements fs.StatFS: the entry at name, following symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if err := valid("stat", name); err != nil {
		return nil, err
	}
	e, err := f.StatEntry(name)
	if err != nil {
		return nil, err
	}
	return fileInfo{e: e, name: path.Base("/" + name)}, nil
}

// Lstat implements fs.ReadLinkFS: the entry at name, a final symlink not
// followed.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	if err := valid("lstat", name); err != nil {
		return nil, err
	}
	e, err := f.LstatEntry(name)
	if err != nil {
		return nil, err
	}
	return fileInfo{e: e, name: path.Base("/" + name)}, nil
}

// ReadLink implements fs.ReadLinkFS: the target of the symlink at name,
// as stored.
func (f *FS) ReadLink(name string) (string, error) {
	if err := valid("readlink", name); err != nil {
		return "", err
	}
	return f.readlink(name)
}

// ReadDir implements fs.ReadDirFS, following symlinks.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := valid("readdir", name); err != nil {
		return nil, err
	}
	ents, err := f.ReadDirEntries(name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(ents))
	for i, e := range ents {
		out[i] = fs.FileInfoToDirEntry(fileInfo{e: e, name: e.Name()})
	}
	return out, nil
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
