package spec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// kind is the YAML shape a key takes.
type kind int

const (
	kindString  kind = iota // a scalar
	kindList                // a sequence of scalars
	kindMap                 // a mapping of scalars to scalars
	kindArgv                // a sequence of strings where [] is meaningful
	kindCopy                // a mapping src: dest, or a sequence of such mappings
	kindBool                // true or false
	kindOptions             // builder_options: a mapping of kiln's own keys
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "a string"
	case kindList, kindArgv:
		return "a list of strings"
	case kindMap:
		return "a mapping of strings"
	case kindCopy:
		return "a mapping of source paths to image paths"
	case kindBool:
		return "true or false"
	case kindOptions:
		return "a mapping of kiln keys to their values"
	}
	return "?"
}

// field describes one spec key.
type field struct {
	key  string
	kind kind
	// path marks keys whose values are host paths, resolved against the
	// spec's directory.
	path bool
	// joinList marks string keys that also take a YAML list, stored
	// comma-separated (platform: [linux/amd64, linux/arm64]).
	joinList bool
	// doc is a one-line description, with its ImageSpec/DockerConfig
	// counterpart, used for flag help.
	doc string
	// unsupported, when set, is why the key cannot be used yet.
	unsupported string
	// content says how the key enters the spec hash (Normalized), which
	// is derived from this table alone: every key must say.
	content contentRule
	// str, list, kv, copy point at the Spec's storage for the key.
	str  func(*Spec) *string
	list func(*Spec) *[]string
	kv   func(*Spec) *[]KV
	copy func(*Spec) *[]Copy
	flag func(*Spec) *bool
}

// contentRule says how a key enters the spec hash.
type contentRule int

const (
	// contentUnset is no rule: TestEveryKeySaysHowItIsHashed fails.
	contentUnset contentRule = iota
	// notContent keys say where the image goes, or change nothing in it.
	notContent
	// contentValue keys enter with their value.
	contentValue
	// contentPresence keys are host paths: only whether they are set
	// enters (the files they name are hashed by content).
	contentPresence
	// contentCopyDests enters the copy destinations (the sources are
	// hashed by content).
	contentCopyDests
	// contentURLs enters index URLs without their user information.
	contentURLs
	// contentPlatform enters the platform, the default filled in.
	contentPlatform
	// contentCommandsSetting is a setting of the commands that enters
	// only when it is on and there are commands, so that it changes no tag
	// of a spec without commands.
	contentCommandsSetting
	// contentIfSet keys enter with their value only when set, so that
	// they change no tag of a spec without them.
	contentIfSet
	// contentCopyMode is source_copy_mode: it enters only as "none",
	// the one mode that changes what is copied.
	contentCopyMode
	// contentListIfSet is a list that enters only when it is not empty,
	// so that a key added later changes no tag of a spec without it.
	contentListIfSet
	// contentBoolIfSet is a flag that enters only when it is on.
	contentBoolIfSet
	// contentPresenceIfSet is a host path that enters only when set, and
	// then only as set (the file it names is hashed by content), so that
	// it changes no tag of a spec without it.
	contentPresenceIfSet
)

// aliases maps alternative key names to their canonical key.
var aliases = map[string]string{
	"parent_image": "base_image",
}

