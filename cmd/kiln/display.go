package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/pkg/build"
)

// Progress modes of kiln build (--progress).
const (
	progressAuto  = "auto"  // tty on a terminal, else plain
	progressTTY   = "tty"   // a live display redrawn in place
	progressPlain = "plain" // one line per event
	progressQuiet = "quiet" // errors only
)

// redrawEvery is the shortest time between two redraws of the live
// display: at most 10 a second.
const redrawEvery = 100 * time.Millisecond

// plainEvery is how long plain progress stays silent while bytes move
// before it prints a line saying how far the build is (CI logs).
const plainEvery = 10 * time.Second

// chooseProgress turns --progress and -q into a mode: tty, plain or quiet.
func chooseProgress(flag string, quiet, terminal bool) (string, error) {
	switch flag {
	case progressAuto, progressTTY, progressPlain, progressQuiet:
	default:
		return "", fmt.Errorf("--progress %q: give auto, tty, plain or quiet", flag)
	}
	if quiet {
		if flag != progressAuto && flag != progressQuiet {
			return "", fmt.Errorf("-q means --progress=quiet, which contradicts --progress=%s: give one of them", flag)
		}
		return progressQuiet, nil
	}
	if flag == progressAuto {
		if terminal {
			return progressTTY, nil
		}
		return progressPlain, nil
	}
	return flag, nil
}

// terminalWidth is w's width in columns when it is a terminal, else 0.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// display is kiln build's progress on stderr: an io.Writer for the
// build's log lines. In plain mode it passes them on as they come; in tty
// mode it keeps them and draws instead a live area, a line per step
// (resolve; download with bytes and rate; build with the bytes written;
// upload; reused), redrawn in place at most every redrawEvery, and prints
// the kept lines when the build ends. Either way the warnings of the build
// steps (apt:, python:, commands:) are grouped, one line per package or
// kind with a count, unless verbose.
type display struct {
	w        io.Writer
	live     bool
	verbose  bool
	stamp    bool
	width    int
	now      func() time.Time
	meter    byteMeter
	uploaded func() int64

	mu        sync.Mutex
	start     time.Time
	lastDraw  time.Time
	drawn     int
	partial   []byte
	kept      []string
	warn      warningGroups
	resolve   string
	built     int
	reused    int
	lastBuilt string
	steps     map[string]time.Time
	rate      rateMeter
	pushed    v1.Update
	finished  bool
	lastOut   time.Time // plain: when a line was last printed
	beatDown  int64     // plain: the downloaded bytes the last heartbeat saw
	beatUp    int64     // plain: the uploaded bytes the last heartbeat saw

	stop chan struct{}
	wg   sync.WaitGroup
}

// displayOptions configure newDisplay.
type displayOptions struct {
	live, verbose bool
	// stamp prefixes every plain line with the seconds since the display
	// started (KILN_LOGTIME, for performance work).
	stamp    bool
	width    int              // columns of the terminal; 0 means 80
	now      func() time.Time // nil means time.Now
	meter    byteMeter        // nil means nothing is counted
	uploaded func() int64     // bytes uploaded so far; nil means none
}

// byteMeter is what the display reads of a build's progress (build.Meter).
type byteMeter interface {
	Downloaded() int64
	Writing() (layer string, layerBytes, total int64)
}

// newDisplay writes progress to w. Call Start to redraw on a timer, and
// Finish once the build is over.
func newDisplay(w io.Writer, o displayOptions) *display {
	d := &display{w: w, live: o.live, verbose: o.verbose, stamp: o.stamp, width: o.width, now: o.now, meter: o.meter, uploaded: o.uploaded,
		steps: map[string]time.Time{}}
	if d.width <= 0 {
		d.width = 80
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.meter == nil {
		d.meter = (*build.Meter)(nil)
	}
	if d.uploaded == nil {
		d.uploaded = func() int64 { return 0 }
	}
	d.start = d.now()
	return d
}

// Start redraws the live area every redrawEvery until Finish.
func (d *display) Start() {
	stop := make(chan struct{})
	d.stop = stop
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(redrawEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d.Tick()
			}
		}
	}()
}

// Push returns a channel for a registry push's updates, which the push
// closes when done.
func (d *display) Push() chan v1.Update {
	ch := make(chan v1.Update, 64)
	// Not waited for by Finish: a build that fails before its push never
	// closes ch.
	go func() {
		for u := range ch {
			if u.Error != nil || u.Total == 0 {
				continue
			}
			d.mu.Lock()
			d.pushed = u
			d.markLocked("upload")
			d.mu.Unlock()
		}
	}()
	return ch
}

// Write takes the build's log: whole lines are handled, a partial line
// waits for its end.
func (d *display) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.partial = append(d.partial, p...)
	for {
		i := bytes.IndexByte(d.partial, '\n')
		if i < 0 {
			break
		}
		line := string(d.partial[:i])
		d.partial = d.partial[i+1:]
		d.lineLocked(line)
	}
	if len(d.partial) == 0 {
		d.partial = nil
	}
	d.drawLocked(false)
	return len(p), nil
}

