package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/cache"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/layer/wheelinstall"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/pep723"
	"github.com/kiln-build/kiln/pkg/resolve/pylock"
	"github.com/kiln-build/kiln/pkg/resolve/pypi"
	"github.com/kiln-build/kiln/pkg/resolve/pytarget"
	"github.com/kiln-build/kiln/pkg/resolve/rootfs"
	"github.com/kiln-build/kiln/pkg/spec"
	"github.com/kiln-build/kiln/pkg/wheeltag"
)

// VenvPrefix is where kiln installs wheels: a virtual environment that also
// sees the system's site-packages (so Debian's python3-* stay importable).
const VenvPrefix = "/opt/venv"

// BigWheel is the compressed size from which a wheel gets a layer of its
// own, so that changing a small requirement does not re-upload torch.
const BigWheel = 20 << 20

// maxWheelLayers bounds the layers big wheels get; the rest are grouped,
// keeping images well under the 127 layers some runtimes allow.
const maxWheelLayers = 24

// wantsPython reports whether the spec installs wheels.
func wantsPython(s *spec.Spec) bool {
	return len(s.Packages) > 0 || s.Requirements != "" || s.Script != ""
}

// needsPython reports whether the build must find the target interpreter:
// to install wheels, or to check python_version.
func needsPython(s *spec.Spec) bool {
	return wantsPython(s) || s.PythonVersion != ""
}

// requirements is the spec's requirements file, parsed once per plan: the
// same lines feed the tag, the python step's key and the resolution.
type requirements struct {
	lines  []pypi.Line
	opts   pypi.Options
	digest string
	// kind is the kind of file requirements names; lock is the parsed
	// lock when it is one (its packages are installed as pinned).
	kind pylock.Kind
	lock *pylock.Lock
	// script is the script key's PEP 723 block, when it has one; its
	// dependencies are among lines.
	script *pep723.Metadata
}

// requirements returns the plan's parsed requirements file (read on first
// use).
func (p *Plan) requirements() (*requirements, error) {
	if p.reqs != nil {
		return p.reqs, nil
	}
	s := p.Spec
	kind := pylock.KindOf(s.Requirements)
	if s.Requirements == "" || kind == pylock.KindRequirements {
		for _, k := range []string{"extras", "groups"} {
			if (k == "extras" && len(s.Extras) > 0) || (k == "groups" && len(s.Groups) > 0) {
				return nil, &spec.Error{Pos: s.Position(k), Key: k, Msg: "needs requirements to name a pyproject.toml, pylock.toml, uv.lock or poetry.lock", Hint: "point requirements at the project's pyproject.toml or lock, or remove " + k}
			}
		}
	}
	var r *requirements
	if s.Requirements != "" && kind != pylock.KindRequirements {
		var err error
		if r, err = projectRequirements(s, kind); err != nil {
			return nil, err
		}
	} else {
		lines, opts, err := requirementsLines(s)
		if err != nil {
			return nil, err
		}
		r = &requirements{lines: lines, opts: opts, digest: requirementsDigest(s, lines, opts), kind: kind}
	}
	if err := r.addScript(s); err != nil {
		return nil, err
	}
	p.reqs = r
	return r, nil
}

// addScript adds the dependencies of the script key's PEP 723 block to the
// requirements (validation refused a script beside a lock) and its block
// to the digest.
func (r *requirements) addScript(s *spec.Spec) error {
	m, err := s.ScriptMetadata()
	if err != nil || m == nil {
		return err
	}
	r.script = m
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00script\x00requires-python=%s\x00", r.digest, m.RequiresPython)
	source := "script " + filepath.Base(s.Script)
	for i, d := range m.Dependencies {
		req, err := pypi.ParseRequirement(d, filepath.Dir(s.Script))
		if err != nil {
			return &spec.Error{Pos: s.Position("script"), Key: "script", Msg: fmt.Sprintf("%s:%d: dependencies[%d] %q: %v", s.Script, m.Line, i, d, err)}
		}
		r.lines = append(r.lines, pypi.Line{Requirement: pypi.Requirement{Requirement: req, Source: source}, File: s.Script, Line: m.Line})
		fmt.Fprintf(h, "%s\x00", req.String())
	}
	r.digest = hex.EncodeToString(h.Sum(nil))
	return nil
}

