"""Differential-test oracle for kiln's pkg/wheeltag.

Reads one JSON request on stdin and writes one JSON response on stdout.
Uses the `packaging` found in $KILN_PACKAGING_PATH if set, else pip's
vendored copy (pip._vendor.packaging). Host detection (glibc/musl version,
ELF checks, sysconfig) is monkeypatched so that tags are computed for each
requested target instead of this machine.
"""
import json
import os
import sys

path = os.environ.get("KILN_PACKAGING_PATH")
if path:
    sys.path.insert(0, path)
    import packaging
    from packaging import tags, _manylinux, _musllinux
    from packaging.utils import parse_wheel_filename
else:
    from pip._vendor import packaging
    from pip._vendor.packaging import tags, _manylinux, _musllinux
    from pip._vendor.packaging.utils import parse_wheel_filename


def target_tags(t):
    arch = t["arch"]
    if t["libc"] == "glibc":
        glibc = (t["libc_major"], t["libc_minor"])
        musl = None
    else:
        glibc = (-1, -1)
        musl = _musllinux._MuslVersion(t["libc_major"], t["libc_minor"])
    _manylinux._get_glibc_version = lambda: glibc
    _manylinux._is_linux_armhf = lambda *a: True
    _manylinux._is_linux_i686 = lambda *a: True
    _musllinux._get_musl_version = lambda *a: musl
    linux = "linux_" + arch
    platforms = list(_manylinux.platform_tags(linux, arch))
    platforms += list(_musllinux.platform_tags(arch))
    platforms.append(linux)
    version = (t["major"], t["minor"])
    config = {"Py_DEBUG": 1 if t["debug"] else 0, "WITH_PYMALLOC": 1}
    tags._get_config_var = lambda name, warn=False: config.get(name)
    impl = t["impl"]
    nodot = "%d%d" % version
    if impl == "cp":
        out = list(tags.cpython_tags(version, platforms=platforms))
        out += list(tags.compatible_tags(version, "cp" + nodot, platforms))
    else:
        out = list(tags.generic_tags(impl + nodot, t["abis"], platforms))
        interp = "pp3" if impl == "pp" else None
        out += list(tags.compatible_tags(version, interp, platforms))
    return [str(x) for x in out]


def wheel(name):
    try:
        n, v, build, ts = parse_wheel_filename(name)
    except Exception as e:
        return {"ok": False, "err": type(e).__name__}
    return {
        "ok": True,
        "name": n,
        "version": str(v),
        "build": list(build),
        "tags": sorted(str(x) for x in ts),
    }


req = json.load(sys.stdin)
resp = {"packaging_version": packaging.__version__}
resp["targets"] = [target_tags(t) for t in req.get("targets", [])]
resp["wheels"] = [wheel(w) for w in req.get("wheels", [])]
json.dump(resp, sys.stdout)
