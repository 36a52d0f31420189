package spec

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// Source copy modes (ImageSpec source_copy_mode, flytekit's
// CopyFileDetection). kiln copies source_root whole for every mode but
// none: the loaded modules are a subset of it.
const (
	SourceCopyAll  = "all"
	SourceCopyNone = "none"
)

// sourceCopyModes maps each accepted spelling to SourceCopyAll or
// SourceCopyNone: flytekit's names, the enum's, its values and pyflyte's
// --copy choices.
var sourceCopyModes = map[string]string{
	"all": SourceCopyAll, "2": SourceCopyAll,
	"auto": SourceCopyAll, "loaded_modules": SourceCopyAll, "1": SourceCopyAll,
	"none": SourceCopyNone, "no_copy": SourceCopyNone, "3": SourceCopyNone,
}

// CopiesSource reports whether source_root is copied into the image: it is
// set and source_copy_mode is not none.
func (s *Spec) CopiesSource() bool {
	return s.SourceRoot != "" && sourceCopyModes[normalMode(s.SourceCopyMode)] != SourceCopyNone
}

func normalMode(m string) string {
	m = strings.ToLower(strings.TrimSpace(m))
	return strings.TrimPrefix(m, "copyfiledetection.")
}

// NetrcFile is the host file that pip_secret_mounts mounts as a .netrc:
// the credentials kiln sends to the package indexes ("" for none).
func (s *Spec) NetrcFile() string {
	for _, m := range s.PipSecretMounts {
		if path.Base(m.Dest) == ".netrc" {
			return m.Src
		}
	}
	return ""
}

// pipNoOps are pip install flags with nothing to do in kiln, which installs
// wheels only, into a fresh layer, with no cache in the image, and quietly.
// The value is whether the flag takes a value.
var pipNoOps = map[string]bool{
	"--no-cache-dir": false, "--prefer-binary": false, "--upgrade": false, "-U": false,
	"--quiet": false, "-q": false, "--verbose": false, "-v": false,
	"--disable-pip-version-check": false, "--no-warn-script-location": false,
	"--break-system-packages": false, "--root-user-action": true, "--progress-bar": true,
}

// foldPipExtraArgs maps pip_extra_args onto kiln: --index-url (-i) onto
// pip_index, --extra-index-url onto pip_extra_index_url, --only-binary
// :all: and the flags in pipNoOps accepted as they are; any other flag is
// refused by name.
func (s *Spec) foldPipExtraArgs() error {
	if s.pipArgsFolded || strings.TrimSpace(s.PipExtraArgs) == "" {
		return nil
	}
	const key = "pip_extra_args"
	const mapped = "kiln maps --index-url/-i, --extra-index-url and --only-binary :all:, and ignores --no-cache-dir, --prefer-binary, --upgrade and the output flags; set other behaviour with kiln's keys"
	args := strings.Fields(s.PipExtraArgs)
	var index string
	var extra []string
	for i := 0; i < len(args); i++ {
		flag, val, hasVal := strings.Cut(args[i], "=")
		if strings.HasPrefix(flag, "-i") && len(flag) > 2 && !strings.HasPrefix(flag, "--") {
			flag, val, hasVal = "-i", flag[2:], true
		}
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				return "", s.errorf(key, "write "+flag+" URL", "%s needs a value", flag)
			}
			i++
			return args[i], nil
		}
		switch flag {
		case "--index-url", "-i":
			v, err := value()
			if err != nil {
				return err
			}
			if index != "" || s.PipIndex != "" {
				return s.errorf(key, "give the index once: in pip_index or as --index-url", "%s %s names a second index URL", flag, v)
			}
			index = v
		case "--extra-index-url":
			v, err := value()
			if err != nil {
				return err
			}
			extra = append(extra, v)
		case "--only-binary":
			v, err := value()
			if err != nil {
				return err
			}
			if v != ":all:" {
				return s.errorf(key, "kiln installs only wheels: write --only-binary :all: or leave it out", "--only-binary %s: kiln installs wheels for every package", v)
			}
		default:
			takesValue, ok := pipNoOps[flag]
			if !ok {
				if !strings.HasPrefix(flag, "-") {
					return s.errorf(key, "list packages in packages or requirements, not in pip_extra_args", "%q is not a flag", args[i])
				}
				return s.errorf(key, mapped, "%s is not supported by kiln", flag)
			}
			if takesValue {
				if _, err := value(); err != nil {
					return err
				}
			}
		}
	}
	if index != "" {
		s.PipIndex = index
	}
	s.PipExtraIndexURL = append(s.PipExtraIndexURL, extra...)
	s.pipArgsFolded = true
	return nil
}

// validateImageSpec checks ImageSpec's newer keys (builder, python_exec,
// source_copy_mode, pip_secret_mounts, pip_extra_args) and folds
// pip_extra_args into the index keys.
func (s *Spec) validateImageSpec() error {
	if s.Builder != "" && s.Builder != "kiln" {
		return s.errorf("builder", "remove builder, or set builder: kiln, to build this spec with kiln", "%q names another ImageSpec builder; kiln builds only specs for itself", s.Builder)
	}
	if s.PythonExec != "" && !path.IsAbs(s.PythonExec) {
		return s.errorf("python_exec", "give the interpreter's absolute path in the image, e.g. /usr/local/bin/python3.12", "%q is not an absolute path", s.PythonExec)
	}
	if m := s.SourceCopyMode; m != "" {
		mode, ok := sourceCopyModes[normalMode(m)]
		if !ok {
			return s.errorf("source_copy_mode", "write all, auto (loaded_modules) or none", "%q is not a source copy mode", m)
		}
		if mode != SourceCopyNone && s.SourceRoot == "" {
			return s.errorf("source_copy_mode", "set source_root to the directory to copy, or write source_copy_mode: none", "%q copies files of source_root, which is not set", m)
		}
	}
	netrc := 0
	for i, m := range s.PipSecretMounts {
		pos := s.entryPos("pip_secret_mounts", i)
		if path.Base(m.Dest) != ".netrc" {
			return &Error{Pos: pos, Key: "pip_secret_mounts", Msg: fmt.Sprintf("%s is mounted at %s: kiln gives pip's secrets to its own index downloads, and reads only a .netrc", m.Src, m.Dest),
				Hint: "mount a .netrc with the index's credentials, e.g. [[.netrc, /root/.netrc]], or put them in the index URL"}
		}
		if netrc++; netrc > 1 {
			return &Error{Pos: pos, Key: "pip_secret_mounts", Msg: "a second .netrc", Hint: "keep one .netrc with every index's credentials"}
		}
		fi, err := os.Stat(m.Src)
		if err != nil || !fi.Mode().IsRegular() {
			return &Error{Pos: pos, Key: "pip_secret_mounts", Msg: fmt.Sprintf("%s is not a readable file", m.Src), Hint: "name the .netrc file; relative paths are relative to the spec file's directory"}
		}
	}
	return s.foldPipExtraArgs()
}