// checkScriptPython checks the script's requires-python against the
// target interpreter.
func checkScriptPython(s *spec.Spec, r *requirements, t *pytarget.Target) error {
	if r.script == nil || r.script.RequiresPython.Len() == 0 {
		return nil
	}
	v, err := pep440.Parse(t.Version)
	if err != nil {
		return fmt.Errorf("the target python %q: %w", t.Version, err)
	}
	if !r.script.RequiresPython.Contains(v, true) {
		return &spec.Error{Pos: s.Position("script"), Key: "script", Msg: fmt.Sprintf("%s:%d: requires-python %q, but the target Python is %s (%s)", s.Script, r.script.Line, r.script.RequiresPythonText, t.Version, t.Interpreter),
			Hint: "choose a base_image (or python_version) whose Python the script accepts, or widen requires-python"}
	}
	return nil
}

// targetPlatform returns the spec's platform, parsed once per plan.
func (p *Plan) targetPlatform() (*v1.Platform, error) {
	if p.platform != nil {
		return p.platform, nil
	}
	plat, err := p.Spec.TargetPlatform()
	if err != nil {
		return nil, err
	}
	p.platform = plat
	return plat, nil
}

// requirementsLines parses the spec's requirements file.
func requirementsLines(s *spec.Spec) ([]pypi.Line, pypi.Options, error) {
	if s.Requirements == "" {
		return nil, pypi.Options{}, nil
	}
	lines, opts, err := pypi.ParseRequirementsConfined(s.Requirements, func(p string) error {
		real, err := s.InContext(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w (keep it under the build context, or name a wider one with --context DIR)", err)
		}
		if fi, err := os.Stat(real); err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is %s, not a regular file; name a file", p, layer.DescribeType(fi.Mode()))
		}
		return nil
	})
	if err != nil {
		return nil, pypi.Options{}, &spec.Error{Pos: s.Position("requirements"), Key: "requirements", Msg: err.Error()}
	}
	return lines, opts, nil
}

