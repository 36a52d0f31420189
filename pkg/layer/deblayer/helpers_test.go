package deblayer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ent is one data.tar entry of a test package.
type ent struct {
	name     string
	typ      byte
	mode     int64
	link     string
	body     string
	uid, gid int
}

func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func file(name, body string) ent { return ent{name: name, typ: tar.TypeReg, mode: 0o644, body: body} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}

// testPkg describes a .deb built in memory.
type testPkg struct {
	control string            // without trailing newline
	members map[string]string // extra control.tar members (postinst, md5sums, ...)
	data    []ent
	dataExt string // "", ".gz"
}

func tarBytes(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Uid: e.uid, Gid: e.gid, Uname: "root", Gname: "root", ModTime: time.Unix(1700000000, 0)}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			io.WriteString(tw, e.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// build returns the .deb as a Deb named name.
func (p testPkg) build(t *testing.T, name string) Deb {
	t.Helper()
	ctrl := []ent{file("./control", p.control+"\n")}
	for k, v := range p.members {
		e := file("./"+k, v)
		if strings.HasSuffix(k, "inst") || strings.HasSuffix(k, "rm") {
			e.mode = 0o755
		}
		ctrl = append(ctrl, e)
	}
	data := tarBytes(t, p.data)
	dataName := "data.tar"
	switch p.dataExt {
	case ".gz":
		data = gz(t, data)
	case ".xz":
		var buf bytes.Buffer
		xw, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		xw.Write(data)
		xw.Close()
		data = buf.Bytes()
	case ".zst":
		zw, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		data = zw.EncodeAll(data, nil)
	}
	dataName += p.dataExt
	var buf bytes.Buffer
	buf.WriteString("!<arch>\n")
	member := func(name string, b []byte) {
		fmt.Fprintf(&buf, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(b))
		buf.Write(b)
		if len(b)%2 == 1 {
			buf.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.gz", gz(t, tarBytes(t, ctrl)))
	member(dataName, data)
	b := buf.Bytes()
	return Deb{Name: name, R: bytes.NewReader(b), Size: int64(len(b))}
}

// layerEntry is one entry read back from a written layer.
type layerEntry struct {
	hdr  *tar.Header
	body string
}

type layer struct {
	order  []string
	byName map[string]layerEntry
}

func readLayer(t *testing.T, b []byte) layer {
	t.Helper()
	l := layer{byName: map[string]layerEntry{}}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return l
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := l.byName[h.Name]; dup {
			t.Errorf("layer has %s twice", h.Name)
		}
		l.order = append(l.order, h.Name)
		l.byName[h.Name] = layerEntry{h, string(body)}
	}
}

func (l layer) get(t *testing.T, name string) layerEntry {
	t.Helper()
	e, ok := l.byName[name]
	if !ok {
		t.Fatalf("layer has no %s; it has %q", name, l.order)
	}
	return e
}

// writeLayer runs Write and returns the layer read back.
func writeLayer(t *testing.T, parent Parent, debs []Deb) (layer, Report, []byte) {
	t.Helper()
	return writeLayerOpts(t, parent, debs, Options{Epoch: time.Unix(1234567890, 0)})
}

// writeLayerOpts is writeLayer with options.
func writeLayerOpts(t *testing.T, parent Parent, debs []Deb, opts Options) (layer, Report, []byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	rep, err := Write(context.Background(), tw, parent, debs, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return readLayer(t, buf.Bytes()), rep, buf.Bytes()
}

func mergedUsr() map[string]string {
	return map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}
}
