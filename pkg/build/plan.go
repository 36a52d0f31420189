// Package build is kiln's pipeline: it takes a validated spec through
// resolve (pin the parent and every input), layer (build each layer from
// pinned inputs), cache (reuse layers by input key) and push (registry, OCI
// layout, docker archive). The command line only parses flags and calls it.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kiln-build/kiln/pkg/layer"
	"github.com/kiln-build/kiln/pkg/lock"
	"github.com/kiln-build/kiln/pkg/resolve/pypi"
	"github.com/kiln-build/kiln/pkg/spec"
)

// Plan is what can be known about a build offline: the layers' inputs, the
// spec hash and the image reference it gives.
type Plan struct {
	Spec *spec.Spec
	// Epoch is the time stamped on every file and on the image.
	Epoch time.Time
	// Code is the code layer (source_root and copy), or nil when the spec
	// ships no files.
	Code *layer.Files
	// Hash is the spec hash: the normalised spec plus every input's content.
	Hash string
	// Ref is the image reference, tagged with the spec hash (or tag_format).
	Ref name.Reference
	// Lock, when set, pins every input (kiln build --locked): no index is
	// fetched and the lock's digest is part of the hash.
	Lock *lock.Lock
	// LocalWheels hashes the content of the local wheel files packages and
	// the requirements files name ("" when there are none): a wheel
	// rebuilt under the same name changes the tag and the python step key.
	LocalWheels string
	// Platforms, for a spec of several platforms, are the plans of each
	// platform in the spec's order (nil for one platform): the same code,
	// hash and reference, each spec built for one platform, each lock the
	// pins of its platform.
	Platforms []*Plan

	// reqs and platform are the requirements file and the platform,
	// parsed once (see requirements and targetPlatform).
	reqs     *requirements
	platform *v1.Platform
}

// PlanOptions configure NewPlan.
type PlanOptions struct {
	// Epoch is the time stamped on every file and on the image.
	Epoch time.Time
	// Lock pins every input (kiln build --locked).
	Lock *lock.Lock
	// NameOptions are passed to the reference parser (name.Insecure).
	NameOptions []name.Option
}

// EpochFromEnv returns the time from SOURCE_DATE_EPOCH, or the Unix epoch
// when it is unset.
func EpochFromEnv() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970; unset it or set e.g. $(git log -1 --format=%%ct)", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

// NewPlan collects the spec's files and computes its hash and reference. It
// reads only local files: `kiln name` works offline.
func NewPlan(ctx context.Context, s *spec.Spec, po PlanOptions) (*Plan, error) {
	epoch := po.Epoch
	var mappings []layer.Mapping
	if s.CopiesSource() {
		mappings = append(mappings, layer.Mapping{Src: s.SourceRoot, Dest: "/root"})
	}
	for _, c := range s.Copy {
		mappings = append(mappings, layer.Mapping{Src: c.Src, Dest: c.Dest})
	}
	if src, ok := s.ScriptCopy(); ok {
		mappings = append(mappings, layer.Mapping{Src: src, Dest: s.ScriptPath()})
	}
	p := &Plan{Spec: s, Epoch: epoch, Lock: po.Lock}
	if len(mappings) > 0 {
		files, err := layer.Collect(ctx, mappings)
		var ie *layer.InputError
		if errors.As(err, &ie) {
			key := "copy"
			if s.CopiesSource() && ie.Mapping == 0 {
				key = "source_root"
			}
			return nil, &spec.Error{Pos: s.Position(key), Key: key, Msg: ie.Path + ": " + ie.Msg, Hint: ie.Hint}
		}
		if err != nil {
			return nil, err
		}
		p.Code = &layer.Files{Entries: files, Epoch: epoch, Desc: "code (source_root and copy)"}
	}
	h := sha256.New()
	h.Write(s.Normalized())
	fmt.Fprintf(h, "\x00epoch=%d\x00", epoch.Unix())
	if p.Code != nil {
		io.WriteString(h, "code="+p.Code.Key()+"\x00")
	}
	reqs, err := p.requirements()
	if err != nil {
		return nil, err
	}
	reqDigest := reqs.digest
	if reqDigest != "" {
		io.WriteString(h, "requirements="+reqDigest+"\x00")
	}
	if p.LocalWheels, err = localWheels(s, reqs.lines); err != nil {
		return nil, err
	}
	if p.LocalWheels != "" {
		io.WriteString(h, "local_wheels="+p.LocalWheels+"\x00")
	}
	if po.Lock != nil {
		d, err := po.Lock.Digest()
		if err != nil {
			return nil, err
		}
		io.WriteString(h, "lock="+d+"\x00")
	}
	p.Hash = hex.EncodeToString(h.Sum(nil))[:spec.HashLen]
	ref, err := s.Reference(p.Hash, po.NameOptions...)
	if err != nil {
		return nil, err
	}
	p.Ref = ref
	if err := p.split(); err != nil {
		return nil, err
	}
	return p, nil
}

