package rootfs

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Opener opens one layer's uncompressed tar stream. It may be called more
// than once.
type Opener func() (io.ReadCloser, error)

// source is one layer to read.
type source struct {
	name string
	open Opener
}

// Read builds the merged tree of img's layers, bottom-up, applying OCI
// whiteouts, and keeps the content sel selects (DefaultSelect when nil).
// Each layer is streamed once; a layer is read a second time only when a
// symlink makes a selected path lead to a file whose name in its layer was
// not selected.
func Read(ctx context.Context, img v1.Image, sel Select) (*FS, error) {
	return ReadSeen(ctx, img, sel, nil)
}

// Seen is told about each regular file whose whole content a read keeps
// by its name in its layer, as soon as the layer has streamed past it:
// before the read ends, and before a later layer can replace or delete
// the file. A file kept only because a symlink leads to it is not told
// of. Seen runs on the reading goroutine, so it should return quickly, and
// it must not modify data.
type Seen func(name string, data []byte)

// ReadSeen is Read that also tells seen (when not nil) about the files it
// keeps whole as they stream by.
func ReadSeen(ctx context.Context, img v1.Image, sel Select, seen Seen) (*FS, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("read the image's layers: %w", err)
	}
	srcs := make([]source, len(layers))
	for i, l := range layers {
		name := fmt.Sprintf("layer %d", i)
		if d, err := l.Digest(); err == nil {
			name = fmt.Sprintf("layer %d (%s)", i, d)
		}
		srcs[i] = source{name: name, open: l.Uncompressed}
	}
	return build(ctx, newRoot(), srcs, sel, seen)
}

// ReadTars builds the merged tree of tars, bottom-up, as Read does for an
// image's layers.
func ReadTars(ctx context.Context, sel Select, tars ...Opener) (*FS, error) {
	return build(ctx, newRoot(), tarSources(tars), sel, nil)
}

// Overlay returns a new FS with tars applied on top of f, as if they were
// further layers; f is not changed. Content of f's files that f did not
// keep cannot be read through the new FS either.
func (f *FS) Overlay(ctx context.Context, sel Select, tars ...Opener) (*FS, error) {
	return build(ctx, f.root.clone(), tarSources(tars), sel, nil)
}

func tarSources(tars []Opener) []source {
	srcs := make([]source, len(tars))
	for i, t := range tars {
		srcs[i] = source{name: fmt.Sprintf("tar %d", i), open: t}
	}
	return srcs
}

func (n *node) clone() *node {
	c := &node{e: n.e, data: n.data, src: srcRef{layer: -1}}
	if n.kids != nil {
		c.kids = make(map[string]*node, len(n.kids))
		for k, v := range n.kids {
			c.kids[k] = v.clone()
		}
	}
	return c
}

func build(ctx context.Context, root *node, srcs []source, sel Select, seen Seen) (*FS, error) {
	if sel == nil {
		sel = DefaultSelect
	}
	f := &FS{root: root}
	ahead := map[srcRef][]byte{}
	for i, s := range srcs {
		if err := f.apply(ctx, i, s, sel, ahead, seen); err != nil {
			return nil, err
		}
	}
	if err := f.fill(ctx, srcs, sel, ahead); err != nil {
		return nil, err
	}
	f.eachNode(func(n *node) { n.src = srcRef{layer: -1} })
	return f, nil
}

// memberName normalises a tar member name to a root-relative path:
// "./etc/x", "/etc/x" and "etc//x" become "etc/x"; ".." cannot climb above
// the root.
func memberName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// item is one non-whiteout member of a layer.
type item struct {
	name string
	hdr  *tar.Header
	data []byte
}

