package debsolve

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// syntheticUniverse builds n packages shaped like a Debian archive: library
// chains with versioned dependencies, alternatives, virtual packages with
// several providers, several versions of some names, and Conflicts that
// the solver has to steer around.
func syntheticUniverse(n int) (universe []Package, requests []string) {
	r := rand.New(rand.NewPCG(1, 2))
	name := func(i int) string { return fmt.Sprintf("pkg%05d", i) }
	for i := range n {
		versions := 1 + r.IntN(3)
		for v := range versions {
			p := Package{Name: name(i), Version: fmt.Sprintf("%d.%d-1", 1+v, r.IntN(10)), Architecture: "amd64"}
			if r.IntN(5) == 0 {
				p.Architecture = "all"
			}
			var deps []string
			if i > 0 {
				for range r.IntN(6) {
					j := r.IntN(i)
					switch r.IntN(6) {
					case 0:
						deps = append(deps, fmt.Sprintf("%s | %s", name(j), name(r.IntN(i))))
					case 1:
						deps = append(deps, fmt.Sprintf("virt%d", (j/50)%500))
					case 2:
						deps = append(deps, fmt.Sprintf("%s (>= 1.0)", name(j)))
					default:
						deps = append(deps, name(j))
					}
				}
			}
			p.Depends = strings.Join(deps, ", ")
			var provides []string
			for _, k := range []int{50, 53, 97} {
				if i%k == 0 {
					provides = append(provides, fmt.Sprintf("virt%d", (i/k)%500))
				}
			}
			p.Provides = strings.Join(provides, ", ")
			if r.IntN(40) == 0 {
				// Conflicts with a leaf that nothing depends on.
				p.Conflicts = fmt.Sprintf("leaf%d", r.IntN(100))
			}
			universe = append(universe, p)
		}
	}
	for i := range 100 {
		universe = append(universe, Package{Name: fmt.Sprintf("leaf%d", i), Version: "1", Architecture: "amd64"})
	}
	for i := range 20 {
		requests = append(requests, name(n-1-i*37))
	}
	return universe, requests
}

func BenchmarkSolveSynthetic(b *testing.B) {
	universe, requests := syntheticUniverse(60000)
	b.ResetTimer()
	for b.Loop() {
		res, err := Solve(Request{Universe: universe, Install: requests})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Install) < len(requests) {
			b.Fatalf("only %d packages", len(res.Install))
		}
	}
}

func TestSynthetic(t *testing.T) {
	universe, requests := syntheticUniverse(5000)
	res, err := Solve(Request{Universe: universe, Install: append(requests, "leaf3", "leaf7")})
	if err != nil {
		t.Fatal(err)
	}
	verify(t, nil, nil, res)
}
