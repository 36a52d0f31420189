package tarheader

import (
	"archive/tar"
	"bytes"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name string
		in   tar.Header
		want tar.Header
	}{
		{"directory gets a slash", tar.Header{Typeflag: tar.TypeDir, Name: "usr/lib", Mode: 0o40755},
			tar.Header{Typeflag: tar.TypeDir, Name: "usr/lib/", Mode: 0o755}},
		{"directory keeps one slash", tar.Header{Typeflag: tar.TypeDir, Name: "usr/lib/", Mode: 0o755},
			tar.Header{Typeflag: tar.TypeDir, Name: "usr/lib/", Mode: 0o755}},
		{"file loses a slash", tar.Header{Typeflag: tar.TypeReg, Name: "etc/x/", Mode: 0o644, Size: 3},
			tar.Header{Typeflag: tar.TypeReg, Name: "etc/x", Mode: 0o644, Size: 3}},
		{"names and times dropped, ids kept", tar.Header{Typeflag: tar.TypeReg, Name: "a", Mode: 0o104755, Uid: 7, Gid: 8, Uname: "lp", Gname: "lp",
			AccessTime: time.Now(), ChangeTime: time.Now(), ModTime: time.Now()},
			tar.Header{Typeflag: tar.TypeReg, Name: "a", Mode: 0o4755, Uid: 7, Gid: 8}},
		{"only xattrs kept", tar.Header{Typeflag: tar.TypeReg, Name: "bin/ping", Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01", "comment": "host", "mtime": "1.5"}},
			tar.Header{Typeflag: tar.TypeReg, Name: "bin/ping", Mode: 0o755, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Normalize(&tc.in, epoch.Add(700*time.Millisecond))
			tc.want.ModTime, tc.want.Format = epoch, tar.FormatPAX
			if got.Name != tc.want.Name || got.Mode != tc.want.Mode || got.Uid != tc.want.Uid || got.Gid != tc.want.Gid ||
				got.Uname != "" || got.Gname != "" || !got.ModTime.Equal(epoch) || !got.AccessTime.IsZero() || !got.ChangeTime.IsZero() ||
				got.Format != tar.FormatPAX || len(got.PAXRecords) != len(tc.want.PAXRecords) {
				t.Errorf("Normalize = %+v, want %+v", *got, tc.want)
			}
			for k, v := range tc.want.PAXRecords {
				if got.PAXRecords[k] != v {
					t.Errorf("PAXRecords[%q] = %q, want %q", k, got.PAXRecords[k], v)
				}
			}
		})
	}
}

// TestNormalizeBytes checks that two headers differing only in what the
// convention drops write the same bytes.
func TestNormalizeBytes(t *testing.T) {
	write := func(h *tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	epoch := time.Unix(1700000000, 0)
	a := write(Normalize(&tar.Header{Typeflag: tar.TypeDir, Name: "opt/venv", Mode: 0o755, Uname: "root", Gname: "root", Format: tar.FormatGNU}, epoch))
	b := write(New(tar.TypeDir, "opt/venv/", 0o755, epoch.Add(time.Millisecond)))
	if !bytes.Equal(a, b) {
		t.Error("headers that differ only in dropped fields write different bytes")
	}
}
