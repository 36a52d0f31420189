package debsolve

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

type solveCase struct {
	name       string
	fixture    string
	install    []string
	recommends bool
	foreign    []string
	maxSteps   int

	want      []string // expected install order; nil means empty
	wantErr   string   // substring of the error; "" means success
	wantNotes []string // substrings each found in some note
	noNotes   []string // substrings found in no note
}

var solveCases = []solveCase{
	// Versioned dependencies, installed packages, pins.
	{name: "versioned deps pick highest satisfying", fixture: "basic", install: []string{"app"},
		want: []string{"libbar=1.9", "libfoo=1.10", "app=1.0"}},
	{name: "exact and range constraints", fixture: "basic", install: []string{"exact"},
		want: []string{"libbar=1.9", "libfoo=1.3", "exact=1.0"}},
	{name: "installed package is not upgraded implicitly", fixture: "basic", install: []string{"needs-new-libc"},
		wantErr: "needs-new-libc -> libc6 (>= 2.38): libc6 2.36-9 is installed in the base image and kiln never upgrades base image packages implicitly: add libc6 to apt_packages to upgrade it to 2.38-1"},
	{name: "installed package upgraded when requested", fixture: "basic", install: []string{"needs-new-libc", "libc6"},
		want:      []string{"libc6=2.38-1", "needs-new-libc=1.0"},
		wantNotes: []string{"upgrading installed libc6 from 2.36-9 to 2.38-1 as requested"}},
	{name: "pin", fixture: "basic", install: []string{"libfoo=1.3"},
		want: []string{"libfoo=1.3"}},
	{name: "pin with arch", fixture: "basic", install: []string{"libfoo:amd64=1.3"},
		want: []string{"libfoo=1.3"}},
	{name: "glob pin takes highest match", fixture: "basic", install: []string{"libfoo=1.1*"},
		want: []string{"libbar=1.9", "libfoo=1.10"}},
	{name: "pin not available", fixture: "basic", install: []string{"libfoo=9"},
		wantErr: "libfoo=9: version 9 of libfoo is not available; available: 1.10, 1.3, 1.1; change the pin in apt_packages"},
	{name: "pin of installed version keeps it", fixture: "basic", install: []string{"libc6=2.36-9"},
		wantNotes: []string{"libc6 2.36-9 is already installed"}},
	{name: "unknown package", fixture: "basic", install: []string{"nosuch"},
		wantErr: `nosuch: unknown package "nosuch": it is in none of the package lists; check the spelling in apt_packages`},
	{name: "unsatisfiable deep chain", fixture: "basic", install: []string{"chain-a"},
		wantErr: "chain-a -> chain-b -> chain-c -> does-not-exist: no package provides does-not-exist"},
	{name: "invalid request", fixture: "basic", install: []string{"Foo"},
		wantErr: `invalid package name "Foo"`},
	{name: "same package requested with two pins", fixture: "basic", install: []string{"libfoo=1.3", "libfoo=1.1"},
		wantErr: "libfoo is requested twice with different versions"},

	// Upgrading installed packages on request.
	{name: "upgrade that breaks an installed package falls back", fixture: "upgrade", install: []string{"libc6"},
		wantNotes: []string{"libc6 2.36-9 is already installed; not upgraded: replacing libc6 2.36-9 by 2.38-1 would break installed libc-bin 2.36-9, which depends on libc6 (= 2.36-9)"}},
	{name: "pinned upgrade that breaks an installed package fails", fixture: "upgrade", install: []string{"libc6=2.38-1"},
		wantErr: "libc6=2.38-1: replacing libc6 2.36-9 by 2.38-1 would break installed libc-bin 2.36-9, which depends on libc6 (= 2.36-9)"},
	{name: "dependency satisfied by installed", fixture: "upgrade", install: []string{"tool"},
		want: []string{"tool=1"}},

	// Alternatives.
	{name: "alternative already installed", fixture: "alternatives", install: []string{"app1"},
		want: []string{"app1=1"}},
	{name: "first installable alternative", fixture: "alternatives", install: []string{"app2"},
		want: []string{"xb=1", "app2=1"}},
	{name: "alternative already chosen", fixture: "alternatives", install: []string{"app3"},
		want: []string{"yb=1", "app3=1"}},
	{name: "alternative with broken dependencies is abandoned", fixture: "alternatives", install: []string{"app4"},
		want: []string{"yb=1", "app4=1"}},
	{name: "versioned alternative not available", fixture: "alternatives", install: []string{"app5"},
		want: []string{"yb=1", "app5=1"}},

	// Virtual packages.
	{name: "several providers pick the first by name", fixture: "virtual", install: []string{"needs-mta"},
		want:      []string{"exim4-daemon-light=4.96-15", "needs-mta=1"},
		wantNotes: []string{"needs-mta: chose exim4-daemon-light among the packages providing mail-transport-agent (exim4-daemon-light, postfix)"}},
	{name: "real package preferred over providers", fixture: "virtual", install: []string{"needs-editor"},
		want: []string{"editor=1", "needs-editor=1"}, noNotes: []string{"chose"}},
	{name: "unversioned provides cannot satisfy versioned dependency", fixture: "virtual", install: []string{"needs-vfoo2"},
		wantErr: "needs-vfoo2 -> vfoo (>= 2): vfoo is provided without a version by unverprov, which cannot satisfy the versioned vfoo (>= 2)"},
	{name: "unversioned provides satisfies unversioned dependency", fixture: "virtual", install: []string{"needs-vfoo"},
		want: []string{"unverprov=1", "needs-vfoo=1"}},
	{name: "versioned provides satisfies versioned dependency", fixture: "virtual", install: []string{"needs-vbar2"},
		want: []string{"verprov=1", "needs-vbar2=1"}},
	{name: "versioned provides too old", fixture: "virtual", install: []string{"needs-vbar3"},
		wantErr: "needs-vbar3 -> vbar (>= 3): no package provides vbar (>= 3) (only verprov (= 2.5))"},
	{name: "virtual satisfied by installed provider", fixture: "virtual", install: []string{"needs-term"},
		want: []string{"needs-term=1"}},
	{name: "real first alternative", fixture: "virtual", install: []string{"python3-numpy"},
		want: []string{"libblas3=3.11.0-2", "python3-numpy=1:1.24.2-1"}},
	{name: "versioned virtual without versioned providers", fixture: "virtual", install: []string{"only-virtual-dep"},
		wantErr: "only-virtual-dep -> libblas.so.3 (>= 3): libblas.so.3 is provided without a version by libblas3, libopenblas0-pthread, which cannot satisfy the versioned libblas.so.3 (>= 3)"},
	{name: "requested virtual with several providers", fixture: "virtual", install: []string{"mail-transport-agent"},
		wantErr: "mail-transport-agent is a virtual package provided by exim4-daemon-light, postfix; name the one to install in apt_packages"},
	{name: "requested virtual with one provider", fixture: "virtual", install: []string{"default-mta"},
		want:      []string{"postfix=3.7.10-0"},
		wantNotes: []string{"default-mta is a virtual package; installing postfix, its only provider"}},
	{name: "conflict with own provides is ignored", fixture: "virtual", install: []string{"selfish"},
		want: []string{"selfish=1"}},

	// Conflicts and Breaks.
	{name: "conflict with installed forces next alternative", fixture: "conflicts", install: []string{"app"},
		want: []string{"libb=1", "app=1"}},
	{name: "breaks with installed forces older version", fixture: "conflicts", install: []string{"app2"},
		want: []string{"libnew=1", "app2=1"}},
	{name: "conflict found later backtracks earlier choice", fixture: "conflicts", install: []string{"app3"},
		want: []string{"r=1", "mid=1", "late=1", "wrap=1", "app3=1"}},
	{name: "conflict through installed provides", fixture: "conflicts", install: []string{"app4"},
		wantErr: "app4 -> zuser: zuser 1 cannot be installed: it declares Conflicts: virt-z, which installed inst-z 1 provides"},
	{name: "installed package conflicts with candidate", fixture: "conflicts", install: []string{"app5"},
		wantErr: "app5 -> badpkg: badpkg 1 cannot be installed: installed inst-w 1 declares Conflicts: badpkg"},
	{name: "two chosen packages conflict", fixture: "conflicts", install: []string{"app6"},
		wantErr: "app6 -> c2: c2 1 cannot be installed: c1 1 (needed by app6) declares Conflicts: c2"},
	{name: "versioned breaks not matching", fixture: "conflicts", install: []string{"app7"},
		want: []string{"c2=1", "p-breaks-old=1", "app7=1"}},

	// Recommends.
	{name: "recommends off", fixture: "recommends", install: []string{"app"},
		want: []string{"a=1", "app=1"}},
	{name: "recommends on", fixture: "recommends", install: []string{"app"}, recommends: true,
		want: []string{"a=1", "app=1", "r1dep=1", "r1=1"},
		wantNotes: []string{
			"skipped app Recommends: missingrec: no package provides missingrec",
			"skipped app Recommends: rconf: rconf 1 cannot be installed: it declares Conflicts: a",
		}},

	// Ordering.
	{name: "cycles and pre-depends", fixture: "cycles", install: []string{"top"},
		want: []string{"a=1", "b=1", "e=1", "d=1", "c=1", "top=1"},
		wantNotes: []string{
			"dependency cycle between a, b; installed in the order a, b",
			"dependency cycle between c, d; installed in the order d, c",
		}},

	// Architectures.
	{name: "arch any", fixture: "multiarch", install: []string{"uses-python-any"}, foreign: []string{"i386"},
		want: []string{"python3=3.11.2-1", "uses-python-any=1"}},
	{name: "foreign package uses multi-arch foreign and same", fixture: "multiarch", install: []string{"tool:i386"}, foreign: []string{"i386"},
		want: []string{"helper=1", "libx:i386=1", "tool:i386=1"}},
	{name: "arch all depends on native", fixture: "multiarch", install: []string{"data"}, foreign: []string{"i386"},
		want: []string{"helper=1", "data:all=1"}},
	{name: "foreign package depends on same arch", fixture: "multiarch", install: []string{"tool2:i386"}, foreign: []string{"i386"},
		want: []string{"plain:i386=1", "tool2:i386=1"}},
	{name: "multi-arch same coexists with installed", fixture: "multiarch", install: []string{"libx:i386"}, foreign: []string{"i386"},
		want: []string{"libx:i386=1"}},
	{name: "foreign arch not enabled", fixture: "multiarch", install: []string{"tool:i386"},
		wantErr: "tool exists only for i386, which is not an architecture of this build"},
	{name: "other architecture only", fixture: "multiarch", install: []string{"armonly"},
		wantErr: "armonly exists only for arm64"},
	{name: "same name twice without multi-arch same", fixture: "multiarch", install: []string{"plain:i386", "plain"}, foreign: []string{"i386"},
		wantErr: "plain 1 cannot be chosen because plain 1 (requested) was already chosen"},
}

