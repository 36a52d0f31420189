# kiln's PEP 517 frontend, run in kiln's sandbox with the network off:
#   frontend.py SDIST OUTDIR BACKEND PROVIDED WHEEL...
# It unpacks SDIST, puts the build requirements' WHEELs on sys.path,
# imports BACKEND ("module:object") and calls build_wheel(OUTDIR). Extra
# requirements the backend asks for (get_requires_for_build_wheel) must be
# among PROVIDED (comma-separated normalised names).
import importlib
import os
import re
import shutil
import sys
import tarfile
import zipfile

sdist, outdir, backend_spec, provided = sys.argv[1:5]
sys.path[:0] = sys.argv[5:]
work = "/tmp/kiln-src"
os.makedirs(work)
if os.path.isdir(sdist):
    # A project directory: build a copy, leaving the input as it was.
    shutil.copytree(sdist, os.path.join(work, "project"), symlinks=True)
elif sdist.endswith(".zip"):
    zipfile.ZipFile(sdist).extractall(work)
else:
    with tarfile.open(sdist) as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(work, filter="data")
        else:
            t.extractall(work)
top = os.listdir(work)
src = os.path.join(work, top[0]) if len(top) == 1 and os.path.isdir(os.path.join(work, top[0])) else work
os.chdir(src)
module, _, obj = backend_spec.partition(":")
backend = importlib.import_module(module)
for part in filter(None, obj.split(".")):
    backend = getattr(backend, part)
have = set(filter(None, provided.split(",")))
ask = getattr(backend, "get_requires_for_build_wheel", None)
if ask is not None:
    missing = []
    for r in ask({}):
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", r)
        if m and re.sub(r"[-_.]+", "-", m.group(1)).lower() not in have:
            missing.append(r)
    if missing:
        sys.stderr.write("kiln: the build backend also needs %s; add them to [build-system] requires\n" % ", ".join(missing))
        sys.exit(3)
name = backend.build_wheel(outdir)
print("kiln: built " + name)
