package config

import (
	"fmt"
	"math"
	neturl "net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cmmv-hive/resilience/internal/yamlnode"
	"github.com/cmmv-hive/resilience/messages"
)

// Decoders of single values and lists. Each returns a field that writes its
// destination only when the value is valid, so a bad value leaves the default
// (or the inherited value) in place and the problem is recorded.

// scalar returns the text of a single value after ${VAR} expansion. want
// says what the key takes, for the messages about lists, mappings and nulls.
func (d *decoder) scalar(v *yaml.Node, path, want string) (string, bool) {
	v = yamlnode.Resolve(v)
	switch {
	case v.Kind != yaml.ScalarNode:
		d.errorf(v, path, "must be %s, not %s", want, yamlnode.KindName(v))
	case yamlnode.IsNull(v):
		d.errorf(v, path, "has no value (want %s)", want)
	default:
		s, err := expand(v.Value)
		if err != nil {
			d.errorf(v, path, "%v", err)
			return "", false
		}
		return s, true
	}
	return "", false
}

// raw is a value as written in the file, before ${VAR} expansion: messages
// quote it so that no variable's value is ever printed.
func raw(v *yaml.Node) string { return yamlnode.Resolve(v).Value }

const durationHint = `use "30s" or milliseconds`

// duration decodes a Go duration ("1m30s") or whole milliseconds ("30000").
// positive rejects zero as well as negatives.
func (d *decoder) duration(dst *time.Duration, positive bool) field {
	return func(v *yaml.Node, path string) {
		s, ok := d.scalar(v, path, `a duration such as "30s" or milliseconds`)
		if !ok {
			return
		}
		x, err := parseDuration(s)
		switch {
		case err != nil:
			d.errorf(v, path, "%q is not a duration (%s)", raw(v), durationHint)
		case x < 0:
			d.errorf(v, path, "%q is negative (%s)", raw(v), durationHint)
		case x == 0 && positive:
			d.errorf(v, path, "%q is zero (use a duration above zero such as \"30s\")", raw(v))
		default:
			*dst = x
		}
	}
}

// durationAtLeast decodes a duration of at least least.
func (d *decoder) durationAtLeast(dst *time.Duration, least time.Duration) field {
	inner := d.duration(dst, positive)
	return func(v *yaml.Node, path string) {
		before := *dst
		inner(v, path)
		if *dst != before && *dst < least {
			d.errorf(v, path, "%q is below %s", raw(v), least)
			*dst = before
		}
	}
}

