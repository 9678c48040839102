package config

import (
	"slices"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/resilience"
)

// preset returns the named preset's configuration, failing the test on an
// unknown name.
func preset(t *testing.T, name string) resilience.BreakerConfig {
	t.Helper()
	c, err := resilience.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBreakerPresets checks that a model's breaker is its preset with the
// keys given in place, the model's over the global block's.
func TestBreakerPresets(t *testing.T) {
	tests := []struct {
		name, global, model string
		want                func(t *testing.T) resilience.BreakerConfig
	}{
		{"defaults are bip03", "", "{}", func(t *testing.T) resilience.BreakerConfig {
			return preset(t, PresetBIP03)
		}},
		{"hystrix alone", "", "{circuitBreaker: {preset: hystrix}}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetHystrix) // 20 calls, 50 %, a 10 s window, 5 s open, no consecutive failures
			if c.Window != resilience.TimeWindow || c.WindowDuration != 10*time.Second || c.MinimumCalls != 20 ||
				c.FailureRate != 0.5 || c.OpenDuration != 5*time.Second || c.ConsecutiveFailures != 0 {
				t.Fatalf("resilience's hystrix preset changed: %+v", c)
			}
			return c
		}},
		{"gobreaker with failureThreshold 3", "", "{circuitBreaker: {preset: gobreaker, failureThreshold: 3}}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetGobreaker)
			c.ConsecutiveFailures = 3
			return c
		}},
		{"flat threshold on a global preset", "circuitBreaker: {preset: gobreaker}", "{circuitBreakerThreshold: 3}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetGobreaker)
			c.ConsecutiveFailures = 3
			return c
		}},
		{"hystrix plus consecutive failures", "circuitBreaker: {preset: hystrix}", "{circuitBreaker: {failureThreshold: 4}}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetHystrix)
			c.ConsecutiveFailures = 4
			return c
		}},
		{"a threshold turned off", "", "{circuitBreaker: {preset: resilience4j, slowRate: 0, slowCall: 0}}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetResilience4j)
			c.SlowRate, c.SlowCall = 0, 0
			return c
		}},
		{"bip03 on a failure rate only", "", "{circuitBreaker: {failureThreshold: 0, failureRate: 0.3, minimumCalls: 20, openJitter: 0}}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetBIP03)
			c.ConsecutiveFailures, c.FailureRate, c.MinimumCalls, c.OpenJitter = 0, 0.3, 20, 0
			return c
		}},
		{"global keys kept under a model's preset", "circuitBreaker: {failureRate: 0.3, openDuration: 45s}", "{circuitBreaker: {preset: gobreaker}}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetGobreaker)
			c.FailureRate, c.OpenDuration = 0.3, 45*time.Second
			return c
		}},
		{"model keys over global keys", "circuitBreaker: {preset: envoy, openDuration: 45s, halfOpenPermits: 2}", "{circuitBreaker: {openDuration: 15s}}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetEnvoy)
			c.OpenDuration, c.HalfOpenPermits = 15*time.Second, 2
			return c
		}},
		{"unset cap follows a longer openDuration", "", "{circuitBreaker: {preset: hystrix, openDuration: 30s}}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetHystrix)
			c.OpenDuration, c.MaxOpenDuration = 30*time.Second, 30*time.Second
			return c
		}},
		{"a given cap stays", "", "{circuitBreaker: {openDuration: 30s, maxOpenDuration: 2m}}", func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetBIP03)
			c.OpenDuration, c.MaxOpenDuration = 30*time.Second, 2*time.Minute
			return c
		}},
		{"every other key", "", lines("",
			"      circuitBreaker:",
			"        preset: envoy",
			"        window: time",
			"        windowDuration: 30s",
			"        windowBuckets: 6",
			"        slowRate: 0.8",
			"        slowCall: 20s",
			"        multiplier: 3",
			"        growth: exponential",
			"        openJitter: 0.2",
			"        tripReset: 5m",
			"        successThreshold: 2",
			"        permitLease: 45s",
			"        authOpen: 1h",
			"        windowSize: 50"), func(t *testing.T) resilience.BreakerConfig {
			c := preset(t, PresetEnvoy)
			c.Window, c.WindowDuration, c.WindowBuckets, c.WindowSize = resilience.TimeWindow, 30*time.Second, 6, 50
			c.SlowRate, c.SlowCall = 0.8, 20*time.Second
			c.Multiplier, c.Growth, c.OpenJitter, c.TripReset = 3, resilience.GrowExponential, 0.2, 5*time.Minute
			c.SuccessThreshold, c.PermitLease, c.AuthOpen = 2, 45*time.Second, time.Hour
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			global := ""
			if tt.global != "" {
				global = tt.global + "\n"
			}
			c := mustParse(t, global, "models:\n  a: "+tt.model+"\n")
			got, want := c.Models["a"].BreakerConfig(), tt.want(t)
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if _, err := resilience.NewBreaker(got, nil); err != nil {
				t.Errorf("NewBreaker: got %v, want no error", err)
			}
		})
	}
}

// TestPresetNames keeps the names preset accepts those of resilience.
func TestPresetNames(t *testing.T) {
	got := slices.Sorted(slices.Values(presets))
	if want := resilience.PresetNames(); !slices.Equal(got, want) {
		t.Errorf("got %v, want resilience.PresetNames() %v", got, want)
	}
}

func TestShortDurations(t *testing.T) {
	tests := []struct{ in, want string }{
		{"5s", "5s"}, {"500ms", "500ms"}, {"1m0s", "1m"}, {"10m0s", "10m"}, {"1m30s", "1m30s"},
		{"1h0m0s", "1h"}, {"1h30m0s", "1h30m"}, {"2h0m5s", "2h0m5s"}, {"x 1m0s, y 20m0s", "x 1m, y 20m"},
	}
	for _, tt := range tests {
		if got := shortDurations(tt.in); got != tt.want {
			t.Errorf("shortDurations(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
