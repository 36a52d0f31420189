package pypi

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestResolveExplains checks that an unsatisfiable resolution is
// explained as a derivation: the top-level requirements the conflict
// depends on, the versions that fail alike merged into a range, and who
// required what, in few lines.
func TestResolveExplains(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dists     []dist
		reqs      []string
		want      []string
		wantLines int
	}{{
		name: "two top-level requirements whose dependencies disagree",
		dists: slices.Concat(versions("a", 3, "c>=2"),
			[]dist{{name: "b", version: "1.0", requires: []string{"c<2"}}, {name: "c", version: "1.0"}, {name: "c", version: "2.0"}, {name: "free", version: "1.0"}}),
		reqs: []string{"free", "a", "b"},
		want: []string{
			"cannot resolve the Python requirements: a (from packages) and b (from packages) cannot be installed together",
			"a 1.0 to 3.0",
			"c<2 (from b 1.0)",
		},
		wantLines: 1,
	}, {
		name: "the versions of the first choice fail for different reasons",
		dists: []dist{
			{name: "a", version: "2.0", requires: []string{"b"}},
			{name: "a", version: "1.0", requires: []string{"zz>=9"}},
			{name: "b", version: "1.0", requires: []string{"c>=2"}},
			{name: "b", version: "2.0", requires: []string{"c>=3"}},
			{name: "c", version: "1.0"}, {name: "zz", version: "1.0"},
		},
		reqs: []string{"a"},
		want: []string{
			"a (from packages) cannot be installed",
			"zz>=9 (from a 1.0)",
			"so with a 2.0 (the newest of each), every version of b",
			"b 1.0 to 2.0 need c >=3 or >=2, and no version of c is",
		},
		wantLines: 2,
	}, {
		name:      "one top-level requirement nothing satisfies",
		dists:     append(versions("z", 5, "w>=2"), dist{name: "w", version: "1.0"}),
		reqs:      []string{"z"},
		want:      []string{"z (from packages) cannot be installed", "z 1.0 to 5.0", "w>=2"},
		wantLines: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			fi := newFakeIndex(t, tc.dists, fakeOpts{})
			env, target := target311(t)
			res, err := Resolve(t.Context(), Request{Requirements: reqs(t, tc.reqs...), Env: env, Target: target, Indexes: testIndexes(t, fi.URL())})
			var rerr *ResolutionError
			if !errors.As(err, &rerr) {
				t.Fatalf("got %v (%v), want a *ResolutionError", err, pins(res))
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "free") {
				t.Errorf("error names a requirement the conflict does not depend on:\n%s", msg)
			}
			if n := strings.Count(msg, "\n") + 1; n > tc.wantLines {
				t.Errorf("explained in %d lines, want at most %d:\n%s", n, tc.wantLines, msg)
			}
		})
	}
}