// split fills in p.Platforms when the spec builds several platforms.
func (p *Plan) split() error {
	plats, err := p.Spec.Platforms()
	if err != nil || len(plats) < 2 {
		return err
	}
	for _, plat := range plats {
		sub := *p
		sub.Spec = p.Spec.ForPlatform(plat)
		sub.platform, sub.Platforms = nil, nil
		if p.Lock != nil {
			if sub.Lock, err = p.Lock.ForPlatform(sub.Spec.Platform); err != nil {
				return err
			}
		}
		p.Platforms = append(p.Platforms, &sub)
	}
	return nil
}

// Display returns the reference as the user would write it: without the
// implied docker.io host when the spec names no registry.
func (p *Plan) Display() string {
	t, ok := p.Ref.(name.Tag)
	if p.Spec.HasRegistry() || !ok {
		return p.Ref.String()
	}
	repo := p.Spec.Name
	if p.Spec.Image != "" {
		repo, _, _ = strings.Cut(p.Spec.Image, "@")
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
	}
	return repo + ":" + t.TagStr()
}

// localWheels hashes the name and content of every local wheel file the
// spec's packages and requirements files name, in order, each confined to
// the build context; "" when there are none.
func localWheels(s *spec.Spec, lines []pypi.Line) (string, error) {
	h := sha256.New()
	n := 0
	add := func(rawURL string) error {
		u, err := url.Parse(rawURL)
		if err != nil || u.Scheme != "file" {
			return nil
		}
		p := filepath.FromSlash(u.Path)
		real, err := s.InContext(p)
		if err == nil {
			var sum string
			if sum, err = hashRegular(real); err == nil {
				fmt.Fprintf(h, "%s\x00%s\x00", path.Base(u.Path), sum)
				n++
			}
		}
		return err
	}
	for i, pkg := range s.Packages {
		r, err := pypi.ParseRequirement(pkg, s.Dir)
		if err != nil {
			continue // reported, with its fix, when the packages are resolved
		}
		if err := add(r.URL); err != nil {
			var se *spec.Error
			if errors.As(err, &se) {
				return "", err
			}
			return "", &spec.Error{Pos: s.Position("packages"), Key: fmt.Sprintf("packages[%d]", i), Msg: err.Error(), Hint: "list a wheel file under the build context, or name a wider one with --context DIR"}
		}
	}

	for _, l := range lines {
		if err := add(l.URL); err != nil {
			var se *spec.Error
			if errors.As(err, &se) {
				return "", err
			}
			return "", &spec.Error{Pos: s.Position("requirements"), Key: "requirements", Msg: fmt.Sprintf("%s:%d: %v", l.File, l.Line, err), Hint: "list a wheel file under the build context, or name a wider one with --context DIR"}
		}
	}
	if n == 0 {
		return "", nil
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashRegular returns the hex SHA-256 of the regular file at p; anything
// else (a named pipe would block) fails.
func hashRegular(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", p)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
