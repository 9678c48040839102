package config

import (
	"reflect"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// TestPolicyDefaults checks the resolved policies of the defaults, and that
// the resilience package accepts each of them.
func TestPolicyDefaults(t *testing.T) {
	c := mustParse(t, "", okModels)
	m, g := c.Models["a"], &c.Global

	if got, want := m.RetryConfig(), (resilience.RetryConfig{MaxRetries: 3, BaseDelay: time.Second, Multiplier: 2,
		MaxDelay: 30 * time.Second, Jitter: 0.1}); got != want {
		t.Errorf("RetryConfig:\ngot  %+v\nwant %+v", got, want)
	}
	if got, want := m.HealthConfig(), (resilience.HealthConfig{Timeout: 30 * time.Second, DegradedRatio: 0.8,
		SuccessFloor: 0.9, MinCalls: 10, UnavailableAfter: 3, ProbeRetries: 3, Window: 5 * time.Minute}); got != want {
		t.Errorf("HealthConfig:\ngot  %+v\nwant %+v", got, want)
	}
	if got, want := m.RampConfig(), (resilience.RampConfig{Steps: []int{10, 25, 50, 100}, Over: 30 * time.Second,
		SuccessFloor: 0.9, MinCalls: 10, Successes: 3}); !reflect.DeepEqual(got, want) {
		t.Errorf("RampConfig:\ngot  %+v\nwant %+v", got, want)
	}
	if h := m.HealthCheck; h.OpenInterval != 5*time.Second || h.RampInterval != time.Second {
		t.Errorf("healthCheck openInterval %v, rampInterval %v; want 5s, 1s", h.OpenInterval, h.RampInterval)
	}
	if got, want := g.DegradationConfig(), (resilience.DegradationConfig{
		ResponseTime:     [4]time.Duration{5 * time.Second, 8 * time.Second, 15 * time.Second, 30 * time.Second},
		SuccessRate:      [4]float64{0.95, 0.90, 0.80, 0.60},
		CriticalOnlyFrom: messages.Degradation_minimal,
		LowerAfter:       30 * time.Second,
	}); got != want {
		t.Errorf("DegradationConfig:\ngot  %+v\nwant %+v", got, want)
	}
	if got, want := g.GroupConfig(), (resilience.GroupConfig{MaxOpenShare: 0.5, PanicRate: 1}); got != want {
		t.Errorf("GroupConfig: got %+v, want %+v", got, want)
	}
	if ratio, floor := g.BudgetConfig(); ratio != 0.2 || floor != 3 {
		t.Errorf("BudgetConfig: got %v, %d; want 0.2, 3", ratio, floor)
	}
	if g.Hedging.Delay != 0 {
		t.Errorf("hedging.delay: got %v, want 0 (the primary's p95)", g.Hedging.Delay)
	}
	newPolicies(t, c)

	// The defaults written out behave as the resilience package's own.
	half := func() float64 { return 0.75 }
	for n := 1; n <= 8; n++ {
		if got, want := m.RetryConfig().Delay(n, 0, half), (resilience.RetryConfig{}).Delay(n, 0, half); got != want {
			t.Errorf("retry %d: got a wait of %v, want %v as with the zero RetryConfig", n, got, want)
		}
	}
	ours, _ := resilience.NewBudget(g.BudgetConfig())
	theirs, _ := resilience.NewBudget(0, 0)
	for inFlight := range 50 {
		if got, want := ours.Allowed(), theirs.Allowed(); got != want {
			t.Errorf("budget with %d in flight: got %d allowed, want %d as NewBudget(0, 0)", inFlight, got, want)
		}
		ours.Start()
		theirs.Start()
	}
}

// newPolicies builds every policy of c with the resilience package, failing
// the test on any error.
func newPolicies(t *testing.T, c *Config) {
	t.Helper()
	for _, name := range c.Order {
		m := c.Models[name]
		if _, err := resilience.NewBreaker(m.BreakerConfig(), nil); err != nil {
			t.Errorf("%s: NewBreaker: %v", name, err)
		}
		if err := m.RetryConfig().Validate(); err != nil {
			t.Errorf("%s: RetryConfig: %v", name, err)
		}
		if _, err := resilience.NewHealth(m.HealthConfig()); err != nil {
			t.Errorf("%s: NewHealth: %v", name, err)
		}
		if _, err := resilience.NewRamp(m.RampConfig()); err != nil {
			t.Errorf("%s: NewRamp: %v", name, err)
		}
	}
	if _, err := resilience.NewDegradationTracker(c.Global.DegradationConfig()); err != nil {
		t.Errorf("NewDegradationTracker: %v", err)
	}
	if _, err := resilience.NewGroup(c.Global.GroupConfig()); err != nil {
		t.Errorf("NewGroup: %v", err)
	}
	if _, err := resilience.NewBudget(c.Global.BudgetConfig()); err != nil {
		t.Errorf("NewBudget: %v", err)
	}
}

// TestPolicyZeros checks that a 0 meaning "none" in the files reaches the
// resilience package as none, not as its default.
func TestPolicyZeros(t *testing.T) {
	global := lines(
		"retry: {maxRetries: 0, jitter: 0}",
		"healthCheck: {retries: 0, successFloor: 0, unavailableAfter: 0}",
		"degradation: {lowerAfter: 0}",
		"groupProtection: {panicRate: 0}",
		"retryBudget: {minimum: 0}",
	)
	c := mustParse(t, global, okModels)
	m, g := c.Models["a"], &c.Global

	r := m.RetryConfig()
	if r.MaxRetries >= 0 || r.Jitter >= 0 {
		t.Errorf("RetryConfig: got maxRetries %d, jitter %v; want both negative (none)", r.MaxRetries, r.Jitter)
	}
	fail := resilience.Outcome{Class: messages.ErrorClass_server_error}
	if d := r.Next(1, fail, time.Time{}, time.Time{}, nil); d.Retry {
		t.Errorf("Next with maxRetries 0: got a retry (%s), want none", d.Reason)
	}
	if got := r.Delay(1, 0, func() float64 { return 1 }); got != time.Second {
		t.Errorf("Delay with jitter 0: got %v, want exactly 1s", got)
	}
	h := m.HealthConfig()
	if h.ProbeRetries >= 0 || h.SuccessFloor >= 0 || h.UnavailableAfter >= 0 {
		t.Errorf("HealthConfig: got %+v, want negative (none) retries, successFloor, unavailableAfter", h)
	}
	if d := g.DegradationConfig(); d.LowerAfter >= 0 {
		t.Errorf("DegradationConfig: got lowerAfter %v, want negative (at once)", d.LowerAfter)
	}
	if p := g.GroupConfig(); p.PanicRate >= 0 {
		t.Errorf("GroupConfig: got panicRate %v, want negative (none)", p.PanicRate)
	}
	if b, err := resilience.NewBudget(g.BudgetConfig()); err != nil {
		t.Errorf("NewBudget: %v", err)
	} else if got := b.Allowed(); got != 0 {
		t.Errorf("NewBudget with minimum 0: got %d allowed with nothing in flight, want 0", got)
	}
	newPolicies(t, c)
}

// TestPolicyInheritance checks the new keys of the model blocks: each one
// the model leaves out takes the global value.
func TestPolicyInheritance(t *testing.T) {
	global := lines(
		"timeout: 10s",
		"healthCheck: {successFloor: 0.8, window: 1m, openInterval: 2s}",
		"restoration: {steps: [20, 100], over: 20s, maxHold: 1m, successes: 5}",
		"degradation: {criticalOnly: true, criticalOnlyFrom: severe, lowerAfter: 1m}",
		"groupProtection: {maxOpenShare: 1, panicRate: 0.5}",
		"retryBudget: {ratio: 0.1, minimum: 1}",
		"hedging: {delay: 250ms}",
	)
	c := mustParse(t, global, lines(
		"models:",
		"  plain: {}",
		"  own:",
		"    timeout: 4s",
		"    healthCheck: {minCalls: 5, unavailableAfter: 6, openInterval: 0, rampInterval: 250ms}",
		"    restoration: {steps: [5, 50, 100], successFloor: 0.95, successes: 0}",
	))
	plain, own, g := c.Models["plain"], c.Models["own"], &c.Global

	if got, want := plain.HealthConfig(), (resilience.HealthConfig{Timeout: 10 * time.Second, DegradedRatio: 0.8,
		SuccessFloor: 0.8, MinCalls: 10, UnavailableAfter: 3, ProbeRetries: 3, Window: time.Minute}); got != want {
		t.Errorf("plain HealthConfig:\ngot  %+v\nwant %+v", got, want)
	}
	if got, want := own.HealthConfig(), (resilience.HealthConfig{Timeout: 4 * time.Second, DegradedRatio: 0.8,
		SuccessFloor: 0.8, MinCalls: 5, UnavailableAfter: 6, ProbeRetries: 3, Window: time.Minute}); got != want {
		t.Errorf("own HealthConfig:\ngot  %+v\nwant %+v", got, want)
	}
	if got, want := plain.RampConfig(), (resilience.RampConfig{Steps: []int{20, 100}, Over: 20 * time.Second,
		SuccessFloor: 0.9, MinCalls: 10, MaxHold: time.Minute, Successes: 5}); !reflect.DeepEqual(got, want) {
		t.Errorf("plain RampConfig:\ngot  %+v\nwant %+v", got, want)
	}
	if got, want := own.RampConfig(), (resilience.RampConfig{Steps: []int{5, 50, 100}, Over: 20 * time.Second,
		SuccessFloor: 0.95, MinCalls: 10, MaxHold: time.Minute}); !reflect.DeepEqual(got, want) {
		t.Errorf("own RampConfig:\ngot  %+v\nwant %+v", got, want)
	}
	if p, o := plain.HealthCheck, own.HealthCheck; p.OpenInterval != 2*time.Second || p.RampInterval != time.Second ||
		o.OpenInterval != 0 || o.RampInterval != 250*time.Millisecond {
		t.Errorf("healthCheck intervals: plain open %v ramp %v, own open %v ramp %v; want 2s 1s, 0 250ms",
			p.OpenInterval, p.RampInterval, o.OpenInterval, o.RampInterval)
	}
	if d := g.DegradationConfig(); !d.CriticalOnly || d.CriticalOnlyFrom != messages.Degradation_severe || d.LowerAfter != time.Minute {
		t.Errorf("DegradationConfig: got %+v, want criticalOnly from severe, lowerAfter 1m", d)
	}
	if p := g.GroupConfig(); p != (resilience.GroupConfig{MaxOpenShare: 1, PanicRate: 0.5}) {
		t.Errorf("GroupConfig: got %+v, want {1 0.5}", p)
	}
	if ratio, floor := g.BudgetConfig(); ratio != 0.1 || floor != 1 {
		t.Errorf("BudgetConfig: got %v, %d; want 0.1, 1", ratio, floor)
	}
	if g.Hedging.Delay != 250*time.Millisecond {
		t.Errorf("hedging.delay: got %v, want 250ms", g.Hedging.Delay)
	}
	newPolicies(t, c)

	steps := plain.RampConfig().Steps
	steps[0] = 99
	if got := plain.RampConfig().Steps[0]; got != 20 {
		t.Errorf("RampConfig().Steps: a caller's change reached the config (got %d, want 20)", got)
	}
}
