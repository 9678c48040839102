package resilience

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// ErrHealthConfig is returned (wrapped, naming the field and its bound) by
// HealthConfig.Validate and NewHealth.
var ErrHealthConfig = errors.New("invalid health config")

// Health defaults, from the proposal (docs/policy.md).
const (
	healthDefaultTimeout          = 30 * time.Second // global default timeout
	healthDefaultDegradedRatio    = 0.8              // degraded over 0.8 x timeout
	healthDefaultSuccessFloor     = 0.90             // the "moderate" degradation floor
	healthDefaultMinCalls         = 10
	healthDefaultUnavailableAfter = 3               // model_unavailable alert rule
	healthDefaultProbeRetries     = 3               // health check: 3 retries
	healthDefaultWindow           = 5 * time.Minute // high_failure_rate window

	// The weighted score (docs/policy.md, fallback "weighted").
	healthScoreStart       = 0.5
	healthScoreAlpha       = 0.1
	healthScoreSuccess     = 0.7
	healthScoreLatency     = 0.3
	healthScoreLatencyZero = 10 * time.Second
	// healthLatencyAlpha smooths the response time like the score.
	healthLatencyAlpha = 0.1
)

// HealthConfig sets the thresholds of one model's health. Its zero value is
// the proposal's.
type HealthConfig struct {
	// Timeout is the model's call timeout. 0 means 30 s.
	Timeout time.Duration
	// DegradedRatio: the model is degraded while its average response time
	// exceeds DegradedRatio x Timeout. 0 means 0.8; negative disables the
	// rule; at most 1.
	DegradedRatio float64
	// SuccessFloor: the model is degraded while its success rate over the
	// window is under SuccessFloor (once MinCalls calls were seen). 0 means
	// 0.90, the proposal's "moderate" degradation floor, which is also its
	// alert line for the system's success rate: 0.95 ("minimal") would flap
	// on a single failure in 20 calls. Negative disables the rule; at most 1.
	SuccessFloor float64
	// MinCalls is the number of calls in the window below which the success
	// rate is not judged. 0 means 10.
	MinCalls int
	// UnavailableAfter is the number of consecutive failures that makes the
	// model unavailable. 0 means 3 (the proposal's model_unavailable rule);
	// negative disables the rule.
	UnavailableAfter int
	// ProbeRetries is how many times a failed probe is retried before the
	// failure counts: the model is unavailable after 1 + ProbeRetries probes
	// failed in a row. 0 means 3; negative means none (the first failed
	// probe counts).
	ProbeRetries int
	// Window is the span of the success rate and the latency quantiles:
	// they cover between Window/2 and Window of history (two halves, the
	// older dropped every Window/2). 0 means 5 min.
	Window time.Duration
}

// Validate reports the first field out of range, wrapping ErrHealthConfig.
func (c HealthConfig) Validate() error {
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("%w: Timeout %v < 0", ErrHealthConfig, c.Timeout)
	case math.IsNaN(c.DegradedRatio) || c.DegradedRatio > 1:
		return fmt.Errorf("%w: DegradedRatio %v > 1", ErrHealthConfig, c.DegradedRatio)
	case math.IsNaN(c.SuccessFloor) || c.SuccessFloor > 1:
		return fmt.Errorf("%w: SuccessFloor %v > 1", ErrHealthConfig, c.SuccessFloor)
	case c.MinCalls < 0:
		return fmt.Errorf("%w: MinCalls %d < 0", ErrHealthConfig, c.MinCalls)
	case c.Window < 0:
		return fmt.Errorf("%w: Window %v < 0", ErrHealthConfig, c.Window)
	case c.Window > 0 && c.Window < 2:
		return fmt.Errorf("%w: Window %v, want at least 2ns", ErrHealthConfig, c.Window)
	}
	return nil
}

