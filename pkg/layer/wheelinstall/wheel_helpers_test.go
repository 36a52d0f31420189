package wheelinstall_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
)

// zfile is one entry of a test wheel.
type zfile struct {
	name string
	data string
	mode uint32 // unix mode for the external attributes; 0 for none
	// store writes the entry uncompressed.
	store bool
	// noRecord leaves the file out of RECORD; badHash and badSize write a
	// wrong RECORD row.
	noRecord, badHash, badSize bool
}

// testWheel describes a wheel to build.
type testWheel struct {
	name, version string
	purelib       bool   // Root-Is-Purelib
	entryPoints   string // entry_points.txt, if not empty
	files         []zfile
	noRecord      bool // leave RECORD out
}

// build returns the wheel's bytes, with WHEEL, METADATA and RECORD made up
// unless files already has them.
func (w testWheel) build(t testing.TB) []byte {
	t.Helper()
	info := w.name + "-" + w.version + ".dist-info"
	files := append([]zfile(nil), w.files...)
	has := func(n string) bool {
		for _, f := range files {
			if f.name == n {
				return true
			}
		}
		return false
	}
	if !has(info + "/WHEEL") {
		files = append(files, zfile{name: info + "/WHEEL", data: fmt.Sprintf(
			"Wheel-Version: 1.0\nGenerator: kiln-test\nRoot-Is-Purelib: %v\nTag: py3-none-any\n", w.purelib)})
	}
	if !has(info + "/METADATA") {
		files = append(files, zfile{name: info + "/METADATA", data: fmt.Sprintf(
			"Metadata-Version: 2.1\nName: %s\nVersion: %s\n", strings.ReplaceAll(w.name, "_", "-"), w.version)})
	}
	if w.entryPoints != "" {
		files = append(files, zfile{name: info + "/entry_points.txt", data: w.entryPoints})
	}
	var record strings.Builder
	cw := csv.NewWriter(&record)
	for _, f := range files {
		if f.noRecord || strings.HasSuffix(f.name, "/") {
			continue
		}
		sum := sha256.Sum256([]byte(f.data))
		if f.badHash {
			sum[0] ^= 1
		}
		size := len(f.data)
		if f.badSize {
			size++
		}
		cw.Write([]string{f.name, "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]), fmt.Sprint(size)})
	}
	cw.Flush()
	if !w.noRecord && !has(info+"/RECORD") {
		record.WriteString(info + "/RECORD,,\n")
		files = append(files, zfile{name: info + "/RECORD", data: record.String()})
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
		if f.store {
			h.Method = zip.Store
		}
		if f.mode != 0 {
			h.CreatorVersion = 3 << 8 // unix
			h.ExternalAttrs = f.mode << 16
		}
		fw, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// filename is the wheel's file name.
func (w testWheel) filename() string {
	return w.name + "-" + w.version + "-py3-none-any.whl"
}
