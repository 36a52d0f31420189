package aptrepo

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// bigPackages is an index of n stanzas with distinct names: larger than a
// pipe's buffer, so that the decoder and the parser run concurrently.
func bigPackages(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "Package: pkg%d\nVersion: 1.%d\nArchitecture: amd64\nDepends: libc6 (>= 2.36)\nDescription: package %d\n It does %d things.\nFilename: pool/main/p/pkg%d/pkg%d_1.%d_amd64.deb\nSize: %d\nSHA256: %064x\n\n", i, i, i, i, i, i, i, 100+i, i)
	}
	return b.String()
}

// TestDecodeAndParse checks that every decoder gives the index the
// uncompressed file does, and that a corrupt stream or a bad stanza
// fails naming the stage, the URL and the cause, with the decompression
// running concurrently with the parse.
func TestDecodeAndParse(t *testing.T) {
	xzPath, _ := exec.LookPath("xz")
	good := bigPackages(3000)
	want, err := ParsePackages(strings.NewReader(good), "http://h/debian")
	if err != nil {
		t.Fatal(err)
	}
	bad := good + "Package: broken\nVersion: 1\n\n" + bigPackages(100)
	corrupt := func(b []byte) []byte {
		b = append([]byte(nil), b...)
		b[len(b)/2] ^= 0xff
		return b
	}
	type decoder struct {
		name, ext string
		compress  func(testing.TB, []byte) []byte
		opts      IndexOptions
	}
	decoders := []decoder{
		{"built-in xz", ".xz", xzBytes, IndexOptions{}},
		{"gzip", ".gz", gzBytes, IndexOptions{}},
		{"uncompressed", "", func(_ testing.TB, b []byte) []byte { return b }, IndexOptions{}},
	}
	if xzPath != "" {
		decoders = append(decoders, decoder{"xz(1)", ".xz", xzBytes, IndexOptions{XZ: xzPath}})
	} else {
		t.Log("no xz(1) on this machine: only the built-in decoder is tested")
	}
	const url = "http://h/debian/dists/bookworm/main/binary-amd64/Packages"
	for _, d := range decoders {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			got, err := decodeAndParse(ctx, d.compress(t, []byte(good)), "Packages"+d.ext, url, "http://h/debian", d.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %d packages, not the %d the uncompressed index gives", len(got), len(want))
			}
			_, err = decodeAndParse(ctx, d.compress(t, []byte(bad)), "Packages"+d.ext, url, "http://h/debian", d.opts)
			if err == nil || !strings.Contains(err.Error(), "parse "+url) || !strings.Contains(err.Error(), `package "broken" has no Architecture`) {
				t.Errorf("a stanza without Architecture: error %v, want it to say parse %s and name the package", err, url)
			}
			if d.ext == "" {
				return
			}
			// An index decompressing past the bound is cut short, not
			// decompressed to its end.
			capped := d.opts
			capped.maxDecoded = int64(len(good)) / 2
			huge := d.compress(t, []byte(good))
			_, err = decodeAndParse(ctx, huge, "Packages"+d.ext, url, "http://h/debian", capped)
			if !errors.Is(err, errDecodedTooLarge) {
				t.Errorf("an index past the bound: error %v, want %v", err, errDecodedTooLarge)
			}
			_, err = decodeAndParse(ctx, corrupt(d.compress(t, []byte(good))), "Packages"+d.ext, url, "http://h/debian", d.opts)
			if err == nil || !strings.Contains(err.Error(), "decompress "+url) {
				t.Errorf("a corrupt stream: error %v, want it to say decompress %s", err, url)
			}
		})
	}
}
