package pypi

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/kiln-build/kiln/pkg/pep440"
	"github.com/kiln-build/kiln/pkg/pep508"
	"github.com/kiln-build/kiln/pkg/wheeltag"
)

// project is the usable content of a project page for the target.
type project struct {
	name     string
	index    *Index
	releases []*release // newest first
}

// release is one version of a project and the files offering it.
type release struct {
	version    pep440.Version
	best       *File // best usable wheel that is not yanked
	bestYanked *File // best usable yanked wheel
	wheels     []string
	sdists     []string
	sdist      *File    // the source distribution to build, if any
	reasons    []string // why files were rejected, de-duplicated
}

// usable returns the file to install, allowing yanked files when asked.
func (rel *release) usable(allowYanked bool) *File {
	if rel.best != nil {
		return rel.best
	}
	if allowYanked {
		return rel.bestYanked
	}
	return nil
}

// why explains why rel offers nothing installable, for error messages.
func (rel *release) why(name string, allowYanked bool) string {
	v := rel.version.String()
	if len(rel.wheels) == 0 {
		return fmt.Sprintf("%s %s has only a source distribution (%s); %s", name, v, strings.Join(rel.sdists, ", "), wheelOnlyHint)
	}
	if rel.best == nil && rel.bestYanked != nil && !allowYanked {
		return fmt.Sprintf("%s %s was yanked from the index; pin it with ==%s to use it anyway", name, v, v)
	}
	return fmt.Sprintf("%s %s: %s", name, v, strings.Join(rel.reasons, "; "))
}

func addReason(rs []string, r string) []string {
	for _, x := range rs {
		if x == r {
			return rs
		}
	}
	return append(rs, r)
}

// sdistSuffixes are the archive extensions of source distributions.
var sdistSuffixes = []string{".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"}

// sdistVersion returns the version of a source distribution filename of
// project norm, or false.
func sdistVersion(filename, norm string) (string, bool) {
	base := ""
	for _, s := range sdistSuffixes {
		if strings.HasSuffix(strings.ToLower(filename), s) {
			base = filename[:len(filename)-len(s)]
			break
		}
	}
	if base == "" {
		return "", false
	}
	for i := strings.Index(base, "-"); i >= 0; {
		if pep508.NormalizeName(base[:i]) == norm {
			return base[i+1:], true
		}
		j := strings.Index(base[i+1:], "-")
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return "", false
}

// hashOK reports whether f may be used in hash-checking mode (nil
// hashes: any file).
func hashOK(hashes map[string]bool, f *File) bool {
	return hashes == nil || (f.SHA256 != "" && hashes[f.SHA256])
}

// buildProject groups files by version and chooses, per version, the best
// wheel for the target: compatible tags (lowest priority index, then the
// highest build tag, then file name), Requires-Python admitting the target
// and, when hashes is non-nil, a SHA-256 among them.
func buildProject(norm string, ix *Index, files []File, tags *wheeltag.TagSet, target string, py pep440.Version, hashes map[string]bool) *project {
	byVersion := map[string]*release{}
	get := func(v pep440.Version) *release {
		k := v.String()
		if rel, ok := byVersion[k]; ok {
			return rel
		}
		rel := &release{version: v}
		byVersion[k] = rel
		return rel
	}
	type ranked struct {
		prio  int
		build wheeltag.BuildTag
	}
	rank := map[*File]ranked{}
	better := func(a, b *File) bool { // a better than b
		if b == nil {
			return true
		}
		ra, rb := rank[a], rank[b]
		if ra.prio != rb.prio {
			return ra.prio < rb.prio
		}
		if rb.build.Less(ra.build) != ra.build.Less(rb.build) {
			return rb.build.Less(ra.build)
		}
		return a.Filename < b.Filename
	}
	for i := range files {
		f := &files[i]
		if !strings.HasSuffix(f.Filename, ".whl") {
			if vs, ok := sdistVersion(f.Filename, norm); ok {
				if v, err := pep440.Parse(vs); err == nil {
					rel := get(v)
					rel.sdists = append(rel.sdists, f.Filename)
					if !f.Yanked && hashOK(hashes, f) && (rel.sdist == nil || (strings.HasSuffix(f.Filename, ".tar.gz") && !strings.HasSuffix(rel.sdist.Filename, ".tar.gz"))) {
						rel.sdist = f
					}
				}
			}
			continue
		}
		fn, err := wheeltag.ParseFilename(path.Base(f.Filename))
		if err != nil || fn.Name != norm {
			continue
		}
		rel := get(fn.Version)
		rel.wheels = append(rel.wheels, f.Filename)
		prio, ok := tags.Priority(fn)
		if !ok {
			rel.reasons = addReason(rel.reasons, fmt.Sprintf("no wheel is compatible with the target %s (found %s)", target, f.Filename))
			continue
		}
		if f.RequiresPython != "" {
			if spec, err := pep440.ParseSpecifierSet(f.RequiresPython); err == nil && !spec.Contains(py, true) {
				rel.reasons = addReason(rel.reasons, fmt.Sprintf("%s requires Python %s but the target is %s", f.Filename, f.RequiresPython, py))
				continue
			}
		}
		if hashes != nil && len(hashes) == 0 {
			rel.reasons = addReason(rel.reasons, fmt.Sprintf("hash-checking mode is on but no --hash is given for %s: list it, pinned with == and with --hash=sha256:..., in the requirements file", norm))
			continue
		}
		if hashes != nil && !hashes[f.SHA256] {
			got := f.SHA256
			if got == "" {
				got = "unknown: the index gives none"
			}
			rel.reasons = addReason(rel.reasons, fmt.Sprintf("%s matches none of the --hash values (its sha256 is %s)", f.Filename, got))
			continue
		}
		rank[f] = ranked{prio, fn.Build}
		if f.Yanked {
			if better(f, rel.bestYanked) {
				rel.bestYanked = f
			}
		} else if better(f, rel.best) {
			rel.best = f
		}
	}
	p := &project{name: norm, index: ix}
	for _, rel := range byVersion {
		p.releases = append(p.releases, rel)
	}
	sort.Slice(p.releases, func(i, j int) bool { return p.releases[i].version.Compare(p.releases[j].version) > 0 })
	return p
}