// apply reads layer i and merges it into the tree: first its whiteouts and
// opaque directories hide lower content, then its entries are added in
// order. Into ahead it also reads the content of the layer's files that a
// symlink read earlier in the stream makes selected (etc/alternatives/awk
// -> /usr/bin/mawk), which fill would otherwise read in a second pass.
func (f *FS) apply(ctx context.Context, i int, s source, sel Select, ahead map[srcRef][]byte, seen Seen) error {
	rc, err := s.open()
	if err != nil {
		return fmt.Errorf("open %s: %w", s.name, err)
	}
	defer rc.Close()
	var (
		items     []item
		whiteouts []string
		opaques   []string
	)
	tr := tar.NewReader(rc)
	prev := "" // the last member read, to place a read error
	links := linksAhead{f: f, links: map[string]string{}, wanted: map[string][]string{}}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if prev != "" {
				return fmt.Errorf("read %s after member %q: %w", s.name, prev, err)
			}
			return fmt.Errorf("read %s: %w", s.name, err)
		}
		prev = hdr.Name
		name := memberName(hdr.Name)
		if name == "" {
			continue // the root itself
		}
		dir, base := path.Split(name)
		if base == ".wh..wh..opq" {
			opaques = append(opaques, dir)
			continue
		}
		if rest, ok := strings.CutPrefix(base, ".wh."); ok {
			whiteouts = append(whiteouts, dir+rest)
			continue
		}
		it := item{name: name, hdr: hdr}
		if hdr.Typeflag == tar.TypeSymlink {
			links.add(name, hdr.Linkname, sel)
		}
		if isReg(hdr) && hdr.Size > 0 {
			key := srcRef{layer: i, name: name}
			delete(ahead, key) // a later member of the same name replaces it
			n := min(sel(name, hdr.Size), hdr.Size)
			want := min(links.limit(name, hdr.Size, sel), hdr.Size)
			if m := max(n, want); m > 0 {
				data, err := io.ReadAll(io.LimitReader(tr, m))
				if err != nil {
					return fmt.Errorf("read %s: %s: %w", s.name, name, err)
				}
				if n > 0 {
					it.data = data[:min(n, int64(len(data)))]
					if seen != nil && int64(len(it.data)) == hdr.Size {
						seen(name, it.data)
					}
				}
				if want > n {
					ahead[key] = data
				}
			}
		}
		items = append(items, it)
	}
	// Read to the end so a verifying reader (a remote layer) checks the
	// digest.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("read %s: %w", s.name, err)
	}
	for _, w := range whiteouts {
		f.remove(w)
	}
	for _, d := range opaques {
		if n, err := f.lookup("opaque", d, true); err == nil && n.e.IsDir() {
			n.kids = map[string]*node{}
		}
	}
	for _, it := range items {
		if err := f.insert(i, it); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func isReg(hdr *tar.Header) bool {
	return hdr.Typeflag == tar.TypeReg || hdr.Typeflag == '\x00' || hdr.Typeflag == tar.TypeGNUSparse
}

// remove deletes name and everything below it.
func (f *FS) remove(name string) {
	dir, base := path.Split(name)
	parent, err := f.lookup("whiteout", dir, true)
	if err != nil || !parent.e.IsDir() {
		return
	}
	delete(parent.kids, base)
}

// insert adds one member of layer i. Directories in its path are followed
// through symlinks and made when missing, as extracting the layer would.
func (f *FS) insert(i int, it item) error {
	dir, base := path.Split(it.name)
	parent, err := f.mkdirAll(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", it.name, err)
	}
	canon := path.Join(parent.e.Path, base)
	hdr := it.hdr
	var n *node
	switch {
	case hdr.Typeflag == tar.TypeLink:
		target := memberName(hdr.Linkname)
		t, err := f.lookup("link", target, false)
		if err != nil {
			return fmt.Errorf("hard link %s to %s: the target is not in this or a lower layer", it.name, hdr.Linkname)
		}
		if t.e.IsDir() {
			return fmt.Errorf("hard link %s to directory %s", it.name, hdr.Linkname)
		}
		n = &node{e: t.e, data: t.data, src: t.src}
	case isReg(hdr):
		n = &node{e: Entry{Mode: hdr.FileInfo().Mode() &^ fs.ModeType, Size: hdr.Size}, data: it.data, src: srcRef{layer: i, name: it.name}}
	case hdr.Typeflag == tar.TypeDir, hdr.Typeflag == tar.TypeSymlink, hdr.Typeflag == tar.TypeChar,
		hdr.Typeflag == tar.TypeBlock, hdr.Typeflag == tar.TypeFifo:
		n = &node{e: Entry{Mode: hdr.FileInfo().Mode()}}
		if hdr.Typeflag == tar.TypeSymlink {
			n.e.Linkname = hdr.Linkname
		}
	default:
		return nil // not a file system entry
	}
	if hdr.Typeflag != tar.TypeLink {
		n.e.UID, n.e.GID = hdr.Uid, hdr.Gid
	}
	n.e.Path = canon
	old := parent.kids[base]
	if n.e.IsDir() {
		if old != nil && old.e.IsDir() {
			old.e.Mode, old.e.UID, old.e.GID = n.e.Mode, n.e.UID, n.e.GID
			return nil
		}
		n.kids = map[string]*node{}
	}
	parent.kids[base] = n
	return nil
}

// mkdirAll resolves dir, following symlinks, and makes the directories
// that are missing (or are not directories).
func (f *FS) mkdirAll(dir string) (*node, error) {
	todo := splitPath(dir)
	stack := []*node{f.root}
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := stack[len(stack)-1]
		n := cur.kids[c]
		switch {
		case n != nil && n.e.IsSymlink():
			links++
			if links > maxLinks {
				return nil, &fs.PathError{Op: "mkdir", Path: dir, Err: ErrLoop}
			}
			if strings.HasPrefix(n.e.Linkname, "/") {
				stack = stack[:1]
			}
			todo = append(splitPath(n.e.Linkname), todo...)
			continue
		case n == nil || !n.e.IsDir():
			n = &node{e: Entry{Path: path.Join(cur.e.Path, c), Mode: fs.ModeDir | 0o755}, kids: map[string]*node{}}
			cur.kids[c] = n
		}
		stack = append(stack, n)
	}
	return stack[len(stack)-1], nil
}