// withDefaults replaces zero fields by the defaults; disabled rules keep a
// negative value, and a negative ProbeRetries becomes 0.
func (c HealthConfig) withDefaults() HealthConfig {
	if c.Timeout == 0 {
		c.Timeout = healthDefaultTimeout
	}
	if c.DegradedRatio == 0 {
		c.DegradedRatio = healthDefaultDegradedRatio
	}
	if c.SuccessFloor == 0 {
		c.SuccessFloor = healthDefaultSuccessFloor
	}
	if c.MinCalls == 0 {
		c.MinCalls = healthDefaultMinCalls
	}
	if c.UnavailableAfter == 0 {
		c.UnavailableAfter = healthDefaultUnavailableAfter
	}
	switch {
	case c.ProbeRetries == 0:
		c.ProbeRetries = healthDefaultProbeRetries
	case c.ProbeRetries < 0:
		c.ProbeRetries = 0
	}
	if c.Window == 0 {
		c.Window = healthDefaultWindow
	}
	return c
}

// HealthSnapshot is the evidence behind a model's health at one moment.
type HealthSnapshot struct {
	Status messages.HealthStatus
	// Score is the weighted-fallback score, see Health.Score.
	Score float64
	// SuccessRate is the share of successes among the window's calls; 0
	// when Calls is 0.
	SuccessRate float64
	// SlowRate is the share of the window's calls that succeeded slower than
	// DegradedRatio x Timeout.
	SlowRate float64
	// LatencyAvg is the moving average (alpha 0.1) of successful calls'
	// latency; 0 before the first success.
	LatencyAvg time.Duration
	// P50, P95 and P99 are latency quantiles of the window's successes.
	P50, P95, P99 time.Duration
	// Calls and Failures count the window's calls that are evidence about
	// the model (Outcome.Counts).
	Calls, Failures int
	// Consecutive is the number of failed calls since the last success.
	Consecutive int
	// ProbeFailures is the number of probes failed since the last success.
	ProbeFailures int
}

// Evidence returns s in the wire form of HealthChanged and ModelStatus.
func (s HealthSnapshot) Evidence() *messages.Evidence {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return &messages.Evidence{
		Calls:               int32(min(s.Calls, math.MaxInt32)),
		Failures:            int32(min(s.Failures, math.MaxInt32)),
		ConsecutiveFailures: int32(min(s.Consecutive, math.MaxInt32)),
		SuccessRate:         s.SuccessRate,
		SlowRate:            s.SlowRate,
		LatencyAvgMs:        ms(s.LatencyAvg),
		LatencyP50Ms:        ms(s.P50),
		LatencyP95Ms:        ms(s.P95),
		LatencyP99Ms:        ms(s.P99),
	}
}

// HealthChange is one status change, returned once, for the owner to publish
// as HealthChanged.
type HealthChange struct {
	At       time.Time
	From, To messages.HealthStatus
	Reason   string
	Evidence HealthSnapshot
}

// healthRule is the rule that decided a status; its text is built only
// when the status changes, so that Observe does not allocate.
type healthRule uint8

const (
	healthRuleNone healthRule = iota
	healthRuleMaintenance
	healthRuleConsecutive
	healthRuleProbes
	healthRuleLatency
	healthRuleSuccessRate
	healthRuleHealthy
)

// healthHalf is one half of the rolling window.
type healthHalf struct {
	calls, failures, slow int
	latency               Histogram // successes only
}

// Health follows one model's health from the outcomes of its calls
// (passive) and of its probes (active), and decides its status:
//
//   - maintenance while the operator says so, whatever the evidence;
//   - unavailable after UnavailableAfter consecutive failed calls, or after
//     1 + ProbeRetries failed probes in a row, until a call or probe succeeds;
//   - degraded while the average response time exceeds DegradedRatio x
//     Timeout, or the window's success rate is under SuccessFloor;
//   - available otherwise, and unknown before any evidence.
//
// Only outcomes that are evidence about the model count (Outcome.Counts):
// the caller's mistakes and cancellations are ignored. Response time is
// taken from successes only: a refused connection's 1 ms would flatter it,
// and a timeout is already counted as a failure.
//
// Every method that takes now returns the status change it caused, if any,
// exactly once; the owner publishes it. A Health is owned by one actor and
// is not safe for concurrent use. It holds two Histograms (about 8 KiB).
type Health struct {
	cfg         HealthConfig
	status      messages.HealthStatus
	maintenance bool
	evidence    bool // a call counted or a probe settled something

	halves    [2]healthHalf
	cur       int       // index of the current half
	halfStart time.Time // start of the current half
	started   bool      // halfStart is set, by the first input

	latencyAvg    float64 // ns, moving average of successes
	haveLatency   bool
	score         float64
	consecutive   int
	probeFailures int
}

