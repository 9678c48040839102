package config

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cmmv-hive/resilience/internal/yamlnode"
	"github.com/cmmv-hive/resilience/resilience"
)

// The resolved policies, one method each, so that wiring a policy is one
// line. The files write "0 means none" where the resilience package reads
// 0 as "the default" and a negative value as none: off converts.

// RetryConfig returns the model's retry policy: its retry block.
func (m *Model) RetryConfig() resilience.RetryConfig { return m.Retry.config() }

func (r Retry) config() resilience.RetryConfig {
	return resilience.RetryConfig{
		MaxRetries: off(r.MaxRetries),
		BaseDelay:  r.BaseDelay,
		Multiplier: r.Multiplier,
		MaxDelay:   r.MaxDelay,
		Jitter:     off(r.Jitter),
	}
}

// HealthConfig returns the thresholds of the model's health: its timeout
// and the healthCheck keys retries, degradedRatio, successFloor, minCalls,
// unavailableAfter and window. The prober's own keys (enabled, interval,
// and timeout, the probe's deadline) are in m.HealthCheck.
func (m *Model) HealthConfig() resilience.HealthConfig { return m.HealthCheck.config(m.Timeout) }

func (h HealthCheck) config(timeout time.Duration) resilience.HealthConfig {
	return resilience.HealthConfig{
		Timeout:          timeout,
		DegradedRatio:    h.DegradedRatio,
		SuccessFloor:     off(h.SuccessFloor),
		MinCalls:         h.MinCalls,
		UnavailableAfter: off(h.UnavailableAfter),
		ProbeRetries:     off(h.Retries),
		Window:           h.Window,
	}
}

// RampConfig returns the model's progressive restoration: its restoration
// block. Its Steps are the caller's to keep.
func (m *Model) RampConfig() resilience.RampConfig { return m.Restoration.config() }

func (r Restoration) config() resilience.RampConfig {
	return resilience.RampConfig{
		Steps:        slices.Clone(r.Steps),
		Over:         r.Over,
		SuccessFloor: r.SuccessFloor,
		MinCalls:     r.MinCalls,
		MaxHold:      r.MaxHold,
		Successes:    r.Successes,
	}
}

// DegradationConfig returns the node's degradation levels and admission:
// the degradation block.
func (g *Global) DegradationConfig() resilience.DegradationConfig {
	d := g.Degradation
	return resilience.DegradationConfig{
		ResponseTime:     d.ResponseTime,
		SuccessRate:      d.SuccessRate,
		CriticalOnly:     d.CriticalOnly,
		CriticalOnlyFrom: d.CriticalOnlyFrom,
		LowerAfter:       off(d.LowerAfter),
	}
}

// GroupConfig returns the protection of every fallback group: the
// groupProtection block.
func (g *Global) GroupConfig() resilience.GroupConfig {
	return resilience.GroupConfig{
		MaxOpenShare: g.GroupProtection.MaxOpenShare,
		PanicRate:    off(g.GroupProtection.PanicRate),
	}
}

// BudgetConfig returns the arguments of resilience.NewBudget for every
// fallback group: the retryBudget block's ratio and minimum.
func (g *Global) BudgetConfig() (ratio float64, floor int) {
	return g.RetryBudget.Ratio, off(g.RetryBudget.Minimum)
}

// off turns the 0 that means "none" in the files into the -1 that means it
// to the resilience package.
func off[T ~int | ~int64 | ~float64](x T) T {
	if x == 0 {
		return -1
	}
	return x
}

// The keys of the fields that each resilience config's Validate may quote.
var (
	retryKeys  = fieldKeys("MaxRetries", "BaseDelay", "Multiplier", "MaxDelay", "Jitter")
	healthKeys = fieldKeys("DegradedRatio", "SuccessFloor", "MinCalls", "UnavailableAfter", "Window",
		"ProbeRetries=retries")
	rampKeys        = fieldKeys("Steps", "Over", "SuccessFloor", "MinCalls", "MaxHold", "Successes")
	degradationKeys = fieldKeys("ResponseTime", "SuccessRate", "CriticalOnlyFrom", "LowerAfter")
	groupKeys       = fieldKeys("MaxOpenShare", "PanicRate")
)

// fieldKeys maps Go field names to their keys: the name with a lowercase
// first letter, or the key written after "=".
func fieldKeys(fields ...string) map[string]string {
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		name, key, renamed := strings.Cut(f, "=")
		if !renamed {
			key = strings.ToLower(name[:1]) + name[1:]
		}
		m[name] = key
	}
	return m
}

// checkPolicy reports err, what the resilience package's Validate finds
// wrong with the policy resolved from the block at path, unless baseErr
// (that of the block it inherits from, nil for none) shows the problem was
// inherited and reported already, or one of the block's keys was refused.
func (d *decoder) checkPolicy(path string, err, baseErr error, names map[string]string) {
	if err == nil || baseErr != nil || d.failedUnder(path) {
		return
	}
	d.invalid(path, err, names, path)
}

// goField matches a word that may be a Go field name.
var goField = regexp.MustCompile(`\b[A-Z][A-Za-z]*\b`)

// invalid reports err, from the Validate of a policy resolved from the
// block at path, in the files' terms: the field names it quotes become
// their keys (names), and durations lose their zero units. It blames the
// first of those keys that the block gives, else the first of fallbacks
// (key paths) given, else the block.
func (d *decoder) invalid(path string, err error, names map[string]string, fallbacks ...string) {
	msg := err.Error()
	if _, detail, ok := strings.Cut(msg, ": "); ok {
		msg = detail // without the package's "invalid retry config"
	}
	blamed := ""
	msg = goField.ReplaceAllStringFunc(msg, func(f string) string {
		key, ok := names[f]
		if !ok {
			return f
		}
		if blamed == "" && d.gives(path, key) {
			blamed = yamlnode.Join(path, key)
		}
		return key
	})
	for _, p := range fallbacks {
		if _, given := d.seen[p]; blamed == "" && p != "" && given {
			blamed = p
		}
	}
	if blamed == "" {
		blamed = path
	}
	d.add(d.seen[blamed], blamed, "%s", shortDurations(msg))
}

// gives reports whether the block at path gives key.
func (d *decoder) gives(path, key string) bool {
	_, ok := d.seen[yamlnode.Join(path, key)]
	return ok
}

// failedUnder reports whether a problem was recorded for the block at path
// or any key in it.
func (d *decoder) failedUnder(path string) bool {
	for _, e := range d.errs {
		if e.Key == path || strings.HasPrefix(e.Key, path+".") {
			return true
		}
	}
	return false
}

var (
	zeroSeconds = regexp.MustCompile(`(\d[hm])0s\b`)
	zeroMinutes = regexp.MustCompile(`(\dh)0m\b`)
)

// shortDurations drops the zero units that time.Duration's String writes
// in s: "1m0s" becomes "1m", "1h0m0s" "1h".
func shortDurations(s string) string {
	return zeroMinutes.ReplaceAllString(zeroSeconds.ReplaceAllString(s, "$1"), "$1")
}

// shortDuration formats x as the files would write it.
func shortDuration(x time.Duration) string { return shortDurations(x.String()) }
