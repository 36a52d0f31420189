package deblayer

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestCheckXZ runs checkXZ on what xz(1) writes (one block, several
// blocks with sizes in their headers, concatenated streams, stream
// padding) and on damaged streams.
func TestCheckXZ(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz(1) not installed")
	}
	data := bytes.Repeat([]byte("kiln checks xz dictionaries\n"), 40000)
	xz := func(args ...string) []byte {
		cmd := exec.Command("xz", append([]string{"-c"}, args...)...)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz %v: %v", args, err)
		}
		return out
	}
	one := xz("-6")
	multi := xz("-T2", "--block-size=65536")
	tests := []struct {
		name    string
		stream  []byte
		wantErr string
	}{
		{"xz -6", one, ""},
		{"xz -9e", xz("-9e"), ""},
		{"multi-block", multi, ""},
		{"concatenated", append(append([]byte{}, one...), multi...), ""},
		{"padded", append(append([]byte{}, one...), 0, 0, 0, 0, 0, 0, 0, 0), ""},
		{"large dictionary", xz("--lzma2=dict=512MiB"), "dictionary"},
		{"truncated", one[:len(one)/2], "xz"},
		{"empty index", append([]byte{}, one[len(one)-12:]...), "xz"},
		{"garbage", []byte("not an xz stream at all"), "xz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkXZ(bytes.NewReader(tt.stream), int64(len(tt.stream)))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("checkXZ: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("checkXZ = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
