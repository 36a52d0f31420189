package build

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/atomicfile"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/resolve/pypi"
	"github.com/kiln-build/kiln/pkg/resolve/pytarget"
	"github.com/kiln-build/kiln/pkg/sandbox"
	"github.com/kiln-build/kiln/pkg/wheeltag"
)

// pep517Frontend is the PEP 517 frontend run in the sandbox: it unpacks
// the source distribution, imports the build backend from the build
// requirements' wheels and calls build_wheel.
//
//go:embed pep517_frontend.py
var pep517Frontend []byte

// sdistBuilderVersion names how kiln builds wheels from source
// distributions; it is part of every built wheel's cache key.
const sdistBuilderVersion = "kiln-sdist-v1"

// sdistTimeout bounds one wheel build.
const sdistTimeout = 15 * time.Minute

// sdistBuilder builds wheels from source distributions in the sandbox,
// for the session's target interpreter, with the network off. Built
// wheels are cached by (sdist sha256, target, build requirements).
type sdistBuilder struct {
	b      *session
	t      *pytarget.Target
	env    pep508.Environment
	target wheeltag.Target
	idx    pypi.Indexes

	// what names the step in log lines ("python", "project").
	what string

	mu     sync.Mutex
	built  map[string]pypi.Built  // by sdist sha256
	inputs map[string]builtInputs // by built wheel sha256
	warned bool                   // the id map warning was given
}

// newSdistBuilder returns a builder for the session's target interpreter
// over idx; what names the step in its log lines.
func (b *session) newSdistBuilder(ctx context.Context, what string, idx pypi.Indexes) (*sdistBuilder, error) {
	t, err := b.detectPython(ctx)
	if err != nil {
		return nil, err
	}
	env, err := pep508.LinuxCPython(t.Version, t.Arch)
	if err != nil {
		return nil, fmt.Errorf("the target python %q: %w", t.Version, err)
	}
	return &sdistBuilder{b: b, t: t, env: env, target: wheelTarget(t), idx: idx, what: what, built: map[string]pypi.Built{}, inputs: map[string]builtInputs{}}, nil
}

// builtRecord is what the cache keeps of a built wheel.
type builtRecord struct {
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
}

// BuildWheel implements pypi.Builder.
func (sb *sdistBuilder) BuildWheel(ctx context.Context, ix *pypi.Index, name, version string, sdist pypi.File) (pypi.Built, error) {
	path, err := ix.Download(ctx, sdist)
	if err != nil {
		return pypi.Built{}, err
	}
	sum, err := hashRegular(path)
	if err != nil {
		return pypi.Built{}, err
	}
	sb.mu.Lock()
	if got, ok := sb.built[sum]; ok {
		sb.mu.Unlock()
		return got, nil
	}
	sb.mu.Unlock()
	bs, err := readBuildSystem(path, sdist.Filename)
	if err != nil {
		return pypi.Built{}, err
	}
	// The build requirements, as wheels for the target (no sdist builds
	// for them).
	var reqs []pypi.Requirement
	for _, r := range bs.requires {
		pr, err := pep508.ParseRequirement(r)
		if err != nil {
			return pypi.Built{}, fmt.Errorf("%s: build-system.requires %q: %w", sdist.Filename, r, err)
		}
		reqs = append(reqs, pypi.Requirement{Requirement: pr, Source: sdist.Filename + " build-system.requires"})
	}
	res, err := pypi.Resolve(ctx, pypi.Request{Requirements: reqs, Env: sb.env, Target: sb.target, Indexes: sb.idx})
	if err != nil {
		return pypi.Built{}, fmt.Errorf("resolving the build requirements of %s (%s): %w", sdist.Filename, strings.Join(bs.requires, ", "), err)
	}
	fetch := func(ctx context.Context, d pypi.Distribution) (string, error) {
		return sb.idx[indexFor(sb.idx, d.URL)].Download(ctx, pypi.File{Filename: d.Filename, URL: d.URL, SHA256: d.SHA256, Size: d.Size})
	}
	got, err := sb.build(ctx, name, version, sdist.Filename, path, sum, bs, res.Distributions, true, fetch)
	if err != nil {
		return pypi.Built{}, err
	}
	sb.remember(sum, got)
	sb.mu.Lock()
	sb.inputs[got.SHA256] = builtInputs{sdistSHA256: sum, requires: res.Distributions}
	sb.mu.Unlock()
	return got, nil
}