// NewHealth returns the health of a model with no evidence yet: status
// unknown, score 0.5. It fails with ErrHealthConfig when cfg is invalid.
func NewHealth(cfg HealthConfig) (*Health, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Health{cfg: cfg.withDefaults(), score: healthScoreStart}, nil
}

// Observe records the outcome of a call that ended at now.
func (h *Health) Observe(now time.Time, o Outcome) []HealthChange {
	h.advance(now)
	if !o.Counts() {
		return h.settle(now)
	}
	h.evidence = true
	half := &h.halves[h.cur]
	half.calls++
	sample := 0.0 // a failure earns no score, however fast it failed
	if o.Success() {
		h.consecutive, h.probeFailures = 0, 0
		half.latency.Record(o.Latency)
		if h.cfg.DegradedRatio > 0 && float64(o.Latency) > h.cfg.DegradedRatio*float64(h.cfg.Timeout) {
			half.slow++
		}
		if lat := float64(max(o.Latency, 0)); h.haveLatency {
			h.latencyAvg += healthLatencyAlpha * (lat - h.latencyAvg)
		} else {
			h.latencyAvg, h.haveLatency = lat, true // the first success starts the average
		}
		sample = healthScoreSuccess + healthScoreLatency*max(0, 1-float64(o.Latency)/float64(healthScoreLatencyZero))
	} else {
		half.failures++
		h.consecutive++
	}
	h.score += healthScoreAlpha * (sample - h.score)
	return h.settle(now)
}

// Probe records the outcome of an active health check that ended at now.
// The owner retries a failed probe (the proposal's probe timeout is 5 s and
// it retries 3 times); failed probes change nothing until 1 + ProbeRetries
// failed in a row, and then the model is unavailable. A successful probe
// shows the model answers: it clears the failure counts, so a model that
// gets no traffic because it is unavailable can come back. Probes do not
// enter the rates, latencies or score, which describe real traffic; a probe
// outcome that is not evidence (cancelled) is ignored.
func (h *Health) Probe(now time.Time, o Outcome) []HealthChange {
	h.advance(now)
	switch {
	case o.Success():
		h.evidence = true
		h.consecutive, h.probeFailures = 0, 0
	case o.Counts():
		h.probeFailures++
		if h.probeFailures > h.cfg.ProbeRetries {
			h.evidence = true
		}
	}
	return h.settle(now)
}

// Tick moves the window to now; the success rate may recover as old
// failures leave it. Call it from the owner's timer (every Window/2 is
// enough).
func (h *Health) Tick(now time.Time) []HealthChange {
	h.advance(now)
	return h.settle(now)
}

// SetMaintenance puts the model in maintenance (on) or takes it out, by the
// operator's decision. Evidence is still recorded during maintenance, and
// decides the status when it ends.
func (h *Health) SetMaintenance(now time.Time, on bool) []HealthChange {
	h.advance(now)
	h.maintenance = on
	return h.settle(now)
}

// Status is the current status.
func (h *Health) Status() messages.HealthStatus { return h.status }

// Score is the weighted-fallback score: a moving average (alpha 0.1,
// starting at 0.5) of 0.7 x success + 0.3 x max(0, 1 - latency/10 s) per
// call, where a failed call scores 0. Since the average is linear, this is
// 0.7 x the moving success rate + 0.3 x the moving latency score of the
// proposal's formula.
func (h *Health) Score() float64 { return h.score }

