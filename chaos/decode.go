package chaos

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/internal/yamlnode"
)

// Error is one problem in a scenario file: "<file>:<line>: <key>: <message>",
// the same type config reports a configuration file's problems with (the
// scenario's inline hive configuration is checked by config). Load and
// Parse return every problem at once, joined with errors.Join, in line
// order; errors.As reaches the first.
type Error = config.Error

// decoder walks the yaml.Node tree of one scenario file against the keys it
// allows, recording problems with their line instead of stopping at the
// first one.
type decoder struct {
	file string
	errs []*Error
}

// fields maps each allowed key of a mapping to what decodes its value.
type fields map[string]func(v *yaml.Node, path string)

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: path, Msg: fmt.Sprintf(format, args...)})
}

// hasErrorUnder reports whether a problem was recorded at path or below it.
func (d *decoder) hasErrorUnder(path string) bool {
	return slices.ContainsFunc(d.errs, func(e *Error) bool {
		return e.Key == path || strings.HasPrefix(e.Key, path+".") || strings.HasPrefix(e.Key, path+"[")
	})
}

// err returns the problems found, sorted by line, as one error; nil when
// there are none.
func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.errs, func(a, b *Error) int { return a.Line - b.Line })
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// mapping decodes the mapping n at path with one function per allowed key.
// Unknown and duplicate keys are problems; a null value is an empty mapping.
func (d *decoder) mapping(n *yaml.Node, path string, fs fields) {
	n = yamlnode.Resolve(n)
	if yamlnode.IsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of keys, not %s", yamlnode.KindName(n))
		return
	}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := yamlnode.Resolve(n.Content[i]), n.Content[i+1]
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
		f, ok := fs[k.Value]
		if !ok {
			d.errorf(k, keyPath, "unknown key (%s)", yamlnode.Suggest(k.Value, fs))
			continue
		}
		f(v, keyPath)
	}
}

// scalar returns n as a scalar, recording a problem when it is not one.
func (d *decoder) scalar(n *yaml.Node, path string) (*yaml.Node, bool) {
	n = yamlnode.Resolve(n)
	if n.Kind != yaml.ScalarNode || yamlnode.IsNull(n) {
		what := "nothing"
		if !yamlnode.IsNull(n) {
			what = yamlnode.KindName(n)
		}
		d.errorf(n, path, "must be a single value, not %s", what)
		return nil, false
	}
	return n, true
}

func (d *decoder) str(n *yaml.Node, path string) string {
	s, ok := d.scalar(n, path)
	if !ok {
		return ""
	}
	return s.Value
}

// boolean decodes true or false.
func (d *decoder) boolean(n *yaml.Node, path string) bool {
	s, ok := d.scalar(n, path)
	if !ok {
		return false
	}
	v, err := strconv.ParseBool(s.Value)
	if err != nil || s.ShortTag() != "!!bool" {
		d.errorf(s, path, "%q is not true or false", s.Value)
		return false
	}
	return v
}

// integer decodes a whole number in [lo, hi].
func (d *decoder) integer(n *yaml.Node, path string, lo, hi int) int {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(s.Value)
	if err != nil || s.ShortTag() != "!!int" && s.ShortTag() != "!!str" {
		d.errorf(s, path, "%q is not a whole number", s.Value)
		return 0
	}
	if v < lo || v > hi {
		d.errorf(s, path, "%d is out of range (%s)", v, bounds(float64(lo), float64(hi)))
		return 0
	}
	return v
}

// number decodes a number in [lo, hi].
func (d *decoder) number(n *yaml.Node, path string, lo, hi float64) float64 {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0
	}
	v, err := strconv.ParseFloat(s.Value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.errorf(s, path, "%q is not a number", s.Value)
		return 0
	}
	if v < lo || v > hi {
		d.errorf(s, path, "%s is out of range (%s)", s.Value, bounds(lo, hi))
		return 0
	}
	return v
}

func bounds(lo, hi float64) string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	if hi >= math.MaxInt32 {
		return "at least " + f(lo)
	}
	return fmt.Sprintf("%s to %s", f(lo), f(hi))
}

// duration decodes a Go duration ("30s", "250ms") or plain milliseconds;
// negative durations are refused.
func (d *decoder) duration(n *yaml.Node, path string) time.Duration {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0
	}
	v, err := parseDuration(s.Value)
	if err != nil {
		d.errorf(s, path, "%v", err)
		return 0
	}
	return v
}

// parseDuration reads a Go duration or a whole number of milliseconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use \"30s\", \"250ms\" or milliseconds)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return v, nil
}

// millis decodes a FaultSpec *Ms field: milliseconds, or a Go duration.
func (d *decoder) millis(n *yaml.Node, path string) int32 {
	v := d.duration(n, path)
	if v > time.Duration(math.MaxInt32)*time.Millisecond {
		d.errorf(n, path, "is too long (at most %d ms)", math.MaxInt32)
		return 0
	}
	return int32(v / time.Millisecond)
}

// list calls fn for every item of the list n at path; a null value is an
// empty list.
func (d *decoder) list(n *yaml.Node, path string, fn func(i int, item *yaml.Node, path string)) {
	n = yamlnode.Resolve(n)
	if yamlnode.IsNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, not %s", yamlnode.KindName(n))
		return
	}
	for i, item := range n.Content {
		fn(i, yamlnode.Resolve(item), fmt.Sprintf("%s[%d]", path, i))
	}
}