// builtInputs are what a wheel was built from: the source distribution's
// sha256 and the build requirements' wheels.
type builtInputs struct {
	sdistSHA256 string
	requires    []pypi.Distribution
}

// inputsOf returns what the wheel with the given sha256 was built from in
// this session.
func (sb *sdistBuilder) inputsOf(sha256 string) (builtInputs, bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	in, ok := sb.inputs[sha256]
	return in, ok
}

// build builds the wheel of name at version from the source distribution
// sdistName at path (whose sha256 is sum) with the build requirements'
// wheels dists, got with fetch. The built wheel is cached by (sdist, target,
// build requirements); with reuse, a wheel cached under that key is
// returned without building.
func (sb *sdistBuilder) build(ctx context.Context, name, version, sdistName, path, sum string, bs buildSystem, dists []pypi.Distribution, reuse bool, fetch func(context.Context, pypi.Distribution) (string, error)) (pypi.Built, error) {
	o := sb.b.o
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00sdist=%s\x00target=%s\x00python=%s\x00backend=%s\x00epoch=%d\x00", sdistBuilderVersion, sum, sb.target, sb.t.Version, bs.backend, sb.b.p.Epoch.Unix())
	wheelNames := []string{}
	for _, d := range dists {
		fmt.Fprintf(h, "%s\x00%s\x00", d.Filename, d.SHA256)
		wheelNames = append(wheelNames, d.Name)
	}
	key := hex.EncodeToString(h.Sum(nil))
	recPath := filepath.Join(o.Cache.Dir(), "sdist-builds", key+".json")
	if data, err := os.ReadFile(recPath); err == nil && reuse {
		var rec builtRecord
		if json.Unmarshal(data, &rec) == nil {
			if p, ok := o.Cache.Has(rec.SHA256, rec.Size); ok {
				o.logf("python: %s %s: wheel %s built from %s reused from the local cache", name, version, rec.Filename, sdistName)
				return pypi.Built{Path: p, Filename: rec.Filename, SHA256: rec.SHA256, Size: rec.Size}, nil
			}
		}
	}
	// Download the build requirements' wheels.
	var wheels []string
	for _, d := range dists {
		p, err := fetch(ctx, d)
		if err != nil {
			return pypi.Built{}, fmt.Errorf("downloading build requirement %s: %w", d.Filename, err)
		}
		wheels = append(wheels, p)
	}
	stage := func(root string) (string, error) {
		return "/kiln-build/" + sdistName, copyFile(path, filepath.Join(root, sdistName))
	}
	got, err := sb.run(ctx, name, version, sdistName, stage, bs.backend, dists, wheels, wheelNames)
	if err != nil {
		return pypi.Built{}, err
	}
	if err := os.MkdirAll(filepath.Dir(recPath), 0o755); err == nil {
		data, _ := json.Marshal(builtRecord{Filename: got.Filename, SHA256: got.SHA256, Size: got.Size})
		if err := atomicfile.Write(recPath, atomicfile.Options{}, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			o.logf("python: warning: could not record the wheel built from %s in the cache: %v", sdistName, err)
		}
	}
	return got, nil
}

func (sb *sdistBuilder) remember(sum string, b pypi.Built) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.built[sum] = b
}

