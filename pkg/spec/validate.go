package spec

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/pkg/auth"
	"github.com/kiln-build/kiln/pkg/resolve/debsolve"
	"github.com/kiln-build/kiln/pkg/resolve/pypi"
)

// DefaultPlatform is the platform built when the spec names none.
const DefaultPlatform = "linux/amd64"

// Scratch is the base_image value for an image with no parent.
const Scratch = "scratch"

var (
	repoComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	placeholder   = regexp.MustCompile(`\{[^{}]*\}`)
)

// Validate checks every key's value, fills in defaults (platform, name) and
// returns the first problem as an *Error naming where the key was set and the
// fix.
func (s *Spec) Validate() error {
	if err := s.validateCommands(); err != nil {
		return err
	}
	if err := s.validateAptScripts(); err != nil {
		return err
	}
	for i := range fields {
		f := &fields[i]
		if f.unsupported != "" && s.isSet(f) {
			return s.errorf(f.key, f.unsupported, "not supported yet")
		}
	}
	if err := s.checkNUL(); err != nil {
		return err
	}
	if err := s.validateImageSpec(); err != nil {
		return err
	}
	if s.Platform == "" {
		s.Platform = DefaultPlatform
	}
	ps, err := s.Platforms()
	if err != nil {
		return err
	}
	// One spelling per set of platforms, so that the tag does not depend
	// on how the list was written.
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = PlatformString(p)
	}
	s.Platform = strings.Join(names, ",")
	if v := s.PythonVersion; v != "" && !pythonVersion.MatchString(v) {
		return s.errorf("python_version", `write the major, major.minor or full version, e.g. "3.11"`, "%q is not a Python version", v)
	}
	if s.BaseImage == "" {
		base, err := DefaultBaseImage(s.PythonVersion, s.DefaultBase)
		if err != nil {
			return s.errorf("base_image", "set "+DefaultBaseEnv+" to a registry host (mirror.example:5000) or a repository (mirror.example/library/python), or set base_image", "%v", err)
		}
		s.BaseImage, s.BaseDefaulted = base, true
	}
	if s.BaseImage == Scratch && len(s.Commands) > 0 {
		return s.errorf("commands", "use a parent image with a shell, such as debian:bookworm-slim, as base_image", "need /bin/sh, and base_image scratch has none")
	}
	if s.BaseImage != Scratch {
		if _, err := name.ParseReference(s.BaseImage); err != nil {
			return s.errorf("base_image", "write a reference like registry.example/repo:tag or repo@sha256:...", "%q is not a valid image reference", s.BaseImage)
		}
		if msg, hint := checkReference(s.BaseImage); msg != "" {
			return s.errorf("base_image", hint, "%q is not a valid image reference: %s", s.BaseImage, msg)
		}
	}
	if s.CacheFrom != "" {
		if _, err := name.ParseReference(s.CacheFrom); err != nil {
			return s.errorf("cache_from", "write a reference like registry.example/repo:tag", "%q is not a valid image reference", s.CacheFrom)
		}
		if msg, hint := checkReference(s.CacheFrom); msg != "" {
			return s.errorf("cache_from", hint, "%q is not a valid image reference: %s", s.CacheFrom, msg)
		}
	}
	if s.Image != "" {
		ref, err := name.ParseReference(s.Image)
		if err != nil {
			return s.errorf("image", "write a reference like registry.example/repo:tag", "%q is not a valid image reference", s.Image)
		}
		if _, ok := ref.(name.Digest); ok {
			return s.errorf("image", "give a tag, image: "+ref.Context().String()+":v1, or none, image: "+ref.Context().String()+", for the content hash as the tag", "%q names a digest, which kiln cannot choose: the digest is computed when the image is built", s.Image)
		}
		if msg, hint := checkReference(s.Image); msg != "" {
			return s.errorf("image", hint, "%q is not a valid image reference: %s", s.Image, msg)
		}
	}
	if s.Name == "" && s.Image == "" {
		s.Name = defaultName(s.Dir)
	}
	if s.Name != "" && !repoComponent.MatchString(s.Name) {
		return s.errorf("name", "use lowercase letters, digits and . _ - / separators, e.g. my-app", "%q is not a valid image name", s.Name)
	}
	if s.Registry != "" {
		if msg, hint := checkRegistry(s.Registry); msg != "" {
			return s.errorf("registry", hint, "%q is not a valid registry: %s", s.Registry, msg)
		}
		if _, err := name.NewRepository(s.Registry + "/" + firstNonEmpty(s.Name, "x")); err != nil {
			return s.errorf("registry", "write a host with an optional namespace, e.g. localhost:5000 or ghcr.io/org", "%q is not a valid registry", s.Registry)
		}
		if repo := strings.TrimSuffix(s.Registry, "/") + "/" + s.Name; s.Name != "" && len(repo) > maxRepoLen {
			return s.errorf("name", "shorten name or registry", "%q is %d characters long; image names are at most %d", repo, len(repo), maxRepoLen)
		}
	}
	if s.TagFormat != "" {
		for _, ph := range placeholder.FindAllString(s.TagFormat, -1) {
			if ph != "{spec_hash}" {
				return s.errorf("tag_format", "the only placeholder is {spec_hash}", "unknown placeholder %s", ph)
			}
		}
		// The tag as it will be, with a hash of its real length.
		t := strings.ReplaceAll(s.TagFormat, "{spec_hash}", strings.Repeat("0", HashLen))
		if len(t) > maxTagLen {
			return s.errorf("tag_format", fmt.Sprintf("shorten it to at most %d characters besides {spec_hash}, which becomes %d", maxTagLen-HashLen, HashLen), "%q makes a tag of %d characters; tags are at most %d", s.TagFormat, len(t), maxTagLen)
		}
		if !tagPattern.MatchString(t) {
			return s.errorf("tag_format", "tags are up to 128 letters, digits, _ . and -, not starting with . or -", "%q does not make a valid tag", s.TagFormat)
		}
	}
	for _, kv := range s.Env {
		if kv.Key == "" || strings.ContainsAny(kv.Key, "=\x00") {
			return &Error{Pos: s.mapPos("env", kv.Key), Key: "env", Msg: fmt.Sprintf("%q is not a valid variable name", kv.Key), Hint: "names are non-empty and contain no '='"}
		}
	}
	for _, kv := range s.Labels {
		if kv.Key == "" {
			return &Error{Pos: s.mapPos("labels", kv.Key), Key: "labels", Msg: "empty label name", Hint: "give every label a name"}
		}
	}
	if v := s.PythonVersion; v != "" && !pythonVersion.MatchString(v) {
		return s.errorf("python_version", `write the major, major.minor or full version, e.g. "3.11"`, "%q is not a Python version", v)
	}
	for i, p := range s.Packages {
		if strings.TrimSpace(p) == "" {
			return &Error{Pos: s.entryPos("packages", i), Key: fmt.Sprintf("packages[%d]", i), Msg: "empty requirement", Hint: "remove the empty entry"}
		}
		if _, err := pypi.ParseRequirement(p, s.Dir); err != nil {
			return &Error{Pos: s.entryPos("packages", i), Key: fmt.Sprintf("packages[%d]", i), Msg: fmt.Sprintf("%q: %v", p, err), Hint: `write a requirement such as "flask>=3" or "requests[socks]"`}
		}
	}
	for i, p := range s.AptPackages {
		if _, err := debsolve.ParseTarget(p); err != nil {
			return &Error{Pos: s.entryPos("apt_packages", i), Key: fmt.Sprintf("apt_packages[%d]", i), Msg: err.Error(), Hint: "write name, name=version or name:arch, e.g. jq or jq=1.6-2.1"}
		}
	}
	if s.Workdir != "" && !path.IsAbs(s.Workdir) {
		return s.errorf("workdir", "use an absolute path such as /app", "%q is not an absolute path", s.Workdir)
	}
	if err := s.validateContext(); err != nil {
		return err
	}
	for _, c := range s.Copy {
		if !path.IsAbs(c.Dest) {
			return s.errorf("copy", "destinations are absolute paths in the image, e.g. /opt/data/", "destination %q of %s is not absolute", c.Dest, c.Src)
		}
		if path.Clean(c.Dest) == "/" {
			return s.errorf("copy", "copy into a directory such as /opt/app/", "destination of %s is the image root", c.Src)
		}
	}
	for i, u := range append([]string{s.PipIndex}, s.PipExtraIndexURL...) {
		if u == "" {
			continue
		}
		key := "pip_index"
		if i > 0 {
			key = "pip_extra_index_url"
		}
		if _, err := url.Parse(u); err != nil && badUserinfoEscape(u) {
			return s.errorf(key, "percent-encode the user name and password: write a literal % as %25 (and @ as %40, : as %3A, / as %2F)", "the user name or password (before the @) of %s has a bad percent-escape: a %% must start %%XX with two hex digits", auth.RedactURL(u))
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "file") || (pu.Host == "" && pu.Scheme != "file") {
			return s.errorf(key, "write the index's simple URL, e.g. https://pypi.org/simple", "%q is not an http(s) URL", auth.RedactURL(u))
		}
	}
	if s.RegistryConfig != "" {
		if err := mustExist(s, "registry_config", s.RegistryConfig, false); err != nil {
			return err
		}
	}
	if err := s.validateScript(); err != nil {
		return err
	}
	return nil
}

