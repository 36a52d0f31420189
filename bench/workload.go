package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// The workload, identical for both tools: the bookworm + python3 parent from
// the loopback registry, python3-numpy from the Debian mirror in the
// parent's apt sources, flask and requests from the fixture wheel index, and
// a 4 MiB code directory in /root.

const (
	codeBytes    = 4 << 20 // total size of the generated app directory
	pyModules    = 40
	dataFiles    = 8
	workloadSeed = 20250520 // seed of the generated files
)

// writeApp writes the app directory under dir/app: main.py (whose VERSION
// line is the one-line change between builds), pyModules Python modules and
// dataFiles files of seeded random bytes, codeBytes in all. Everything but
// main.py's VERSION line is the same for every call.
func writeApp(dir string, version int) error {
	app := filepath.Join(dir, "app")
	if err := os.MkdirAll(filepath.Join(app, "benchapp"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(app, "data"), 0o755); err != nil {
		return err
	}
	var total int64
	write := func(rel string, data []byte) error {
		total += int64(len(data))
		return os.WriteFile(filepath.Join(app, rel), data, 0o644)
	}
	main := fmt.Sprintf(`import os
import numpy
import flask
import requests
import benchapp

VERSION = %d

app = flask.Flask(__name__)


@app.route("/")
def index():
    return {"version": VERSION, "numpy": numpy.__version__, "requests": requests.__version__,
            "modules": len(benchapp.MODULES)}


if __name__ == "__main__":
    print("benchapp", VERSION, numpy.__version__, flask.__name__, requests.__version__, len(benchapp.MODULES))
`, version)
	if err := write("main.py", []byte(main)); err != nil {
		return err
	}
	rng := rand.New(rand.NewChaCha8(seed(workloadSeed)))
	var mods []string
	for i := 0; i < pyModules; i++ {
		name := fmt.Sprintf("mod_%02d", i)
		mods = append(mods, name)
		var b strings.Builder
		fmt.Fprintf(&b, "\"\"\"Generated module %d of the kiln benchmark app.\"\"\"\n\n", i)
		for f := 0; f < 60; f++ {
			fmt.Fprintf(&b, "def f_%02d_%02d(x, y=%d):\n", i, f, rng.IntN(1000))
			fmt.Fprintf(&b, "    \"\"\"Return a deterministic function of x and y.\"\"\"\n")
			fmt.Fprintf(&b, "    z = x * %d + y - %d\n", rng.IntN(97)+1, rng.IntN(1000))
			fmt.Fprintf(&b, "    return [z + k for k in range(%d)]\n\n\n", rng.IntN(10)+1)
		}
		if err := write(filepath.Join("benchapp", name+".py"), []byte(b.String())); err != nil {
			return err
		}
	}
	init := "MODULES = [\n"
	for _, m := range mods {
		init += fmt.Sprintf("    %q,\n", m)
	}
	init += "]\n"
	if err := write(filepath.Join("benchapp", "__init__.py"), []byte(init)); err != nil {
		return err
	}
	remaining := codeBytes - total
	if remaining < dataFiles {
		return fmt.Errorf("generated Python files (%d bytes) leave no room for data", total)
	}
	for i := 0; i < dataFiles; i++ {
		n := remaining / int64(dataFiles-i)
		remaining -= n
		if err := writeRandom(filepath.Join(app, "data", fmt.Sprintf("blob_%02d.bin", i)), n, uint64(i)+1); err != nil {
			return err
		}
	}
	return nil
}

func seed(s uint64) [32]byte {
	var b [32]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(s >> (8 * i))
	}
	return b
}