// fields lists every spec key in documentation order. It is read-only.
var fields = []field{
	{key: "name", content: notContent, kind: kindString, doc: "image name (ImageSpec name)", str: func(s *Spec) *string { return &s.Name }},
	{key: "registry", content: notContent, kind: kindString, doc: "registry and namespace to push to, e.g. ghcr.io/org (ImageSpec registry)", str: func(s *Spec) *string { return &s.Registry }},
	{key: "tag_format", content: notContent, kind: kindString, doc: `tag template; {spec_hash} is the content hash (ImageSpec tag_format)`, str: func(s *Spec) *string { return &s.TagFormat }},
	{key: "image", content: notContent, kind: kindString, doc: "full image reference, overrides registry/name/tag (DockerConfig image)", str: func(s *Spec) *string { return &s.Image }},
	{key: "base_image", content: contentValue, kind: kindString, doc: "parent image reference, or scratch (ImageSpec base_image, DockerConfig parent_image)", str: func(s *Spec) *string { return &s.BaseImage }},
	{key: "platform", content: contentPlatform, kind: kindString, joinList: true, doc: "target platform, or several (a list or comma-separated: linux/amd64,linux/arm64 gives an image index); default linux/amd64 (ImageSpec platform)", str: func(s *Spec) *string { return &s.Platform }},
	{key: "env", content: contentValue, kind: kindMap, doc: "environment variables K=V (ImageSpec env)", kv: func(s *Spec) *[]KV { return &s.Env }},
	{key: "source_root", content: contentPresence, kind: kindString, path: true, doc: "directory shipped to /root (ImageSpec source_root)", str: func(s *Spec) *string { return &s.SourceRoot }},
	{key: "copy", content: contentCopyDests, kind: kindCopy, doc: "extra files SRC:DEST (ImageSpec copy)", copy: func(s *Spec) *[]Copy { return &s.Copy }},
	{key: "entrypoint", content: contentValue, kind: kindArgv, doc: `entrypoint as a JSON list; [] clears the parent's (ImageSpec entrypoint)`, list: func(s *Spec) *[]string { return &s.Entrypoint }},
	{key: "cmd", content: contentValue, kind: kindArgv, doc: `default arguments as a JSON list; [] clears the parent's`, list: func(s *Spec) *[]string { return &s.Cmd }},
	{key: "workdir", content: contentValue, kind: kindString, doc: "working directory, default /root", str: func(s *Spec) *string { return &s.Workdir }},
	{key: "user", content: contentValue, kind: kindString, doc: "user (and group) the container runs as", str: func(s *Spec) *string { return &s.User }},
	{key: "labels", content: contentValue, kind: kindMap, doc: "image labels K=V", kv: func(s *Spec) *[]KV { return &s.Labels }},
	{key: "cache_from", content: notContent, kind: kindString, doc: "image whose layers are reused (DockerConfig cache_from)", str: func(s *Spec) *string { return &s.CacheFrom }},
	{key: "registry_config", content: notContent, kind: kindString, path: true, doc: "Docker config JSON with registry credentials (ImageSpec registry_config)", str: func(s *Spec) *string { return &s.RegistryConfig }},
	{key: "python_version", content: contentValue, kind: kindString, doc: "Python version the image must have (ImageSpec python_version)", str: func(s *Spec) *string { return &s.PythonVersion }},
	{key: "packages", content: contentValue, kind: kindList, doc: "Python requirements (ImageSpec packages)", list: func(s *Spec) *[]string { return &s.Packages }},
	{key: "requirements", content: contentPresence, kind: kindString, path: true, doc: "requirements.txt, pyproject.toml, pylock.toml, uv.lock or poetry.lock (ImageSpec requirements)", str: func(s *Spec) *string { return &s.Requirements }},
	{key: "extras", content: contentListIfSet, kind: kindList, doc: "extras of the project to install, from a pyproject.toml or lock named by requirements", list: func(s *Spec) *[]string { return &s.Extras }},
	{key: "groups", content: contentListIfSet, kind: kindList, doc: "dependency groups to install, from a pyproject.toml or lock named by requirements", list: func(s *Spec) *[]string { return &s.Groups }},
	{key: "install_project", content: contentBoolIfSet, kind: kindBool, doc: "build the project in source_root (its pyproject.toml) into a wheel and install it in a layer of its own", flag: func(s *Spec) *bool { return &s.InstallProject }},
	{key: "only_binary", content: contentBoolIfSet, kind: kindBool, doc: "install wheels only: never build a source distribution", flag: func(s *Spec) *bool { return &s.OnlyBinary }},
	{key: "script", content: contentPresenceIfSet, kind: kindString, path: true, doc: "a Python script with PEP 723 inline metadata (# /// script): its dependencies are installed like packages, it is shipped to /root and is the default entrypoint", str: func(s *Spec) *string { return &s.Script }},
	{key: "pip_index", content: contentURLs, kind: kindString, doc: "Python package index URL (ImageSpec pip_index)", str: func(s *Spec) *string { return &s.PipIndex }},
	{key: "pip_extra_index_url", content: contentURLs, kind: kindList, doc: "extra Python package index URLs (ImageSpec pip_extra_index_url)", list: func(s *Spec) *[]string { return &s.PipExtraIndexURL }},
	{key: "apt_packages", content: contentValue, kind: kindList, doc: "Debian packages (ImageSpec apt_packages)", list: func(s *Spec) *[]string { return &s.AptPackages }},
	{key: "apt_sources", content: contentValue, kind: kindList, doc: "extra apt sources: sources.list lines or deb822 stanzas; Signed-By names a key file relative to the spec", list: func(s *Spec) *[]string { return &s.AptSources }},
	{key: "apt_install_recommends", content: contentValue, kind: kindBool, doc: "install Recommends too (apt-get's default; off like --no-install-recommends)", flag: func(s *Spec) *bool { return &s.AptInstallRecommends }},
	{key: "apt_allow_expired", content: notContent, kind: kindBool, doc: "accept a Release file past its Valid-Until (snapshot mirrors)", flag: func(s *Spec) *bool { return &s.AptAllowExpired }},
	{key: "apt_scripts", content: contentIfSet, kind: kindString, doc: "how maintainer scripts take effect: run (dpkg --configure in the sandbox) or emulate (kiln reproduces their effects); default run where possible", str: func(s *Spec) *string { return &s.AptScripts }},
	{key: "commands", content: contentValue, kind: kindList, doc: "shell commands run in the sandbox; together they give one layer (ImageSpec commands)", list: func(s *Spec) *[]string { return &s.Commands }},
	{key: "commands_network", content: contentCommandsSetting, kind: kindBool, doc: "give commands the host's network (off: only lo, for a reproducible layer)", flag: func(s *Spec) *bool { return &s.CommandsNetwork }},
	{key: "commands_after_code", content: contentCommandsSetting, kind: kindBool, doc: "run commands after the code layer (source_root, copy) instead of before it", flag: func(s *Spec) *bool { return &s.CommandsAfterCode }},
	{key: "commands_timeout", content: notContent, kind: kindString, doc: "time limit for the commands, e.g. 30m or 2h (default 30m)", str: func(s *Spec) *string { return &s.CommandsTimeout }},
	{key: "python_exec", content: contentIfSet, kind: kindString, doc: "the Python interpreter packages are installed for, e.g. /opt/venv/bin/python (ImageSpec python_exec)", str: func(s *Spec) *string { return &s.PythonExec }},
	{key: "source_copy_mode", content: contentCopyMode, kind: kindString, doc: "which files of source_root to copy: all, auto (loaded_modules: kiln copies all of them) or none (ImageSpec source_copy_mode)", str: func(s *Spec) *string { return &s.SourceCopyMode }},
	{key: "pip_extra_args", content: notContent, kind: kindString, doc: "extra pip install flags; --index-url and --extra-index-url map onto pip_index and pip_extra_index_url (ImageSpec pip_extra_args)", str: func(s *Spec) *string { return &s.PipExtraArgs }},
	{key: "pip_secret_mounts", content: notContent, kind: kindCopy, doc: "secret files for the package index, SRC:MOUNT; a .netrc mount gives the index credentials, used for the downloads only (ImageSpec pip_secret_mounts)", copy: func(s *Spec) *[]Copy { return &s.PipSecretMounts }},
	{key: "builder", content: notContent, kind: kindString, doc: "the ImageSpec builder: absent or kiln (ImageSpec builder)", str: func(s *Spec) *string { return &s.Builder }},
	{key: "builder_options", content: notContent, kind: kindOptions, doc: "kiln's own keys, for a file that also serves flytekit's ImageSpec(**yaml) (ImageSpec builder_options)"},
	{key: "runtime_packages", content: notContent, kind: kindList, doc: "packages flytekit installs when the task starts (ImageSpec runtime_packages)", unsupported: "kiln installs packages when it builds the image and a kiln image installs nothing when it starts; list them in packages", list: func(s *Spec) *[]string { return &s.RuntimePackages }},
	{key: "cuda", content: notContent, kind: kindString, doc: "CUDA version (ImageSpec cuda)", unsupported: "CUDA installation is not built yet; use a CUDA parent image as base_image", str: func(s *Spec) *string { return &s.Cuda }},
	{key: "cudnn", content: notContent, kind: kindString, doc: "cuDNN version (ImageSpec cudnn)", unsupported: "cuDNN installation is not built yet; use a CUDA parent image as base_image", str: func(s *Spec) *string { return &s.Cudnn }},
	{key: "conda_packages", content: notContent, kind: kindList, doc: "conda packages (ImageSpec conda_packages)", unsupported: "conda is not supported; use packages (wheels) instead", list: func(s *Spec) *[]string { return &s.CondaPackages }},
	{key: "conda_channels", content: notContent, kind: kindList, doc: "conda channels (ImageSpec conda_channels)", unsupported: "conda is not supported; use packages (wheels) instead", list: func(s *Spec) *[]string { return &s.CondaChannels }},
	{key: "image_build_bucket", content: notContent, kind: kindString, doc: "bucket for remote builds (DockerConfig image_build_bucket)", unsupported: "remote builds are not built yet; run kiln where the build should happen", str: func(s *Spec) *string { return &s.ImageBuildBucket }},
}

