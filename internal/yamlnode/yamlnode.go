// Package yamlnode holds the small helpers that config and chaos share to
// walk a yaml.Node tree strictly, reporting problems with their line and
// key path. It imports only the YAML library; it is pure.
package yamlnode

import "go.yaml.in/yaml/v3"

// Join appends key to a key path: "models" and "gpt-5" make "models.gpt-5".
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Resolve follows aliases (*name) to the node they stand for.
func Resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is absent or an explicit null.
func IsNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// KindName names a node's kind in messages: "a mapping", "a list" or "a
// single value".
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}
