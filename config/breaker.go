package config

import (
	"fmt"

	"github.com/cmmv-hive/resilience/internal/yamlnode"
	"github.com/cmmv-hive/resilience/resilience"
)

// Breaker is a circuitBreaker block as given. The breaker it configures is
// its preset's configuration with each key given in its place (see
// Model.BreakerConfig). A model's block starts as a copy of the global one,
// so a key the model leaves out takes the global block's key, and a key
// neither block gives takes the preset's value.
type Breaker struct {
	// Preset is preset: bip03 (default) | gobreaker | resilience4j |
	// hystrix | envoy, whose values every key left out takes.
	Preset string
	// Keys holds the other keys in resilience.BreakerConfig.Merge's terms:
	// a zero field was not given, and a threshold (failureThreshold,
	// minimumCalls, failureRate, slowRate), slowCall or openJitter given as
	// 0, which turns it off, is -1. failureThreshold is ConsecutiveFailures.
	Keys resilience.BreakerConfig
}

// BreakerConfig returns the model's circuit breaker: the preset's
// configuration (resilience.Preset) with every key given in its place
// (resilience.BreakerConfig.Merge), as Load validated it. A maxOpenDuration
// given nowhere is at least openDuration, so that openDuration: 30s on a
// preset whose open period is constant (hystrix's 5s) opens for a constant
// 30s rather than being refused.
func (m *Model) BreakerConfig() resilience.BreakerConfig { return m.CircuitBreaker.config() }

func (b Breaker) config() resilience.BreakerConfig {
	// Load keeps known presets only. With an unknown one (a Model built by
	// hand) the keys merge into the zero config, which NewBreaker reads as
	// bip03 without jitter.
	p, _ := resilience.Preset(b.Preset)
	c := p.Merge(b.Keys)
	if b.Keys.MaxOpenDuration == 0 {
		c.MaxOpenDuration = max(c.MaxOpenDuration, c.OpenDuration)
	}
	return c
}

// Names of the window and growth keys, in the order of their values.
var (
	windowNames = []string{"count", "time", "none"}
	windowKinds = []resilience.WindowKind{resilience.CountWindow, resilience.TimeWindow, resilience.NoWindow}
	growthNames = []string{"exponential", "linear"}
	growths     = []resilience.OpenGrowth{resilience.GrowExponential, resilience.GrowLinear}
)

// breakerKeys names the key of each field that resilience.BreakerConfig's
// Validate may quote.
var breakerKeys = map[string]string{
	"Window": "window", "WindowSize": "windowSize", "WindowDuration": "windowDuration",
	"WindowBuckets": "windowBuckets", "MinimumCalls": "minimumCalls", "FailureRate": "failureRate",
	"SlowRate": "slowRate", "SlowCall": "slowCall", "ConsecutiveFailures": "failureThreshold",
	"OpenDuration": "openDuration", "MaxOpenDuration": "maxOpenDuration", "Multiplier": "multiplier",
	"Growth": "growth", "OpenJitter": "openJitter", "TripReset": "tripReset",
	"HalfOpenPermits": "halfOpenPermits", "SuccessThreshold": "successThreshold",
	"PermitLease": "permitLease", "AuthOpen": "authOpen",
}

// checkBreaker checks the resolved breaker of the block at path: each value
// was checked alone while it was decoded, this checks how they combine with
// one another and with the preset. flat is the key path of an alias of the
// block's failureThreshold ("" when there is none). inherited is the block
// that b started from (nil for the global block): a problem it has too was
// reported where it was given.
func (d *decoder) checkBreaker(path, flat string, b, inherited *Breaker) {
	c := b.config()
	var base resilience.BreakerConfig
	if inherited != nil {
		base = inherited.config()
	}
	fails := func(ok func(resilience.BreakerConfig) bool) bool {
		return !ok(c) && (inherited == nil || ok(base))
	}
	// from says where a value that the block does not give comes from.
	from := func(key string, v any, inheritedKey bool) string {
		switch {
		case d.gives(path, key):
			return ""
		case inheritedKey:
			return fmt.Sprintf(" (%v, from resilience.yml)", v)
		}
		return fmt.Sprintf(" (%v, preset %s)", v, b.Preset)
	}
	reported := false
	report := func(keyPath string, line int, format string, args ...any) {
		d.add(line, keyPath, format, args...)
		reported = true
	}

	if fails(func(c resilience.BreakerConfig) bool { return c.OpenDuration <= c.MaxOpenDuration }) {
		maxFrom := from("maxOpenDuration", shortDuration(c.MaxOpenDuration), true) // only a given cap can be below
		switch keyPath, key, line := d.blame(path, flat, "maxOpenDuration", "openDuration", "preset"); key {
		case "maxOpenDuration":
			report(keyPath, line, "must be at least openDuration%s", from("openDuration", shortDuration(c.OpenDuration), b.Keys.OpenDuration != 0))
		case "openDuration":
			report(keyPath, line, "must be at most maxOpenDuration%s", maxFrom)
		case "preset":
			report(keyPath, line, "preset %s opens for %s, longer than maxOpenDuration%s: give openDuration too", b.Preset, shortDuration(c.OpenDuration), maxFrom)
		}
	}
	if fails(func(c resilience.BreakerConfig) bool {
		return c.FailureRate > 0 || c.SlowRate > 0 || c.ConsecutiveFailures > 0
	}) {
		keyPath, key, line := d.blame(path, flat, "failureThreshold", "failureRate", "slowRate", "preset")
		if key != "" {
			report(keyPath, line, "leaves every threshold off (failureThreshold, failureRate and slowRate), so the breaker could never open: keep one of them above 0")
		}
	}
	if reported || d.failedUnder(path) || flat != "" && d.failed(flat) {
		return
	}
	err := c.Validate()
	if err != nil && (inherited == nil || base.Validate() == nil) {
		d.invalid(path, err, breakerKeys, yamlnode.Join(path, "preset"), flat, path)
	}
}

// blame returns the first of keys that the block at path gives, as a key
// path, a key and its line; the alias at flat counts as failureThreshold.
// key is "" when the block gives none of them, or when one of them was
// refused: that keeps the inherited value, and the problem is reported.
func (d *decoder) blame(path, flat string, keys ...string) (keyPath, key string, line int) {
	for _, k := range keys {
		p := yamlnode.Join(path, k)
		if k == "failureThreshold" && !d.gives(path, k) && flat != "" {
			p = flat
		}
		if d.failed(p) {
			return "", "", 0
		}
		if l, given := d.seen[p]; given && key == "" {
			keyPath, key, line = p, k, l
		}
	}
	return keyPath, key, line
}
