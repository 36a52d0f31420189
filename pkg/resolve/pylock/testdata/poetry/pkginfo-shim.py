# pkginfo 1.8 (bookworm) knows core metadata up to 2.1; 2.2-2.4 add fields
# only, so read them as 2.1 (what later pkginfo releases do).
import pkginfo.distribution as d
for v in ("2.2", "2.3", "2.4"):
    d.HEADER_ATTRS.setdefault(v, d.HEADER_ATTRS["2.1"])
