package resilience

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// breakerPresets reproduce the anchors' defaults (docs/policy.md, "Presets
// and their sources"). Every field is set, so a preset reads as the whole
// behaviour. Where an anchor has no such setting, the choice is ours and is
// said next to it.
var breakerPresets = map[string]BreakerConfig{
	// The proposal: 5 consecutive failures, 60 s open, 3 successes to
	// close. Ours: three trials at once (so a recovered model is back
	// after one round trip, and a failing one sees at most three calls per
	// open period), a count window of 100 for evidence only, doubling open
	// periods up to 10 m with the proposal's +-10 % jitter, trips
	// forgotten after 10 m closed.
	"bip03": {
		Window:              CountWindow,
		WindowSize:          100,
		ConsecutiveFailures: 5,
		OpenDuration:        60 * time.Second,
		MaxOpenDuration:     10 * time.Minute,
		Multiplier:          2,
		Growth:              GrowExponential,
		OpenJitter:          0.1,
		TripReset:           10 * time.Minute,
		HalfOpenPermits:     3,
		SuccessThreshold:    3,
		PermitLease:         60 * time.Second,
		AuthOpen:            10 * time.Minute,
	},
	// sony/gobreaker's Settings{}: ReadyToTrip when ConsecutiveFailures >
	// 5 (so the 6th trips), Timeout 60 s, MaxRequests 1 in half-open, whose
	// success closes it and whose failure reopens it. Counts are kept since
	// the breaker last closed (Interval 0). The open period is constant.
	"gobreaker": {
		Window:              NoWindow,
		ConsecutiveFailures: 6,
		OpenDuration:        60 * time.Second,
		MaxOpenDuration:     60 * time.Second,
		Multiplier:          1,
		Growth:              GrowExponential,
		TripReset:           10 * time.Minute,
		HalfOpenPermits:     1,
		SuccessThreshold:    1,
		PermitLease:         60 * time.Second,
		AuthOpen:            10 * time.Minute,
	},
	// resilience4j's CircuitBreakerConfig defaults: a count window of
	// 100, 100 calls minimum, failure rate >= 50 % or slow rate >= 100 %
	// (slow above 60 s), 60 s wait, 10 calls in half-open. Resilience4j
	// closes when those 10 calls stay under the rates; ours is stricter:
	// 10 successes close it and any counted failure reopens it.
	"resilience4j": {
		Window:           CountWindow,
		WindowSize:       100,
		MinimumCalls:     100,
		FailureRate:      0.5,
		SlowRate:         1,
		SlowCall:         60 * time.Second,
		OpenDuration:     60 * time.Second,
		MaxOpenDuration:  60 * time.Second,
		Multiplier:       1,
		Growth:           GrowExponential,
		TripReset:        10 * time.Minute,
		HalfOpenPermits:  10,
		SuccessThreshold: 10,
		PermitLease:      60 * time.Second,
		AuthOpen:         10 * time.Minute,
	},
	// Hystrix: errorThresholdPercentage 50 with requestVolumeThreshold 20
	// in a rolling 10 s window of 10 buckets, sleepWindow 5 s, then a
	// single trial request.
	"hystrix": {
		Window:           TimeWindow,
		WindowDuration:   10 * time.Second,
		WindowBuckets:    10,
		MinimumCalls:     20,
		FailureRate:      0.5,
		OpenDuration:     5 * time.Second,
		MaxOpenDuration:  5 * time.Second,
		Multiplier:       1,
		Growth:           GrowExponential,
		TripReset:        10 * time.Minute,
		HalfOpenPermits:  1,
		SuccessThreshold: 1,
		PermitLease:      60 * time.Second,
		AuthOpen:         10 * time.Minute,
	},
	// Envoy outlier detection: consecutive_5xx 5 ejects for
	// base_ejection_time 30 s x the number of ejections, capped by
	// max_ejection_time 300 s. Envoy returns an ejected host to full
	// traffic and decrements its ejection count every healthy 10 s
	// interval; ours admits one trial first and forgets the count after
	// 60 s closed.
	"envoy": {
		Window:              NoWindow,
		ConsecutiveFailures: 5,
		OpenDuration:        30 * time.Second,
		MaxOpenDuration:     300 * time.Second,
		Multiplier:          2,
		Growth:              GrowLinear,
		TripReset:           60 * time.Second,
		HalfOpenPermits:     1,
		SuccessThreshold:    1,
		PermitLease:         60 * time.Second,
		AuthOpen:            10 * time.Minute,
	},
}

// DefaultBreakerPreset is the preset used when none is named.
const DefaultBreakerPreset = "bip03"

// Preset returns the named preset's configuration: "bip03" (also for ""),
// "gobreaker", "resilience4j", "hystrix" or "envoy", in any case. An
// unknown name is an error that lists the known ones.
func Preset(name string) (BreakerConfig, error) {
	if name == "" {
		name = DefaultBreakerPreset
	}
	c, ok := breakerPresets[strings.ToLower(name)]
	if !ok {
		return BreakerConfig{}, fmt.Errorf("unknown breaker preset %q, want one of %s", name, strings.Join(PresetNames(), ", "))
	}
	return c, nil
}

// PresetNames returns the known preset names, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(breakerPresets))
	for n := range breakerPresets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