// TargetPlatform parses the platform key of a spec for one platform; a
// spec for several is split with ForPlatform first.
func (s *Spec) TargetPlatform() (*v1.Platform, error) {
	ps, err := s.Platforms()
	if err != nil {
		return nil, err
	}
	if len(ps) > 1 {
		return nil, s.errorf("platform", "split the spec with ForPlatform", "several platforms (%s) where one is needed", s.Platform)
	}
	return &ps[0], nil
}

// Platforms parses the platform key: one platform, or several separated
// by commas (a YAML list is stored so), in the order given.
func (s *Spec) Platforms() ([]v1.Platform, error) {
	var out []v1.Platform
	seen := map[string]bool{}
	for _, p := range strings.Split(firstNonEmpty(s.Platform, DefaultPlatform), ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, s.errorf("platform", "write os/arch[/variant] entries separated by commas, e.g. linux/amd64,linux/arm64", "%q has an empty entry", s.Platform)
		}
		parts := strings.Split(p, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] == "") {
			return nil, s.errorf("platform", "write os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8", "%q is not a platform", p)
		}
		if parts[0] != "linux" {
			return nil, s.errorf("platform", "kiln builds linux images; write linux/amd64 or linux/arm64", "%q: only linux is supported", p)
		}
		plat := v1.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			plat.Variant = parts[2]
		}
		if seen[PlatformString(plat)] {
			return nil, s.errorf("platform", "list each platform once", "%s is listed twice", p)
		}
		seen[PlatformString(plat)] = true
		out = append(out, plat)
	}
	return out, nil
}

