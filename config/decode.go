package config

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/cmmv-hive/resilience/internal/yamlnode"
)

// decoder walks the yaml.Node tree of one file against the fields it allows,
// so that every problem keeps its line. It records problems instead of
// stopping at the first one.
type decoder struct {
	file  string
	errs  []*Error
	seen  map[string]int        // key path -> line of the key, for every key given
	items map[string]*yaml.Node // itemPath(key path, i) -> i-th item of a list given
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, seen: map[string]int{}, items: map[string]*yaml.Node{}}
}

// itemPath names the i-th item of the list at path, for decoder.items.
func itemPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// failed reports whether a problem was recorded for the key at path.
func (d *decoder) failed(path string) bool {
	for _, e := range d.errs {
		if e.Key == path {
			return true
		}
	}
	return false
}

// field decodes the value v of the key at path into its destination.
type field func(v *yaml.Node, path string)

// errorf records a problem about node n.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.add(n.Line, path, format, args...)
}

// pair is one key and its value in a mapping.
type pair struct{ key, value *yaml.Node }

// pairs returns the entries of mapping n at path: its own keys, then the keys
// merged in with "<<: *anchor" that it does not give itself.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merged(v, path, map[*yaml.Node]bool{n: true})...)
			continue
		}
		own = append(own, pair{k, v})
	}
	for _, p := range merged {
		if !slices.ContainsFunc(own, func(o pair) bool { return o.key.Value == p.key.Value }) {
			own = append(own, p)
		}
	}
	return own
}

// merged returns the entries a merge key of the mapping at path brings in:
// those of one mapping or of a list of them, earlier ones first. visiting
// stops a mapping that merges itself.
func (d *decoder) merged(v *yaml.Node, path string, visiting map[*yaml.Node]bool) []pair {
	v = yamlnode.Resolve(v)
	switch {
	case v.Kind == yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			if item = yamlnode.Resolve(item); item.Kind != yaml.MappingNode {
				d.errorf(item, yamlnode.Join(path, "<<"), "must be a mapping or a list of mappings to merge (such as <<: *defaults), not %s", yamlnode.KindName(item))
				continue
			}
			out = append(out, d.merged(item, path, visiting)...)
		}
		return out
	case v.Kind != yaml.MappingNode:
		d.errorf(v, yamlnode.Join(path, "<<"), "must be a mapping or a list of mappings to merge (such as <<: *defaults), not %s", yamlnode.KindName(v))
	case !visiting[v]:
		visiting[v] = true
		return d.pairs(v, path)
	}
	return nil
}

// each calls fn for every key of the mapping at path. It reports a value that
// is not a mapping, keys that are not plain names and duplicate keys. A null
// value counts as an empty mapping.
func (d *decoder) each(n *yaml.Node, path string, fn func(k, v *yaml.Node, keyPath string)) {
	n = yamlnode.Resolve(n)
	if yamlnode.IsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of keys, not %s", yamlnode.KindName(n))
		return
	}
	first := map[string]int{}
	for _, p := range d.pairs(n, path) {
		k := yamlnode.Resolve(p.key)
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "a key must be a plain name, not %s", yamlnode.KindName(k))
			continue
		}
		keyPath := yamlnode.Join(path, k.Value)
		if line, dup := first[k.Value]; dup {
			d.errorf(k, keyPath, "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		fn(k, p.value, keyPath)
	}
}

// fields decodes the mapping at path with one field per allowed key.
func (d *decoder) fields(n *yaml.Node, path string, fs map[string]field) {
	if n == nil {
		return
	}
	d.each(n, path, func(k, v *yaml.Node, keyPath string) {
		f, ok := fs[k.Value]
		if !ok {
			d.errorf(k, keyPath, "unknown key (%s)", yamlnode.Suggest(k.Value, fs))
			return
		}
		d.seen[keyPath] = k.Line
		f(v, keyPath)
	})
}

// block is the field of a nested mapping.
func (d *decoder) block(fs map[string]field) field {
	return func(v *yaml.Node, path string) { d.fields(v, path, fs) }
}
