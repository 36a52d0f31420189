package pypi

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// versions returns n versions of name, 1.0 to n.0, each requiring reqs.
func versions(name string, n int, reqs ...string) []dist {
	var out []dist
	for i := 1; i <= n; i++ {
		out = append(out, dist{name: name, version: fmt.Sprintf("%d.0", i), requires: reqs})
	}
	return out
}

// TestResolveBackjumps checks conflict-directed backjumping on indexes
// where chronological backtracking retries every combination of
// unrelated projects: with a budget far below that, the resolver must
// still find the solution, or explain the conflict, instead of giving up.
func TestResolveBackjumps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dists     []dist
		reqs      []string
		maxRounds int
		want      []string
		wantErr   []string
	}{
		{
			// a, b and z have 20 versions each; every z needs w>=2, which
			// does not exist. Backtracking tries 20*20*20 combinations;
			// the failure depends on nobody's choice, so the search stops
			// after z's versions.
			name:      "an unsatisfiable leaf is not retried under every combination above it",
			dists:     slices.Concat(versions("a", 20), versions("b", 20), versions("z", 20, "w>=2"), versions("w", 1)),
			reqs:      []string{"a", "b", "z"},
			maxRounds: 200,
			wantErr:   []string{"no version of w satisfies w>=2 (from z 20.0)", "available versions: 1.0"},
		},
		{
			// Every c needs a<2: the conflict is between c and a, so b's
			// versions are jumped over and only a's are tried again.
			name:      "the search jumps back to the project in conflict",
			dists:     slices.Concat(versions("a", 20), versions("b", 20), versions("c", 20, "a<2")),
			reqs:      []string{"a", "b", "c"},
			maxRounds: 1000,
			want:      []string{"a==1.0", "b==20.0", "c==20.0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fi := newFakeIndex(t, tc.dists, fakeOpts{})
			env, target := target311(t)
			res, err := Resolve(t.Context(), Request{
				Requirements: reqs(t, tc.reqs...),
				Env:          env, Target: target, Indexes: testIndexes(t, fi.URL()),
				MaxRounds: tc.maxRounds,
			})
			if tc.wantErr != nil {
				var rerr *ResolutionError
				if !errors.As(err, &rerr) {
					t.Fatalf("got %v (%v), want a *ResolutionError", err, pins(res))
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

// TestResolveBackjumpComplete compares the resolver with an exhaustive
// search on small random indexes: backjumping must never miss a solution
// that exists, nor report one that does not hold.
func TestResolveBackjumpComplete(t *testing.T) {
	names := []string{"p0", "p1", "p2", "p3", "p4"}
	const nver = 3
	seed := uint64(20261202)
	next := func(n int) int { // xorshift: the same cases on every run
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return int(seed % uint64(n))
	}
	counts := map[bool]int{}
	for round := 0; round < 120; round++ {
		type req struct {
			name   string
			lo, hi int // lo <= version < hi
		}
		deps := map[string][]req{}
		var dists []dist
		for _, n := range names {
			for v := 1; v <= nver; v++ {
				key := fmt.Sprintf("%s %d", n, v)
				var rs []string
				for i := 0; i < 1+next(3); i++ {
					d := names[next(len(names))]
					if d == n {
						continue
					}
					lo := 1 + next(nver)
					hi := lo + 1 + next(2)*next(2)
					deps[key] = append(deps[key], req{d, lo, hi})
					rs = append(rs, fmt.Sprintf("%s>=%d.0,<%d.0", d, lo, hi))
				}
				dists = append(dists, dist{name: n, version: fmt.Sprintf("%d.0", v), requires: rs})
			}
		}
		top := []string{names[next(len(names))], names[next(len(names))], names[next(len(names))]}
		// Exhaustive: every assignment of a version (or 0, absent).
		solvable := false
		assign := make([]int, len(names))
		var try func(i int)
		try = func(i int) {
			if solvable {
				return
			}
			if i < len(names) {
				for v := 0; v <= nver; v++ {
					assign[i] = v
					try(i + 1)
				}
				return
			}
			at := func(n string) int { return assign[slices.Index(names, n)] }
			for _, n := range top {
				if at(n) == 0 {
					return
				}
			}
			for j, n := range names {
				if assign[j] == 0 {
					continue
				}
				for _, r := range deps[fmt.Sprintf("%s %d", n, assign[j])] {
					if v := at(r.name); v < r.lo || v >= r.hi {
						return
					}
				}
			}
			solvable = true
		}
		try(0)
		counts[solvable]++

		fi := newFakeIndex(t, dists, fakeOpts{})
		env, target := target311(t)
		res, err := Resolve(t.Context(), Request{Requirements: reqs(t, top...), Env: env, Target: target, Indexes: testIndexes(t, fi.URL())})
		var rerr *ResolutionError
		switch {
		case err != nil && !errors.As(err, &rerr):
			t.Fatalf("case %d: %v", round, err)
		case solvable && err != nil:
			t.Errorf("case %d: a solution exists but the resolver says: %v\ndists: %+v\ntop: %v", round, err, dists, top)
		case !solvable && err == nil:
			t.Errorf("case %d: no solution exists but the resolver gave %v", round, pins(res))
		case err == nil:
			// The result must satisfy every requirement.
			got := map[string]int{}
			for _, d := range res.Distributions {
				var v int
				fmt.Sscanf(d.Version, "%d.0", &v)
				got[d.Name] = v
			}
			for _, d := range res.Distributions {
				for _, r := range deps[fmt.Sprintf("%s %d", d.Name, got[d.Name])] {
					if v := got[r.name]; v < r.lo || v >= r.hi {
						t.Errorf("case %d: %s %d needs %s in [%d,%d), got %d", round, d.Name, got[d.Name], r.name, r.lo, r.hi, v)
					}
				}
			}
		}
	}
	t.Logf("%d solvable cases, %d unsolvable", counts[true], counts[false])
	if counts[true] < 10 || counts[false] < 10 {
		t.Errorf("the cases are %d solvable and %d not: too few of one kind to compare", counts[true], counts[false])
	}
}
