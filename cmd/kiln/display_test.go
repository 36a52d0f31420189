package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestChooseProgress(t *testing.T) {
	for _, tc := range []struct {
		flag     string
		quiet    bool
		terminal bool
		want     string
		err      string
	}{
		{"auto", false, true, progressTTY, ""},
		{"auto", false, false, progressPlain, ""},
		{"tty", false, false, progressTTY, ""},
		{"plain", false, true, progressPlain, ""},
		{"quiet", false, true, progressQuiet, ""},
		{"auto", true, true, progressQuiet, ""},
		{"quiet", true, false, progressQuiet, ""},
		{"tty", true, true, "", "contradicts --progress=tty"},
		{"fancy", false, true, "", `--progress "fancy": give auto, tty, plain or quiet`},
	} {
		got, err := chooseProgress(tc.flag, tc.quiet, tc.terminal)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("chooseProgress(%q, %v, %v) = %q, %v; want an error containing %q", tc.flag, tc.quiet, tc.terminal, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("chooseProgress(%q, %v, %v) = %q, %v; want %q", tc.flag, tc.quiet, tc.terminal, got, err, tc.want)
		}
	}
}

func TestWarningGroup(t *testing.T) {
	for _, tc := range []struct {
		line  string
		group string
		pkg   bool
		ok    bool
	}{
		{"apt: warning: libc-bin: postinst runs `ldconfig`; kiln does not run maintainer scripts", "apt: warning: libc-bin", true, true},
		{"apt: warning: libc6:amd64: conffile /etc/x is not shipped in data.tar", "apt: warning: libc6:amd64", true, true},
		{"apt: warning: libc-bin: postinst runs `ldconfig` (reused from the local cache)", "apt: warning: libc-bin", true, true},
		{"apt: warning: alternative editor points to /usr/bin/vim.basic, which this layer does not ship", "apt: warning: alternative … points to …", false, true},
		{"apt: warning: alternative pager points to /usr/bin/less, which this layer does not ship", "apt: warning: alternative … points to …", false, true},
		{"apt: warning: /etc/ld.so.conf.d/x.conf adds /opt/lib to the dynamic linker path; kiln writes no ld.so.cache", "apt: warning: … adds … to the dynamic linker path", false, true},
		{"commands: warning: only uid 0 is mapped", "commands: warning: only uid … is mapped", false, true},
		{"warning: cache: layer sha256:abc is corrupt on disk", "", false, false},
		{"layer apt: sha256:abc, 3 MiB (built)", "", false, false},
		{"python: warning", "", false, false},
	} {
		group, pkg, ok := warningGroup(tc.line)
		if group != tc.group || pkg != tc.pkg || ok != tc.ok {
			t.Errorf("warningGroup(%q) = %q, %v, %v; want %q, %v, %v", tc.line, group, pkg, ok, tc.group, tc.pkg, tc.ok)
		}
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// fakeMeter is a build.Meter the test sets.
type fakeMeter struct {
	mu                     sync.Mutex
	down, wrot, layerBytes int64
	layer                  string
}

func (m *fakeMeter) Downloaded() int64 { m.mu.Lock(); defer m.mu.Unlock(); return m.down }
func (m *fakeMeter) Writing() (string, int64, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.layer, m.layerBytes, m.wrot
}
func (m *fakeMeter) set(down, wrot int64, layer string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down, m.wrot, m.layer, m.layerBytes = down, wrot, layer, wrot
}

// syncBuilder is a strings.Builder safe for the display's goroutines.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const (
	tenWarnings = "apt: warning: libfoo: a\napt: warning: libfoo: b\napt: warning: libfoo: c\n" +
		"apt: warning: alternative x points to /a, which\napt: warning: alternative y points to /b, which\n" +
		"apt: warning: libbar: alone\n"
	groupedFoo = "apt: warning: libfoo: 3 warnings (--explain or -v lists them)"
	groupedAlt = `apt: warning: alternative … points to …: 2 warnings like "apt: warning: alternative x points to /a, which" (--explain or -v lists them)`
)

// TestDisplayPlain: plain mode passes lines on as they come, and groups
// the step warnings at the end unless verbose.
func TestDisplayPlain(t *testing.T) {
	var out syncBuilder
	d := newDisplay(&out, displayOptions{})
	d.Start()
	d.Write([]byte("parent a resolved to b\nlayer apt"))
	if got := out.String(); got != "parent a resolved to b\n" {
		t.Errorf("plain display wrote %q before the line ended", got)
	}
	d.Write([]byte(": sha256:1, 1 B (built)\n" + tenWarnings + "warning: cache: blob x is corrupt\n"))
	d.Finish()
	want := "parent a resolved to b\nlayer apt: sha256:1, 1 B (built)\nwarning: cache: blob x is corrupt\n" +
		groupedFoo + "\n" + groupedAlt + "\napt: warning: libbar: alone\n"
	if got := out.String(); got != want {
		t.Errorf("plain display wrote\n%s\nwant\n%s", got, want)
	}

	var verbose syncBuilder
	d = newDisplay(&verbose, displayOptions{verbose: true})
	d.Write([]byte(tenWarnings))
	d.Finish()
	if got := verbose.String(); got != tenWarnings {
		t.Errorf("verbose plain display wrote\n%s\nwant every warning as it came:\n%s", got, tenWarnings)
	}
}

// TestDisplayLive: the tty display draws a line per step begun, redraws in
// place at most every 100ms, shows the bytes written and downloaded with
// their rate, and ends with the build's lines and the grouped warnings.
func TestDisplayLive(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	m := &fakeMeter{}
	var up int64
	var out syncBuilder
	d := newDisplay(&out, displayOptions{live: true, width: 200, now: clk.Now, meter: m, uploaded: func() int64 { return up }})
	d.Write([]byte("parent reg/base resolved to sha256:abc\n"))
	first := out.String()
	for _, w := range []string{"[+] kiln build 0.0s", " => resolve    0.0s  parent reg/base resolved to sha256:abc"} {
		if !strings.Contains(first, w) {
			t.Errorf("first draw %q does not contain %q", first, w)
		}
	}
	if strings.Contains(first, "download") || strings.Contains(first, "\033[1A") {
		t.Errorf("first draw %q shows a step not begun, or moves up over nothing", first)
	}

	// 100 ticks in one second redraw at most 10 times.
	for i := range 100 {
		clk.Advance(10 * time.Millisecond)
		m.set(int64(i+1)<<20, 0, "")
		d.Tick()
	}
	draws := strings.Count(out.String(), "[+] kiln build")
	if draws < 2 || draws > 11 {
		t.Errorf("100 ticks over 1s drew %d times; want 2 to 11 (at most 10 a second)", draws)
	}
	last := out.String()[strings.LastIndex(out.String(), "\033[2A"):]
	for _, w := range []string{"[+] kiln build 1.0s", "100.0 MiB at 100.0 MiB/s"} {
		if !strings.Contains(last, w) {
			t.Errorf("redraw after 1s %q does not contain %q", last, w)
		}
	}

	// A layer being written shows its bytes, changing from draw to draw.
	m.set(100<<20, 5<<20, "apt packages")
	clk.Advance(time.Second)
	d.Tick()
	m.set(100<<20, 415<<20, "apt packages")
	clk.Advance(time.Second)
	d.Tick()
	s := out.String()
	if !strings.Contains(s, "layer apt packages: 5.0 MiB written") || !strings.Contains(s, "layer apt packages: 415.0 MiB written") {
		t.Errorf("the display did not show the layer's bytes growing:\n%q", s)
	}
	if !strings.Contains(s, "\033[3A") {
		t.Errorf("the display does not redraw in place (cursor up over its 3 lines):\n%q", s)
	}
	d.Write([]byte("layer apt packages: sha256:1, 100 MiB (built)\n" + tenWarnings))
	clk.Advance(time.Second)
	m.set(100<<20, 415<<20, "")
	up = 3 << 20
	d.Tick()
	s = out.String()
	tail := s[strings.LastIndex(s, "[+] kiln build"):]
	for _, w := range []string{"1 layers built, 415.0 MiB written", " => upload     0.0s  3.0 MiB uploaded", " !! 6 warnings"} {
		if !strings.Contains(tail, w) {
			t.Errorf("last draw %q does not contain %q", tail, w)
		}
	}
	if strings.Contains(s, "-0.") || strings.Contains(s, "s  -") {
		t.Errorf("the display shows a negative time:\n%q", s)
	}
	if strings.Contains(s, "libfoo: a") {
		t.Errorf("the live display printed a warning line before the end:\n%q", s)
	}
	before := len(s)
	d.Write([]byte("layers: 1 built, 0 reused from the local cache, 0 from cache_from; done in 4.0s\n"))
	d.Finish()
	end := out.String()[before:]
	want := "parent reg/base resolved to sha256:abc\nlayer apt packages: sha256:1, 100 MiB (built)\nlayers: 1 built, 0 reused from the local cache, 0 from cache_from; done in 4.0s\n" +
		groupedFoo + "\n" + groupedAlt + "\napt: warning: libbar: alone\n"
	if !strings.HasSuffix(end, want) || !strings.Contains(end, "\033[J") {
		t.Errorf("the display ended with\n%q\nwant the live area cleared and then\n%q", end, want)
	}
}

// TestDisplayConcurrent: the live display's timer, push updates and log
// lines from several goroutines share its state safely (run with -race),
// and Finish prints every line once.
func TestDisplayConcurrent(t *testing.T) {
	var out syncBuilder
	m := &fakeMeter{}
	d := newDisplay(&out, displayOptions{live: true, meter: m})
	d.Start()
	push := d.Push()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				d.Write([]byte("layer g" + string(rune('0'+g)) + ": sha256:1, 1 B (built)\n"))
				m.set(int64(i), int64(i), "x")
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for i := range 100 {
		push <- v1.Update{Complete: int64(i), Total: 100}
	}
	close(push)
	wg.Wait()
	time.Sleep(2 * redrawEvery)
	d.Finish()
	d.Finish() // a second Finish prints nothing more
	s := out.String()
	tail := s[strings.LastIndex(s, "\033[J")+len("\033[J"):]
	if n := strings.Count(tail, "(built)\n"); n != 200 {
		t.Errorf("Finish printed %d of the 200 lines", n)
	}
	if !strings.Contains(s, "[+] kiln build") {
		t.Error("the live display was never drawn")
	}
}

// TestDisplayPlainHeartbeat: plain progress prints a line saying how far
// the build is when bytes moved but nothing was printed for 10s, and
// stays silent otherwise.
func TestDisplayPlainHeartbeat(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	m := &fakeMeter{}
	var out syncBuilder
	d := newDisplay(&out, displayOptions{now: clk.Now, meter: m})
	d.Write([]byte("parent a resolved to b\n"))
	steps := []struct {
		advance time.Duration
		down    int64
		layer   string
		want    string // the line printed at this tick, "" for none
	}{
		{5 * time.Second, 10 << 20, "", ""},
		{4 * time.Second, 20 << 20, "", ""},
		{2 * time.Second, 30 << 20, "", "download: 30.0 MiB so far, at 5.0 MiB/s"},
		{11 * time.Second, 30 << 20, "", ""}, // nothing moved
		{1 * time.Second, 30 << 20, "code", "build: layer code: 30.0 MiB written so far"},
		{3 * time.Second, 30 << 20, "code", ""},
	}
	for i, st := range steps {
		before := out.String()
		clk.Advance(st.advance)
		m.set(st.down, st.down, st.layer)
		d.Tick()
		got := strings.TrimPrefix(out.String(), before)
		if want := st.want; (want == "" && got != "") || (want != "" && got != want+"\n") {
			t.Errorf("tick %d: printed %q, want %q", i, got, want)
		}
	}
	d.Finish()
	if strings.Contains(out.String(), "\033[") {
		t.Errorf("plain progress wrote an escape sequence:\n%q", out.String())
	}
}

// TestDisplayStamp: with stamp (KILN_LOGTIME) every plain line starts
// with the seconds since the display started; without it none does.
func TestDisplayStamp(t *testing.T) {
	for _, tc := range []struct {
		stamp bool
		want  string
	}{
		{false, "parent a resolved to b\nlayer code: x (built)\n"},
		{true, "[  0.00s] parent a resolved to b\n[  2.50s] layer code: x (built)\n"},
	} {
		clk := &fakeClock{t: time.Unix(1000, 0)}
		var out syncBuilder
		d := newDisplay(&out, displayOptions{now: clk.Now, stamp: tc.stamp})
		d.Write([]byte("parent a resolved to b\n"))
		clk.Advance(2500 * time.Millisecond)
		d.Write([]byte("layer code: x (built)\n"))
		d.Finish()
		if got := out.String(); got != tc.want {
			t.Errorf("stamp %v: printed %q, want %q", tc.stamp, got, tc.want)
		}
	}
}
