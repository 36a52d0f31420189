package spec

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// The default parent, when base_image is unset: the official Python image
// on Debian bookworm, as flytekit's default builder and TF Cloud have one.
const (
	// DefaultBaseRepository is the default parent's repository.
	DefaultBaseRepository = "python"
	// DefaultPythonVersion is its Python when python_version is unset
	// (the base Flyte 2 builds on).
	DefaultPythonVersion = "3.12"
	// DefaultBaseSuffix follows the Python version in its tag.
	DefaultBaseSuffix = "-slim-bookworm"
	// DefaultBaseEnv names the environment variable that moves the
	// default parent to a mirror or an air-gapped registry.
	DefaultBaseEnv = "KILN_DEFAULT_BASE"
)

// DefaultBaseImage returns the parent used when base_image is unset:
// python:<version>-slim-bookworm (3.12 when version is ""),
// from override when set: a registry host ("mirror.example:5000", giving
// mirror.example:5000/library/python) or a repository
// ("mirror.example/python").
func DefaultBaseImage(version, override string) (string, error) {
	v := version
	if v == "" {
		v = DefaultPythonVersion
	}
	if !pythonVersion.MatchString(v) {
		return "", fmt.Errorf("python_version %q cannot name the default parent's tag", v)
	}
	repo := DefaultBaseRepository
	if o := strings.TrimSuffix(strings.TrimSpace(override), "/"); o != "" {
		repo = o
		if !strings.Contains(o, "/") {
			repo = o + "/library/" + DefaultBaseRepository
		}
	}
	ref := repo + ":" + v + DefaultBaseSuffix
	if _, err := name.NewTag(ref); err != nil {
		return "", fmt.Errorf("%s=%q does not make an image reference (%s)", DefaultBaseEnv, override, ref)
	}
	return ref, nil
}
