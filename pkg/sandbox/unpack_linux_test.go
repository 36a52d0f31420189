//go:build linux

package sandbox_test

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUnpack(t *testing.T) {
	for _, u := range users(t) {
		t.Run(u.name, func(t *testing.T) {
			d := userDir(t, u)
			layer := filepath.Join(d, "layer.tar")
			f, err := os.Create(layer)
			must(t, err)
			tw := tar.NewWriter(f)
			mtime := time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)
			for _, e := range []struct {
				h    tar.Header
				body string
			}{
				{tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
				{tar.Header{Name: "etc/secret/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 100, Gid: 101}, ""},
				{tar.Header{Name: "etc/secret/key", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 100, Gid: 101}, "k\n"},
				{tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755}, "su\n"},
				{tar.Header{Name: "usr/bin/su2", Typeflag: tar.TypeLink, Linkname: "usr/bin/su"}, ""},
				{tar.Header{Name: "usr/bin/x", Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: map[string]string{"SCHILY.xattr.user.kiln": "v"}}, "x"},
				{tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: "/"}, ""},
				{tar.Header{Name: "lnk/escaped", Typeflag: tar.TypeReg, Mode: 0o644}, "no\n"},
				{tar.Header{Name: "../../outside", Typeflag: tar.TypeReg, Mode: 0o644}, "no\n"},
				{tar.Header{Name: ".wh.gone", Typeflag: tar.TypeReg}, ""},
				{tar.Header{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
				{tar.Header{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg}, ""},
				{tar.Header{Name: "opq/keep", Typeflag: tar.TypeReg, Mode: 0o644}, ""},
				{tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}, ""},
			} {
				h := e.h
				h.Size, h.ModTime, h.Format = int64(len(e.body)), mtime, tar.FormatPAX
				must(t, tw.WriteHeader(&h))
				_, err := tw.Write([]byte(e.body))
				must(t, err)
			}
			must(t, tw.Close())
			must(t, f.Close())

			bottom := filepath.Join(d, "bottom")
			for _, p := range []string{"gone", "opq/old"} {
				must(t, os.MkdirAll(filepath.Dir(filepath.Join(bottom, p)), 0o755))
				must(t, os.WriteFile(filepath.Join(bottom, p), nil, 0o644))
			}
			unpacked := filepath.Join(d, "unpacked")
			must(t, os.Mkdir(unpacked, 0o755))
			chownTree(t, d, u.uid, u.gid)
			base := rootfs(t, u)
			r := runAs(t, u, request{
				Unpack:  []unpackRequest{{layer, unpacked}},
				Lowers:  []string{base, bottom, unpacked},
				Command: sh("ls /gone 2>&1 || true; ls /opq; cat /etc/secret/key; stat -c '%u:%g %a %Y' /etc/secret /etc/secret/key /usr/bin/su; stat -c %h /usr/bin/su2; ls /dev/null"),
			}).mustSucceed(t)
			want := "ls: cannot access '/gone': No such file or directory\nkeep\nk\n"
			owner := "100:101"
			if len(u.ids.UIDs) == 1 {
				owner = "0:0" // unmapped owners stay the caller's
			}
			want += owner + " 700 1612325106\n" + owner + " 600 1612325106\n0:0 4755 1612325106\n2\n/dev/null\n"
			if r.Output != want {
				t.Errorf("inside:\n%s\nwant:\n%s", r.Output, want)
			}
			for _, p := range []string{"escaped", "outside"} {
				if _, err := os.Lstat(filepath.Join(unpacked, p)); err != nil {
					t.Errorf("%s did not land inside the layer: %v", p, err)
				}
			}
			for _, p := range []string{"/escaped", filepath.Join(filepath.Dir(d), "outside"), filepath.Join(d, "outside")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("Unpack wrote %s outside the layer", p)
				}
			}
			var st syscallStat
			must(t, statT(filepath.Join(unpacked, "etc/secret/key"), &st))
			if hu, hg, _ := u.ids.ToHost(100, 101); len(u.ids.UIDs) > 1 && (int(st.Uid) != hu || int(st.Gid) != hg) {
				t.Errorf("host owner of etc/secret/key = %d:%d, want %d:%d", st.Uid, st.Gid, hu, hg)
			}
			if !strings.Contains(r.Output, "keep") || strings.Contains(r.Output, "old") {
				t.Errorf("opq is not opaque: %s", r.Output)
			}
		})
	}
}
