"""Differential-test oracle for kiln's pkg/pep440.

Reads one JSON request on stdin and writes one JSON response on stdout.
Uses the `packaging` found in $KILN_PACKAGING_PATH if set, else pip's
vendored copy (pip._vendor.packaging).
"""
import json
import os
import sys

path = os.environ.get("KILN_PACKAGING_PATH")
if path:
    sys.path.insert(0, path)
    import packaging
    from packaging.version import Version, InvalidVersion
    from packaging.specifiers import Specifier, SpecifierSet, InvalidSpecifier
else:
    from pip._vendor import packaging
    from pip._vendor.packaging.version import Version, InvalidVersion
    from pip._vendor.packaging.specifiers import Specifier, SpecifierSet, InvalidSpecifier


def version_info(s):
    try:
        v = Version(s)
    except InvalidVersion:
        return {"ok": False}
    return {
        "ok": True,
        "str": str(v),
        "epoch": v.epoch,
        "release": list(v.release),
        "pre": v.is_prerelease,
        "post": v.is_postrelease,
        "dev": v.is_devrelease,
        "public": v.public,
        "base": v.base_version,
        "local": v.local or "",
    }


def cmp(a, b):
    a, b = Version(a), Version(b)
    return (a > b) - (a < b)


def spec_case(c):
    text = c["spec"]
    try:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        for p in parts:
            Specifier(p)
        s = SpecifierSet(text)
    except InvalidSpecifier:
        return {"ok": False}
    try:
        pre = bool(s.prereleases)
    except InvalidVersion:  # packaging 22-23 fail on "===" with a non-version
        pre = None
    out = {"ok": True, "prereleases": pre}
    res = []
    for v in c["versions"]:
        default = None if pre is None else s.contains(v)
        res.append([s.contains(v, prereleases=False), s.contains(v, prereleases=True), default])
    out["results"] = res
    return out


req = json.load(sys.stdin)
resp = {"packaging_version": packaging.__version__}
resp["versions"] = [version_info(s) for s in req.get("versions", [])]
resp["compare"] = [cmp(a, b) for a, b in req.get("compare", [])]
resp["specs"] = [spec_case(c) for c in req.get("specs", [])]
json.dump(resp, sys.stdout)