var millis = regexp.MustCompile(`^[+-]?[0-9]+$`)

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if !millis.MatchString(s) {
		return time.ParseDuration(s)
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms > math.MaxInt64/int64(time.Millisecond) || ms < math.MinInt64/int64(time.Millisecond) {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// count decodes a whole number of at least least.
func (d *decoder) count(dst *int, least int) field {
	return d.countIn(dst, least, math.MaxInt)
}

// countIn decodes a whole number from lo to hi.
func (d *decoder) countIn(dst *int, lo, hi int) field {
	return func(v *yaml.Node, path string) {
		s, ok := d.scalar(v, path, "a whole number")
		if !ok {
			return
		}
		x, err := strconv.Atoi(strings.TrimSpace(s))
		switch {
		case err != nil:
			d.errorf(v, path, "%q is not a whole number", raw(v))
		case x < lo:
			d.errorf(v, path, "%q is too small (must be at least %d)", raw(v), lo)
		case x > hi:
			d.errorf(v, path, "%q is too large (must be at most %d)", raw(v), hi)
		default:
			*dst = x
		}
	}
}

// offable wraps the decoder of a value that 0 turns off, for the fields of
// resilience.BreakerConfig and the like, where zero means "not given" (or
// "the default") and a negative value means off: a valid 0 is stored as -1,
// any other valid value as is, and a bad one leaves *dst alone.
func offable[T ~int | ~int64 | ~float64](dst *T, decode func(*T) field) field {
	return func(v *yaml.Node, path string) {
		x := T(-1) // stays -1 when the value is refused
		decode(&x)(v, path)
		switch {
		case x == 0:
			*dst = -1
		case x > 0:
			*dst = x
		}
	}
}

// offCount is count from 0, with 0 stored as -1 (see offable).
func (d *decoder) offCount(dst *int) field {
	return offable(dst, func(x *int) field { return d.count(x, 0) })
}

// offNumber is number within r (which holds 0), with 0 stored as -1.
func (d *decoder) offNumber(dst *float64, r span) field {
	return offable(dst, func(x *float64) field { return d.number(x, r) })
}

// offDuration is a duration from 0, with 0 stored as -1.
func (d *decoder) offDuration(dst *time.Duration) field {
	return offable(dst, func(x *time.Duration) field { return d.duration(x, zeroOK) })
}

// seed decodes any 64-bit integer.
func (d *decoder) seed(dst *int64) field {
	return func(v *yaml.Node, path string) {
		if s, ok := d.scalar(v, path, "a whole number"); ok {
			x, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				d.errorf(v, path, "%q is not a 64-bit whole number", raw(v))
				return
			}
			*dst = x
		}
	}
}

// span is an interval of allowed numbers; Hi may be +Inf.
type span struct {
	Lo, Hi         float64
	LoOpen, HiOpen bool
}

var (
	fraction       = span{Lo: 0, Hi: 1}                         // [0, 1]
	fractionBelow1 = span{Lo: 0, Hi: 1, HiOpen: true}           // [0, 1)
	fractionAbove0 = span{Lo: 0, Hi: 1, LoOpen: true}           // (0, 1]
	above0         = span{Lo: 0, Hi: math.Inf(1), LoOpen: true} // > 0
	atLeast0       = span{Lo: 0, Hi: math.Inf(1)}               // >= 0
	atLeast1       = span{Lo: 1, Hi: math.Inf(1)}               // >= 1
)

func (r span) contains(x float64) bool {
	return (x > r.Lo || !r.LoOpen && x == r.Lo) && (x < r.Hi || !r.HiOpen && x == r.Hi)
}

func (r span) String() string {
	if math.IsInf(r.Hi, 1) {
		if r.LoOpen {
			return "above " + plain(r.Lo)
		}
		return "at least " + plain(r.Lo)
	}
	lo, hi := "[", "]"
	if r.LoOpen {
		lo = "("
	}
	if r.HiOpen {
		hi = ")"
	}
	return fmt.Sprintf("in %s%s, %s%s", lo, plain(r.Lo), plain(r.Hi), hi)
}

// plain formats x without an exponent (1000000, not 1e+06).
func plain(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// number decodes a number within r.
func (d *decoder) number(dst *float64, r span) field {
	return func(v *yaml.Node, path string) {
		s, ok := d.scalar(v, path, "a number")
		if !ok {
			return
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		switch {
		case err != nil || math.IsNaN(x) || math.IsInf(x, 0):
			d.errorf(v, path, "%q is not a number", raw(v))
		case !r.contains(x):
			d.errorf(v, path, "%q is out of range (must be %s)", raw(v), r)
		default:
			*dst = x
		}
	}
}

// flag decodes true or false.
func (d *decoder) flag(dst *bool) field {
	return func(v *yaml.Node, path string) {
		s, ok := d.scalar(v, path, "true or false")
		if !ok {
			return
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			d.errorf(v, path, "%q is not true or false", raw(v))
		}
	}
}

// text decodes any single value as a string.
func (d *decoder) text(dst *string) field {
	return func(v *yaml.Node, path string) {
		if s, ok := d.scalar(v, path, "a string"); ok {
			*dst = s
		}
	}
}

// choice decodes one of the allowed names; what names the kind in messages.
func (d *decoder) choice(dst *string, what string, allowed []string) field {
	return func(v *yaml.Node, path string) {
		s, ok := d.scalar(v, path, "one of "+strings.Join(allowed, ", "))
		if !ok {
			return
		}
		if !slices.Contains(allowed, s) {
			d.errorf(v, path, "unknown %s %q (allowed: %s)", what, raw(v), strings.Join(allowed, ", "))
			return
		}
		*dst = s
	}
}

// list decodes a list of single values, recording each item in items.
func (d *decoder) list(dst *[]string, want string) field {
	return func(v *yaml.Node, path string) {
		v = yamlnode.Resolve(v)
		if yamlnode.IsNull(v) {
			*dst = nil
			return
		}
		if v.Kind != yaml.SequenceNode {
			d.errorf(v, path, "must be a list of %s, not %s", want, yamlnode.KindName(v))
			return
		}
		out := make([]string, 0, len(v.Content))
		for i, item := range v.Content {
			s, ok := d.scalar(item, path, want)
			if !ok {
				return
			}
			d.items[itemPath(path, i)] = yamlnode.Resolve(item)
			out = append(out, s)
		}
		*dst = out
	}
}

// levels decodes a list of exactly four values, one per degradation level,
// through item, then checks their order with inOrder. It reports whether all
// went well.
func (d *decoder) levels(v *yaml.Node, path string, item func(i int) field, inOrder func() bool, order string) bool {
	v = yamlnode.Resolve(v)
	if v.Kind != yaml.SequenceNode || len(v.Content) != 4 {
		d.errorf(v, path, "must be a list of four values (minimal, moderate, severe, critical)")
		return false
	}
	before := len(d.errs)
	for i, n := range v.Content {
		item(i)(n, path)
	}
	if len(d.errs) > before {
		return false
	}
	if !inOrder() {
		d.errorf(v, path, "must be %s from minimal to critical", order)
		return false
	}
	return true
}

// token matches a single NATS subject token, as model names and the subject
// prefix must be.
var subjectToken = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// token decodes a string that must be a single NATS subject token.
func (d *decoder) token(dst *string) field {
	return func(v *yaml.Node, path string) {
		s, ok := d.scalar(v, path, "a string")
		if !ok {
			return
		}
		if !subjectToken.MatchString(s) {
			d.errorf(v, path, "%q is not a single NATS subject token (use letters, digits, \"-\" and \"_\")", raw(v))
			return
		}
		*dst = s
	}
}

// envVar decodes the name of an environment variable. The value is never
// quoted back: a user may have pasted the key itself here.
func (d *decoder) envVar(dst *string) field {
	return func(v *yaml.Node, path string) {
		s, ok := d.scalar(v, path, "the name of an environment variable")
		if !ok {
			return
		}
		if !envName.MatchString(s) {
			d.errorf(v, path, "is not an environment variable name (give the NAME of the variable that holds the key, such as OPENAI_API_KEY, never the key itself)")
			return
		}
		*dst = s
	}
}

// errorClasses lists the classes a sim may fail with: every class but ok, in
// the enum's order.
func errorClasses() []string {
	var out []string
	for i := int32(1); ; i++ {
		name, ok := messages.ErrorClass_name[i]
		if !ok {
			return out
		}
		out = append(out, name)
	}
}

// errorClass decodes the name of a failure class (any messages.ErrorClass but ok).
func (d *decoder) errorClass(dst *string) field {
	return func(v *yaml.Node, path string) {
		allowed := strings.Join(errorClasses(), ", ")
		s, ok := d.scalar(v, path, "an error class")
		if !ok {
			return
		}
		c, err := messages.ParseErrorClass(s)
		switch {
		case err != nil:
			d.errorf(v, path, "unknown error class %q (allowed: %s)", raw(v), allowed)
		case c == messages.ErrorClass_ok:
			d.errorf(v, path, "%q is not a failure (allowed: %s)", raw(v), allowed)
		default:
			*dst = s
		}
	}
}

// url decodes an http or https URL.
func (d *decoder) url(dst *string) field {
	return func(v *yaml.Node, path string) {
		s, ok := d.scalar(v, path, "an http(s) URL")
		if !ok {
			return
		}
		u, err := neturl.Parse(s)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			d.errorf(v, path, "%q is not an http(s) URL (such as %q)", raw(v), DefaultOpenAIEndpoint)
			return
		}
		*dst = s
	}
}

// envName is what may stand between ${ and } (or ${ and :-).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

const envHint = "use ${NAME} or ${NAME:-default}"

// expand replaces ${NAME} with the value of the environment variable NAME and
// ${NAME:-default} with that value, or with default when it is unset or
// empty, as a shell does. "$${" stands for a literal "${". An unset variable
// without a default is an error; errors name the variable, never a value.
func expand(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q has no closing \"}\" (%s)", s[i:], envHint)
		}
		ref := s[i : i+end+1]
		name, def, hasDef := strings.Cut(ref[2:len(ref)-1], ":-")
		if !envName.MatchString(name) {
			return "", fmt.Errorf("bad variable reference %q (%s)", ref, envHint)
		}
		val, set := os.LookupEnv(name)
		switch {
		case hasDef && val == "":
			val = def
		case !set:
			return "", fmt.Errorf("environment variable %s is not set (set it, or write ${%s:-default})", name, name)
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

// named decodes one of names into the value at the same index of values;
// what names the kind in messages.
func named[T any](d *decoder, dst *T, what string, names []string, values []T) field {
	return func(v *yaml.Node, path string) {
		var s string
		d.choice(&s, what, names)(v, path)
		if i := slices.Index(names, s); i >= 0 {
			*dst = values[i]
		}
	}
}

const stepsHint = "such as [10, 25, 50, 100]; [100] turns the ramp off"

// percents decodes the steps of a ramp: whole percentages, each 1 to 100,
// strictly increasing, the last 100.
func (d *decoder) percents(dst *[]int) field {
	return func(v *yaml.Node, path string) {
		v = yamlnode.Resolve(v)
		switch {
		case v.Kind != yaml.SequenceNode:
			d.errorf(v, path, "must be a list of percentages ending at 100 (%s), not %s", stepsHint, yamlnode.KindName(v))
			return
		case len(v.Content) == 0:
			d.errorf(v, path, "is empty (give percentages ending at 100, %s)", stepsHint)
			return
		}
		out := make([]int, len(v.Content))
		before := len(d.errs)
		for i, item := range v.Content {
			d.countIn(&out[i], 1, 100)(item, path)
		}
		if len(d.errs) > before {
			return
		}
		for i, item := range v.Content[1:] {
			if out[i+1] <= out[i] {
				d.errorf(item, path, "%d after %d: must be strictly increasing", out[i+1], out[i])
				return
			}
		}
		if last := v.Content[len(out)-1]; out[len(out)-1] != 100 {
			d.errorf(last, path, "must end at 100 (full traffic), not %d", out[len(out)-1])
			return
		}
		*dst = out
	}
}