// flagName is the command-line flag for a key: the key with dashes.
func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

func fieldFor(key string) (*field, bool) {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i], true
		}
	}
	return nil, false
}

// MaxFileSize bounds a spec file. A spec is a few lines of YAML; anything
// bigger is the wrong file (or a device that never ends).
const MaxFileSize = 1 << 20

// Load reads the spec file at path. Relative paths in it are resolved against
// the file's directory.
func Load(path string) (*Spec, error) {
	return LoadContext(context.Background(), path)
}

// LoadContext is Load, returning ctx's error as soon as ctx is done: a spec
// that is a FIFO nobody writes must not outlive an interrupt. The file must
// be a regular file or a pipe (after following symlinks) of at most
// MaxFileSize bytes.
func LoadContext(ctx context.Context, path string) (*Spec, error) {
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		data, err := readFile(path)
		ch <- result{data, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		// The reader stays blocked (on a FIFO's open, say) until the
		// process exits; it holds nothing that needs cleaning up.
		return nil, fmt.Errorf("read spec %s: %w", path, ctx.Err())
	case r = <-ch:
	}
	if r.err != nil {
		return nil, r.err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read spec %s: %w", path, err)
	}
	return Parse(path, filepath.Dir(abs), r.data)
}

// Parse parses spec YAML. name is used in error messages and dir is the
// directory relative paths are resolved against.
func Parse(name, dir string, data []byte) (*Spec, error) {
	s := &Spec{File: name, Dir: dir}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return s, nil // an empty file is an empty spec
		}
		return nil, &Error{Pos: Pos{File: name, Line: yamlErrorLine(err)}, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Hint: "fix the YAML syntax"}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{Pos: Pos{File: name, Line: extra.Line}, Msg: "more than one YAML document", Hint: "keep one spec per file"}
	}
	if len(doc.Content) == 0 {
		return s, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return s, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Pos: Pos{File: name, Line: root.Line}, Msg: "the spec must be a mapping of keys to values", Hint: "write key: value lines, e.g. base_image: debian:bookworm"}
	}
	r := newResolver(name)
	top, err := r.pairs(root)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	for _, kv := range top {
		k, v := kv.k, kv.v
		pos := Pos{File: name, Line: k.Line}
		key, ok := scalar(k)
		if !ok {
			return nil, &Error{Pos: pos, Msg: fmt.Sprintf("a key must be a string, not %s", describe(k)), Hint: "write key: value lines, e.g. base_image: debian:bookworm"}
		}
		canon := key
		if a, ok := aliases[key]; ok {
			canon = a
		}
		f, ok := fieldFor(canon)
		if !ok {
			hint := "see the README for the list of keys"
			if sug := suggest(key); sug != "" {
				hint = fmt.Sprintf("did you mean %q?", sug)
			}
			return nil, &Error{Pos: pos, Key: key, Msg: "unknown key", Hint: hint}
		}
		if line, dup := seen[canon]; dup {
			return nil, &Error{Pos: pos, Key: key, Msg: fmt.Sprintf("set twice (first at line %d)", line), Hint: fmt.Sprintf("keep one of %s and its alias", canon)}
		}
		seen[canon] = k.Line
		s.setPos(canon, pos)
		if f.kind == kindOptions {
			if err := s.decodeOptions(r, f, v, pos, seen); err != nil {
				return nil, err
			}
			continue
		}
		if err := s.decode(r, f, key, v, pos); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// decodeOptions decodes builder_options: kiln's own keys, as if they were
// written at the top level (each at most once in all).
func (s *Spec) decodeOptions(r *resolver, opts *field, v *yaml.Node, pos Pos, seen map[string]int) error {
	v, err := r.deref(v)
	if err != nil {
		return err
	}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		return &Error{Pos: Pos{File: pos.File, Line: v.Line}, Key: opts.key, Msg: fmt.Sprintf("must be %s, not %s", opts.kind, describe(v)), Hint: "write builder_options: {apt_sources: [...]}"}
	}
	pairs, err := r.pairs(v)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		kpos := Pos{File: pos.File, Line: p.k.Line}
		key, ok := scalar(p.k)
		if !ok {
			return &Error{Pos: kpos, Key: opts.key, Msg: fmt.Sprintf("a key must be a string, not %s", describe(p.k)), Hint: "write kiln keys, e.g. apt_sources: [...]"}
		}
		canon := key
		if a, ok := aliases[key]; ok {
			canon = a
		}
		f, ok := fieldFor(canon)
		if !ok || f.kind == kindOptions || f.key == "builder" {
			hint := "builder_options holds kiln's own spec keys (see the README)"
			if sug := suggest(key); sug != "" && !ok {
				hint = fmt.Sprintf("did you mean %q?", sug)
			}
			return &Error{Pos: kpos, Key: opts.key + "." + key, Msg: "not a kiln key", Hint: hint}
		}
		if line, dup := seen[canon]; dup && canon != opts.key {
			return &Error{Pos: kpos, Key: opts.key + "." + key, Msg: fmt.Sprintf("set twice (first at line %d)", line), Hint: "keep one of them"}
		}
		seen[canon] = p.k.Line
		s.setPos(canon, kpos)
		if err := s.decode(r, f, key, p.v, kpos); err != nil {
			return err
		}
	}
	return nil
}