// PlatformString writes p as the platform key does: os/arch[/variant].
func PlatformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ForPlatform returns a copy of s that builds only p, one of s's
// platforms: a build for several platforms is one build per platform.
func (s *Spec) ForPlatform(p v1.Platform) *Spec {
	c := *s
	c.Platform = PlatformString(p)
	return &c
}

func (s *Spec) isSet(f *field) bool {
	switch f.kind {
	case kindString:
		return *f.str(s) != ""
	case kindList, kindArgv:
		return len(*f.list(s)) > 0
	case kindMap:
		return len(*f.kv(s)) > 0
	case kindCopy:
		return len(*f.copy(s)) > 0
	case kindBool:
		return *f.flag(s)
	}
	return false
}

func mustExist(s *Spec, key, p string, dir bool) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s.errorf(key, "check the path; relative paths are relative to the spec file's directory", "%s does not exist", p)
	case err != nil:
		return s.errorf(key, "make it readable", "%s: %v", p, err)
	case dir && !fi.IsDir():
		return s.errorf(key, "name a directory", "%s is not a directory", p)
	}
	return nil
}

// badUserinfoEscape reports whether the user information of u (before the
// last @ of its authority) holds a % that does not start %XX.
func badUserinfoEscape(u string) bool {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return false
	}
	authority, _, _ := strings.Cut(rest, "/")
	i := strings.LastIndex(authority, "@")
	if i < 0 {
		return false
	}
	ui := authority[:i]
	for j := 0; j < len(ui); j++ {
		if ui[j] == '%' {
			if j+2 >= len(ui) || !isHexDigit(ui[j+1]) || !isHexDigit(ui[j+2]) {
				return true
			}
			j += 2
		}
	}
	return false
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// defaultName derives an image name from the spec's directory name.
func defaultName(dir string) string {
	base := strings.ToLower(filepath.Base(dir))
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	for strings.Contains(n, "--") {
		n = strings.ReplaceAll(n, "--", "-")
	}
	if n == "" {
		return "kiln-image"
	}
	return n
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Describe returns a one-line summary of the spec for logs.
func (s *Spec) Describe() string {
	return fmt.Sprintf("%s on %s (%s)", firstNonEmpty(s.Image, s.Name), s.BaseImage, s.Platform)
}

// Values of apt_scripts.
const (
	// AptScriptsRun configures the Debian packages as dpkg does: the
	// image's own dpkg --configure runs their maintainer scripts and
	// triggers in the sandbox.
	AptScriptsRun = "run"
	// AptScriptsEmulate runs no program of the image: kiln reproduces
	// the effects of the maintainer scripts programs depend on.
	AptScriptsEmulate = "emulate"
)

// validateAptScripts checks apt_scripts.
func (s *Spec) validateAptScripts() error {
	switch s.AptScripts {
	case "", AptScriptsRun, AptScriptsEmulate:
		return nil
	}
	return s.errorf("apt_scripts", "write run (maintainer scripts run in kiln's sandbox) or emulate (kiln reproduces their effects), or leave it out for run where possible", "%q is neither run nor emulate", s.AptScripts)
}

// DefaultCommandsTimeout is the time limit of a build's commands when
// commands_timeout is not set.
const DefaultCommandsTimeout = 30 * time.Minute

// validateCommands checks commands and the keys that configure them.
func (s *Spec) validateCommands() error {
	for i, c := range s.Commands {
		pos, key := s.entryPos("commands", i), fmt.Sprintf("commands[%d]", i)
		switch {
		case strings.IndexByte(c, 0) >= 0:
			return &Error{Pos: pos, Key: key, Msg: fmt.Sprintf("%q contains a NUL byte", c), Hint: "remove the NUL byte (\\0): a shell command cannot hold one"}
		case strings.TrimSpace(c) == "":
			return &Error{Pos: pos, Key: key, Msg: "empty command", Hint: "remove the empty entry"}
		}
	}
	_, err := s.CommandsTimeLimit()
	return err
}

// CommandsTimeLimit returns the time limit of the build's commands:
// commands_timeout, or DefaultCommandsTimeout when it is not set. A value
// that is not a positive Go duration ("30m", "1h30m", "90s") is an *Error
// naming the key.
func (s *Spec) CommandsTimeLimit() (time.Duration, error) {
	v := s.CommandsTimeout
	if v == "" {
		return DefaultCommandsTimeout, nil
	}
	const hint = "write a duration with its unit, e.g. 30m, 2h or 1h30m"
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, s.errorf("commands_timeout", hint, "%q is not a duration", v)
	}
	if d <= 0 {
		return 0, s.errorf("commands_timeout", hint, "%q is not a positive duration: the commands need time to run", v)
	}
	return d, nil
}

// CommandsScript returns the shell script that runs the build's commands
// as one `/bin/sh -c` (flytekit's single RUN of `c1 && c2 && …`): each
// command stops the rest when it fails, and each is closed by a newline
// inside its own { } group, so that a comment (`make # all`), a trailing
// `&` or `;`, or a here-document in one command cannot swallow or change
// the next. It is "" without commands.
func (s *Spec) CommandsScript() string {
	var b strings.Builder
	for i, c := range s.Commands {
		if i > 0 {
			b.WriteString(" && ")
		}
		b.WriteString("{ ")
		b.WriteString(c)
		b.WriteString("\n}")
	}
	return b.String()
}