// run builds the wheel in the sandbox over the parent and the layers built
// so far (which hold the interpreter), with the network off and
// SOURCE_DATE_EPOCH set, and stores it in the cache.
//
// stage puts what is built under root (the sandbox's /kiln-build) and
// returns its path in the sandbox: a source distribution, or a project
// directory.
func (sb *sdistBuilder) run(ctx context.Context, name, version, sdistName string, stage func(root string) (string, error), backend string, dists []pypi.Distribution, wheels, wheelNames []string) (pypi.Built, error) {
	b, o := sb.b, sb.b.o
	if b.parent.Scratch() {
		return pypi.Built{}, fmt.Errorf("building %s: base_image is scratch, which has no Python to build with", sdistName)
	}
	plat, err := b.p.targetPlatform()
	if err != nil {
		return pypi.Built{}, err
	}
	if ex := sandbox.HowToRun(*plat, ""); !ex.OK() {
		return pypi.Built{}, fmt.Errorf("building %s: cannot run programs for %s here: %s", sdistName, b.p.Spec.Platform, ex.Reason)
	}
	if len(b.in.debs) > 0 && !b.builtKind("debs") {
		return pypi.Built{}, fmt.Errorf("building %s: the Debian packages' layer is not built yet (kiln lock does not build it); run kiln build instead", sdistName)
	}
	ids, warn := sandbox.HostIDMap()
	if warn != "" && !sb.warned {
		sb.warned = true
		o.logf("python: warning: %s", strings.TrimPrefix(warn, "sandbox: "))
	}
	var below []v1.Layer
	parentLayers, err := o.Cache.Image(ctx, b.parent.Image).Layers()
	if err != nil {
		return pypi.Built{}, fmt.Errorf("building %s: list the parent's layers: %w", sdistName, err)
	}
	below = append(below, parentLayers...)
	for _, l := range b.built {
		below = append(below, l.layer)
	}
	lowers, err := unpackLowers(ctx, o.Cache, below, ids)
	if err != nil {
		return pypi.Built{}, fmt.Errorf("building %s: %w", sdistName, err)
	}
	scratch, err := o.Cache.NewScratch(ids)
	if err != nil {
		return pypi.Built{}, fmt.Errorf("building %s: %w", sdistName, err)
	}
	defer scratch.Remove(context.WithoutCancel(ctx))
	// The inputs go into the upper directory, where the sandbox sees them
	// under /kiln-build.
	root := filepath.Join(scratch.Upper, "kiln-build")
	for _, d := range []string{root, filepath.Join(root, "wheels"), filepath.Join(root, "out")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return pypi.Built{}, fmt.Errorf("building %s: %w", sdistName, err)
		}
	}
	srcArg, err := stage(root)
	if err != nil {
		return pypi.Built{}, fmt.Errorf("building %s: %w", sdistName, err)
	}
	if err := os.WriteFile(filepath.Join(root, "frontend.py"), pep517Frontend, 0o644); err != nil {
		return pypi.Built{}, fmt.Errorf("building %s: %w", sdistName, err)
	}
	args := []string{sb.t.Interpreter, "-I", "/kiln-build/frontend.py", srcArg, "/kiln-build/out", backend, strings.Join(wheelNames, ",")}
	for i, w := range wheels {
		if err := copyFile(w, filepath.Join(root, "wheels", dists[i].Filename)); err != nil {
			return pypi.Built{}, fmt.Errorf("building %s: %w", sdistName, err)
		}
		args = append(args, "/kiln-build/wheels/"+dists[i].Filename)
	}
	what := name
	if version != "" {
		what += " " + version
	}
	o.logf("%s: building %s from %s in the sandbox (network off%s; build requirements %s)", sb.what, what, sdistName, emulationNote(*plat), strings.Join(wheelNames, ", "))
	out := &linePrefixer{w: o.Log, prefix: "build| "}
	_, err = sandbox.Run(ctx, sandbox.Config{
		Lowers:   lowers,
		Upper:    scratch.Upper,
		Work:     scratch.Work,
		Command:  args,
		Env:      []string{"PATH=" + sandbox.DefaultPath, "HOME=/tmp", "SOURCE_DATE_EPOCH=" + fmt.Sprint(b.p.Epoch.Unix()), "PYTHONDONTWRITEBYTECODE=1", "LC_ALL=C.UTF-8"},
		Dir:      "/tmp",
		Timeout:  sdistTimeout,
		Stdout:   out,
		Stderr:   out,
		IDs:      ids,
		Platform: *plat,
	})
	out.Flush()
	if err != nil {
		var ee *sandbox.ExitError
		if errors.As(err, &ee) {
			return pypi.Built{}, fmt.Errorf("the build backend %s failed (exit %d); its last output:\n%s", backend, ee.Code, strings.TrimRight(ee.Tail, "\n"))
		}
		return pypi.Built{}, fmt.Errorf("building %s in the sandbox: %w", sdistName, err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "out"))
	if err != nil {
		return pypi.Built{}, fmt.Errorf("building %s: %w", sdistName, err)
	}
	var built []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".whl") {
			built = append(built, e.Name())
		}
	}
	sort.Strings(built)
	if len(built) != 1 {
		return pypi.Built{}, fmt.Errorf("building %s: the backend left %d wheels (%s), want one", sdistName, len(built), strings.Join(built, ", "))
	}
	fn, err := wheeltag.ParseFilename(built[0])
	if err != nil || fn.Name != pep508.NormalizeName(name) {
		return pypi.Built{}, fmt.Errorf("building %s: the backend built %s, not a wheel of %s", sdistName, built[0], name)
	}
	wp := filepath.Join(root, "out", built[0])
	sum, err := hashRegular(wp)
	if err != nil {
		return pypi.Built{}, err
	}
	fi, err := os.Stat(wp)
	if err != nil {
		return pypi.Built{}, err
	}
	p, _, err := o.Cache.Fetch(ctx, built[0], sum, fi.Size(), func(context.Context) (io.ReadCloser, error) { return os.Open(wp) })
	if err != nil {
		return pypi.Built{}, fmt.Errorf("storing the wheel built from %s: %w", sdistName, err)
	}
	o.logf("%s: built %s (sha256 %s)", sb.what, built[0], sum[:12])
	return pypi.Built{Path: p, Filename: built[0], SHA256: sum, Size: fi.Size()}, nil
}