// yamlErrorLine extracts the line number from a yaml.v3 error, or 0.
func yamlErrorLine(err error) int {
	var line int
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i+len("line "):], "%d", &line)
	}
	return line
}

func (s *Spec) decode(r *resolver, f *field, key string, v *yaml.Node, pos Pos) error {
	wrong := func(n *yaml.Node) error {
		return &Error{Pos: Pos{File: pos.File, Line: n.Line}, Key: key, Msg: fmt.Sprintf("must be %s, not %s", f.kind, describe(n)), Hint: example(f)}
	}
	v, err := r.deref(v)
	if err != nil {
		return err
	}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil // "key:" with no value leaves the default
	}
	// at records where an entry of the key was written, for errors about it.
	at := func(sub string, n *yaml.Node) {
		s.setPos(f.key+sub, Pos{File: pos.File, Line: n.Line})
	}
	switch f.kind {
	case kindString:
		if f.joinList && v.Kind == yaml.SequenceNode {
			var items []string
			for _, item := range v.Content {
				item, err := r.deref(item)
				if err != nil {
					return err
				}
				str, ok := scalar(item)
				if !ok {
					return &Error{Pos: Pos{File: pos.File, Line: item.Line}, Key: key, Msg: fmt.Sprintf("must be a string or a list of strings, not a list holding %s", describe(item)), Hint: fmt.Sprintf("write %s: [linux/amd64, linux/arm64]", f.key)}
				}
				items = append(items, str)
			}
			*f.str(s) = strings.Join(items, ",")
			return nil
		}
		str, ok := scalar(v)
		if !ok {
			return wrong(v)
		}
		if f.path {
			str = s.abs(str)
		}
		*f.str(s) = str
	case kindList, kindArgv:
		if v.Kind != yaml.SequenceNode {
			return wrong(v)
		}
		out := make([]string, 0, len(v.Content))
		for i, item := range v.Content {
			item, err := r.deref(item)
			if err != nil {
				return err
			}
			str, ok := scalar(item)
			if !ok {
				return wrong(item)
			}
			at(fmt.Sprintf("[%d]", i), item)
			out = append(out, str)
		}
		*f.list(s) = out
	case kindMap:
		if v.Kind != yaml.MappingNode {
			return wrong(v)
		}
		pairs, err := r.pairs(v)
		if err != nil {
			return err
		}
		var out []KV
		for _, p := range pairs {
			k, ok := scalar(p.k)
			if !ok {
				return wrong(p.k)
			}
			pv, err := r.deref(p.v)
			if err != nil {
				return err
			}
			val, ok := scalar(pv)
			if !ok {
				return wrong(pv)
			}
			if _, dup := lookup(out, k); dup {
				return &Error{Pos: Pos{File: pos.File, Line: p.k.Line}, Key: key + "." + k, Msg: "set twice", Hint: "keep one"}
			}
			at("."+k, p.k)
			out = append(out, KV{Key: k, Value: val})
		}
		*f.kv(s) = out
	case kindBool:
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			return wrong(v)
		}
		*f.flag(s) = v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
	case kindCopy:
		var out []Copy
		add := func(m *yaml.Node) error {
			pairs, err := r.pairs(m)
			if err != nil {
				return err
			}
			for _, p := range pairs {
				src, ok := scalar(p.k)
				if !ok {
					return wrong(p.k)
				}
				pv, err := r.deref(p.v)
				if err != nil {
					return err
				}
				dest, ok := scalar(pv)
				if !ok {
					return wrong(pv)
				}
				at(fmt.Sprintf("[%d]", len(out)), p.k)
				out = append(out, Copy{Src: s.abs(src), Dest: dest})
			}
			return nil
		}
		switch v.Kind {
		case yaml.MappingNode:
			if err := add(v); err != nil {
				return err
			}
		case yaml.SequenceNode:
			for _, item := range v.Content {
				item, err := r.deref(item)
				if err != nil {
					return err
				}
				switch {
				case item.Kind == yaml.MappingNode:
					if err := add(item); err != nil {
						return err
					}
				case f.key == "copy" && item.Kind == yaml.ScalarNode:
					// ImageSpec's list form: a relative path, copied
					// to the same path under /root.
					c, err := s.copyUnderRoot(key, item, pos)
					if err != nil {
						return err
					}
					at(fmt.Sprintf("[%d]", len(out)), item)
					out = append(out, c)
				case f.key == "pip_secret_mounts" && item.Kind == yaml.SequenceNode && len(item.Content) == 2:
					// ImageSpec's tuple form: [src, mount].
					src, ok1 := scalar(item.Content[0])
					mount, ok2 := scalar(item.Content[1])
					if !ok1 || !ok2 {
						return wrong(item)
					}
					at(fmt.Sprintf("[%d]", len(out)), item)
					out = append(out, Copy{Src: s.abs(src), Dest: mount})
				default:
					return wrong(item)
				}
			}
		default:
			return wrong(v)
		}
		*f.copy(s) = out
	}
	return nil
}

