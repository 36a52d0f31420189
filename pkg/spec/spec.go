// Package spec defines kiln's image specification: the YAML file a user
// writes (with flytekit ImageSpec's and TensorFlow Cloud DockerConfig's field
// names), its parsing with file and line positions, command-line overrides,
// validation and the content hash that becomes the image tag.
package spec

import (
	"fmt"
	"strings"
)

// DefaultFile is the spec file read when none is named.
const DefaultFile = "kiln.yaml"

// KV is one key/value pair of an ordered mapping such as env or labels.
type KV struct {
	Key   string
	Value string
}

// Copy is one `copy` entry: Src (a path relative to the spec's directory)
// lands at Dest (an absolute path in the image; a trailing slash means
// "inside this directory").
type Copy struct {
	Src  string
	Dest string
}

// Spec is a parsed image specification. Paths are absolute on the host once
// Load or Resolve has run. A nil slice means "not given"; an empty non-nil
// slice means "given as []" (meaningful for Entrypoint and Cmd).
type Spec struct {
	// File is the spec file the values came from ("" for flags only).
	File string
	// Dir is the directory relative paths are resolved against.
	Dir string
	// Context is the build context given with --context ("" for Dir):
	// every host file the image takes must lie inside it.
	Context string
	// DefaultBase is where the default parent comes from when base_image
	// is unset ($KILN_DEFAULT_BASE): "" for Docker Hub's python, a
	// registry host, or a repository (see DefaultBaseImage).
	DefaultBase string
	// BaseDefaulted records that Validate filled in base_image.
	BaseDefaulted bool

	Name           string
	Registry       string
	TagFormat      string
	Image          string
	BaseImage      string
	Platform       string
	Env            []KV
	SourceRoot     string
	Copy           []Copy
	Entrypoint     []string
	Cmd            []string
	Workdir        string
	User           string
	Labels         []KV
	CacheFrom      string
	RegistryConfig string
	PythonVersion  string
	Packages       []string
	Requirements   string
	// Extras and Groups choose a pyproject.toml's or a lock's extras and
	// dependency groups (kiln's own keys).
	Extras []string
	Groups []string
	// InstallProject builds source_root's project and installs it.
	InstallProject bool
	// OnlyBinary refuses source distributions (kiln builds them by
	// default when no wheel fits).
	OnlyBinary bool
	// Script is a Python script whose PEP 723 metadata block names
	// dependencies to install; it is shipped (ScriptPath) and run by
	// default.
	Script           string
	PipIndex         string
	PipExtraIndexURL []string
	AptPackages      []string
	// AptSources, AptInstallRecommends and AptAllowExpired are kiln's own
	// keys for Debian packages.
	AptSources           []string
	AptInstallRecommends bool
	AptAllowExpired      bool
	// AptScripts is apt_scripts: AptScriptsRun, AptScriptsEmulate or
	// empty (run where the target can execute, else emulate).
	AptScripts        string
	Commands          []string
	CommandsNetwork   bool
	CommandsAfterCode bool
	CommandsTimeout   string
	// PythonExec is ImageSpec's python_exec: the interpreter packages
	// are installed for ("" picks the parent's).
	PythonExec string
	// SourceCopyMode is ImageSpec's source_copy_mode: "", all, auto,
	// loaded_modules (all three copy source_root whole), none or no_copy.
	SourceCopyMode string
	// PipExtraArgs is ImageSpec's pip_extra_args; Validate folds its
	// index flags into PipIndex and PipExtraIndexURL.
	PipExtraArgs string
	// PipSecretMounts are ImageSpec's pip_secret_mounts: Src is a host
	// file, Dest where pip would see it. They never enter the image, its
	// config, the cache keys or the lock.
	PipSecretMounts []Copy
	// Builder is ImageSpec's builder: "" or "kiln".
	Builder          string
	RuntimePackages  []string
	Cuda             string
	Cudnn            string
	CondaPackages    []string
	CondaChannels    []string
	ImageBuildBucket string

	// pipArgsFolded records that Validate folded PipExtraArgs.
	pipArgsFolded bool

	// pos records where each key was set, for error messages.
	pos map[string]Pos
}

// Pos is where a key was set: a file and line, or a command-line flag.
type Pos struct {
	File string
	Line int
	Flag string
}

func (p Pos) String() string {
	switch {
	case p.Flag != "":
		return "flag --" + p.Flag
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	case p.File != "":
		return p.File
	}
	return "spec"
}

// Position reports where key was set, for error messages.
func (s *Spec) Position(key string) Pos {
	if p, ok := s.pos[key]; ok {
		return p
	}
	return Pos{File: s.File}
}

// clearEntryPos forgets where the entries of key (key[i], key.name) were
// written, when a flag replaces them.
func (s *Spec) clearEntryPos(key string) {
	for k := range s.pos {
		if strings.HasPrefix(k, key+"[") || strings.HasPrefix(k, key+".") {
			delete(s.pos, k)
		}
	}
}

func (s *Spec) setPos(key string, p Pos) {
	if s.pos == nil {
		s.pos = map[string]Pos{}
	}
	s.pos[key] = p
}

// Error is a problem with one key of a spec. Its message names where the key
// was set, the key, what is wrong and how to fix it.
type Error struct {
	Pos  Pos
	Key  string
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// errorf returns an *Error for key positioned where the spec set it.
func (s *Spec) errorf(key, hint, format string, args ...any) *Error {
	return &Error{Pos: s.Position(key), Key: key, Msg: fmt.Sprintf(format, args...), Hint: hint}
}

// EnvValue returns the value of env key k and whether it is set.
func (s *Spec) EnvValue(k string) (string, bool) {
	return lookup(s.Env, k)
}

func lookup(kvs []KV, k string) (string, bool) {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return "", false
}

// setKV sets k to v in kvs, replacing an existing value in place.
func setKV(kvs []KV, k, v string) []KV {
	for i := range kvs {
		if kvs[i].Key == k {
			kvs[i].Value = v
			return kvs
		}
	}
	return append(kvs, KV{Key: k, Value: v})
}