func runCase(t *testing.T, tc solveCase, universe, installed []Package) (Result, error) {
	t.Helper()
	return Solve(Request{
		Universe:          universe,
		Installed:         installed,
		Install:           tc.install,
		ForeignArchs:      tc.foreign,
		InstallRecommends: tc.recommends,
		MaxSteps:          tc.maxSteps,
	})
}

func TestSolve(t *testing.T) {
	for _, tc := range solveCases {
		t.Run(tc.name, func(t *testing.T) {
			universe, installed := loadFixture(t, tc.fixture)
			res, err := runCase(t, tc, universe, installed)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Solve succeeded with %v, want error containing %q", installList(res), tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error:\n  %v\nwant it to contain:\n  %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Solve: %v", err)
			}
			if got := installList(res); !reflect.DeepEqual(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
				t.Errorf("install order:\n  got  %v\n  want %v\nnotes: %q", got, tc.want, res.Notes)
			}
			verify(t, installed, tc.foreign, res)
			all := strings.Join(res.Notes, "\n")
			for _, n := range tc.wantNotes {
				if !strings.Contains(all, n) {
					t.Errorf("notes %q lack %q", res.Notes, n)
				}
			}
			for _, n := range tc.noNotes {
				if strings.Contains(all, n) {
					t.Errorf("notes %q contain %q", res.Notes, n)
				}
			}
		})
	}
}

