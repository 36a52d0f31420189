package build

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/sandbox"
)

// commandsStep runs the spec's commands, as one `/bin/sh -c`, in the
// sandbox (pkg/sandbox) over the parent's layers and the layers the build
// made before it, and keeps what they changed as one layer. It runs before
// the code step, or after it with commands_after_code (afterCode).
//
// Its key chains the parent's digest and every earlier step's key with the
// commands, their environment, the network flag, the platform and the
// sandbox's format version, so a hit needs no parent layer, no unpacking
// and no sandbox.
type commandsStep struct{ afterCode bool }

func (commandsStep) name() string { return StepCommands }

func (k commandsStep) inputs(_ context.Context, b *session) (map[string]string, bool, error) {
	s := b.p.Spec
	if len(s.Commands) == 0 || s.CommandsAfterCode != k.afterCode {
		return nil, false, nil
	}
	in := b.baseInputs()
	for _, st := range b.steps {
		in["step:"+st.name] = st.key // what the commands run over
	}
	in["commands"] = s.CommandsScript()
	in["env"] = hashValue(listValue(b.commandsEnv()))
	in["workdir"] = b.workdir()
	in["network"] = fmt.Sprint(s.CommandsNetwork)
	in["sandbox"] = sandbox.FormatVersion
	return in, true, nil
}

func (commandsStep) pin(context.Context, *session) (*cache.Pins, error) { return nil, nil }

func (k commandsStep) layers(ctx context.Context, b *session) ([]layer.Source, error) {
	s := b.p.Spec
	in, _, err := k.inputs(ctx, b)
	if err != nil {
		return nil, err
	}
	if b.parent.Scratch() {
		return nil, fmt.Errorf("commands: base_image is scratch, which has no /bin/sh to run them; use a parent image with a shell, such as debian:bookworm-slim")
	}
	plat, err := b.p.targetPlatform()
	if err != nil {
		return nil, err
	}
	if ex := sandbox.HowToRun(*plat, ""); !ex.OK() {
		return nil, fmt.Errorf("commands: cannot run programs for %s here: %s", s.Platform, ex.Reason)
	}
	timeout, err := s.CommandsTimeLimit()
	if err != nil {
		return nil, err
	}
	var below []v1.Layer
	parentLayers, err := b.o.Cache.Image(ctx, b.parent.Image).Layers()
	if err != nil {
		return nil, fmt.Errorf("commands: list the parent's layers: %w", err)
	}
	below = append(below, parentLayers...)
	for _, l := range b.built {
		below = append(below, l.layer)
	}
	return []layer.Source{&commandsLayer{
		key:      newStep(StepCommands, in).key,
		script:   s.CommandsScript(),
		commands: s.Commands,
		env:      b.commandsEnv(),
		dir:      b.workdir(),
		network:  s.CommandsNetwork,
		timeout:  timeout,
		platform: *plat,
		epoch:    b.p.Epoch,
		below:    below,
		cache:    b.o.Cache,
		log:      b.o.Log,
	}}, nil
}

func (commandsStep) resolution(*Plan) (map[string]string, error) { return nil, nil }

func (commandsStep) config() *cache.ConfigDelta { return nil }

func (commandsStep) warnings(srcs []layer.Source) []string {
	var out []string
	for _, src := range srcs {
		if cl, ok := src.(*commandsLayer); ok {
			out = append(out, cl.warnings()...)
		}
	}
	return out
}

// workdir is the image's working directory, where the commands start.
func (b *session) workdir() string {
	if b.p.Spec.Workdir != "" {
		return b.p.Spec.Workdir
	}
	return DefaultWorkdir
}

// commandsEnv is the environment the commands run with: the image's, as
// the steps so far make it (the virtualenv's PATH included), with
// HOME=/root unless the spec sets HOME, and SOURCE_DATE_EPOCH, so that
// tools that stamp times stamp the build's epoch.
func (b *session) commandsEnv() []string {
	s := b.p.Spec
	var parentEnv []string
	if !b.parent.Scratch() {
		if cf, err := b.parent.Image.ConfigFile(); err == nil {
			parentEnv = cf.Config.Env
		}
	}
	env := mergeEnv(parentEnv, s)
	for _, d := range b.configDeltas() {
		env = applyDelta(env, s, d)
	}
	if _, ok := s.EnvValue("HOME"); !ok {
		env = setEnv(env, "HOME", "/root")
	}
	return setEnv(env, "SOURCE_DATE_EPOCH", fmt.Sprint(b.p.Epoch.Unix()))
}

// commandsLayer is the layer the commands make: building it unpacks the
// layers below (each once per machine, see cache.Unpacked), runs the
// commands over them in the sandbox and writes what they changed.
type commandsLayer struct {
	key      string
	script   string
	commands []string
	env      []string
	dir      string
	network  bool
	timeout  time.Duration
	platform v1.Platform // the programs'
	epoch    time.Time
	below    []v1.Layer
	cache    *cache.Cache
	log      io.Writer

	warnLog // what the sandbox run warned of
}

