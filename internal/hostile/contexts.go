package hostile

import (
	"fmt"
	"strings"
)

// ContextSpecDir is the directory of a Context archive that holds the spec
// (kiln.yaml); files beside it, outside the build context, play the host's
// secrets.
const ContextSpecDir = "ctx"

// ContextSecret is the content of the host "secret" beside every Context's
// build context, and of secret lines inside some of them: no error may
// ever show it.
const ContextSecret = "hunter2-kiln-hostile-token"

// contexts are the build contexts of an adversarial probe of kiln (issue 9):
// specs and files that try to pull host files into the image, smuggle
// whiteouts or escaping symlinks into the code layer, or get validation to
// echo a secret. Each must be refused offline, as `kiln name` would, with a
// *spec.Error naming Entry (the key or file) and never showing
// ContextSecret.
func contexts() ([]Case, error) {
	type cc struct {
		name, what, entry string
		spec              string
		ents              []tent
	}
	app := func(ents ...tent) []tent { return append([]tent{dir(ContextSpecDir + "/app/")}, ents...) }
	in := func(p string) string { return ContextSpecDir + "/" + p }
	list := []cc{
		{name: "copy-absolute", what: "copy of an absolute host path (Docker's build context forbids it)", entry: "copy",
			spec: "copy: {/etc/hostname: /leak}\n"},
		{name: "copy-climb", what: "copy of a file above the spec's directory", entry: "copy",
			spec: "copy: {../secret: /leak}\n"},
		{name: "copy-symlink-out", what: "copy of a symlink in the context that points out of it", entry: "copy",
			spec: "copy: {leak: /leak}\n", ents: []tent{symlink(in("leak"), "../secret")}},
		{name: "source-root-climb", what: "source_root above the spec's directory", entry: "source_root",
			spec: "source_root: ..\n"},
		{name: "requirements-climb", what: "a requirements file that includes one outside the context", entry: "requirements",
			spec: "requirements: requirements.txt\n", ents: []tent{file(in("requirements.txt"), "-r ../secret\n")}},
		{name: "tree-symlink-absolute", what: "a symlink in source_root to the host's /etc/passwd", entry: "passwd",
			spec: "source_root: app\n", ents: app(symlink(in("app/passwd"), "/etc/passwd"))},
		{name: "tree-symlink-climb", what: "symlinks that resolve out of the tree only through each other (self -> ., climb -> self/..)", entry: "climb",
			spec: "source_root: app\n", ents: app(symlink(in("app/self"), "."), symlink(in("app/climb"), "self/.."))},
		{name: "tree-whiteout", what: "a host file named .wh.etc, which a layer reads as deleting the parent's /root/etc", entry: ".wh.etc",
			spec: "source_root: app\n", ents: app(file(in("app/.wh.etc"), ""))},
		{name: "tree-opaque", what: "a host file named .wh..wh..opq, which would empty the parent's directory", entry: ".wh..wh..opq",
			spec: "source_root: app\n", ents: app(dir(in("app/sub/")), file(in("app/sub/.wh..wh..opq"), ""))},
		{name: "dockerignore-nul", what: "a .dockerignore with a NUL byte", entry: ".dockerignore",
			spec: "source_root: app\n", ents: app(file(in("app/.dockerignore"), "*.log\nbad\x00pattern\n"), file(in("app/main.py"), "print(1)\n"))},
		{name: "requirements-echo", what: "a requirements line holding a token (as -r /proc/self/environ would): named by line, never shown", entry: "requirements.txt:2",
			spec: "requirements: requirements.txt\n", ents: []tent{file(in("requirements.txt"), "flask\nTOKEN="+ContextSecret+"\n")}},
		{name: "requirements-cycle", what: "requirements files that include each other", entry: "include each other in a cycle",
			spec: "requirements: a.txt\n", ents: []tent{file(in("a.txt"), "-r b.txt\n"), file(in("b.txt"), "-r a.txt\n")}},
		{name: "index-password-escape", what: "a bad %-escape in an index password: named with the fix (%25), the password hidden", entry: "%25",
			spec: "pip_index: https://user:" + strings.ReplaceAll(ContextSecret, "-", "%zz") + "@127.0.0.1/simple\n"},
		{name: "image-digest", what: "image given as a digest, which kiln cannot push to", entry: "image",
			spec: "image: registry.invalid/x@sha256:" + strings.Repeat("ab", 32) + "\n"},
		{name: "registry-port", what: "a registry port out of range", entry: "registry",
			spec: "registry: localhost:99999\n"},
		{name: "env-nul", what: "a NUL byte in an env value, which breaks the container at start", entry: "env",
			spec: "env: {A: \"x\\0y\"}\n"},
		{name: "apt-injection", what: "a shell command in apt_packages", entry: "apt_packages",
			spec: "apt_packages: [\"jq; rm -rf /\"]\n"},
		{name: "packages-garbage", what: "a requirement that is no PEP 508 requirement", entry: "packages",
			spec: "packages: [\"bad name!!\"]\n"},
		{name: "python-version", what: "a python_version that is no version", entry: "python_version",
			spec: "python_version: banana\n"},
	}
	var out []Case
	for _, c := range list {
		ents := []tent{file("secret", ContextSecret+"\n"), dir(ContextSpecDir + "/"),
			file(in("kiln.yaml"), "name: probe\nbase_image: scratch\n"+c.spec)}
		ents = append(ents, c.ents...)
		b, err := buildTar(ents)
		if err != nil {
			return nil, fmt.Errorf("context %s: %w", c.name, err)
		}
		out = append(out, Case{File: "context-" + c.name + ".tar", Kind: Context, What: c.what, Want: Reject, Entry: c.entry, Data: b})
	}
	return out, nil
}