// TestDeterminism shuffles the universe and the installed set and expects
// the same result.
func TestDeterminism(t *testing.T) {
	for _, tc := range solveCases {
		t.Run(tc.name, func(t *testing.T) {
			universe, installed := loadFixture(t, tc.fixture)
			want, wantErr := runCase(t, tc, universe, installed)
			for seed := uint64(1); seed <= 5; seed++ {
				r := rand.New(rand.NewPCG(seed, 42))
				u := append([]Package(nil), universe...)
				in := append([]Package(nil), installed...)
				r.Shuffle(len(u), func(i, j int) { u[i], u[j] = u[j], u[i] })
				r.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
				got, gotErr := runCase(t, tc, u, in)
				if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
					t.Fatalf("seed %d: error %v, want %v", seed, gotErr, wantErr)
				}
				if !reflect.DeepEqual(installList(got), installList(want)) || !reflect.DeepEqual(got.Notes, want.Notes) {
					t.Fatalf("seed %d: got %v %q, want %v %q", seed, installList(got), got.Notes, installList(want), want.Notes)
				}
				for i := range got.Install {
					if !reflect.DeepEqual(got.Install[i].Chain, want.Install[i].Chain) || got.Install[i].Via != want.Install[i].Via {
						t.Fatalf("seed %d: step %d reason %q, want %q", seed, i, got.Install[i].Reason(), want.Install[i].Reason())
					}
				}
			}
		})
	}
}