// Snapshot returns the current evidence. It reads the window's histograms:
// call it for reports, not per call.
func (h *Health) Snapshot() HealthSnapshot {
	a, b := &h.halves[0], &h.halves[1]
	s := HealthSnapshot{
		Status:        h.status,
		Score:         h.score,
		LatencyAvg:    time.Duration(h.latencyAvg),
		Calls:         a.calls + b.calls,
		Failures:      a.failures + b.failures,
		Consecutive:   h.consecutive,
		ProbeFailures: h.probeFailures,
	}
	if s.Calls > 0 {
		s.SuccessRate = float64(s.Calls-s.Failures) / float64(s.Calls)
		s.SlowRate = float64(a.slow+b.slow) / float64(s.Calls)
	}
	lat := a.latency
	lat.Merge(&b.latency)
	s.P50, s.P95, s.P99 = lat.Quantile(0.5), lat.Quantile(0.95), lat.Quantile(0.99)
	return s
}

// advance drops the halves of the window that ended before now. A clock
// that goes backwards moves nothing.
func (h *Health) advance(now time.Time) {
	if !h.started {
		h.halfStart, h.started = now, true
		return
	}
	half := h.cfg.Window / 2
	elapsed := now.Sub(h.halfStart)
	if elapsed < half {
		return
	}
	n := elapsed / half
	if n >= 2 {
		h.halves[0] = healthHalf{}
		h.halves[1] = healthHalf{}
	} else {
		h.cur ^= 1
		h.halves[h.cur] = healthHalf{}
	}
	h.halfStart = h.halfStart.Add(n * half)
}

// successRate returns the window's success rate and call count.
func (h *Health) successRate() (float64, int) {
	calls := h.halves[0].calls + h.halves[1].calls
	if calls == 0 {
		return 0, 0
	}
	failures := h.halves[0].failures + h.halves[1].failures
	return float64(calls-failures) / float64(calls), calls
}

// evaluate returns the status the evidence calls for, and the rule that
// decided it. The order is the precedence.
func (h *Health) evaluate() (messages.HealthStatus, healthRule) {
	c := &h.cfg
	switch {
	case h.maintenance:
		return messages.HealthStatus_maintenance, healthRuleMaintenance
	case !h.evidence:
		return messages.HealthStatus_unknown, healthRuleNone
	case c.UnavailableAfter > 0 && h.consecutive >= c.UnavailableAfter:
		return messages.HealthStatus_unavailable, healthRuleConsecutive
	case h.probeFailures > c.ProbeRetries:
		return messages.HealthStatus_unavailable, healthRuleProbes
	case c.DegradedRatio > 0 && h.latencyAvg > c.DegradedRatio*float64(c.Timeout):
		return messages.HealthStatus_degraded, healthRuleLatency
	}
	if rate, calls := h.successRate(); c.SuccessFloor > 0 && calls >= c.MinCalls && rate < c.SuccessFloor {
		return messages.HealthStatus_degraded, healthRuleSuccessRate
	}
	return messages.HealthStatus_available, healthRuleHealthy
}

// settle applies the status the evidence calls for and reports the change.
func (h *Health) settle(now time.Time) []HealthChange {
	to, rule := h.evaluate()
	if to == h.status {
		return nil
	}
	from := h.status
	h.status = to
	return []HealthChange{{At: now, From: from, To: to, Reason: h.reason(rule, from), Evidence: h.Snapshot()}}
}

// reason explains rule in words, for logs and HealthChanged.
func (h *Health) reason(rule healthRule, from messages.HealthStatus) string {
	c := &h.cfg
	switch rule {
	case healthRuleMaintenance:
		return "maintenance set by the operator"
	case healthRuleConsecutive:
		return fmt.Sprintf("%d consecutive failures", h.consecutive)
	case healthRuleProbes:
		return fmt.Sprintf("%d probes failed in a row", h.probeFailures)
	case healthRuleLatency:
		return fmt.Sprintf("average latency %v over %v (%g x timeout %v)",
			time.Duration(h.latencyAvg).Round(time.Millisecond), time.Duration(c.DegradedRatio*float64(c.Timeout)), c.DegradedRatio, c.Timeout)
	case healthRuleSuccessRate:
		rate, calls := h.successRate()
		return fmt.Sprintf("success rate %.3f under %g over %d calls", rate, c.SuccessFloor, calls)
	case healthRuleHealthy:
		switch from {
		case messages.HealthStatus_unknown:
			return "first evidence"
		case messages.HealthStatus_maintenance:
			return "maintenance ended"
		}
		return "recovered"
	}
	return "no evidence"
}
