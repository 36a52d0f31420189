package debsolve

import (
	"fmt"
	"sort"
	"strings"
)

// edge is a "must come after" link from a package to one it needs.
type edge struct {
	to  int
	pre bool
}

// order returns the added packages with dependencies first. Strongly
// connected components (cycles) are found with Tarjan's algorithm, which
// emits them dependencies first; inside a cycle, packages whose Pre-Depends
// are already placed go first, then those with the fewest unplaced Depends,
// then by name.
func (s *solver) order() []*cand {
	nodes := append([]*cand(nil), s.added...)
	sort.Slice(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if a.name != b.name {
			return a.name < b.name
		}
		return a.arch < b.arch
	})
	pos := make(map[*cand]int, len(nodes))
	for i, c := range nodes {
		pos[c] = i
	}
	edges := make([][]edge, len(nodes))
	for i, c := range nodes {
		for _, group := range []struct {
			rels []rel
			pre  bool
		}{{c.pre, true}, {c.deps, false}} {
			for _, r := range group.rels {
				d := s.satisfied(r, c)
				if j, ok := pos[d]; ok && j != i {
					edges[i] = append(edges[i], edge{to: j, pre: group.pre})
				}
			}
		}
	}

	// Tarjan's strongly connected components.
	index := make([]int, len(nodes))
	low := make([]int, len(nodes))
	onStack := make([]bool, len(nodes))
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out []*cand
	next := 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, e := range edges[v] {
			switch {
			case index[e.to] < 0:
				visit(e.to)
				low[v] = min(low[v], low[e.to])
			case onStack[e.to]:
				low[v] = min(low[v], index[e.to])
			}
		}
		if low[v] != index[v] {
			return
		}
		var comp []int
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			comp = append(comp, w)
			if w == v {
				break
			}
		}
		for _, w := range s.orderCycle(comp, edges, nodes) {
			out = append(out, nodes[w])
		}
	}
	for v := range nodes {
		if index[v] < 0 {
			visit(v)
		}
	}
	return out
}

// orderCycle orders the members of one strongly connected component.
func (s *solver) orderCycle(comp []int, edges [][]edge, nodes []*cand) []int {
	if len(comp) == 1 {
		return comp
	}
	sort.Ints(comp)
	in := map[int]bool{}
	for _, v := range comp {
		in[v] = true
	}
	placed := map[int]bool{}
	var out []int
	brokePre := false
	for len(out) < len(comp) {
		best, bestPre, bestDep := -1, 0, 0
		for _, v := range comp {
			if placed[v] {
				continue
			}
			pre, dep := 0, 0
			for _, e := range edges[v] {
				if in[e.to] && !placed[e.to] {
					if e.pre {
						pre++
					} else {
						dep++
					}
				}
			}
			if best < 0 || pre < bestPre || pre == bestPre && dep < bestDep {
				best, bestPre, bestDep = v, pre, dep
			}
		}
		if bestPre > 0 {
			brokePre = true
		}
		placed[best] = true
		out = append(out, best)
	}
	names := make([]string, len(comp))
	for i, v := range comp {
		names[i] = nodes[v].name
	}
	if brokePre {
		s.notes = append(s.notes, fmt.Sprintf("dependency cycle through Pre-Depends between %s; installed in the order %s", strings.Join(names, ", "), joinNames(out, nodes)))
	} else {
		s.notes = append(s.notes, fmt.Sprintf("dependency cycle between %s; installed in the order %s", strings.Join(names, ", "), joinNames(out, nodes)))
	}
	return out
}

func joinNames(vs []int, nodes []*cand) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = nodes[v].name
	}
	return strings.Join(names, ", ")
}