// requirementsDigest hashes what the requirements files ask for (with their
// includes), independent of where they are on the host.
func requirementsDigest(s *spec.Spec, lines []pypi.Line, opts pypi.Options) string {
	if s.Requirements == "" {
		return ""
	}
	h := sha256.New()
	// URLs without user information: the digest is a published step
	// input, and nothing derived from a credential may be published.
	fmt.Fprintf(h, "index=%s\x00pre=%t\x00hashes=%t\x00", withoutUserinfo(opts.IndexURL), opts.Pre, opts.RequireHashes)
	for _, u := range opts.ExtraIndexURLs {
		fmt.Fprintf(h, "extra=%s\x00", withoutUserinfo(u))
	}
	for _, l := range lines {
		r := l.Requirement.Requirement
		if r.URL != "" {
			r.URL = withoutUserinfo(r.URL)
		}
		fmt.Fprintf(h, "%t\x00%s\x00%s\x00", l.Constraint, r.String(), strings.Join(l.Hashes, ","))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// detectSelect keeps what detectPython reads from the Debian packages'
// layers: what rootfs.DefaultSelect keeps, except the files kept only
// because a link under etc/alternatives/ leads to them (the BLAS and LAPACK
// libraries python3-numpy brings are 7.8 MB, read in a second pass over
// the layer), which pytarget.Detect does not read.
func detectSelect(name string, size int64) int64 {
	if strings.HasPrefix(name, "etc/alternatives/") {
		return 0
	}
	return rootfs.DefaultSelect(name, size)
}

// detectPython finds the target interpreter in the parent plus the Debian
// layer built in this session (apt_packages may bring python3).
func (b *session) detectPython(ctx context.Context) (*pytarget.Target, error) {
	if b.python != nil {
		return b.python, nil
	}
	fs, err := b.parentFS(ctx)
	if err != nil {
		return nil, err
	}
	overlaid := false
	for _, bl := range b.built {
		if bl.kind != cache.KindDebs {
			continue
		}
		if !overlaid && bl.overlay != nil {
			// Read as the layer was built; if that failed, read the layer.
			if ofs, err := bl.overlay.result(ctx); err == nil {
				fs, overlaid = ofs, true
				continue
			}
		}
		fs, err = fs.Overlay(ctx, detectSelect, bl.layer.Uncompressed)
		if err != nil {
			return nil, fmt.Errorf("read the Debian packages' layer: %w", err)
		}
		overlaid = true
	}
	if !overlaid && len(b.in.debs) > 0 {
		// kiln lock: the packages are pinned but no layer is built; read
		// their files as the layer would hold them, uncompressed.
		if fs, err = b.overlayDebs(ctx, fs); err != nil {
			return nil, err
		}
	}
	cf, err := b.parent.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read parent config: %w", err)
	}
	t, err := pytarget.Detect(fs, pytarget.Options{PythonVersion: b.p.Spec.PythonVersion, Config: cf, Interpreter: b.p.Spec.PythonExec})
	if err != nil {
		if b.p.Spec.PythonExec != "" && !errors.Is(err, pytarget.ErrNoPython) {
			return nil, &spec.Error{Pos: b.p.Spec.Position("python_exec"), Key: "python_exec", Msg: err.Error(), Hint: "name a python3.X interpreter of the parent image, or a virtual environment's python"}
		}
		if b.p.Spec.PythonVersion != "" && !strings.Contains(err.Error(), "no python") {
			return nil, &spec.Error{Pos: b.p.Spec.Position("python_version"), Key: "python_version", Msg: err.Error()}
		}
		return nil, fmt.Errorf("packages: %w", err)
	}
	b.o.logf("python: %s (%s, %s %s, %s) at %s", t.Version, t.ABI, t.Libc, t.LibcVersion, t.Arch, t.Interpreter)
	b.python = &t
	return b.python, nil
}

// overlayDebs returns fs with the pinned Debian packages' files on top, as
// their layer would hold them, streamed from the packages (downloaded into
// the cache) without building or compressing a layer.
func (b *session) overlayDebs(ctx context.Context, fs *rootfs.FS) (*rootfs.FS, error) {
	dl, err := debLayer(ctx, b.o, b.parent, fs, b.in.debs, b.p)
	if err != nil {
		return nil, err
	}
	open := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := dl.WriteTar(ctx, tw)
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
	out, err := fs.Overlay(ctx, detectSelect, open)
	if err != nil {
		return nil, fmt.Errorf("read the Debian packages' files: %w", err)
	}
	for _, w := range (aptStep{}).warnings([]layer.Source{dl}) {
		b.o.logf("%s", w)
	}
	return out, nil
}

// indexes returns the spec's and the requirements file's indexes, in order.
func (b *session) indexes(opts pypi.Options) (pypi.Indexes, error) {
	s := b.p.Spec
	primary := s.PipIndex
	if opts.IndexURL != "" && primary == "" {
		primary = opts.IndexURL
	}
	extra := append(append([]string{}, s.PipExtraIndexURL...), opts.ExtraIndexURLs...)
	return pypi.NewIndexes(primary, extra, pypi.IndexOptions{
		Client: fetchClient(b.o),
		Store:  b.o.Cache,
		// pip_secret_mounts' .netrc: sent to the indexes, never written.
		Netrc: s.NetrcFile(),
	})
}

// pinWheels resolves the spec's packages and requirements for the target
// interpreter (or takes them from the lock).
func (b *session) pinWheels(ctx context.Context) error {
	s := b.p.Spec
	if !needsPython(s) {
		return nil
	}
	t, err := b.detectPython(ctx)
	if err != nil {
		return err
	}
	if !wantsPython(s) {
		return nil
	}
	reqs, err := b.p.requirements()
	if err != nil {
		return err
	}
	if err := checkScriptPython(s, reqs, t); err != nil {
		return err
	}
	digest := reqs.digest
	b.in.requirements = digest
	if b.p.Lock != nil {
		if b.p.Lock.Requirements != digest {
			return fmt.Errorf("kiln.lock is stale: the requirements file changed since it was made; run kiln lock again")
		}
		b.in.wheels = b.p.Lock.Wheels
		return nil
	}
	if reqs.lock != nil {
		return b.pinLocked(ctx, reqs, t)
	}
	lines, opts := reqs.lines, reqs.opts
	var want, constraints []pypi.Requirement
	for i, p := range s.Packages {
		r, err := pypi.ParseRequirement(p, s.Dir)
		if err != nil {
			return &spec.Error{Pos: s.Position("packages"), Key: fmt.Sprintf("packages[%d]", i), Msg: err.Error(), Hint: `write a requirement such as "flask>=3" or "requests[socks]"`}
		}
		want = append(want, pypi.Requirement{Requirement: r, Source: "packages"})
	}
	for _, l := range lines {
		if l.Constraint {
			constraints = append(constraints, l.Requirement)
		} else {
			want = append(want, l.Requirement)
		}
	}
	idx, err := b.indexes(opts)
	if err != nil {
		return err
	}
	env, err := pep508.LinuxCPython(t.Version, t.Arch)
	if err != nil {
		return fmt.Errorf("packages: the target python %q: %w", t.Version, err)
	}
	tt := wheelTarget(t)
	pre := pypi.PrereleaseIfNeeded
	if opts.Pre {
		pre = pypi.PrereleaseAllow
	}
	req := pypi.Request{
		Requirements:  want,
		Constraints:   constraints,
		Env:           env,
		Target:        tt,
		Indexes:       idx,
		Prereleases:   pre,
		RequireHashes: opts.RequireHashes,
	}
	var sb *sdistBuilder
	if !s.OnlyBinary {
		sb = &sdistBuilder{b: b, t: t, env: env, target: tt, idx: idx, what: "python", built: map[string]pypi.Built{}, inputs: map[string]builtInputs{}}
		req.Builder = sb
	}
	res, err := pypi.Resolve(ctx, req)
	if err != nil {
		return fmt.Errorf("packages: %w", err)
	}
	b.in.wheels = []lock.Wheel{}
	for _, d := range res.Distributions {
		w := lockWheel(d)
		w.Requested = d.Requested
		if d.BuiltFrom != nil && sb != nil {
			w.BuiltFrom = &lock.Sdist{Filename: d.BuiltFrom.Filename, URL: d.BuiltFrom.URL, SHA256: d.BuiltFrom.SHA256}
			// What it was built with, so that a --locked build on a
			// machine without the wheel builds it again from the same
			// inputs.
			if in, ok := sb.inputsOf(d.SHA256); ok {
				if w.BuiltFrom.SHA256 == "" {
					w.BuiltFrom.SHA256 = in.sdistSHA256
				}
				for _, r := range in.requires {
					w.BuiltFrom.Requires = append(w.BuiltFrom.Requires, lockWheel(r))
				}
			}
		}
		b.in.wheels = append(b.in.wheels, w)
	}
	sort.Slice(b.in.wheels, func(i, j int) bool { return b.in.wheels[i].Name < b.in.wheels[j].Name })
	b.o.logf("python: resolved %d distributions", len(b.in.wheels))
	return nil
}

// lockWheel is how kiln.lock pins the wheel d.
func lockWheel(d pypi.Distribution) lock.Wheel {
	return lock.Wheel{Name: d.Name, Version: d.Version, Filename: d.Filename, URL: d.URL, SHA256: d.SHA256, Size: d.Size}
}

// wheeltagSet returns the tags of wt.
func wheeltagSet(wt wheeltag.Target) (*wheeltag.TagSet, error) {
	tags, err := wheeltag.NewTargetTagSet(wt)
	if err != nil {
		return nil, fmt.Errorf("computing wheel tags for target %s: %w", wt, err)
	}
	return tags, nil
}

func wheelTarget(t *pytarget.Target) wheeltag.Target {
	libc := wheeltag.Glibc
	if t.Libc == pytarget.Musl {
		libc = wheeltag.Musl
	}
	return wheeltag.Target{
		Implementation: t.Implementation,
		PythonMajor:    t.Major,
		PythonMinor:    t.Minor,
		ABIs:           []string{t.ABI},
		Arch:           t.Arch,
		Libc:           libc,
		LibcMajor:      t.LibcMajor,
		LibcMinor:      t.LibcMinor,
	}
}

// wheelSources pins the wheels, downloads them into the cache and describes
// their layers: one per big wheel, the rest with the virtualenv.
func (b *session) wheelSources(ctx context.Context) ([]layer.Source, error) {
	t := b.python
	files, err := b.downloadWheels(ctx)
	if err != nil {
		return nil, err
	}
	pyver := fmt.Sprintf("%d.%d", t.Major, t.Minor)
	scheme := wheelinstall.VenvScheme(strings.TrimPrefix(VenvPrefix, "/"), pyver)
	var big, small []layer.WheelFile
	for _, f := range files {
		if sizeOf(f) >= BigWheel {
			big = append(big, f)
		} else {
			small = append(small, f)
		}
	}
	// Keep the layer budget: group the smallest big wheels if there are
	// too many.
	if len(big) > maxWheelLayers {
		sort.SliceStable(big, func(i, j int) bool { return sizeOf(big[i]) > sizeOf(big[j]) })
		small = append(small, big[maxWheelLayers:]...)
		big = big[:maxWheelLayers]
		sort.Slice(big, func(i, j int) bool { return big[i].Name < big[j].Name })
		sort.Slice(small, func(i, j int) bool { return small[i].Name < small[j].Name })
	}
	var srcs []layer.Source
	for _, w := range big {
		srcs = append(srcs, &layer.Wheels{Scheme: scheme, Wheels: []layer.WheelFile{w}, Epoch: b.p.Epoch, Desc: fmt.Sprintf("wheel %s %s", w.Name, w.Version)})
	}
	venv := &wheelinstall.VenvOptions{
		Prefix:            strings.TrimPrefix(VenvPrefix, "/"),
		PythonVersion:     pyver,
		PythonFullVersion: t.Version,
		Interpreter:       t.Interpreter,
	}
	srcs = append(srcs, &layer.Wheels{Venv: venv, Scheme: scheme, Wheels: small, Epoch: b.p.Epoch, Desc: fmt.Sprintf("virtualenv %s with %d wheels", VenvPrefix, len(small))})
	return srcs, nil
}

func sizeOf(w layer.WheelFile) int64 {
	fi, err := os.Stat(w.Path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// downloadWheels fetches the pinned wheels into the cache, in parallel,
// each checked against its SHA-256.
func (b *session) downloadWheels(ctx context.Context) ([]layer.WheelFile, error) {
	reqs, err := b.p.requirements()
	if err != nil {
		return nil, err
	}
	idx, err := b.indexes(reqs.opts)
	if err != nil {
		return nil, err
	}
	client := fetchClient(b.o)
	if b.p.Lock != nil {
		// Wheels kiln.lock pins as built from source distributions, which
		// this machine's cache lacks: build them again, one at a time.
		for _, w := range b.in.wheels {
			if w.BuiltFrom == nil {
				continue
			}
			if _, ok := b.o.Cache.Has(w.SHA256, w.Size); ok {
				continue
			}
			if err := b.buildPinned(ctx, idx, client, w); err != nil {
				return nil, err
			}
		}
	}
	files := make([]layer.WheelFile, len(b.in.wheels))
	got, err := fetchParallel(ctx, len(b.in.wheels), func(ctx context.Context, i int) (bool, string, error) {
		w := b.in.wheels[i]
		path, hit, err := b.fetchPinned(ctx, idx, client, w)
		if err != nil {
			return false, "", fmt.Errorf("download %s: %w", w.Filename, err)
		}
		files[i] = layer.WheelFile{Name: w.Name, Version: w.Version, Filename: w.Filename, SHA256: w.SHA256, Path: path, Requested: w.Requested}
		return hit, path, nil
	})
	if err != nil {
		return nil, err
	}
	b.o.logf("python: %d wheels: %s", len(files), got)
	return files, nil
}

// fetchPinned gets the pinned file w (a wheel or a source distribution)
// into the cache, checked against its sha256, and reports whether the
// cache had it.
func (b *session) fetchPinned(ctx context.Context, idx pypi.Indexes, client *http.Client, w lock.Wheel) (string, bool, error) {
	var path string
	var hit bool
	var err error
	if w.BuiltFrom != nil {
		// Built here: its URL names the cache it was built into.
		if path, hit = b.o.Cache.Has(w.SHA256, w.Size); hit {
			return path, true, nil
		}
	}
	if strings.HasPrefix(w.URL, "file:") || len(idx) == 0 {
		path, hit, err = b.o.Cache.Fetch(ctx, w.Filename, w.SHA256, w.Size, func(ctx context.Context) (io.ReadCloser, error) {
			if p, ok := strings.CutPrefix(w.URL, "file://"); ok {
				return os.Open(filepath.FromSlash(p))
			}
			return httpGet(ctx, client, w.URL)
		})
	} else if path, hit = b.o.Cache.Has(w.SHA256, w.Size); !hit {
		// Through an index, so that its credentials (URL or netrc) are
		// used for its host.
		path, err = idx[indexFor(idx, w.URL)].Download(ctx, pypi.File{Filename: w.Filename, URL: w.URL, SHA256: w.SHA256, Size: w.Size})
	}
	if err != nil && b.p.Lock != nil {
		err = lockPinned(err)
	}
	return path, hit, err
}

// buildPinned builds again the wheel w that kiln.lock pins as built from a
// source distribution, as an unlocked build did: the pinned sdist and
// build requirements (downloaded and checked against their sha256s, no
// resolution), in the sandbox. The built wheel must be the one the lock
// pins.
func (b *session) buildPinned(ctx context.Context, idx pypi.Indexes, client *http.Client, w lock.Wheel) error {
	sd := w.BuiltFrom
	if sd.SHA256 == "" {
		return fmt.Errorf("kiln.lock pins %s %s as built from %s but not the sdist's sha256, and this machine's cache lacks the wheel; regenerate the lock with kiln lock", w.Name, w.Version, sd.Filename)
	}
	sdPath, _, err := b.fetchPinned(ctx, idx, client, lock.Wheel{Filename: sd.Filename, URL: sd.URL, SHA256: sd.SHA256})
	if err != nil {
		return fmt.Errorf("download %s (the source distribution of %s): %w", sd.Filename, w.Name, err)
	}
	bs, err := readBuildSystem(sdPath, sd.Filename)
	if err != nil {
		return err
	}
	if len(bs.requires) > 0 && len(sd.Requires) == 0 {
		return fmt.Errorf("kiln.lock pins %s %s as built from %s but not its build requirements (%s), and this machine's cache lacks the wheel; regenerate the lock with kiln lock", w.Name, w.Version, sd.Filename, strings.Join(bs.requires, ", "))
	}
	sb, err := b.newSdistBuilder(ctx, "python", idx)
	if err != nil {
		return err
	}
	var dists []pypi.Distribution
	for _, r := range sd.Requires {
		dists = append(dists, pypi.Distribution{Name: r.Name, Version: r.Version, Filename: r.Filename, URL: r.URL, SHA256: r.SHA256, Size: r.Size})
	}
	fetch := func(ctx context.Context, d pypi.Distribution) (string, error) {
		p, _, err := b.fetchPinned(ctx, idx, client, lockWheel(d))
		return p, err
	}
	b.o.logf("python: %s %s: kiln.lock pins wheel %s built from %s, which the local cache lacks: building it from the pinned sdist and build requirements", w.Name, w.Version, w.Filename, sd.Filename)
	got, err := sb.build(ctx, w.Name, w.Version, sd.Filename, sdPath, sd.SHA256, bs, dists, false, fetch)
	if err != nil {
		return fmt.Errorf("building %s %s from %s: %w", w.Name, w.Version, sd.Filename, err)
	}
	if got.SHA256 != w.SHA256 {
		return fmt.Errorf("package %s %s: the wheel built from %s has sha256:%s, but kiln.lock pins sha256:%s: the sdist's build is not reproducible (the same sdist and build requirements gave another wheel); build it unlocked and run kiln lock on this machine, or ship the built wheel in a bundle (kiln bundle)", w.Name, w.Version, sd.Filename, got.SHA256, w.SHA256)
	}
	return nil
}

// indexFor picks the index serving url's host, else the first.
func indexFor(idx pypi.Indexes, rawURL string) int {
	for i, ix := range idx {
		if sameHost(ix.URL(), rawURL) {
			return i
		}
	}
	return 0
}

func sameHost(a, b string) bool {
	host := func(u string) string {
		u = auth.RedactURL(u)
		_, rest, _ := strings.Cut(u, "://")
		h, _, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(h, "@"); i >= 0 {
			h = h[i+1:]
		}
		return strings.ToLower(h)
	}
	return host(a) == host(b)
}
