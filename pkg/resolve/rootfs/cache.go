package rootfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/atomicfile"
)

// cacheFormat is the first line of a cache file; it changes when the
// encoding does.
const cacheFormat = "kiln rootfs cache v1\n"

// Cached returns ReadSeen(ctx, img, sel, seen), kept in a file under dir
// keyed by img's digest and version, so the layers are read once per
// image; seen is not called when the file is read instead. version names
// the selector: change it whenever sel would keep different files.
// A missing, partial or corrupt cache file is read again from the layers,
// never an error; failing to write the cache file is not an error either.
func Cached(ctx context.Context, dir string, img v1.Image, sel Select, version string, seen Seen) (*FS, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("read the image's digest: %w", err)
	}
	vh := sha256.Sum256([]byte(version))
	file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.rootfs", d.Algorithm, d.Hex, hex.EncodeToString(vh[:8])))
	key := d.String() + "\n" + version
	if f, err := load(file, key); err == nil {
		return f, nil
	}
	f, err := ReadSeen(ctx, img, sel, seen)
	if err != nil {
		return nil, err
	}
	_ = f.save(dir, file, key) // best effort: the next call reads the layers again
	return f, nil
}

// cacheFile is the gob-encoded body of a cache file.
type cacheFile struct {
	Key     string
	Entries []cacheEntry
}

// cacheEntry is one node, parents before children.
type cacheEntry struct {
	Entry Entry
	Data  []byte
}

// save writes f to file atomically: a temporary file in dir renamed over
// it. The file is the format line, the SHA-256 of the body in hex and a
// newline, then the body.
func (f *FS) save(dir, file, key string) error {
	cf := cacheFile{Key: key}
	var walk func(n *node)
	walk = func(n *node) {
		for _, k := range sortedKids(n) {
			cf.Entries = append(cf.Entries, cacheEntry{Entry: k.e, Data: k.data})
			walk(k)
		}
	}
	walk(f.root)
	var body bytes.Buffer
	if err := gob.NewEncoder(&body).Encode(&cf); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sum := sha256.Sum256(body.Bytes())
	// The temporary name is the one the cache's stale-file cleanup knows.
	return atomicfile.Write(file, atomicfile.Options{Pattern: ".rootfs-*", Perm: 0o600}, func(out io.Writer) error {
		w := bufio.NewWriter(out)
		w.WriteString(cacheFormat)
		w.WriteString(hex.EncodeToString(sum[:]) + "\n")
		w.Write(body.Bytes())
		return w.Flush()
	})
}

// load reads a cache file written by save; any defect is an error.
func load(file, key string) (*FS, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	rest, ok := bytes.CutPrefix(b, []byte(cacheFormat))
	if !ok || len(rest) < 65 || rest[64] != '\n' {
		return nil, errors.New("not a cache file")
	}
	body := rest[65:]
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != string(rest[:64]) {
		return nil, errors.New("checksum mismatch")
	}
	var cf cacheFile
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&cf); err != nil {
		return nil, err
	}
	if cf.Key != key {
		return nil, errors.New("cache file for another image")
	}
	f := &FS{root: newRoot()}
	nodes := map[string]*node{"": f.root}
	for _, ce := range cf.Entries {
		e := ce.Entry
		if e.Path == "" || memberName(e.Path) != e.Path {
			return nil, fmt.Errorf("bad path %q", e.Path)
		}
		dir, base := path.Split(e.Path)
		parent := nodes[path.Clean("/" + dir)[1:]]
		if parent == nil || !parent.e.IsDir() {
			return nil, fmt.Errorf("%q has no parent directory", e.Path)
		}
		if e.Mode.IsRegular() && int64(len(ce.Data)) > e.Size {
			return nil, fmt.Errorf("%q has more content than its size", e.Path)
		}
		n := &node{e: e, data: ce.Data, src: srcRef{layer: -1}}
		if e.Mode&fs.ModeDir != 0 {
			n.kids = map[string]*node{}
		}
		parent.kids[base] = n
		nodes[e.Path] = n
	}
	return f, nil
}
