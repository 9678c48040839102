package resilience

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrAlertConfig is returned (wrapped, naming the field and its bound) by
// AlertConfig.Validate and NewAlert.
var ErrAlertConfig = errors.New("invalid alert config")

// AlertCondition says on which side of its threshold a rule's value is bad.
type AlertCondition uint8

const (
	// AlertAtLeast fires when the value reaches the threshold (a count: 3
	// consecutive failures, 2 open breakers) and resolves when it is under
	// threshold - hysteresis.
	AlertAtLeast AlertCondition = iota
	// AlertAbove fires when the value exceeds the threshold (a failure
	// rate above 0.2) and resolves when it is under threshold - hysteresis.
	AlertAbove
	// AlertBelow fires when the value is under the threshold (a success
	// rate below 0.9) and resolves when it is above threshold + hysteresis.
	AlertBelow
)

func (c AlertCondition) String() string {
	switch c {
	case AlertAtLeast:
		return ">="
	case AlertAbove:
		return ">"
	case AlertBelow:
		return "<"
	}
	return fmt.Sprintf("AlertCondition(%d)", c)
}

// AlertConfig is one alert rule's state machine settings. Its zero value
// fires at a value >= 0, resolves under 0, has no cooldown and never
// escalates.
type AlertConfig struct {
	Condition AlertCondition
	Threshold float64
	// Hysteresis is how far back past the threshold the value must go
	// before a firing alert resolves, so a value hovering at the threshold
	// does not flap. At least 0.
	Hysteresis float64
	// Cooldown is how long after a resolve the alert may not fire again,
	// even if the condition holds (it fires once the cooldown is over and
	// the condition still holds). At least 0.
	Cooldown time.Duration
	// EscalateAfter escalates a firing alert that was not acknowledged once
	// it has fired this long ago (0: never). At least 0.
	EscalateAfter time.Duration
}

// Validate reports the first field out of range, wrapping ErrAlertConfig.
func (c AlertConfig) Validate() error {
	switch {
	case c.Condition > AlertBelow:
		return fmt.Errorf("%w: Condition %d unknown", ErrAlertConfig, c.Condition)
	case math.IsNaN(c.Threshold) || math.IsInf(c.Threshold, 0):
		return fmt.Errorf("%w: Threshold %v is not a finite number", ErrAlertConfig, c.Threshold)
	case math.IsNaN(c.Hysteresis) || math.IsInf(c.Hysteresis, 0) || c.Hysteresis < 0:
		return fmt.Errorf("%w: Hysteresis %v, want a finite number >= 0", ErrAlertConfig, c.Hysteresis)
	case c.Cooldown < 0:
		return fmt.Errorf("%w: Cooldown %v < 0", ErrAlertConfig, c.Cooldown)
	case c.EscalateAfter < 0:
		return fmt.Errorf("%w: EscalateAfter %v < 0", ErrAlertConfig, c.EscalateAfter)
	}
	return nil
}

// AlertTransition is what one input did to an alert: at most one thing.
type AlertTransition uint8

const (
	// AlertUnchanged: nothing to publish.
	AlertUnchanged AlertTransition = iota
	// AlertFired: the condition started to hold (outside a cooldown).
	AlertFired
	// AlertEscalated: still firing, unacknowledged, EscalateAfter after
	// firing. Once per firing.
	AlertEscalated
	// AlertResolved: the value went back past the threshold by more than
	// the hysteresis. Once per firing.
	AlertResolved
)

func (t AlertTransition) String() string {
	switch t {
	case AlertUnchanged:
		return "unchanged"
	case AlertFired:
		return "fired"
	case AlertEscalated:
		return "escalated"
	case AlertResolved:
		return "resolved"
	}
	return fmt.Sprintf("AlertTransition(%d)", t)
}

// Alert is the state machine of one alert instance: one rule for one
// subject (a model, or the whole node). Its owner feeds it the rule's value
// on every evaluation, or Tick when there is too little evidence to judge,
// and publishes the transition each call returns. It fires once, escalates
// at most once, resolves once; after a resolve it does not fire again
// within the cooldown. An Alert is owned by one actor and is not safe for
// concurrent use.
type Alert struct {
	cfg AlertConfig

	firing, escalated, acked bool
	firedAt                  time.Time
	resolvedAt               time.Time
	resolved                 bool // resolvedAt is set
	firings                  int
}

// NewAlert returns a quiet alert. It fails with ErrAlertConfig when cfg is
// invalid.
func NewAlert(cfg AlertConfig) (*Alert, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Alert{cfg: cfg}, nil
}

// Observe judges value, the rule's value at now. A NaN value is no verdict,
// as Tick.
func (a *Alert) Observe(now time.Time, value float64) AlertTransition {
	if math.IsNaN(value) {
		return a.Tick(now)
	}
	if a.firing {
		if a.clear(value) {
			a.firing, a.resolved, a.resolvedAt = false, true, now
			return AlertResolved
		}
		return a.Tick(now)
	}
	if !a.bad(value) || (a.resolved && now.Sub(a.resolvedAt) < a.cfg.Cooldown) {
		return AlertUnchanged
	}
	a.firing, a.escalated, a.acked, a.firedAt = true, false, false, now
	a.firings++
	return AlertFired
}