// builtKind reports whether a layer of the kind named was built in this
// session.
func (b *session) builtKind(kind string) bool {
	for _, bl := range b.built {
		if string(bl.kind) == kind {
			return true
		}
	}
	return false
}

// copyFile copies the regular file src to dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// buildSystem is a source distribution's [build-system].
type buildSystem struct {
	requires []string
	backend  string
}

// maxSdistPyproject bounds the pyproject.toml read from an sdist.
const maxSdistPyproject = 1 << 20

// readBuildSystem reads [build-system] from the pyproject.toml at the top
// of a source distribution; without one, PEP 517's default (setuptools'
// legacy backend). setuptools before 70 needs wheel to build wheels, so a
// setuptools backend always gets it (as pip gave it).
func readBuildSystem(path, name string) (buildSystem, error) {
	data, err := sdistPyproject(path, name)
	if err != nil {
		return buildSystem{}, fmt.Errorf("reading %s: %w", name, err)
	}
	return buildSystemOf(data, name)
}

// buildSystemOf reads [build-system] from pyproject.toml data (nil: none)
// of name; see readBuildSystem.
func buildSystemOf(data []byte, name string) (buildSystem, error) {
	bs := buildSystem{requires: []string{"setuptools>=40.8.0"}, backend: "setuptools.build_meta:__legacy__"}
	if data != nil {
		var t struct {
			BuildSystem *struct {
				Requires []string `toml:"requires"`
				Backend  string   `toml:"build-backend"`
			} `toml:"build-system"`
		}
		if _, err := toml.Decode(string(data), &t); err != nil {
			return buildSystem{}, fmt.Errorf("%s: pyproject.toml: %w", name, err)
		}
		if t.BuildSystem != nil {
			bs.requires = t.BuildSystem.Requires
			if t.BuildSystem.Backend != "" {
				bs.backend = t.BuildSystem.Backend
			}
		}
	}
	if strings.HasPrefix(bs.backend, "setuptools.") {
		has := false
		for _, r := range bs.requires {
			if pr, err := pep508.ParseRequirement(r); err == nil && pr.NormalizedName() == "wheel" {
				has = true
			}
		}
		if !has {
			bs.requires = append(bs.requires, "wheel")
		}
	}
	return bs, nil
}

// sdistPyproject returns the top-level pyproject.toml of a .tar.gz or .zip
// source distribution, or nil if it has none.
func sdistPyproject(path, name string) ([]byte, error) {
	isTop := func(p string) bool {
		p = strings.TrimPrefix(p, "./")
		dir, file, ok := strings.Cut(p, "/")
		return ok && dir != "" && file == "pyproject.toml"
	}
	if strings.HasSuffix(name, ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		for _, f := range zr.File {
			if isTop(f.Name) {
				rc, err := f.Open()
				if err != nil {
					return nil, err
				}
				defer rc.Close()
				return io.ReadAll(io.LimitReader(rc, maxSdistPyproject))
			}
		}
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("not a gzipped tar: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg && isTop(h.Name) {
			var buf bytes.Buffer
			_, err := io.Copy(&buf, io.LimitReader(tr, maxSdistPyproject))
			return buf.Bytes(), err
		}
	}
}
