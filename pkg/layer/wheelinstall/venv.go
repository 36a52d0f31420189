package wheelinstall

import (
	"archive/tar"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kiln-build/kiln/pkg/layer/tarheader"
)

// VenvOptions describes a virtual environment skeleton for WriteVenv.
type VenvOptions struct {
	// Prefix is the environment's tar path, such as "opt/venv".
	Prefix string
	// PythonVersion is the interpreter's major.minor version, such as "3.11".
	PythonVersion string
	// PythonFullVersion is written as pyvenv.cfg's version, such as
	// "3.11.2"; it defaults to PythonVersion.
	PythonFullVersion string
	// Interpreter is the absolute path of the base interpreter inside the
	// image, such as "/usr/bin/python3.11".
	Interpreter string
	// NoSystemSitePackages writes include-system-site-packages = false;
	// by default the environment sees the base image's site-packages.
	NoSystemSitePackages bool
	// Epoch is the modification time of every entry, as in Options.
	Epoch time.Time
	// Dirs holds directories already in the layer, as in Options; WriteVenv
	// adds the ones it writes. When nil, every directory is written.
	Dirs map[string]bool
}

// WriteVenv writes the skeleton that "python -m venv --without-pip" makes
// on 64-bit Linux: pyvenv.cfg, bin/ with the python, python3 and
// python<version> links to the interpreter, include/, lib/python<version>/
// site-packages/ and the lib64 -> lib link. Activation scripts are not
// written.
func WriteVenv(tw *tar.Writer, opts VenvOptions) error {
	prefix := strings.Trim(opts.Prefix, "/")
	if err := checkRelDir(prefix); err != nil {
		return fmt.Errorf("venv prefix %q: %w", opts.Prefix, err)
	}
	if opts.PythonVersion == "" || strings.Count(opts.PythonVersion, ".") != 1 {
		return fmt.Errorf("venv python version %q: want major.minor, such as 3.11", opts.PythonVersion)
	}
	interp := opts.Interpreter
	if !strings.HasPrefix(interp, "/") || strings.ContainsAny(interp, "\n\r\x00") || path.Base(interp) == "/" {
		return fmt.Errorf("venv interpreter %q: want an absolute path, such as /usr/bin/python%s", interp, opts.PythonVersion)
	}
	full := opts.PythonFullVersion
	if full == "" {
		full = opts.PythonVersion
	}
	system := "true"
	if opts.NoSystemSitePackages {
		system = "false"
	}
	cfg := fmt.Sprintf("home = %s\ninclude-system-site-packages = %s\nversion = %s\nexecutable = %s\ncommand = %s -m venv /%s\n",
		path.Dir(interp), system, full, interp, interp, prefix)

	type item struct {
		name, link string
		data       []byte
		dir        bool
	}
	py := "python" + opts.PythonVersion
	exe := path.Base(interp)
	items := []item{
		{name: "bin", dir: true},
		{name: "bin/" + exe, link: interp},
		{name: "include", dir: true},
		{name: "include/" + py, dir: true},
		{name: "lib", dir: true},
		{name: "lib/" + py, dir: true},
		{name: "lib/" + py + "/site-packages", dir: true},
		{name: "lib64", link: "lib"},
		{name: "pyvenv.cfg", data: []byte(cfg)},
	}
	major, _, _ := strings.Cut(opts.PythonVersion, ".")
	for _, n := range []string{"python", "python" + major, py} {
		if n != exe {
			items = append(items, item{name: "bin/" + n, link: exe})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })

	dirs := opts.Dirs
	if dirs == nil {
		dirs = map[string]bool{}
	}
	epoch := normEpoch(opts.Epoch)
	if err := writeParents(tw, prefix+"/x", dirs, epoch); err != nil {
		return fmt.Errorf("write venv %s: %w", prefix, err)
	}
	for _, it := range items {
		name := path.Join(prefix, it.name)
		hdr := &tar.Header{Name: name, Mode: 0o644}
		switch {
		case it.dir:
			if dirs[name] {
				continue
			}
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
			dirs[name] = true
		case it.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, it.link, 0o777
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(it.data))
		}
		if err := tw.WriteHeader(tarheader.Normalize(hdr, epoch)); err != nil {
			return fmt.Errorf("write venv %s: %w", name, err)
		}
		if len(it.data) > 0 {
			if _, err := tw.Write(it.data); err != nil {
				return fmt.Errorf("write venv %s: %w", name, err)
			}
		}
	}
	return nil
}
