// Package wheelinstall installs Python wheels (PEP 427, the binary
// distribution format) straight into a layer tar, the way pip installs them
// into a virtual environment, without running Python and without extracting
// anything to the host's disk.
//
// The installed tree matches what
//
//	pip install --no-deps --no-compile <wheel>
//
// produces in a virtual environment, apart from INSTALLER (which says
// "kiln"), direct_url.json (not written) and byte code (not compiled).
// Install is stricter than pip: it verifies every file against the wheel's
// RECORD and refuses archives that pip would unpack with surprising results
// (absolute or dot-dot paths, symlinks, duplicate or case-colliding names,
// zip bombs).
package wheelinstall

import (
	"fmt"
	"path"
	"strings"
)

// Scheme holds the installation paths of a target environment, as pip's
// scheme of the same name does. Directory paths are tar paths: relative,
// slash-separated, without a leading or trailing slash.
type Scheme struct {
	// Purelib receives a wheel's root when its WHEEL says
	// Root-Is-Purelib: true, and the .data/purelib directory.
	Purelib string
	// Platlib receives the root of other wheels and .data/platlib.
	Platlib string
	// Scripts receives .data/scripts and the generated entry-point scripts.
	Scripts string
	// Headers is the directory under which a distribution's .data/headers
	// is installed; the distribution's name (from the wheel's file name,
	// with "_" replaced by "-" as pip does) is appended.
	Headers string
	// Data receives .data/data; for a virtual environment it is the prefix.
	Data string
	// Interpreter is the absolute path written into script shebangs, as it
	// will be inside the image, for example "/opt/venv/bin/python3.11".
	Interpreter string
	// PythonVersion is the target's major.minor version, for example
	// "3.11". It names the versioned pip and easy_install wrappers.
	PythonVersion string
}

// VenvScheme returns the Scheme of a virtual environment at prefix (a tar
// path such as "opt/venv") for Python pythonVersion (major.minor, such as
// "3.11"). Scripts' shebangs name <prefix>/bin/python<pythonVersion>.
func VenvScheme(prefix, pythonVersion string) Scheme {
	prefix = strings.Trim(prefix, "/")
	site := path.Join(prefix, "lib", "python"+pythonVersion, "site-packages")
	return Scheme{
		Purelib:       site,
		Platlib:       site,
		Scripts:       path.Join(prefix, "bin"),
		Headers:       path.Join(prefix, "include", "site", "python"+pythonVersion),
		Data:          prefix,
		Interpreter:   "/" + path.Join(prefix, "bin", "python"+pythonVersion),
		PythonVersion: pythonVersion,
	}
}

// validate reports whether every path of s is a clean relative tar path.
func (s Scheme) validate() error {
	for _, f := range []struct{ name, value string }{
		{"Purelib", s.Purelib},
		{"Platlib", s.Platlib},
		{"Scripts", s.Scripts},
		{"Headers", s.Headers},
		{"Data", s.Data},
	} {
		if err := checkRelDir(f.value); err != nil {
			return fmt.Errorf("scheme %s %q: %w", f.name, f.value, err)
		}
	}
	if !strings.HasPrefix(s.Interpreter, "/") || strings.ContainsAny(s.Interpreter, "\n\r\x00") {
		return fmt.Errorf("scheme Interpreter %q: must be an absolute path on one line", s.Interpreter)
	}
	if s.PythonVersion == "" {
		return fmt.Errorf("scheme PythonVersion is empty: set it to the target's major.minor version, such as 3.11")
	}
	return nil
}

// checkRelDir reports whether p is a clean relative path ("" is not).
func checkRelDir(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	if strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("must be a clean relative path without a leading slash")
	}
	return nil
}
