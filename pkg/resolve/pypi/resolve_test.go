package pypi

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		dists       []dist
		reqs        []string
		constraints []string
		pre         PrereleasePolicy
		py, arch    string
		want        []string // name==version, sorted by name
		wantErr     []string // substrings of the error
	}{{
		name: "backtracking: newest a conflicts with b, so an older a is chosen",
		dists: []dist{
			{name: "a", version: "2.0", requires: []string{"c>=2"}},
			{name: "a", version: "1.0", requires: []string{"c<2"}},
			{name: "b", version: "1.0", requires: []string{"c<2"}},
			{name: "c", version: "1.0"},
			{name: "c", version: "2.0"},
		},
		reqs: []string{"a", "b"},
		want: []string{"a==1.0", "b==1.0", "c==1.0"},
	}, {
		name: "backtracking through a deeper conflict",
		dists: []dist{
			{name: "top", version: "3.0", requires: []string{"mid==3.0"}},
			{name: "top", version: "2.0", requires: []string{"mid==2.0"}},
			{name: "mid", version: "3.0", requires: []string{"leaf>=3"}},
			{name: "mid", version: "2.0", requires: []string{"leaf<3"}},
			{name: "leaf", version: "3.0"},
			{name: "leaf", version: "2.0"},
			{name: "other", version: "1.0", requires: []string{"leaf<=2.5"}},
		},
		reqs: []string{"top", "other"},
		want: []string{"leaf==2.0", "mid==2.0", "other==1.0", "top==2.0"},
	}, {
		name: "extras add the extra's dependencies",
		dists: []dist{
			{name: "requests", version: "2.0", extras: []string{"socks"}, requires: []string{"idna", `pysocks>=1.5; extra == "socks"`}},
			{name: "idna", version: "3.0"},
			{name: "pysocks", version: "1.7"},
		},
		reqs: []string{"requests[socks]"},
		want: []string{"idna==3.0", "pysocks==1.7", "requests==2.0"},
	}, {
		name: "no extras, no extra dependencies",
		dists: []dist{
			{name: "requests", version: "2.0", extras: []string{"socks"}, requires: []string{"idna", `pysocks>=1.5; extra == "socks"`}},
			{name: "idna", version: "3.0"},
			{name: "pysocks", version: "1.7"},
		},
		reqs: []string{"requests"},
		want: []string{"idna==3.0", "requests==2.0"},
	}, {
		name: "an extra asked for after the base was pinned",
		dists: []dist{
			{name: "requests", version: "2.0", extras: []string{"socks"}, requires: []string{`pysocks; extra == "socks"`}},
			{name: "requests", version: "1.0"},
			{name: "pysocks", version: "1.7"},
			{name: "zzz", version: "1.0", requires: []string{"requests[socks]>=2"}},
		},
		reqs: []string{"requests", "zzz"},
		want: []string{"pysocks==1.7", "requests==2.0", "zzz==1.0"},
	}, {
		name: "the extra's version must equal the base's",
		dists: []dist{
			{name: "lib", version: "2.0", extras: []string{"x"}, requires: []string{`dep; extra == "x"`}},
			{name: "lib", version: "1.0", extras: []string{"x"}, requires: []string{`dep; extra == "x"`}},
			{name: "dep", version: "1.0"},
		},
		reqs: []string{"lib<2", "lib[x]"},
		want: []string{"dep==1.0", "lib==1.0"},
	}, {
		name: "markers are evaluated for the target, x86_64",
		dists: []dist{
			{name: "app", version: "1.0", requires: []string{
				`winonly; sys_platform == "win32"`,
				`armonly; platform_machine == "aarch64"`,
				`x86only; platform_machine == "x86_64"`,
				`old; python_version < "3.10"`,
				`new; python_version >= "3.11"`,
				`linux; sys_platform == "linux" and os_name == "posix"`,
			}},
			{name: "winonly", version: "1"}, {name: "armonly", version: "1"}, {name: "x86only", version: "1"},
			{name: "old", version: "1"}, {name: "new", version: "1"}, {name: "linux", version: "1"},
		},
		reqs: []string{"app", `never; python_version < "3"`},
		want: []string{"app==1.0", "linux==1", "new==1", "x86only==1"},
	}, {
		name: "markers are evaluated for the target, aarch64 python 3.9",
		dists: []dist{
			{name: "app", version: "1.0", requires: []string{
				`armonly; platform_machine == "aarch64"`,
				`x86only; platform_machine == "x86_64"`,
				`old; python_version < "3.10"`,
			}},
			{name: "armonly", version: "1"}, {name: "x86only", version: "1"}, {name: "old", version: "1"},
		},
		py: "3.9.18", arch: "aarch64",
		reqs: []string{"app"},
		want: []string{"app==1.0", "armonly==1", "old==1"},
	}, {
		name: "requires-python on the index skips files",
		dists: []dist{
			{name: "p", version: "3.0", python: ">=3.12"},
			{name: "p", version: "2.0", python: ">=3.8,<3.11"},
			{name: "p", version: "1.0", python: ">=3.8"},
		},
		reqs: []string{"p"},
		want: []string{"p==1.0"},
	}, {
		name: "requires-python only in METADATA also skips",
		dists: []dist{
			{name: "p", version: "2.0", python: ">=3.12", hidePython: true},
			{name: "p", version: "1.0"},
		},
		reqs: []string{"p"},
		want: []string{"p==1.0"},
	}, {
		name:    "requires-python excludes every version",
		dists:   []dist{{name: "p", version: "2.0", python: ">=3.12"}},
		reqs:    []string{"p"},
		wantErr: []string{"p-2.0-py3-none-any.whl requires Python >=3.12 but the target is 3.11.2"},
	}, {
		name:  "yanked versions are skipped",
		dists: []dist{{name: "y", version: "2.0", yanked: true}, {name: "y", version: "1.0"}},
		reqs:  []string{"y"},
		want:  []string{"y==1.0"},
	}, {
		name:  "yanked versions are used when pinned with ==",
		dists: []dist{{name: "y", version: "2.0", yanked: true}, {name: "y", version: "1.0"}},
		reqs:  []string{"y==2.0"},
		want:  []string{"y==2.0"},
	}, {
		name:    "yanked versions are not used for a range",
		dists:   []dist{{name: "y", version: "2.0", yanked: true}, {name: "y", version: "1.0"}},
		reqs:    []string{"y>=2"},
		wantErr: []string{"y 2.0 was yanked", "==2.0"},
	}, {
		name:  "pre-releases are skipped by default",
		dists: []dist{{name: "pr", version: "1.0"}, {name: "pr", version: "2.0b1"}},
		reqs:  []string{"pr"},
		want:  []string{"pr==1.0"},
	}, {
		name:  "pre-releases when the specifier names one",
		dists: []dist{{name: "pr", version: "1.0"}, {name: "pr", version: "2.0b1"}},
		reqs:  []string{"pr>=2.0b1"},
		want:  []string{"pr==2.0b1"},
	}, {
		name:  "pre-releases when nothing else satisfies",
		dists: []dist{{name: "pr", version: "1.0"}, {name: "pr", version: "2.0b1"}},
		reqs:  []string{"pr>=1.5"},
		want:  []string{"pr==2.0b1"},
	}, {
		name:  "pre-releases allowed everywhere (--pre)",
		dists: []dist{{name: "pr", version: "1.0"}, {name: "pr", version: "2.0rc1"}},
		reqs:  []string{"pr"},
		pre:   PrereleaseAllow,
		want:  []string{"pr==2.0rc1"},
	}, {
		name:  "a version with only an sdist is skipped",
		dists: []dist{{name: "s", version: "2.0", sdist: true}, {name: "s", version: "1.0"}},
		reqs:  []string{"s"},
		want:  []string{"s==1.0"},
	}, {
		name:  "only sdists: fail suggesting a wheel",
		dists: []dist{{name: "foo", version: "1.2", sdist: true}},
		reqs:  []string{"foo"},
		wantErr: []string{
			"foo 1.2 has only a source distribution (foo-1.2.tar.gz); kiln installs wheels only: build a wheel and serve it from an index, or pin a version that has one",
		},
	}, {
		name: "no solution names the conflicting requirements and who required them",
		dists: []dist{
			{name: "a", version: "1.0", requires: []string{"c>=2"}},
			{name: "b", version: "1.0", requires: []string{"c<2"}},
			{name: "c", version: "1.0"}, {name: "c", version: "2.0"},
		},
		reqs:    []string{"a", "b"},
		wantErr: []string{"cannot resolve the Python requirements", "c>=2 (from a 1.0)", "c<2 (from b 1.0)"},
	}, {
		name:    "a version that does not exist",
		dists:   []dist{{name: "c", version: "1.0"}, {name: "c", version: "2.0"}},
		reqs:    []string{"c>=5"},
		wantErr: []string{"no version of c satisfies c>=5 (from packages); available versions: 2.0, 1.0"},
	}, {
		name: "binary wheels for another interpreter are rejected",
		dists: []dist{
			{name: "bin", version: "1.0", tag: "cp312-cp312-manylinux_2_17_x86_64"},
			{name: "bin", version: "1.0", tag: "cp311-cp311-musllinux_1_1_x86_64"},
		},
		reqs:    []string{"bin"},
		wantErr: []string{"bin 1.0: no wheel is compatible with the target cp311-linux_x86_64-glibc2.36", "bin-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"},
	}, {
		name: "the best wheel by tag priority is chosen",
		dists: []dist{
			{name: "bin", version: "1.0", tag: "py3-none-any"},
			{name: "bin", version: "1.0", tag: "cp311-abi3-manylinux_2_17_x86_64"},
			{name: "bin", version: "1.0", tag: "cp311-cp311-manylinux_2_17_x86_64"},
			{name: "bin", version: "1.0", tag: "cp311-cp311-manylinux_2_39_x86_64"},
		},
		reqs: []string{"bin"},
		want: []string{"bin==1.0"},
	}, {
		name:        "constraints limit required projects only",
		dists:       []dist{{name: "c", version: "1.0"}, {name: "c", version: "2.0"}, {name: "unused", version: "1.0"}},
		reqs:        []string{"c"},
		constraints: []string{"c<2", "unused"},
		want:        []string{"c==1.0"},
	}, {
		name:        "constraints take part in conflicts",
		dists:       []dist{{name: "c", version: "1.0"}, {name: "c", version: "2.0"}},
		reqs:        []string{"c>=2"},
		constraints: []string{"c<2"},
		wantErr:     []string{"c>=2 (from packages)", "c<2 (from packages, a constraint)"},
	}, {
		name:    "an unknown project names the requirement and the index",
		dists:   []dist{{name: "a", version: "1.0", requires: []string{"ghost>=1"}}},
		reqs:    []string{"a"},
		wantErr: []string{`ghost>=1 (from a 1.0): project "ghost" was not found on any index (tried http://127.0.0.1:`},
	}, {
		name:  "names are normalised",
		dists: []dist{{name: "Zope.Interface", version: "6.0"}, {name: "app", version: "1", requires: []string{"zope_interface"}}},
		reqs:  []string{"APP"},
		want:  []string{"app==1", "zope-interface==6.0"},
	}}
	for _, tc := range tests {
		for _, json := range []bool{false, true} {
			name := tc.name + "/html"
			if json {
				name = tc.name + "/json"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				fi := newFakeIndex(t, tc.dists, fakeOpts{json: json})
				py, arch := tc.py, tc.arch
				if py == "" {
					py, arch = "3.11.2", "x86_64"
				}
				env, target := targetFor(t, py, arch)
				res, err := Resolve(t.Context(), Request{
					Requirements: reqs(t, tc.reqs...),
					Constraints:  reqs(t, tc.constraints...),
					Env:          env, Target: target,
					Indexes:     testIndexes(t, fi.URL()),
					Prereleases: tc.pre,
				})
				if tc.wantErr != nil {
					if err == nil {
						t.Fatalf("resolved %v, want an error", pins(res))
					}
					for _, w := range tc.wantErr {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error lacks %q:\n%v", w, err)
						}
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := pins(res); !slices.Equal(got, tc.want) {
					t.Errorf("resolved %v, want %v", got, tc.want)
				}
			})
		}
	}
}

