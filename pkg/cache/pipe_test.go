package cache

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// failAfter accepts n bytes, then fails.
type failAfter struct {
	n   int
	got bytes.Buffer
}

func (f *failAfter) Write(b []byte) (int, error) {
	if f.got.Len()+len(b) > f.n {
		return 0, errors.New("disk full")
	}
	return f.got.Write(b)
}

func TestPipeWriter(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{3}))
	data := make([]byte, 5*pipeChunk+12345)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name    string
		limit   int    // bytes the destination accepts
		wantErr string // "" for success
	}{
		{"everything", len(data), ""},
		{"destination fails", 2 * pipeChunk, "compress layer: disk full"},
		{"destination fails on the last chunk", len(data) - 1, "compress layer: disk full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := &failAfter{n: tc.limit}
			p := newPipeWriter(dst, 2)
			var werr error
			for rest := data; len(rest) > 0 && werr == nil; {
				k := min(len(rest), 1+rng.IntN(3*pipeChunk/2))
				_, werr = p.Write(rest[:k])
				rest = rest[k:]
			}
			cerr := p.Close()
			if tc.wantErr == "" {
				if werr != nil || cerr != nil {
					t.Fatalf("Write: %v, Close: %v", werr, cerr)
				}
				if !bytes.Equal(dst.got.Bytes(), data) {
					t.Errorf("destination got %d bytes, not the %d written", dst.got.Len(), len(data))
				}
				return
			}
			if cerr == nil || !strings.Contains(cerr.Error(), tc.wantErr) {
				t.Errorf("Close: %v, want %q", cerr, tc.wantErr)
			}
			if _, err := p.Write([]byte("x")); err == nil {
				t.Error("Write after a failure succeeded")
			}
		})
	}
}

// TestBuildLayerBytesFixed pins the digests BuildLayer gives a fixed tar:
// compressing in a goroutine of its own, or zstd's two encoder goroutines,
// must not change a layer's bytes (the digests are those of kiln before
// either).
func TestBuildLayerBytesFixed(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{9}))
	data := make([]byte, 3*pipeChunk+777)
	for i := range data {
		if i%4 == 0 {
			data[i] = byte(rng.Uint32())
		} else {
			data[i] = "kiln layer "[i%11]
		}
	}
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		comp                 Compression
		wantDigest, wantDiff string
	}{
		{Compression{}, "790fc62a5f912cd82b1890c4c7726cd06a6963c22c1c59ab6993e8a56b83718e", "a19947280e163df82224e57bb9152eeb41af5727895c88d36e78f254ac9a3203"},
		{Compression{Algorithm: "gzip", Level: 1}, "c630e5bae9b1efea981feb84d5a4f3f442ba56b4b5bd4e91681b37b3e2304450", "a19947280e163df82224e57bb9152eeb41af5727895c88d36e78f254ac9a3203"},
		{Compression{Algorithm: "zstd"}, "48c103e41e28eeda2afe5637a80aaed3293a76e3862177242addf3a207d654db", "a19947280e163df82224e57bb9152eeb41af5727895c88d36e78f254ac9a3203"},
		{Compression{Algorithm: "zstd", Level: 4}, "e6bb7f4ea6b49c10d6a3d6d2ac5170036c5ce73d2679460a2c1fdb2745a148b6", "a19947280e163df82224e57bb9152eeb41af5727895c88d36e78f254ac9a3203"},
	} {
		t.Run(tc.comp.String(), func(t *testing.T) {
			info, err := c.BuildLayer(strings.Repeat("cd", 32)+tc.comp.String(), tc.comp, func(w io.Writer) error {
				for rest := data; len(rest) > 0; {
					k := min(len(rest), 1+rng.IntN(100000))
					if _, err := w.Write(rest[:k]); err != nil {
						return err
					}
					rest = rest[k:]
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if info.Digest.Hex != tc.wantDigest || info.DiffID.Hex != tc.wantDiff {
				t.Errorf("digest %s, diffID %s; want %s, %s", info.Digest.Hex, info.DiffID.Hex, tc.wantDigest, tc.wantDiff)
			}
		})
	}
}
