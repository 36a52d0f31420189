package debsolve

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pault.ag/go/debian/version"
)

// readLists loads every amd64 Packages index that apt left on this machine,
// skipping the test when there is none.
func readLists(t *testing.T) []Package {
	t.Helper()
	files, _ := filepath.Glob("/var/lib/apt/lists/*_binary-amd64_Packages*")
	var universe []Package
	for _, f := range files {
		var data []byte
		var err error
		switch {
		case strings.HasSuffix(f, "_Packages"):
			data, err = os.ReadFile(f)
		case strings.HasSuffix(f, "_Packages.lz4"):
			if _, lerr := exec.LookPath("lz4"); lerr != nil {
				continue
			}
			data, err = exec.Command("lz4", "-dc", f).Output()
		default:
			continue
		}
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		u, _ := readStanzas(t, bytes.NewReader(data))
		universe = append(universe, u...)
	}
	if len(universe) == 0 {
		t.Skip("no readable Packages index under /var/lib/apt/lists")
	}
	return universe
}

// baseSet returns the Essential and Priority: required packages of the
// host's dpkg status and what they depend on, a stand-in for a slim base
// image.
func baseSet(t *testing.T) []Package {
	t.Helper()
	f, err := os.Open("/var/lib/dpkg/status")
	if err != nil {
		t.Skipf("no dpkg status: %v", err)
	}
	defer f.Close()
	paras, err := controlParagraphs(f)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]Package{}
	var todo []string
	for _, p := range paras {
		if !strings.HasSuffix(strings.TrimSpace(p.Values["Status"]), " installed") {
			continue
		}
		pkg := packageFromParagraph(&p)
		all[pkg.Name] = pkg
		if pkg.Essential || strings.TrimSpace(p.Values["Priority"]) == "required" {
			todo = append(todo, pkg.Name)
		}
	}
	base := map[string]bool{}
	for len(todo) > 0 {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		p, ok := all[n]
		if !ok || base[n] {
			continue
		}
		base[n] = true
		rels, err := parseRels(p.PreDepends + ", " + p.Depends)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for _, r := range rels {
			for _, a := range r.alts {
				if _, ok := all[a.name]; ok {
					todo = append(todo, a.name)
					break
				}
			}
		}
	}
	var out []Package
	for n := range base {
		out = append(out, all[n])
	}
	if len(out) == 0 {
		t.Skip("no Essential packages in the dpkg status")
	}
	return out
}

// currentVersions replaces each installed package by the highest version of
// it in universe, as in a base image built from the same snapshot as the
// lists: the host may be older than its lists.
func currentVersions(installed, universe []Package) []Package {
	best := map[string]Package{}
	for _, p := range universe {
		if p.Architecture != "amd64" && p.Architecture != "all" {
			continue
		}
		b, ok := best[p.Name]
		if !ok || compareVersions(p.Version, b.Version) > 0 {
			best[p.Name] = p
		}
	}
	out := make([]Package, len(installed))
	for i, p := range installed {
		out[i] = p
		if b, ok := best[p.Name]; ok {
			out[i] = b
		}
	}
	return out
}

func compareVersions(a, b string) int {
	va, _ := version.Parse(a)
	vb, _ := version.Parse(b)
	return version.Compare(va, vb)
}

func TestRealIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the whole Packages index")
	}
	universe := readLists(t)
	installed := currentVersions(baseSet(t), universe)
	for _, tc := range []struct {
		install    []string
		recommends bool
		want       []string
	}{
		{install: []string{"python3-numpy", "git", "libgomp1"},
			want: []string{"python3-numpy", "git", "libgomp1", "libblas3", "liblapack3", "python3", "libgfortran5"}},
		{install: []string{"build-essential", "python3-dev"},
			want: []string{"gcc", "g++", "make", "libc6-dev", "libpython3.11-dev", "python3.11-dev"}},
		{install: []string{"python3-pip"}, recommends: true,
			want: []string{"python3-pip", "python3-setuptools", "python3-wheel", "build-essential"}},
	} {
		t.Run(strings.Join(tc.install, "+"), func(t *testing.T) {
			res, err := Solve(Request{
				Universe:          universe,
				Installed:         installed,
				Install:           tc.install,
				InstallRecommends: tc.recommends,
			})
			if err != nil {
				t.Fatalf("Solve: %v", err)
			}
			var names []string
			for _, s := range res.Install {
				names = append(names, s.Package.Name)
			}
			t.Logf("%d packages: %s", len(names), strings.Join(names, " "))
			for _, n := range res.Notes {
				t.Logf("note: %s", n)
			}
			for _, want := range tc.want {
				if !slices.Contains(names, want) {
					t.Errorf("result lacks %s", want)
				}
			}
			verify(t, installed, nil, res)

			shuffled := append([]Package(nil), universe...)
			rand.New(rand.NewPCG(7, 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			again, err := Solve(Request{Universe: shuffled, Installed: installed, Install: tc.install, InstallRecommends: tc.recommends})
			if err != nil {
				t.Fatalf("Solve on shuffled universe: %v", err)
			}
			if !slices.Equal(installList(again), installList(res)) || !slices.Equal(again.Notes, res.Notes) {
				t.Errorf("shuffled universe gives %v, want %v", installList(again), installList(res))
			}
		})
	}
}

// verify checks a result independently of the search: every Depends and
// Pre-Depends is satisfied by the installed packages and the result, every
// Pre-Depends by the installed packages and earlier steps, and no
// Conflicts or Breaks holds between any two packages of the final set.
//
// A step replacing an installed package of the same name (an upgrade on
// request) takes its place.
func verify(t *testing.T, installed []Package, foreign []string, res Result) {
	t.Helper()
	idx, err := newIndex(Request{Arch: "amd64", ForeignArchs: foreign, Installed: installed})
	if err != nil {
		t.Fatal(err)
	}
	s := newSolver(idx, Request{Arch: "amd64"})
	var steps []*cand
	for i := range res.Install {
		p := res.Install[i].Package
		c, err := candFor(&p, foreign)
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, c)
	}
	// Pre-Depends against what precedes.
	for _, c := range steps {
		for _, r := range c.pre {
			if s.satisfied(r, c) == nil {
				t.Errorf("%s: Pre-Depends %s not installed before it", c.label(), r.text)
			}
		}
		if o := s.selected[c.slot()]; o != nil && o.installed {
			s.remove(o)
		}
		if reason, _ := s.check(c); reason != "" {
			t.Errorf("final set is inconsistent: %s", reason)
		}
		s.add(c, selInfo{chain: []string{c.name}})
	}
	for _, c := range steps {
		for _, r := range c.deps {
			if s.satisfied(r, c) == nil {
				t.Errorf("%s: Depends %s not satisfied", c.label(), r.text)
			}
		}
	}
}

// candFor builds a parsed cand for p.
func candFor(p *Package, foreign []string) (*cand, error) {
	idx, err := newIndex(Request{Arch: "amd64", ForeignArchs: foreign, Universe: []Package{*p}})
	if err != nil {
		return nil, err
	}
	c := idx.byName[p.Name][0]
	return c, c.parse()
}