// copyUnderRoot is a copy entry of ImageSpec's list form: path, relative
// and without "..", lands at /root/path.
func (s *Spec) copyUnderRoot(key string, n *yaml.Node, pos Pos) (Copy, error) {
	p, _ := scalar(n)
	clean := path.Clean(filepath.ToSlash(p))
	if p == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || clean == "." {
		return Copy{}, &Error{Pos: Pos{File: pos.File, Line: n.Line}, Key: key, Msg: fmt.Sprintf("%q: an entry of the list form must be a relative path inside the spec's directory, without ..", p),
			Hint: "write copy: [src/file.txt] (it lands at /root/src/file.txt), or copy: {/abs/src: /dest/} for another destination"}
	}
	return Copy{Src: s.abs(p), Dest: "/root/" + clean}, nil
}

// abs resolves p against the spec's directory.
func (s *Spec) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// scalar returns the text of a scalar node that is a string, number or bool.
func scalar(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	switch n.Tag {
	case "!!str", "!!int", "!!float", "!!bool", "":
		return n.Value, true
	}
	return "", false
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "this"
}

func example(f *field) string {
	switch f.kind {
	case kindString:
		return fmt.Sprintf("write %s: value", f.key)
	case kindList:
		return fmt.Sprintf("write %s: [a, b]", f.key)
	case kindArgv:
		return fmt.Sprintf(`write %s: ["python3", "main.py"]`, f.key)
	case kindMap:
		return fmt.Sprintf("write %s: {KEY: value}", f.key)
	case kindCopy:
		return fmt.Sprintf("write %s: {src/path: /dest/path}", f.key)
	case kindBool:
		return fmt.Sprintf("write %s: true", f.key)
	}
	return ""
}

// suggest returns the known key closest to key, or "".
func suggest(key string) string {
	best, bestD := "", 4
	consider := func(k string) {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	for _, f := range fields {
		consider(f.key)
	}
	for a := range aliases {
		consider(a)
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Keys returns every spec key, in documentation order (aliases excluded).
func Keys() []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}
