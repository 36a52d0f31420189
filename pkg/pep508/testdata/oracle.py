"""Differential-test oracle for kiln's pkg/pep508.

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
    from packaging.markers import Marker
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
else:
    from pip._vendor import packaging
    from pip._vendor.packaging.markers import Marker
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name


def evaluate(m, envs):
    out = []
    for env in envs:
        try:
            out.append(bool(m.evaluate(env)))
        except Exception as e:  # UndefinedComparison, InvalidVersion, ...
            out.append("error: " + type(e).__name__)
    return out


def marker_case(c):
    try:
        m = Marker(c["marker"])
    except Exception:
        return {"ok": False}
    return {"ok": True, "str": str(m), "results": evaluate(m, c["envs"])}


def req_case(c):
    try:
        r = Requirement(c["req"])
    except Exception:
        return {"ok": False}
    out = {
        "ok": True,
        "name": r.name,
        "extras": sorted(r.extras),
        "specifier": str(r.specifier),
        "url": r.url or "",
        "marker": str(r.marker) if r.marker else "",
    }
    if r.marker:
        out["results"] = evaluate(r.marker, c["envs"])
    return out


req = json.load(sys.stdin)
resp = {"packaging_version": packaging.__version__}
resp["markers"] = [marker_case(c) for c in req.get("markers", [])]
resp["reqs"] = [req_case(c) for c in req.get("reqs", [])]
resp["names"] = [canonicalize_name(n) for n in req.get("names", [])]
json.dump(resp, sys.stdout)