// Key is the commands step's key: the layer's bytes depend on exactly its
// inputs (with the network on, on the network too: --explain says so).
func (l *commandsLayer) Key() string { return "commands\x00" + l.key }

// Description says what the layer holds: the commands, shortened.
func (l *commandsLayer) Description() string {
	d := "commands: " + strings.Join(l.commands, " && ")
	if r := []rune(d); len(r) > 100 {
		d = string(r[:100]) + "…"
	}
	return d
}

// WriteTar runs the commands and writes what they changed to tw.
func (l *commandsLayer) WriteTar(ctx context.Context, tw *tar.Writer) error {
	if err := sandbox.Available(); err != nil {
		return fmt.Errorf("commands: %w", err)
	}
	ids, warn := sandbox.HostIDMap()
	if warn != "" {
		l.addWarning("commands: warning: " + strings.TrimPrefix(warn, "sandbox: "))
	}
	l.logf("commands: preparing the %d layers below them (each unpacked once per machine)", len(l.below))
	lowers, err := unpackLowers(ctx, l.cache, l.below, ids)
	if err != nil {
		return fmt.Errorf("commands: %w", err)
	}
	scratch, err := l.cache.NewScratch(ids)
	if err != nil {
		return fmt.Errorf("commands: %w", err)
	}
	// What the commands left must go whatever happened to the build.
	defer scratch.Remove(context.WithoutCancel(ctx))
	out := &linePrefixer{w: l.log, prefix: "commands| "}
	l.logf("commands: running in the sandbox (network %s, time limit %s%s)", onOff(l.network), l.timeout, emulationNote(l.platform))
	res, err := sandbox.Run(ctx, sandbox.Config{
		Lowers:   lowers,
		Upper:    scratch.Upper,
		Work:     scratch.Work,
		Command:  []string{"/bin/sh", "-c", l.script},
		Env:      l.env,
		Dir:      l.dir,
		Network:  l.network,
		Timeout:  l.timeout,
		Stdout:   out,
		Stderr:   out,
		IDs:      ids,
		Platform: l.platform,
	})
	out.Flush()
	if err != nil {
		return fmt.Errorf("commands: %w", err)
	}
	return sandbox.WriteDiff(ctx, tw, scratch.Upper, sandbox.DiffOptions{
		IDs:         res.IDs,
		LowerExists: sandbox.LowerExists(lowers),
		Epoch:       l.epoch,
	})
}

func (l *commandsLayer) logf(format string, args ...any) {
	if l.log != nil {
		fmt.Fprintf(l.log, format+"\n", args...)
	}
}

// emulationNote says, for a log line, how a foreign platform's programs
// run in the sandbox (", linux/arm64 programs under ..."); "" when they
// run natively.
func emulationNote(p v1.Platform) string {
	ex := sandbox.HowToRun(p, "")
	if ex.Mode == sandbox.ExecNative {
		return ""
	}
	return fmt.Sprintf(", %s programs %s", p.OS+"/"+p.Architecture, ex)
}

// unpackLowers unpacks each of layers once per machine (mapped through
// ids) and returns their directories, lowest first, for a sandbox's
// overlay.
func unpackLowers(ctx context.Context, c *cache.Cache, layers []v1.Layer, ids sandbox.IDMap) ([]string, error) {
	lowers := make([]string, 0, len(layers))
	for _, ly := range layers {
		dir, err := c.Unpacked(ctx, ly, ids)
		if err != nil {
			return nil, err
		}
		lowers = append(lowers, dir)
	}
	return lowers, nil
}

// warnLog collects the warnings of a layer built in the sandbox, which
// may be written from the sandbox's output goroutines.
type warnLog struct {
	mu   sync.Mutex
	list []string
}

func (w *warnLog) addWarning(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, s)
}

func (w *warnLog) warnings() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// linePrefixer writes each complete line it is given to w with prefix,
// so that the commands' output stands apart from kiln's own lines. A nil
// w discards.
type linePrefixer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    bytes.Buffer
}

// Write implements io.Writer.
func (p *linePrefixer) Write(b []byte) (int, error) {
	if p.w == nil {
		return len(b), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadBytes('\n')
		if err != nil {
			p.buf.Write(line) // incomplete: keep it for the next write
			break
		}
		fmt.Fprintf(p.w, "%s%s", p.prefix, line)
	}
	if p.buf.Len() > maxLine { // a line without end: show what there is
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf.Bytes())
		p.buf.Reset()
	}
	return len(b), nil
}

// maxLine is the longest unfinished line linePrefixer holds back.
const maxLine = 16 << 10

// Flush writes what is left of an unfinished last line.
func (p *linePrefixer) Flush() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf.Len() > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf.Bytes())
		p.buf.Reset()
	}
}
