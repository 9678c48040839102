// Package yamlnode holds the small helpers that config and chaos share to
// walk a yaml.Node tree strictly, reporting problems with their line and
// key path. It imports only the YAML library; it is pure.
package yamlnode

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

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

// Suggest names the allowed key closest to an unknown one (a typo, a
// different case, a shortened name), or else lists them all.
func Suggest[V any](key string, allowed map[string]V) string {
	known := make([]string, 0, len(allowed))
	for k := range allowed {
		known = append(known, k)
	}
	slices.Sort(known)
	lower := strings.ToLower(key)
	best, bestDist := "", 3
	for _, k := range known {
		if dist := EditDistance(lower, strings.ToLower(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	for _, k := range known {
		lk := strings.ToLower(k)
		if best == "" && min(len(k), len(key)) >= 4 && (strings.Contains(lk, lower) || strings.Contains(lower, lk)) {
			best = k // shortened or lengthened: maxConcurrent for maxConcurrentPerModel
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "known: " + strings.Join(known, ", ")
}

// EditDistance is the Levenshtein distance between a and b.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
