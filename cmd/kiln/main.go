// Command kiln builds OCI images for Python and ML workloads from a
// declarative spec, with no Docker daemon and no root.
//
// Usage:
//
//	kiln build  [SPEC] [flags]   build and publish the image
//	kiln lock   [SPEC] [flags]   pin the parent and every package in kiln.lock
//	kiln name   [SPEC] [flags]   print the image reference (offline)
//	kiln exists [SPEC] [flags]   exit 0 if the image is in the registry, 1 if not, 2 if unknown
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/build"
	"github.com/kiln-build/kiln/pkg/bundle"
	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/push"
	"github.com/kiln-build/kiln/pkg/sandbox"
	"github.com/kiln-build/kiln/pkg/sbom"
	"github.com/kiln-build/kiln/pkg/spec"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the build failed (or, for exists: the image is absent)
	exitUsage   = 2 // usage or spec error (or, for exists: cannot tell)
	exitSIGINT  = 130
	exitSIGTERM = 143
)

// usageError marks errors in how kiln was called.
type usageError struct{ error }

func main() {
	sandbox.Main() // a re-executed sandbox child does its work and exits here
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `kiln builds container images for Python and ML workloads, without a daemon or root.

Usage:
  kiln build  [SPEC] [flags]           build the image and publish it
  kiln lock   [SPEC] [flags]           pin the parent and every package in kiln.lock
  kiln name   [SPEC] [flags]           print the image reference (offline)
  kiln exists [SPEC] [flags]           exit 0 if the image is in the registry, 1 if not, 2 if kiln cannot tell
  kiln sbom   [SPEC] [flags]           print the SBOM attached to the image (--sbom-format spdx|cyclonedx)
  kiln bundle [SPEC] -o DIR            write the parent, every file kiln.lock pins and the lock to DIR,
                                       for kiln build --locked --from-bundle DIR across an air gap
  kiln cache prune --max-size SIZE     shrink the local cache to SIZE (e.g. 10G), least recently used first
  kiln version                         print kiln's version and its layer format version (also --version)

SPEC is a spec file or a directory holding kiln.yaml (default ./kiln.yaml); -f FILE names it too.

Run "kiln build --help" for the flags; every spec key is also a flag.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		if err := cmdVersion(args[1:], stdout); err != nil {
			fmt.Fprintln(stderr, "kiln:", err)
			return exitUsage
		}
		return exitOK
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	defer startProfiling(stderr)()
	sig := watchSignals(context.Background(), stderr)
	defer sig.stop()
	ctx := sig.ctx

	var err error
	switch args[0] {
	case "build":
		err = cmdBuild(ctx, args[1:], stdout, stderr)
	case "name":
		err = cmdName(ctx, args[1:], stdout, stderr)
	case "lock":
		err = cmdLock(ctx, args[1:], stdout, stderr)
	case "exists":
		code := cmdExists(ctx, args[1:], stdout, stderr)
		if c, ok := sig.exitCode(); ok && code != exitOK {
			return c
		}
		return code
	case "cache":
		err = cmdCache(args[1:], stdout, stderr)
	case "sbom":
		err = cmdSBOM(ctx, args[1:], stdout, stderr)
	case "bundle":
		err = cmdBundle(ctx, args[1:], stdout, stderr)
	default:
		err = usageError{fmt.Errorf("unknown command %q; use build, lock, name, exists, sbom, bundle, cache or version", args[0])}
	}
	if err == nil {
		return exitOK
	}
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if c, ok := sig.exitCode(); ok {
		fmt.Fprintln(stderr, "kiln: interrupted; temporary files removed")
		return c
	}
	fmt.Fprintln(stderr, "kiln:", err)
	var se *spec.Error
	var ue usageError
	if errors.As(err, &se) || errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailed
}

// common are the flags every command shares: the spec file, every spec key,
// and registry access.
type common struct {
	fs       *pflag.FlagSet
	file     string
	specs    *spec.Flags
	insecure bool
	caFiles  []string
	lockFile string
	locked   bool
	cacheDir string

	registryTimeout, stallTimeout time.Duration
}

func newCommon(cmd string, stderr io.Writer) *common {
	c := &common{fs: pflag.NewFlagSet("kiln "+cmd, pflag.ContinueOnError)}
	c.fs.SetOutput(stderr)
	c.fs.SortFlags = false
	c.fs.StringVarP(&c.file, "file", "f", "", "spec file (default ./kiln.yaml; with no file, flags alone describe the image)")
	c.fs.BoolVar(&c.insecure, "insecure", false, "allow plain HTTP and self-signed certificates for registries")
	c.fs.StringArrayVar(&c.caFiles, "registry-ca", nil, "PEM file of extra CAs to trust for registries (repeatable)")
	c.fs.DurationVar(&c.registryTimeout, "registry-timeout", auth.DefaultTimeout, "give up on a failing registry after retrying an operation this long")
	c.fs.DurationVar(&c.stallTimeout, "registry-stall-timeout", auth.DefaultStallTimeout, "abandon and retry a registry request that transfers nothing for this long")
	c.fs.StringVar(&c.lockFile, "lock", "", "lock file (default kiln.lock beside the spec)")
	c.fs.BoolVar(&c.locked, "locked", false, "install exactly what the lock file pins, fetching no index")
	c.fs.StringVar(&c.cacheDir, "cache-dir", "", "cache directory (default $XDG_CACHE_HOME/kiln)")
	c.specs = spec.AddFlags(c.fs)
	return c
}

// load parses args, reads the spec and applies flag overrides. Reading the
// spec stops when ctx is done (a FIFO nobody writes).
func (c *common) load(ctx context.Context, args []string) (*spec.Spec, auth.Options, error) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, auth.Options{}, err
		}
		return nil, auth.Options{}, usageError{err}
	}
	file, err := specPath(c.file, c.fs.Args())
	if err != nil {
		return nil, auth.Options{}, err
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"registry-timeout", c.registryTimeout}, {"registry-stall-timeout", c.stallTimeout}} {
		if d.v <= 0 {
			return nil, auth.Options{}, usageError{fmt.Errorf("--%s %s: give a positive duration, e.g. --%s %s", d.flag, d.v, d.flag, c.fs.Lookup(d.flag).DefValue)}
		}
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, auth.Options{}, err
	}
	var s *spec.Spec
	switch {
	case file != "":
		s, err = spec.LoadContext(ctx, file)
	case fileExists(spec.DefaultFile):
		s, err = spec.LoadContext(ctx, spec.DefaultFile)
	default:
		s = &spec.Spec{Dir: cwd}
	}
	if err != nil {
		return nil, auth.Options{}, err
	}
	if err := c.specs.Apply(s, cwd); err != nil {
		return nil, auth.Options{}, err
	}
	s.DefaultBase = os.Getenv(spec.DefaultBaseEnv)
	if err := s.Validate(); err != nil {
		return nil, auth.Options{}, err
	}
	a := auth.Options{RegistryConfig: s.RegistryConfig, Insecure: c.insecure, CAFiles: c.caFiles,
		Retry: auth.RetryPolicy{Timeout: c.registryTimeout, StallTimeout: c.stallTimeout, Log: c.fs.Output()}}
	if env := os.Getenv("SSL_CERT_FILE"); env != "" {
		a.CAFiles = append(a.CAFiles, env)
	}
	return s, a, nil
}

// specPath chooses the spec file from -f (flag) and the positional
// arguments: at most one of them, a file or a directory holding kiln.yaml.
// It returns "" when neither is given.
func specPath(flag string, args []string) (string, error) {
	switch {
	case len(args) > 1:
		return "", usageError{fmt.Errorf("unexpected argument %q; give one spec file or directory", args[1])}
	case len(args) == 0:
		return flag, nil
	case flag != "":
		return "", usageError{fmt.Errorf("both -f %s and the argument %s name a spec; give one of them", flag, args[0])}
	}
	arg := args[0]
	fi, err := os.Stat(arg)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", usageError{fmt.Errorf("%s: no such spec file or directory; give a spec file, or a directory holding %s", arg, spec.DefaultFile)}
	case err != nil:
		return "", usageError{fmt.Errorf("%s: cannot read the spec: %w", arg, err)}
	case !fi.IsDir():
		return arg, nil
	}
	file := filepath.Join(arg, spec.DefaultFile)
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return "", usageError{fmt.Errorf("%s: the directory holds no %s; write one there, or give the spec file itself", arg, spec.DefaultFile)}
	}
	return file, nil
}

// plan reads the lock (with --locked) and makes the build's plan. It reads
// only local files, but they may be FIFOs or huge trees: it returns as soon
// as ctx is done.
func (c *common) plan(ctx context.Context, s *spec.Spec, a auth.Options) (*build.Plan, error) {
	return interruptible(ctx, func() (*build.Plan, error) { return c.planFiles(ctx, s, a) })
}

func (c *common) planFiles(ctx context.Context, s *spec.Spec, a auth.Options) (*build.Plan, error) {
	epoch, err := build.EpochFromEnv()
	if err != nil {
		return nil, usageError{err}
	}
	po := build.PlanOptions{Epoch: epoch, NameOptions: a.NameOptions()}
	if c.locked {
		l, err := lock.Read(c.lockPath(s))
		if err != nil {
			return nil, usageError{err}
		}
		po.Lock = l
	}
	return build.NewPlan(ctx, s, po)
}

// lockPath is --lock, or kiln.lock beside the spec.
func (c *common) lockPath(s *spec.Spec) string {
	if c.lockFile != "" {
		return c.lockFile
	}
	return filepath.Join(s.Dir, lock.FileName)
}

// cache opens --cache-dir or the default cache.
func (c *common) cache() (*cache.Cache, error) {
	dir := c.cacheDir
	if dir == "" {
		var err error
		if dir, err = cache.DefaultDir(); err != nil {
			return nil, usageError{err}
		}
	}
	return cache.Open(dir)
}

// sharedCache opens the cache and takes its shared lock, which a build
// holds so that kiln cache prune waits for it, then removes the temporary
// files that killed builds left (saying so on log, unless it is nil).
func (c *common) sharedCache(log io.Writer) (*cache.Cache, *cache.Lock, error) {
	store, err := c.cache()
	if err != nil {
		return nil, nil, err
	}
	held, err := store.Share()
	if err != nil {
		return nil, nil, err
	}
	res, err := store.RemoveStale()
	if err != nil {
		held.Release()
		return nil, nil, err
	}
	if res.Removed > 0 && log != nil {
		fmt.Fprintf(log, "cache: removed %d temporary files (%s) left by killed builds\n", res.Removed, build.HumanBytes(res.RemovedBytes))
	}
	return store, held, nil
}

func cmdLock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommon("lock", stderr)
	withLayers := c.fs.Bool("with-layers", false, "also build every step from the pinned inputs and pin its layers' digests, which kiln build --locked checks cache hits against")
	s, a, err := c.load(ctx, args)
	if err != nil {
		return err
	}
	if c.locked {
		return usageError{errors.New("--locked makes no sense for kiln lock, which writes the lock")}
	}
	p, err := c.plan(ctx, s, a)
	if err != nil {
		return err
	}
	store, held, err := c.sharedCache(stderr)
	if err != nil {
		return err
	}
	defer held.Release()
	l, err := build.Lock(ctx, p, build.Options{Auth: a, Cache: store, Log: stderr, Refresh: true, LockLayers: *withLayers})
	if err != nil {
		return err
	}
	path := c.lockPath(s)
	if err := lock.Write(path, l); err != nil {
		return err
	}
	for _, pl := range l.Platforms {
		printPinned(stderr, pl.Platform+": ", pl, *withLayers)
	}
	if len(l.Platforms) == 0 {
		printPinned(stderr, "", l, *withLayers)
	}
	fmt.Fprintln(stdout, path)
	return nil
}

// printPinned says what l pins, after prefix.
func printPinned(w io.Writer, prefix string, l *lock.Lock, withLayers bool) {
	if withLayers {
		fmt.Fprintf(w, "%spinned the parent, %d Debian packages, %d wheels and the layers of %d steps\n", prefix, len(l.Debs), len(l.Wheels), len(l.Steps))
	} else {
		fmt.Fprintf(w, "%spinned the parent, %d Debian packages and %d wheels\n", prefix, len(l.Debs), len(l.Wheels))
	}
}

func cmdName(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommon("name", stderr)
	s, a, err := c.load(ctx, args)
	if err != nil {
		return err
	}
	p, err := c.plan(ctx, s, a)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, p.Display())
	return nil
}

func cmdExists(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommon("exists", stderr)
	s, a, err := c.load(ctx, args)
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	var p *build.Plan
	if err == nil {
		p, err = c.plan(ctx, s, a)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kiln:", err)
		return exitUsage
	}
	if !s.HasRegistry() {
		fmt.Fprintln(stderr, "kiln: the spec names no registry, so there is nothing to ask; set registry or image")
		return exitUsage
	}
	ok, err := build.Exists(ctx, p, a)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "kiln: cannot tell whether %s exists: %v\n", p.Ref, err)
		return exitUsage
	case ok:
		fmt.Fprintln(stdout, p.Ref)
		return exitOK
	}
	fmt.Fprintf(stderr, "kiln: %s does not exist\n", p.Ref)
	return exitFailed
}

// buildFlags are the flags only kiln build has.
type buildFlags struct {
	layoutDir, tarPath, comp, cacheTo string
	level                             int
	force, quiet, refresh, explain    bool
	verbose                           bool
	progress                          string
	verifyCache                       bool
	sbom                              bool
	sbomFormat, fromBundle            string
}

func newBuildFlags(stderr io.Writer) (*common, *buildFlags) {
	c := newCommon("build", stderr)
	bf := &buildFlags{}
	c.fs.StringVar(&bf.layoutDir, "oci-layout", "", "also write an OCI image layout to DIR")
	c.fs.StringVar(&bf.tarPath, "tarball", "", "also write a docker-archive (podman load -i) to FILE")
	c.fs.StringVar(&bf.comp, "compression", "gzip", "layer compression: gzip or zstd")
	c.fs.IntVar(&bf.level, "compression-level", 0, "compression level (0: the algorithm's default)")
	c.fs.BoolVar(&bf.force, "force", false, "build and push even if the image already exists")
	c.fs.BoolVarP(&bf.quiet, "quiet", "q", false, "print nothing on stderr but errors (--progress=quiet)")
	c.fs.StringVar(&bf.progress, "progress", progressAuto, "progress on stderr: auto (tty on a terminal, else plain), tty (a live display redrawn in place), plain (a line per event) or quiet")
	c.fs.BoolVarP(&bf.verbose, "verbose", "v", false, "print every warning as it comes instead of one line per package or kind with a count")
	c.fs.BoolVar(&bf.refresh, "refresh", false, "ignore cached layers: re-resolve every input and rebuild")
	c.fs.BoolVar(&bf.explain, "explain", false, "print, per layer, its key's inputs, where it came from and, for a miss, what changed")
	c.fs.StringVar(&bf.cacheTo, "cache-to", "", "also push the image and its layer map to this reference, for later cache_from")
	c.fs.BoolVar(&bf.verifyCache, "verify-cache", false, "rebuild every step a cache offers and fail, naming the step, if its layers differ")
	c.fs.BoolVar(&bf.sbom, "sbom", true, "attach an SBOM of every package to the image (an OCI referrer); --sbom=false attaches none")
	c.fs.StringVar(&bf.sbomFormat, "sbom-format", "spdx", "SBOM format: spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON)")
	c.fs.StringVar(&bf.fromBundle, "from-bundle", "", "with --locked: take the parent and every pinned file from this kiln bundle directory, reaching nothing but the registry")
	return c, bf
}

func cmdBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, bf := newBuildFlags(stderr)
	layoutDir, tarPath, force := &bf.layoutDir, &bf.tarPath, &bf.force
	s, a, err := c.load(ctx, args)
	if err != nil {
		return err
	}
	mode, err := chooseProgress(bf.progress, bf.quiet, isTerminal(stderr))
	if err != nil {
		return usageError{err}
	}
	quiet := mode == progressQuiet
	compression := cache.Compression{Algorithm: bf.comp, Level: bf.level}
	if err := compression.Validate(); err != nil {
		return usageError{fmt.Errorf("--compression: %w", err)}
	}
	var bd *bundle.Bundle
	if bf.fromBundle != "" {
		if !c.locked {
			return usageError{errors.New("--from-bundle installs what the bundle's kiln.lock pins: add --locked")}
		}
		if bd, err = bundle.Open(bf.fromBundle); err != nil {
			return usageError{fmt.Errorf("--from-bundle: %w", err)}
		}
	}
	var sbomFormat sbom.Format
	if bf.sbom {
		if sbomFormat, err = sbom.ParseFormat(bf.sbomFormat); err != nil {
			return usageError{fmt.Errorf("--sbom-format: %w", err)}
		}
	}
	p, err := c.plan(ctx, s, a)
	if err != nil {
		return err
	}
	if *tarPath != "" && len(p.Platforms) > 0 {
		return usageError{fmt.Errorf("--tarball writes a docker archive, which holds one image, but the spec builds %s: write the image index with --oci-layout DIR, or build one platform with --platform", s.Platform)}
	}
	var cacheLog io.Writer = stderr
	if quiet {
		cacheLog = nil
	}
	store, held, err := c.sharedCache(cacheLog)
	if err != nil {
		return err
	}
	defer held.Release()

	var dests []push.Interface
	registry := s.HasRegistry()
	// Counts what the push sends; its transport is set below, before any
	// request, while the display may already read the count.
	uploads := &uploadCounter{}
	meter := &build.Meter{}
	var disp *display
	if !quiet {
		disp = newDisplay(stderr, displayOptions{
			live: mode == progressTTY, verbose: bf.verbose || bf.explain, stamp: os.Getenv("KILN_LOGTIME") != "", width: terminalWidth(stderr), meter: meter,
			uploaded: uploads.bytes.Load,
		})
		disp.Start()
		defer disp.Finish()
		if s.BaseDefaulted {
			fmt.Fprintf(disp, "parent: base_image is unset, so the default %s (%s moves it to another registry)\n", s.BaseImage, spec.DefaultBaseEnv)
		}
	}
	// One registry client for the whole build: the pulls, the push and the
	// cache-reference update share one transport (its retry policy and the
	// Retry-After it learnt).
	var client []remote.Option
	if registry {
		t, err := a.Transport()
		if err != nil {
			return usageError{err}
		}
		uploads.base = meter.Transport(t)
		client, err = a.RemoteOptionsFor(ctx, uploads)
		if err != nil {
			return usageError{err}
		}
		reg := push.NewRegistry(client...).WithRetry(a.Retry)
		if disp != nil && mode == progressTTY {
			// Only the image's push reports progress: remote.Write closes
			// the channel when it is done.
			reg.WithProgress(disp.Push())
		}
		dests = append(dests, reg)
	}
	if *layoutDir != "" {
		dests = append(dests, &push.Layout{Dir: *layoutDir})
	}
	if *tarPath != "" {
		dests = append(dests, &push.Tarball{Path: *tarPath})
	}
	defaultLayout := ""
	if len(dests) == 0 {
		defaultLayout = filepath.Join("out", filepath.FromSlash(firstNonEmpty(s.Name, "image")))
		dests = append(dests, &push.Layout{Dir: defaultLayout})
	}
	for _, d := range []string{*layoutDir, defaultLayout} {
		if d == "" {
			continue
		}
		if err := push.CheckLayoutDir(d); err != nil {
			return usageError{fmt.Errorf("--oci-layout: %w", err)}
		}
	}
	var log io.Writer
	if disp != nil {
		log = disp
	}
	res, err := build.Run(ctx, p, build.Options{
		Meter:       meter,
		Auth:        a,
		Remote:      client,
		Cache:       store,
		Compression: compression,
		Publisher:   push.Multi(dests...),
		Force:       *force || bf.refresh || bf.verifyCache,
		CheckExists: registry && *layoutDir == "" && *tarPath == "",
		Log:         log,
		Refresh:     bf.refresh,
		Explain:     bf.explain,
		UpdateCache: registry,
		CacheTo:     bf.cacheTo,
		VerifyCache: bf.verifyCache,
		SBOM:        sbomFormat,
		Bundle:      bd,
	})
	if err != nil {
		return err
	}
	if registry && disp != nil && !res.Skipped {
		fmt.Fprintf(disp, "uploaded %s to %s\n", build.HumanBytes(uploads.bytes.Load()), res.Ref.Context().RegistryStr())
	}
	if defaultLayout != "" && disp != nil {
		fmt.Fprintf(disp, "no registry given: wrote an OCI image layout to %s (try: podman run oci:%s:%s)\n", defaultLayout, defaultLayout, tagOf(p))
	}
	if disp != nil {
		disp.Finish() // the summary before the reference, on a terminal both share
	}
	if registry {
		fmt.Fprintln(stdout, res.Ref.Context().Tag(tagOf(p)).String()+"@"+res.Ref.DigestStr())
	} else {
		fmt.Fprintln(stdout, p.Display()+"@"+res.Ref.DigestStr())
	}
	return nil
}

func tagOf(p *build.Plan) string {
	if t, ok := p.Ref.(interface{ TagStr() string }); ok {
		return t.TagStr()
	}
	return ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func cmdCache(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "prune" {
		return usageError{errors.New("usage: kiln cache prune --max-size SIZE [--cache-dir DIR]")}
	}
	fs := pflag.NewFlagSet("kiln cache prune", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	maxSize := fs.String("max-size", "", "largest size the cache may keep, e.g. 500M or 10G")
	dir := fs.String("cache-dir", "", "cache directory (default $XDG_CACHE_HOME/kiln)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	size, err := parseSize(*maxSize)
	if err != nil {
		return usageError{fmt.Errorf("--max-size: %w", err)}
	}
	c := &common{cacheDir: *dir}
	store, err := c.cache()
	if err != nil {
		return err
	}
	res, err := store.Prune(size)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "removed %d files (%s); the cache now holds %s\n", res.Removed, build.HumanBytes(res.RemovedBytes), build.HumanBytes(res.KeptBytes))
	return nil
}

// parseSize parses 123, 10K, 500M, 10G (powers of 1024).
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("give a size such as 500M or 10G")
	}
	orig, mult := s, int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a size; write a whole number with an optional K, M, G or T suffix, e.g. 500M or 10G", orig)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large: the largest size is 8388607T (2^63-1 bytes); write e.g. 500M or 10G", orig)
	}
	return n * mult, nil
}
