package deblayer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// arDeb wraps a control.tar.gz and a data member in a .deb.
func arDeb(ctrlTarGz []byte, dataName string, data []byte) []byte {
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
	member("control.tar.gz", ctrlTarGz)
	member(dataName, data)
	return buf.Bytes()
}

// FuzzWrite feeds arbitrary .debs to Write: input starting with the ar
// magic is used as the whole .deb, anything else as the data.tar of an
// otherwise valid package. Write must not panic or hang, must name the
// .deb in its errors, and on success must have written a well-formed tar
// whose entries all stay inside the image root and are neither devices
// nor whiteouts.
func FuzzWrite(f *testing.F) {
	ctrl := gz(f, tarBytes(f, []ent{file("./control", "Package: fz\nVersion: 1\nArchitecture: all\n"), file("./md5sums", "")}))
	seeds := [][]ent{
		{dir("./"), dir("./usr/"), dir("./usr/bin/"), file("./usr/bin/x", "#!/bin/sh\n"), symlink("./usr/bin/y", "x"), {name: "./usr/bin/z", typ: tar.TypeLink, link: "./usr/bin/x"}},
		{symlink("./a", "/etc"), file("./a/passwd", "root::0:0::/:/bin/sh\n")},
		{symlink("./usr/lib/l", "../../../../etc"), file("./etc/.wh.passwd", ""), {name: "./dev/null", typ: tar.TypeChar}},
		{file("/abs", "x"), file("./../up", "x"), {name: "./h", typ: tar.TypeLink, link: "../../etc/shadow"}},
		{dir("./etc/alternatives/"), symlink("./bin", "usr/bin"), file("./bin/sh", "x"), {name: "./run/p", typ: tar.TypeFifo}},
	}
	for _, s := range seeds {
		data := tarBytes(f, s)
		f.Add(data)
		f.Add(arDeb(ctrl, "data.tar.gz", gz(f, data)))
	}
	// The hostile corpus (internal/hostile).
	hostile, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "hostile", "*.deb"))
	for _, p := range hostile {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	parent := Parent{
		Symlinks: map[string]string{"bin": "usr/bin", "lib": "usr/lib", "var/run": "/run"},
		Files:    map[string][]byte{"etc/passwd": []byte("root:x:0:0:root:/root:/bin/bash\n"), "var/lib/dpkg/status": []byte("Package: base\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n")},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		deb := data
		if !bytes.HasPrefix(data, []byte("!<arch>\n")) {
			deb = arDeb(ctrl, "data.tar", data)
		}
		var out bytes.Buffer
		tw := tar.NewWriter(&out)
		_, err := Write(context.Background(), tw, parent, []Deb{{Name: "fz.deb", R: bytes.NewReader(deb), Size: int64(len(deb))}}, Options{})
		if err != nil {
			if !strings.Contains(err.Error(), "fz.deb") {
				t.Fatalf("error %q does not name the .deb", err)
			}
			return
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(&out)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("output tar: %v", err)
			}
			name := strings.TrimSuffix(h.Name, "/")
			if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name || strings.HasPrefix(name, "../") || name == ".." {
				t.Fatalf("entry %q is not a clean root-relative path", h.Name)
			}
			if strings.HasPrefix(path.Base(name), ".wh.") {
				t.Fatalf("entry %q is a whiteout", h.Name)
			}
			switch h.Typeflag {
			case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
				t.Fatalf("entry %q is a device or FIFO", h.Name)
			case tar.TypeSymlink:
				if escapes(name, h.Linkname) {
					t.Fatalf("symlink %q -> %q leaves the root", h.Name, h.Linkname)
				}
			case tar.TypeLink:
				if strings.HasPrefix(h.Linkname, "/") || strings.Contains("/"+h.Linkname+"/", "/../") {
					t.Fatalf("hard link %q -> %q leaves the root", h.Name, h.Linkname)
				}
			}
		}
	})
}