func TestStepReason(t *testing.T) {
	universe, installed := loadFixture(t, "virtual")
	res, err := Solve(Request{Universe: universe, Installed: installed, Install: []string{"needs-mta"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"needs-mta -> exim4-daemon-light (Depends: mail-transport-agent)",
		"needs-mta (requested)",
	}
	var got []string
	for _, s := range res.Install {
		got = append(got, s.Reason())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reasons %q, want %q", got, want)
	}
}

func TestErrorType(t *testing.T) {
	universe, installed := loadFixture(t, "basic")
	_, err := Solve(Request{Universe: universe, Installed: installed, Install: []string{"chain-a"}})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is %T, want *Error", err, err)
	}
	want := []string{"chain-a", "chain-b", "chain-c", "does-not-exist"}
	if !reflect.DeepEqual(e.Chain, want) {
		t.Errorf("chain %q, want %q", e.Chain, want)
	}
}

func TestRefKept(t *testing.T) {
	universe := []Package{
		{Name: "aa", Version: "1", Architecture: "amd64", Depends: "bb", Ref: "stanza-a"},
		{Name: "bb", Version: "1", Architecture: "amd64", Ref: 7},
	}
	res, err := Solve(Request{Universe: universe, Install: []string{"aa"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Install) != 2 || res.Install[0].Package.Ref != 7 || res.Install[1].Package.Ref != "stanza-a" {
		t.Errorf("refs not kept: %+v", res.Install)
	}
}

func TestEmptyRequest(t *testing.T) {
	res, err := Solve(Request{})
	if err != nil || len(res.Install) != 0 {
		t.Errorf("Solve(empty) = %v, %v; want nothing", res, err)
	}
}

// alternativesUniverse builds a request whose search space has 2^n
// combinations and no solution: top needs one of xNa|xNb for each N, and z,
// which conflicts with all of them.
func alternativesUniverse(n int) []Package {
	top := Package{Name: "top", Version: "1", Architecture: "amd64"}
	var deps, confl []string
	var u []Package
	for i := range n {
		a, b := fmt.Sprintf("x%da", i), fmt.Sprintf("x%db", i)
		deps = append(deps, a+" | "+b)
		confl = append(confl, a, b)
		u = append(u, Package{Name: a, Version: "1", Architecture: "amd64"}, Package{Name: b, Version: "1", Architecture: "amd64"})
	}
	top.Depends = strings.Join(append(deps, "z"), ", ")
	u = append(u, top, Package{Name: "z", Version: "1", Architecture: "all", Conflicts: strings.Join(confl, ", ")})
	return u
}

func TestStepLimit(t *testing.T) {
	_, err := Solve(Request{Universe: alternativesUniverse(16), Install: []string{"top"}, MaxSteps: 10})
	if err == nil || !strings.Contains(err.Error(), "gave up after trying 11 candidates") {
		t.Fatalf("error %v, want it to give up", err)
	}
}

// TestConflictBackjump checks that a conflict rules out only the choices it
// names: 2^40 combinations of alternatives must not be tried one by one.
func TestConflictBackjump(t *testing.T) {
	_, err := Solve(Request{Universe: alternativesUniverse(40), Install: []string{"top"}, MaxSteps: 5000})
	if err == nil || !strings.Contains(err.Error(), "top -> z: z 1 cannot be installed: it declares Conflicts: x") {
		t.Fatalf("error %v, want a conflict on z", err)
	}
	if strings.Contains(err.Error(), "gave up") {
		t.Fatalf("error %v, want no exhaustive search", err)
	}
}

// TestBackjump checks that a dependency nothing can satisfy does not make
// the search try every combination of unrelated alternatives before it.
func TestBackjump(t *testing.T) {
	u := alternativesUniverse(40)
	for i := range u {
		if u[i].Name == "z" {
			u[i].Conflicts = ""
			u[i].Depends = "missing (>= 2)"
		}
	}
	_, err := Solve(Request{Universe: u, Install: []string{"top"}, MaxSteps: 1000})
	if err == nil || err.Error() != "top -> z -> missing (>= 2): no package provides missing (>= 2)" {
		t.Fatalf("error %v", err)
	}
}