func (d *display) lineLocked(line string) {
	if !d.verbose && d.warn.add(line) {
		return
	}
	if !d.live {
		d.lastOut = d.now()
		if d.stamp {
			line = fmt.Sprintf("[%6.2fs] %s", d.lastOut.Sub(d.start).Seconds(), line)
		}
		fmt.Fprintln(d.w, line)
		return
	}
	d.kept = append(d.kept, line)
	switch {
	case strings.HasPrefix(line, "layer ") && strings.HasSuffix(line, "("+build.HowBuilt+")"):
		d.built++
		d.lastBuilt = line
		d.markLocked("build")
	case strings.HasPrefix(line, "layer ") && strings.Contains(line, "(reused "):
		d.reused++
		d.markLocked("reused")
	case strings.HasPrefix(line, "commands: "):
		d.lastBuilt = line
		d.markLocked("build")
	case strings.HasPrefix(line, "parent "), strings.HasPrefix(line, "python: "), strings.HasPrefix(line, "apt: "):
		d.resolve = line
		d.markLocked("resolve")
	}
}

func (d *display) markLocked(step string) { d.markAt(step, d.now()) }

// markAt records that step began at t, unless it began before.
func (d *display) markAt(step string, t time.Time) {
	if _, ok := d.steps[step]; !ok {
		d.steps[step] = t
	}
}

// Tick redraws the live area if redrawEvery has passed since the last
// redraw.
func (d *display) Tick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.live {
		d.heartbeatLocked()
		return
	}
	d.drawLocked(false)
}

// heartbeatLocked prints, in plain mode, a line saying how far the build
// is when it printed nothing for plainEvery while bytes moved: a long
// layer or download shows in a CI log.
func (d *display) heartbeatLocked() {
	if d.finished {
		return
	}
	now := d.now()
	if d.lastOut.IsZero() {
		d.lastOut = d.start
	}
	down := d.meter.Downloaded()
	d.rate.sample(now, down)
	if now.Sub(d.lastOut) < plainEvery {
		return
	}
	layer, layerBytes, _ := d.meter.Writing()
	up := d.uploaded()
	var line string
	switch {
	case layer != "":
		line = fmt.Sprintf("build: layer %s: %s written so far", layer, build.HumanBytes(layerBytes))
	case down != d.beatDown:
		line = fmt.Sprintf("download: %s so far, at %s/s", build.HumanBytes(down), build.HumanBytes(d.rate.perSecond()))
	case up != d.beatUp:
		line = fmt.Sprintf("upload: %s so far", build.HumanBytes(up))
	default:
		return
	}
	d.beatDown, d.beatUp = down, up
	fmt.Fprintln(d.w, line)
	d.lastOut = now
}

// lines is the live area: a header and a line per step begun.
func (d *display) linesLocked(now time.Time) []string {
	down := d.meter.Downloaded()
	layer, layerBytes, written := d.meter.Writing()
	d.rate.sample(now, down)
	if down > 0 {
		d.markAt("download", now)
	}
	if layer != "" {
		d.markAt("build", now)
	}
	up := d.uploaded()
	if up > 0 {
		d.markAt("upload", now)
	}
	if _, ok := d.steps["resolve"]; !ok {
		d.resolve = "reading the spec and the parent image"
	}
	out := []string{fmt.Sprintf("[+] kiln build %.1fs", now.Sub(d.start).Seconds())}
	row := func(step, text string) {
		since, ok := d.steps[step]
		if !ok && step != "resolve" {
			return
		}
		if !ok {
			since = d.start
		}
		out = append(out, fmt.Sprintf(" => %-8s %5.1fs  %s", step, now.Sub(since).Seconds(), text))
	}
	row("resolve", d.resolve)
	row("download", fmt.Sprintf("%s at %s/s", build.HumanBytes(down), build.HumanBytes(d.rate.perSecond())))
	switch {
	case layer != "":
		text := fmt.Sprintf("layer %s: %s written", layer, build.HumanBytes(layerBytes))
		if d.built > 0 {
			text += fmt.Sprintf(" (%d built before)", d.built)
		}
		row("build", text)
	case d.lastBuilt != "":
		row("build", fmt.Sprintf("%d layers built, %s written; last: %s", d.built, build.HumanBytes(written), d.lastBuilt))
	default:
		row("build", fmt.Sprintf("%s written", build.HumanBytes(written)))
	}
	upText := build.HumanBytes(up) + " uploaded"
	if d.pushed.Total > 0 {
		upText += fmt.Sprintf(" (push %s of %s)", build.HumanBytes(d.pushed.Complete), build.HumanBytes(d.pushed.Total))
	}
	row("upload", upText)
	row("reused", fmt.Sprintf("%d layers reused or mounted from a cache", d.reused))
	if n := d.warn.total(); n > 0 {
		out = append(out, fmt.Sprintf(" !! %d warnings, listed grouped at the end", n))
	}
	return out
}

