#!/usr/bin/env python3
"""Write uv/uv.lock for uv/pyproject.toml over the fixture wheels, in uv's
published lock format (version 1, revision 3), as `uv lock` would against
the index http://127.0.0.1:38613/simple/. uv is not packaged in Debian, so
the lock is written by this script; its layout was checked against real
uv.lock files of public projects.

usage: make-uvlock.py WHEELDIR [EXTRA_WHEEL...] > uv/uv.lock
"""
import hashlib, os, re, sys, zipfile

INDEX = "http://127.0.0.1:38613/simple/"
FILES = "http://127.0.0.1:38613/files/"
ROOT = {"name": "demoapp", "version": "0.1.0",
        "deps": ["flask>=3", "requests", "pydantic>=2"],
        "optional": {"yaml": ["pyyaml"]}, "groups": {"fast": ["orjson"]}}

def norm(n): return re.sub(r"[-_.]+", "-", n).lower()

wheels = {}
paths = [os.path.join(sys.argv[1], f) for f in sorted(os.listdir(sys.argv[1]))] + sys.argv[2:]
for p in paths:
    f = os.path.basename(p)
    z = zipfile.ZipFile(p)
    md = z.read([n for n in z.namelist() if n.endswith(".dist-info/METADATA")][0]).decode()
    name = version = None; deps = []
    for line in md.split("\n\n", 1)[0].splitlines():
        k, _, v = line.partition(": ")
        if k == "Name": name = norm(v)
        if k == "Version": version = v
        if k == "Requires-Dist": deps.append(v)
    data = open(p, "rb").read()
    wheels[name] = dict(version=version, file=f, sha=hashlib.sha256(data).hexdigest(), size=len(data), deps=deps)

def parse(req):
    req, _, marker = req.partition(";")
    m = re.match(r"\s*([A-Za-z0-9._-]+)", req)
    return norm(m.group(1)), marker.strip()

def lockdeps(reqs):
    out = []
    for r in reqs:
        n, marker = parse(r)
        if "extra ==" in marker: continue
        if re.search(r"python_version < '3\.(9|10)'|python_version<'3\.(9|10)'", marker.replace('"', "'")): continue
        out.append((n, marker))
    return sorted(set(out))

need, seen = [], set()
def visit(n):
    if n in seen: return
    seen.add(n); need.append(n)
    for d, _ in lockdeps(wheels[n]["deps"]): visit(d)
for r in ROOT["deps"] + sum(ROOT["optional"].values(), []) + sum(ROOT["groups"].values(), []):
    visit(parse(r)[0])

def deplist(ds):
    def one(n, m):
        return '{ name = "%s"%s }' % (n, ', marker = "%s"' % m.replace('"', "'") if m else "")
    return "[\n" + "".join("    %s,\n" % one(n, m) for n, m in ds) + "]"

def spec(r):
    n, _ = parse(r)
    s = r[len(re.match(r"\s*[A-Za-z0-9._-]+", r).group(0)):].strip()
    return '{ name = "%s"%s }' % (n, ', specifier = "%s"' % s if s else "")

out = ['version = 1', 'revision = 3', 'requires-python = ">=3.11"', '']
for n in sorted(need + [ROOT["name"]]):
    out.append("[[package]]")
    if n == ROOT["name"]:
        out += ['name = "%s"' % n, 'version = "%s"' % ROOT["version"], 'source = { virtual = "." }',
                'dependencies = ' + deplist(sorted(parse(r) for r in ROOT["deps"])), '', '[package.optional-dependencies]']
        for x, rs in ROOT["optional"].items(): out.append('%s = %s' % (x, deplist(sorted(parse(r) for r in rs))))
        out += ['', '[package.dev-dependencies]']
        for g, rs in ROOT["groups"].items(): out.append('%s = %s' % (g, deplist(sorted(parse(r) for r in rs))))
        out += ['', '[package.metadata]',
                'requires-dist = [\n' + "".join("    %s,\n" % spec(r) for r in sorted(ROOT["deps"])) +
                "".join('    { name = "%s", marker = "extra == \'%s\'" },\n' % (parse(r)[0], x) for x, rs in ROOT["optional"].items() for r in rs) + ']',
                'provides-extras = [%s]' % ", ".join('"%s"' % x for x in ROOT["optional"]), '', '[package.metadata.requires-dev]']
        for g, rs in ROOT["groups"].items(): out.append('%s = [%s]' % (g, ", ".join(spec(r) for r in rs)))
        out.append('')
        continue
    w = wheels[n]
    out += ['name = "%s"' % n, 'version = "%s"' % w["version"], 'source = { registry = "%s" }' % INDEX]
    ds = lockdeps(w["deps"])
    if ds: out.append('dependencies = ' + deplist(ds))
    out += ['wheels = [', '    { url = "%s%s", hash = "sha256:%s", size = %d },' % (FILES, w["file"], w["sha"], w["size"]), ']', '']
sys.stdout.write("\n".join(out))
