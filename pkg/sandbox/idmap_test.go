package sandbox

import (
	"strings"
	"testing"
	"time"
)

func TestParseSubIDs(t *testing.T) {
	for _, tc := range []struct {
		name, file, user string
		uid              int
		want             IDRange
		ok               bool
	}{
		{"by name", "root:100000:65536\nkiln:200000:65536\n", "kiln", 1000, IDRange{1, 200000, 65536}, true},
		{"by uid", "1000:300000:1000\n", "kiln", 1000, IDRange{1, 300000, 1000}, true},
		{"first of several", "kiln:1:0\nkiln:400000:10\nkiln:500000:10\n", "kiln", 1000, IDRange{1, 400000, 10}, true},
		{"comments and junk", "# kiln:1:1\nkiln:x:1\nkiln:5\n\nkiln:600000:7\n", "kiln", 1000, IDRange{1, 600000, 7}, true},
		{"someone else", "other:100000:65536\n", "kiln", 1000, IDRange{}, false},
		{"prefix is not a match", "kilnx:100000:65536\n", "kiln", 1000, IDRange{}, false},
		{"empty", "", "kiln", 1000, IDRange{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseSubIDs(strings.NewReader(tc.file), tc.user, tc.uid)
			if err != nil || ok != tc.ok || got != tc.want {
				t.Errorf("parseSubIDs = %+v, %v, %v; want %+v, %v", got, ok, err, tc.want, tc.ok)
			}
		})
	}
}

func TestIDMapTranslate(t *testing.T) {
	m := IDMap{
		UIDs: []IDRange{{0, 1000, 1}, {1, 100000, 65536}},
		GIDs: []IDRange{{0, 1001, 1}, {1, 200000, 65536}},
	}
	for _, tc := range []struct {
		uid, gid, hostUID, hostGID int
		ok                         bool
	}{
		{0, 0, 1000, 1001, true},
		{100, 101, 100099, 200100, true},
		{65536, 65536, 165535, 265535, true},
		{65537, 0, 0, 1001, false},
	} {
		hu, hg, ok := m.ToHost(tc.uid, tc.gid)
		if ok != tc.ok || (ok && (hu != tc.hostUID || hg != tc.hostGID)) {
			t.Errorf("ToHost(%d, %d) = %d, %d, %v", tc.uid, tc.gid, hu, hg, ok)
		}
		if !tc.ok {
			continue
		}
		u, g, ok := m.ToInside(tc.hostUID, tc.hostGID)
		if !ok || u != tc.uid || g != tc.gid {
			t.Errorf("ToInside(%d, %d) = %d, %d, %v", tc.hostUID, tc.hostGID, u, g, ok)
		}
	}
	if m.single() || !SingleIDMap().single() {
		t.Error("single() is wrong")
	}
}

func TestExitErrorMessage(t *testing.T) {
	tb := &tailBuffer{max: 64}
	for i := range 30 {
		tb.Write([]byte(strings.Repeat("x", i%3) + "line\n"))
	}
	tb.Write([]byte("last"))
	tail := tb.lines(3)
	if tail != "xline\nxxline\nlast\n" || len(tb.buf) > 64 {
		t.Fatalf("tail = %q (held %d bytes)", tail, len(tb.buf))
	}
	for _, tc := range []struct {
		err  ExitError
		want string
	}{
		{ExitError{Command: []string{"make"}, Code: 2, Tail: tail}, `command ["make"] exited with status 2; its last output:` + "\nxline\nxxline\nlast"},
		{ExitError{Command: []string{"make"}, Code: -1, Signal: 9}, `command ["make"] killed by signal 9`},
		{ExitError{Command: []string{"make"}, Code: -1, TimedOut: true, Timeout: time.Minute}, `command ["make"] timed out after 1m0s`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestSkipped(t *testing.T) {
	for p, want := range map[string]bool{
		"proc": true, "proc/1": true, "dev/null": true, "tmp": true, "tmp/x": true,
		"etc/resolv.conf": true, "etc/hosts": true,
		"etc": false, "etc/hostname": false, "procs": false, "usr/tmp": false, "devices": false,
	} {
		if got := skipped(p); got != want {
			t.Errorf("skipped(%q) = %v", p, got)
		}
	}
}