// drawLocked redraws the live area in place, unless it was drawn less
// than redrawEvery ago (force: draw anyway).
func (d *display) drawLocked(force bool) {
	if !d.live || d.finished {
		return
	}
	now := d.now()
	if !force && d.drawn > 0 && now.Sub(d.lastDraw) < redrawEvery {
		return
	}
	d.lastDraw = now
	var b strings.Builder
	if d.drawn > 0 {
		fmt.Fprintf(&b, "\033[%dA", d.drawn)
	}
	lines := d.linesLocked(now)
	for _, l := range lines {
		b.WriteString("\r\033[K")
		b.WriteString(truncate(l, d.width-1))
		b.WriteString("\n")
	}
	b.WriteString("\033[J")
	io.WriteString(d.w, b.String())
	d.drawn = len(lines)
}

// truncate cuts s to n runes, ending it with "…" if cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if n < 1 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Finish stops redrawing, clears the live area and prints the kept lines
// (tty) and the grouped warnings.
func (d *display) Finish() {
	if d.stop != nil {
		close(d.stop)
		d.stop = nil
		d.wg.Wait()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.finished {
		return
	}
	if len(d.partial) > 0 {
		d.lineLocked(string(d.partial))
		d.partial = nil
	}
	d.finished = true
	if d.drawn > 0 {
		fmt.Fprintf(d.w, "\033[%dA\r\033[J", d.drawn)
		d.drawn = 0
	}
	for _, l := range d.kept {
		fmt.Fprintln(d.w, l)
	}
	for _, l := range d.warn.summary() {
		fmt.Fprintln(d.w, l)
	}
}

// rateMeter computes a recent rate from samples of a growing count.
type rateMeter struct {
	samples []rateSample
}

type rateSample struct {
	at time.Time
	n  int64
}

// rateWindow is how far back perSecond looks.
const rateWindow = 2 * time.Second

func (r *rateMeter) sample(at time.Time, n int64) {
	r.samples = append(r.samples, rateSample{at, n})
	for len(r.samples) > 2 && at.Sub(r.samples[1].at) >= rateWindow {
		r.samples = r.samples[1:]
	}
}

func (r *rateMeter) perSecond() int64 {
	if len(r.samples) < 2 {
		return 0
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return int64(float64(last.n-first.n) / dt)
}

// stepWarning matches a build step's warning line: "apt: warning: ...".
// kiln's own warnings ("warning: cache: ...": a corrupt cache file, a lock
// that does not rebuild) are never grouped.
var stepWarning = regexp.MustCompile(`^(apt|python|commands): warning: (.*)$`)

// debPackage matches "name:" or "name:arch:", a Debian package a warning
// is about.
var debPackage = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?:$`)

// reusedSuffix is what a reused step adds to its recorded warnings.
var reusedSuffix = regexp.MustCompile(` \((?:` + regexp.QuoteMeta(build.HowLocal) + `|` + regexp.QuoteMeta(build.HowRemote) + `)\)$`)

// warningGroup returns the group of a build step's warning line: its step
// and package ("apt: libfoo"), or, for a warning about no package, its
// step and kind (the message with paths and names elided); ok is false
// for a line that is no step warning.
func warningGroup(line string) (group string, pkg bool, ok bool) {
	m := stepWarning.FindStringSubmatch(line)
	if m == nil {
		return "", false, false
	}
	rest := reusedSuffix.ReplaceAllString(m[2], "")
	first, _, _ := strings.Cut(rest, " ")
	if debPackage.MatchString(first) {
		return m[1] + ": warning: " + strings.TrimSuffix(first, ":"), true, true
	}
	if i := strings.IndexAny(rest, ";,"); i > 0 {
		rest = rest[:i]
	}
	words := strings.Fields(rest)
	for i, w := range words {
		if strings.ContainsAny(w, "/`'\"0123456789") || (i == 1 && (words[0] == "alternative" || words[0] == "package")) {
			words[i] = "…"
		}
	}
	return m[1] + ": warning: " + strings.Join(words, " "), false, true
}

// warningGroups collects step warnings by group, in the order first seen.
type warningGroups struct {
	order []string
	byKey map[string]*warningGroupState
}

type warningGroupState struct {
	pkg   bool
	first string
	n     int
}

// add records line if it is a step warning and reports whether it was.
func (g *warningGroups) add(line string) bool {
	key, pkg, ok := warningGroup(line)
	if !ok {
		return false
	}
	if g.byKey == nil {
		g.byKey = map[string]*warningGroupState{}
	}
	s := g.byKey[key]
	if s == nil {
		s = &warningGroupState{pkg: pkg, first: line}
		g.byKey[key] = s
		g.order = append(g.order, key)
	}
	s.n++
	return true
}

func (g *warningGroups) total() int {
	n := 0
	for _, s := range g.byKey {
		n += s.n
	}
	return n
}

// summary is a line per group: the warning itself when it is alone, else
// the package or kind with a count.
func (g *warningGroups) summary() []string {
	var out []string
	for _, key := range g.order {
		s := g.byKey[key]
		switch {
		case s.n == 1:
			out = append(out, s.first)
		case s.pkg:
			out = append(out, fmt.Sprintf("%s: %d warnings (--explain or -v lists them)", key, s.n))
		default:
			out = append(out, fmt.Sprintf("%s: %d warnings like %q (--explain or -v lists them)", key, s.n, s.first))
		}
	}
	return out
}