// writeRandom writes n bytes from a ChaCha8 stream seeded with s.
func writeRandom(path string, n int64, s uint64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.CopyN(w, rand.NewChaCha8(seed(s)), n); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// kilnSpec is the kiln.yaml of the workload.
func kilnSpec(name, registry, base, index string) string {
	return fmt.Sprintf(`name: %s
registry: %s
base_image: %s
apt_packages: [python3-numpy]
packages: [flask, requests]
pip_index: %s
source_root: app
entrypoint: [python3, /root/main.py]
`, name, registry, base, index)
}

// containerfile is the buildah equivalent. The parent has python3 but not
// venv/ensurepip, so the apt step also installs python3-venv (kiln writes
// the virtualenv itself and needs no pip in the image); pip's own cache is
// off so that the layer holds what kiln's does.
func containerfile(base, index string) string {
	return fmt.Sprintf(`FROM %s
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-numpy python3-venv && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv --system-site-packages /opt/venv && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --index-url %s flask requests
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONPATH=/root
WORKDIR /root
COPY app /root
ENTRYPOINT ["python3", "/root/main.py"]
`, base, index)
}

// widePackages is case 5's apt set: popular packages of every kind, which
// with their dependencies make a few hundred .debs, mostly data.tar.xz.
var widePackages = []string{
	"git", "curl", "wget", "vim", "build-essential", "python3-numpy", "python3-scipy",
	"python3-pandas", "python3-matplotlib", "imagemagick", "openssh-client",
	"postgresql-client", "libssl-dev", "jq",
}

// wideKilnSpec is case 5's kiln.yaml: the wide apt set alone.
func wideKilnSpec(name, registry, base string) string {
	return fmt.Sprintf("name: %s\nregistry: %s\nbase_image: %s\napt_packages: [%s]\n", name, registry, base, strings.Join(widePackages, ", "))
}

// wideContainerfile is the buildah equivalent of wideKilnSpec.
func wideContainerfile(base string) string {
	return fmt.Sprintf(`FROM %s
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends %s && rm -rf /var/lib/apt/lists/*
`, base, strings.Join(widePackages, " "))
}

// multiPlatforms are case 6's platforms.
var multiPlatforms = []string{"linux/amd64", "linux/arm64"}

// multiPackages are case 6's wheels: pure-Python projects of the fixture
// index (flask and requests need MarkupSafe and charset_normalizer, of
// which the index has x86_64 wheels only).
var multiPackages = []string{"python-dateutil", "six", "attrs", "click", "urllib3"}

// writeMultiApp writes the app of writeApp with a main.py that imports
// case 6's packages and prints the machine it runs on.
func writeMultiApp(dir string, version int) error {
	if err := writeApp(dir, version); err != nil {
		return err
	}
	main := fmt.Sprintf(`import platform
import numpy
import attrs
import click
import dateutil
import urllib3
import benchapp

VERSION = %d

if __name__ == "__main__":
    print("benchapp", VERSION, platform.machine(), numpy.__version__, dateutil.__version__, urllib3.__version__, len(benchapp.MODULES))
`, version)
	return os.WriteFile(filepath.Join(dir, "app", "main.py"), []byte(main), 0o644)
}

// multiKilnSpec is case 6's kiln.yaml: the workload of cases 1-4 with the
// pure-Python packages, for both platforms (a comma-separated platform).
func multiKilnSpec(name, registry, base, index string) string {
	return fmt.Sprintf(`name: %s
registry: %s
base_image: %s
platform: %s
apt_packages: [python3-numpy]
packages: [%s]
pip_index: %s
source_root: app
entrypoint: [python3, /root/main.py]
`, name, registry, base, strings.Join(multiPlatforms, ","), strings.Join(multiPackages, ", "), index)
}

// multiContainerfile is the buildah equivalent of multiKilnSpec, built with
// --platform for each platform (the arm64 RUN steps under QEMU).
func multiContainerfile(base, index string) string {
	return fmt.Sprintf(`FROM %s
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-numpy python3-venv && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv --system-site-packages /opt/venv && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --index-url %s %s
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONPATH=/root
WORKDIR /root
COPY app /root
ENTRYPOINT ["python3", "/root/main.py"]
`, base, index, strings.Join(multiPackages, " "))
}
