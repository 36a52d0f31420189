package spec

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// maxAliasExpansion bounds the values reached through YAML aliases and merge
// keys in one spec, so that a document built to expand exponentially
// ("billion laughs") fails instead of exhausting memory. A spec needs a
// handful.
const maxAliasExpansion = 10000

// resolver resolves YAML aliases (*a) and merge keys (<<: *a) as YAML 1.1
// and yaml.v3 do, within maxAliasExpansion. Positions stay those of the
// nodes where the values are written.
type resolver struct {
	file   string
	budget int
	// merged memoises each mapping's pairs, so that a mapping merged many
	// times is resolved once; active holds the mappings being resolved,
	// to refuse one that merges itself.
	merged map[*yaml.Node][]pair
	active map[*yaml.Node]bool
}

// pair is one key and its value in a mapping.
type pair struct{ k, v *yaml.Node }

func newResolver(file string) *resolver {
	return &resolver{file: file, budget: maxAliasExpansion, merged: map[*yaml.Node][]pair{}, active: map[*yaml.Node]bool{}}
}

func (r *resolver) spend(n *yaml.Node) error {
	r.budget--
	if r.budget < 0 {
		return &Error{Pos: Pos{File: r.file, Line: n.Line}, Msg: fmt.Sprintf("more than %d values reached through YAML aliases and merge keys", maxAliasExpansion), Hint: "write the values out, or use fewer aliases"}
	}
	return nil
}

// deref follows n when it is an alias.
func (r *resolver) deref(n *yaml.Node) (*yaml.Node, error) {
	for n.Kind == yaml.AliasNode {
		if err := r.spend(n); err != nil {
			return nil, err
		}
		if n.Alias == nil {
			return nil, &Error{Pos: Pos{File: r.file, Line: n.Line}, Msg: fmt.Sprintf("alias *%s names no anchor", n.Value), Hint: "define the anchor (&name) before using it"}
		}
		n = n.Alias
	}
	return n, nil
}

// isMerge reports whether n is the merge key <<, as yaml.v3 decides.
func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && (n.Tag == "" || n.Tag == "!" || n.Tag == "!!merge" || n.Tag == "tag:yaml.org,2002:merge")
}

// pairs returns mapping m's keys and values in order, keys dereferenced,
// with each merge key replaced by the pairs of the mappings it merges. A key
// m sets itself wins over a merged one, and of several merged mappings the
// first to set a key wins. Keys m sets twice are all returned, for the
// caller to refuse.
func (r *resolver) pairs(m *yaml.Node) ([]pair, error) {
	if out, ok := r.merged[m]; ok {
		return out, nil
	}
	if r.active[m] {
		return nil, &Error{Pos: Pos{File: r.file, Line: m.Line}, Msg: "a merge key (<<) merges the mapping that contains it", Hint: "merge another mapping"}
	}
	r.active[m] = true
	defer delete(r.active, m)
	keys := make([]*yaml.Node, 0, len(m.Content)/2)
	own := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, err := r.deref(m.Content[i])
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		if !isMerge(k) && k.Kind == yaml.ScalarNode {
			own[k.Value] = true
		}
	}
	var out []pair
	have := map[string]bool{}
	for i, k := range keys {
		v := m.Content[2*i+1]
		if !isMerge(k) {
			out = append(out, pair{k, v})
			if k.Kind == yaml.ScalarNode {
				have[k.Value] = true
			}
			continue
		}
		v, err := r.deref(v)
		if err != nil {
			return nil, err
		}
		sources := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, src := range sources {
			src, err := r.deref(src)
			if err != nil {
				return nil, err
			}
			if src.Kind != yaml.MappingNode {
				return nil, &Error{Pos: Pos{File: r.file, Line: src.Line}, Msg: fmt.Sprintf("a merge key (<<) needs a mapping or a list of mappings, not %s", describe(src)), Hint: "write <<: *anchor, with &anchor on a mapping"}
			}
			sub, err := r.pairs(src)
			if err != nil {
				return nil, err
			}
			for _, p := range sub {
				if err := r.spend(p.k); err != nil {
					return nil, err
				}
				if p.k.Kind == yaml.ScalarNode && (own[p.k.Value] || have[p.k.Value]) {
					continue
				}
				if p.k.Kind == yaml.ScalarNode {
					have[p.k.Value] = true
				}
				out = append(out, p)
			}
		}
	}
	r.merged[m] = out
	return out, nil
}