// Tick moves time to now without a verdict on the value (too few calls in
// the window to judge): a firing alert keeps firing and may escalate.
func (a *Alert) Tick(now time.Time) AlertTransition {
	if a.firing && !a.escalated && !a.acked && a.cfg.EscalateAfter > 0 && now.Sub(a.firedAt) >= a.cfg.EscalateAfter {
		a.escalated = true
		return AlertEscalated
	}
	return AlertUnchanged
}

// Acknowledge records that someone took the firing alert in hand: it keeps
// firing until it resolves, but no longer escalates. It reports whether the
// alert was firing; acknowledging twice is harmless.
func (a *Alert) Acknowledge() bool {
	if !a.firing {
		return false
	}
	a.acked = true
	return true
}

// Firing reports whether the alert fired and has not resolved.
func (a *Alert) Firing() bool { return a.firing }

// Escalated reports whether the current firing escalated.
func (a *Alert) Escalated() bool { return a.firing && a.escalated }

// Acknowledged reports whether the current firing was acknowledged.
func (a *Alert) Acknowledged() bool { return a.firing && a.acked }

// FiredAt is when the current (or last) firing began.
func (a *Alert) FiredAt() time.Time { return a.firedAt }

// Firings counts the times the alert fired; the current firing's number,
// from 1, while it fires.
func (a *Alert) Firings() int { return a.firings }

// alertTolerance is how close two values must be to count as equal: a
// rate computed as a ratio (3/20) equals a threshold written as a decimal
// (0.2 - 0.05) though their float64 values differ in the last bit.
const alertTolerance = 1e-9

// bad reports whether value meets the firing condition.
func (a *Alert) bad(v float64) bool {
	switch a.cfg.Condition {
	case AlertAbove:
		return v > a.cfg.Threshold+alertTolerance
	case AlertBelow:
		return v < a.cfg.Threshold-alertTolerance
	}
	return v >= a.cfg.Threshold-alertTolerance
}

// clear reports whether value is back past the threshold by more than the
// hysteresis.
func (a *Alert) clear(v float64) bool {
	if a.cfg.Condition == AlertBelow {
		return v > a.cfg.Threshold+a.cfg.Hysteresis+alertTolerance
	}
	return v < a.cfg.Threshold-a.cfg.Hysteresis-alertTolerance
}

// AlertSample sums the calls of one model, or of a node, over a span.
type AlertSample struct {
	// Calls counts the calls that are evidence about a model
	// (Outcome.Counts); Failures those of them that failed.
	Calls, Failures int64
	// Latency is the total latency of the successful calls.
	Latency time.Duration
}

// Add returns the sum of s and o.
func (s AlertSample) Add(o AlertSample) AlertSample {
	return AlertSample{Calls: s.Calls + o.Calls, Failures: s.Failures + o.Failures, Latency: s.Latency + o.Latency}
}

// Successes counts the successful calls.
func (s AlertSample) Successes() int64 { return s.Calls - s.Failures }

// FailureRate is failures over calls; 0 without calls.
func (s AlertSample) FailureRate() float64 {
	if s.Calls <= 0 {
		return 0
	}
	return float64(s.Failures) / float64(s.Calls)
}

// LatencyAvg is the average latency of the successes; 0 without any.
func (s AlertSample) LatencyAvg() time.Duration {
	if n := s.Successes(); n > 0 {
		return s.Latency / time.Duration(n)
	}
	return 0
}

// alertWindowBuckets is how many buckets an AlertWindow has: samples leave
// it a thirtieth of its span at a time.
const alertWindowBuckets = 30

// AlertWindow sums the AlertSamples added over its span: between
// span - span/30 and span of history, expiring a bucket at a time. Its
// memory is fixed (30 buckets). It is owned by one actor and is not safe
// for concurrent use.
type AlertWindow struct {
	buckets [alertWindowBuckets]AlertSample
	width   time.Duration
	epoch   time.Time
	head    int64 // absolute number of the newest bucket, from epoch
	started bool
	sum     AlertSample
}

// NewAlertWindow returns an empty window over span; a span under 30 ns is
// taken as 30 ns.
func NewAlertWindow(span time.Duration) *AlertWindow {
	return &AlertWindow{width: max(span/alertWindowBuckets, 1)}
}

// Add counts s at now.
func (w *AlertWindow) Add(now time.Time, s AlertSample) {
	w.advance(now)
	b := &w.buckets[w.head%alertWindowBuckets]
	*b = b.Add(s)
	w.sum = w.sum.Add(s)
}

// Sum returns the total over the window at now.
func (w *AlertWindow) Sum(now time.Time) AlertSample {
	w.advance(now)
	return w.sum
}

// advance expires the buckets now has left behind. A clock that went back
// adds to the newest bucket.
func (w *AlertWindow) advance(now time.Time) {
	if !w.started {
		w.started, w.epoch, w.head = true, now, 0
		return
	}
	n := int64(now.Sub(w.epoch) / w.width)
	if n <= w.head {
		return
	}
	steps := min(n-w.head, alertWindowBuckets)
	for i := int64(1); i <= steps; i++ {
		b := &w.buckets[(w.head+i)%alertWindowBuckets]
		w.sum.Calls -= b.Calls
		w.sum.Failures -= b.Failures
		w.sum.Latency -= b.Latency
		*b = AlertSample{}
	}
	w.head = n
}