func TestResolveResultFields(t *testing.T) {
	t.Parallel()
	fi := newFakeIndex(t, []dist{
		{name: "app", version: "1.0", extras: []string{"fast"}, requires: []string{"lib>=1", `speedup; extra == "fast"`}},
		{name: "lib", version: "1.5", requires: []string{"base"}},
		{name: "speedup", version: "0.1"},
		{name: "base", version: "9"},
		{name: "bin", version: "1.0", tag: "py3-none-any"},
		{name: "bin", version: "1.0", tag: "cp311-cp311-manylinux_2_17_x86_64"},
	}, fakeOpts{})
	env, target := target311(t)
	res, err := Resolve(t.Context(), Request{
		Requirements: reqs(t, "app[fast]", "bin"),
		Env:          env, Target: target, Indexes: testIndexes(t, fi.URL()),
	})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Distribution{}
	for _, d := range res.Distributions {
		byName[d.Name] = d
	}
	if got := pins(res); !slices.Equal(got, []string{"app==1.0", "base==9", "bin==1.0", "lib==1.5", "speedup==0.1"}) {
		t.Fatalf("resolved %v", got)
	}
	app, base, bin := byName["app"], byName["base"], byName["bin"]
	if !app.Requested || base.Requested || !slices.Equal(app.Extras, []string{"fast"}) {
		t.Errorf("app: %+v; base: %+v", app, base)
	}
	if !slices.Equal(app.Dependencies, []string{"lib", "speedup"}) {
		t.Errorf("app dependencies %v", app.Dependencies)
	}
	if !slices.Equal(base.Chain, []string{"app[fast]", "lib>=1", "base"}) || !slices.Equal(base.RequiredBy, []string{"lib 1.5"}) {
		t.Errorf("base chain %q, required by %q", base.Chain, base.RequiredBy)
	}
	if bin.Filename != "bin-1.0-cp311-cp311-manylinux_2_17_x86_64.whl" || bin.URL != fi.srv.URL+"/files/"+bin.Filename {
		t.Errorf("bin file %s at %s", bin.Filename, bin.URL)
	}
	if bin.SHA256 != fi.listed[bin.Filename] || bin.Index != fi.URL() {
		t.Errorf("bin sha256 %s (want %s), index %s", bin.SHA256, fi.listed[bin.Filename], bin.Index)
	}
	// Deterministic: the same request gives the same result.
	res2, err := Resolve(t.Context(), Request{
		Requirements: reqs(t, "bin", "app[fast]"),
		Env:          env, Target: target, Indexes: testIndexes(t, fi.URL()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pins(res), pins(res2)) {
		t.Errorf("second resolution %v differs from %v", pins(res2), pins(res))
	}
}

func TestResolveIndexOrder(t *testing.T) {
	t.Parallel()
	private := newFakeIndex(t, []dist{{name: "corp-lib", version: "1.0", requires: []string{"requests"}}}, fakeOpts{})
	public := newFakeIndex(t, []dist{
		{name: "corp-lib", version: "99.0", requires: []string{"evil"}},
		{name: "requests", version: "2.0"},
		{name: "evil", version: "1.0"},
	}, fakeOpts{json: true})
	env, target := target311(t)
	res, err := Resolve(t.Context(), Request{
		Requirements: reqs(t, "corp-lib"),
		Env:          env, Target: target, Indexes: testIndexes(t, private.URL(), public.URL()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := pins(res); !slices.Equal(got, []string{"corp-lib==1.0", "requests==2.0"}) {
		t.Errorf("resolved %v, want corp-lib 1.0 from the first index", got)
	}
	if res.Distributions[0].Index != private.URL() || res.Distributions[1].Index != public.URL() {
		t.Errorf("indexes: %s, %s", res.Distributions[0].Index, res.Distributions[1].Index)
	}
	for _, p := range public.Requests() {
		if strings.Contains(p, "corp-lib") {
			t.Errorf("the second index was asked about corp-lib: %s", p)
		}
	}
	// A project on no index names every index tried.
	_, err = Resolve(t.Context(), Request{
		Requirements: reqs(t, "nowhere"),
		Env:          env, Target: target, Indexes: testIndexes(t, private.URL(), public.URL()),
	})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !slices.Equal(nf.Indexes, []string{private.URL(), public.URL()}) {
		t.Errorf("error %v, want a NotFoundError naming both indexes", err)
	}
}

func TestResolveHashMismatch(t *testing.T) {
	t.Parallel()
	env, target := target311(t)
	for _, tc := range []struct {
		name string
		d    dist
		opts fakeOpts
		want string
	}{
		{"wheel", dist{name: "bad", version: "1.0", corrupt: true}, fakeOpts{noMetadata: true}, "bad-1.0-py3-none-any.whl"},
		{"metadata", dist{name: "bad", version: "1.0", badMetadata: true}, fakeOpts{}, "bad-1.0-py3-none-any.whl.metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fi := newFakeIndex(t, []dist{tc.d}, tc.opts)
			_, err := Resolve(t.Context(), Request{
				Requirements: reqs(t, "bad"),
				Env:          env, Target: target, Indexes: testIndexes(t, fi.URL()),
			})
			var hm *HashMismatchError
			if !errors.As(err, &hm) {
				t.Fatalf("error %v, want a HashMismatchError", err)
			}
			if hm.What != tc.want || hm.Want == hm.Got || !strings.Contains(err.Error(), hm.Want) || !strings.Contains(err.Error(), hm.Got) {
				t.Errorf("error %v names %s, want %s and both hashes", err, hm.What, tc.want)
			}
			if tc.name == "wheel" && !strings.Contains(err.Error(), fi.listed[hm.What]) {
				t.Errorf("error %v lacks the index's hash %s", err, fi.listed[hm.What])
			}
		})
	}
}

func TestResolveRequireHashes(t *testing.T) {
	t.Parallel()
	dists := []dist{{name: "a", version: "1.0", requires: []string{"b"}}, {name: "b", version: "1.0"}, {name: "b", version: "2.0"}}
	fi := newFakeIndex(t, dists, fakeOpts{})
	env, target := target311(t)
	ha, hb1 := fi.listed["a-1.0-py3-none-any.whl"], fi.listed["b-1.0-py3-none-any.whl"]
	with := func(spec string, hashes ...string) Requirement {
		r := reqs(t, spec)[0]
		r.Hashes = hashes
		return r
	}
	tests := []struct {
		name    string
		reqs    []Requirement
		want    []string
		wantErr string
	}{
		{"all hashed", []Requirement{with("a==1.0", ha), with("b==1.0", hb1)}, []string{"a==1.0", "b==1.0"}, ""},
		{"hash picks the version", []Requirement{with("a==1.0", ha), with("b", hb1)}, []string{"a==1.0", "b==1.0"}, ""},
		{"dependency without hash", []Requirement{with("a==1.0", ha)}, nil, "hash-checking mode is on but no --hash is given for b"},
		{"wrong hash", []Requirement{with("a==1.0", strings.Repeat("0", 64))}, nil, "matches none of the --hash values (its sha256 is " + ha + ")"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Resolve(t.Context(), Request{Requirements: tc.reqs, RequireHashes: true, Env: env, Target: target, Indexes: testIndexes(t, fi.URL())})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := pins(res); !slices.Equal(got, tc.want) {
				t.Errorf("resolved %v, want %v", got, tc.want)
			}
		})
	}
}