func (f *FS) eachNode(fn func(*node)) {
	var walk func(n *node)
	walk = func(n *node) {
		for _, k := range n.kids {
			fn(k)
			walk(k)
		}
	}
	walk(f.root)
}

// fill reads, in a second pass over the layers that hold them, the content
// of files that sel selects under another path than their member name:
// through a symlink (etc/os-release -> ../usr/lib/os-release, a symlinked
// directory) or a hard link.
func (f *FS) fill(ctx context.Context, srcs []source, sel Select, ahead map[srcRef][]byte) error {
	// links maps a canonical path to the symlinks that resolve to it.
	links := map[string][]string{}
	f.eachNode(func(n *node) {
		if !n.e.IsSymlink() {
			return
		}
		if t, err := f.lookup("", n.e.Path, true); err == nil && t.e.Path != n.e.Path {
			links[t.e.Path] = append(links[t.e.Path], n.e.Path)
		}
	})
	type want struct {
		limit int64
		nodes []*node
	}
	need := map[int]map[string]*want{}
	f.eachNode(func(n *node) {
		if !n.e.IsRegular() || n.src.layer < 0 || n.complete() {
			return
		}
		var limit int64
		for _, p := range aliases(n.e.Path, links) {
			limit = max(limit, min(sel(p, n.e.Size), n.e.Size))
		}
		if limit <= int64(len(n.data)) {
			return
		}
		m := need[n.src.layer]
		if m == nil {
			m = map[string]*want{}
			need[n.src.layer] = m
		}
		w := m[n.src.name]
		if w == nil {
			w = &want{}
			m[n.src.name] = w
		}
		w.limit = max(w.limit, limit)
		w.nodes = append(w.nodes, n)
	})
	// What apply read ahead is the same prefix of the same member as a
	// second pass would read.
	for i, m := range need {
		for name, w := range m {
			data, ok := ahead[srcRef{layer: i, name: name}]
			if !ok || int64(len(data)) < w.limit && !fullLength(data, w.nodes) {
				continue
			}
			data = data[:min(w.limit, int64(len(data)))]
			for _, n := range w.nodes {
				if int64(len(data)) <= n.e.Size {
					n.data = data
				}
			}
			delete(m, name)
		}
		if len(m) == 0 {
			delete(need, i)
		}
	}
	layers := make([]int, 0, len(need))
	for i := range need {
		layers = append(layers, i)
	}
	slices.Sort(layers)
	for _, i := range layers {
		s := srcs[i]
		err := func() error {
			rc, err := s.open()
			if err != nil {
				return fmt.Errorf("open %s: %w", s.name, err)
			}
			defer rc.Close()
			tr := tar.NewReader(rc)
			prev := ""
			for {
				if err := ctx.Err(); err != nil {
					return err
				}
				hdr, err := tr.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					if prev != "" {
						return fmt.Errorf("read %s after member %q: %w", s.name, prev, err)
					}
					return fmt.Errorf("read %s: %w", s.name, err)
				}
				prev = hdr.Name
				w := need[i][memberName(hdr.Name)]
				if w == nil || !isReg(hdr) {
					continue
				}
				data, err := io.ReadAll(io.LimitReader(tr, w.limit))
				if err != nil {
					return fmt.Errorf("read %s: %s: %w", s.name, hdr.Name, err)
				}
				for _, n := range w.nodes {
					if int64(len(data)) <= n.e.Size {
						n.data = data
					}
				}
			}
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// aliases returns p and the paths that lead to it through symlinks (to a
// small bound), using links from canonical targets to symlink paths.
func aliases(p string, links map[string][]string) []string {
	const maxAliases = 64
	out := []string{p}
	seen := map[string]bool{p: true}
	for q := 0; q < len(out) && len(out) < maxAliases; q++ {
		cur := out[q]
		for i := 0; i <= len(cur); i++ {
			if i < len(cur) && cur[i] != '/' {
				continue
			}
			for _, s := range links[cur[:i]] {
				a := s + cur[i:]
				if !seen[a] {
					seen[a] = true
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// fullLength reports whether data is the whole content of the file the
// nodes (which share one member) are.
func fullLength(data []byte, nodes []*node) bool {
	return len(nodes) > 0 && int64(len(data)) == nodes[0].e.Size
}

// linksAhead tracks, while a layer is streamed, the symlinks read so far
// and the paths they lead to, so that apply can keep the content of a
// file that a selected symlink read before it points to.
type linksAhead struct {
	f *FS
	// links maps this layer's symlinks read so far to their targets.
	links map[string]string
	// wanted maps a path that selected symlinks lead to to those symlinks.
	wanted map[string][]string
}

// add records the symlink name -> target; when sel selects name, the
// path it leads to is wanted.
func (l *linksAhead) add(name, target string, sel Select) {
	l.links[name] = target
	// A symlinked directory read after the symlinks that lead through it
	// (lib -> usr/lib after etc/systemd/.../x.timer -> /lib/systemd/...)
	// moves the paths they want.
	for p, aliases := range l.wanted {
		if p == name || strings.HasPrefix(p, name+"/") {
			delete(l.wanted, p)
			if q, ok := l.resolve(p); ok {
				l.wanted[q] = append(l.wanted[q], aliases...)
			}
		}
	}
	if sel(name, 1) <= 0 {
		return
	}
	p := target
	if !strings.HasPrefix(target, "/") {
		p = path.Dir(name) + "/" + target // not cleaned: ".." is resolved physically
	}
	if p, ok := l.resolve(p); ok {
		l.wanted[p] = append(l.wanted[p], name)
	}
}

// limit is how much of the file name (size bytes) the selected symlinks
// that lead to it ask for.
func (l *linksAhead) limit(name string, size int64, sel Select) int64 {
	var n int64
	for _, a := range l.wanted[name] {
		n = max(n, sel(a, size))
	}
	return n
}

// resolve follows the symlinks known so far (this layer's, then the lower
// layers') in every component of the root-relative path p. It gives up
// (false) past maxLinks.
func (l *linksAhead) resolve(p string) (string, bool) {
	todo := splitPath(p)
	var done []string
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := strings.Join(append(done, c), "/")
		target, ok := l.links[cur]
		if !ok {
			if n, err := l.f.lookup("", cur, false); err == nil && n.e.IsSymlink() {
				target, ok = n.e.Linkname, true
			}
		}
		if !ok {
			done = append(done, c)
			continue
		}
		if hops++; hops > maxLinks {
			return "", false
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(splitPath(target), todo...)
	}
	return strings.Join(done, "/"), true
}
