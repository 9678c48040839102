package resilience

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// ErrDegradationConfig is returned (wrapped, naming the field and its bound)
// by DegradationConfig.Validate and NewDegradationTracker.
var ErrDegradationConfig = errors.New("invalid degradation config")

// The proposal's thresholds, for minimal, moderate, severe and critical.
var (
	degradationDefaultResponseTime = [4]time.Duration{5 * time.Second, 8 * time.Second, 15 * time.Second, 30 * time.Second}
	degradationDefaultSuccessRate  = [4]float64{0.95, 0.90, 0.80, 0.60}
)

// degradationDefaultLowerAfter is the calm a tracked level needs before it
// is lowered: one health-check interval, so a level is lowered on the
// evidence of at least one fresh check, not on one lucky request.
const degradationDefaultLowerAfter = 30 * time.Second

// DegradationConfig maps a response time and a success rate to a
// degradation level, and decides admission by priority. Its zero value is
// the proposal's: 5 / 8 / 15 / 30 s and 0.95 / 0.90 / 0.80 / 0.60, no
// shedding. It holds no state: one value may be shared.
type DegradationConfig struct {
	// ResponseTime[i] is the response time above which level i+1 (minimal,
	// moderate, severe, critical) applies; positive and strictly
	// increasing. The zero array means 5 s, 8 s, 15 s, 30 s; a partly set
	// array is taken as written (and fails Validate).
	ResponseTime [4]time.Duration
	// SuccessRate[i] is the success rate under which level i+1 applies; in
	// 0..1 and strictly decreasing. The zero array means 0.95, 0.90, 0.80,
	// 0.60.
	SuccessRate [4]float64
	// CriticalOnly, when on, admits only requests marked critical while the
	// level is degraded (at least CriticalOnlyFrom). Off by default: the
	// proposal leaves shedding to the operator.
	CriticalOnly bool
	// CriticalOnlyFrom is the lowest level that counts as degraded mode for
	// CriticalOnly. none (the zero value) means minimal: any level above
	// none, as the proposal reads. Setting it to severe, say, keeps serving
	// everyone through slowness and sheds only when the service is truly
	// failing.
	CriticalOnlyFrom messages.Degradation
	// LowerAfter is how long the levels a DegradationTracker observes must
	// stay below its current level before it lowers it (raising is
	// immediate). 0 means 30 s; a negative value means at once (no
	// hysteresis).
	LowerAfter time.Duration
}

// Validate reports the first field out of range, wrapping
// ErrDegradationConfig.
func (c DegradationConfig) Validate() error {
	if c.ResponseTime != [4]time.Duration{} {
		for i, d := range c.ResponseTime {
			switch {
			case d <= 0:
				return fmt.Errorf("%w: ResponseTime[%d] = %v, want > 0", ErrDegradationConfig, i, d)
			case i > 0 && d <= c.ResponseTime[i-1]:
				return fmt.Errorf("%w: ResponseTime[%d] = %v after %v, want strictly increasing", ErrDegradationConfig, i, d, c.ResponseTime[i-1])
			}
		}
	}
	if c.SuccessRate != [4]float64{} {
		for i, f := range c.SuccessRate {
			switch {
			case math.IsNaN(f) || f < 0 || f > 1:
				return fmt.Errorf("%w: SuccessRate[%d] = %v, want 0..1", ErrDegradationConfig, i, f)
			case i > 0 && f >= c.SuccessRate[i-1]:
				return fmt.Errorf("%w: SuccessRate[%d] = %v after %v, want strictly decreasing", ErrDegradationConfig, i, f, c.SuccessRate[i-1])
			}
		}
	}
	if c.CriticalOnlyFrom < messages.Degradation_none || c.CriticalOnlyFrom > messages.Degradation_critical {
		return fmt.Errorf("%w: CriticalOnlyFrom %d, want none..critical", ErrDegradationConfig, c.CriticalOnlyFrom)
	}
	return nil
}

// Level returns the most severe level whose response-time threshold
// responseTime exceeds or whose success floor successRate undercuts (a value
// equal to a threshold does not cross it); none when neither does. Pass a
// success rate of 1 when there is no evidence; NaN is read the same way.
// Call Validate first: Level does not check the config.
func (c DegradationConfig) Level(responseTime time.Duration, successRate float64) messages.Degradation {
	rts, floors := c.ResponseTime, c.SuccessRate
	if rts == [4]time.Duration{} {
		rts = degradationDefaultResponseTime
	}
	if floors == [4]float64{} {
		floors = degradationDefaultSuccessRate
	}
	for i := len(rts) - 1; i >= 0; i-- {
		if responseTime > rts[i] || successRate < floors[i] {
			return messages.Degradation(i + 1)
		}
	}
	return messages.Degradation_none
}

// Admit reports whether a request of priority p is served at level: always,
// unless CriticalOnly is on and level is at least CriticalOnlyFrom, in
// which case only critical requests are. High priority is not critical: it
// orders work, it does not pass the shedding.
func (c DegradationConfig) Admit(level messages.Degradation, p messages.InferRequest_Priority) bool {
	if !c.CriticalOnly || p == messages.InferRequest_critical {
		return true
	}
	from := c.CriticalOnlyFrom
	if from == messages.Degradation_none {
		from = messages.Degradation_minimal
	}
	return level < from
}

// DegradationChange is a change of the tracked level, reported once.
type DegradationChange struct {
	At       time.Time
	From, To messages.Degradation
}

// DegradationTracker turns a stream of levels into changes, with
// hysteresis so that the level does not flap: a higher level applies at
// once, a lower one only after the readings have stayed below the current
// level for LowerAfter, and then to the highest level read during that
// calm: severe, then 30 s of moderate and none lowers to moderate, and to
// none after another 30 s of none. A reading at or above the current level
// ends the calm.
//
// A DegradationTracker is owned by one actor: it is not safe for concurrent
// use.
type DegradationTracker struct {
	cfg        DegradationConfig
	lowerAfter time.Duration

	level     messages.Degradation
	calm      bool // readings have been below level since calmSince
	calmSince time.Time
	calmPeak  messages.Degradation // highest reading since calmSince
}

// NewDegradationTracker returns a tracker at level none with cfg, or an
// error wrapping ErrDegradationConfig.
func NewDegradationTracker(cfg DegradationConfig) (*DegradationTracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lowerAfter := cfg.LowerAfter
	switch {
	case lowerAfter == 0:
		lowerAfter = degradationDefaultLowerAfter
	case lowerAfter < 0:
		lowerAfter = 0
	}
	return &DegradationTracker{cfg: cfg, lowerAfter: lowerAfter}, nil
}

// Level returns the tracked level.
func (t *DegradationTracker) Level() messages.Degradation { return t.level }

// Admit applies the config's Admit at the tracked level.
func (t *DegradationTracker) Admit(p messages.InferRequest_Priority) bool {
	return t.cfg.Admit(t.level, p)
}

// Update observes the level of responseTime and successRate at now (see
// DegradationConfig.Level).
func (t *DegradationTracker) Update(now time.Time, responseTime time.Duration, successRate float64) (DegradationChange, bool) {
	return t.Observe(now, t.cfg.Level(responseTime, successRate))
}

// Observe takes the level read at now and returns the change it causes, if
// any. Levels outside none..critical are taken as the nearest bound.
func (t *DegradationTracker) Observe(now time.Time, level messages.Degradation) (DegradationChange, bool) {
	level = min(max(level, messages.Degradation_none), messages.Degradation_critical)
	if level >= t.level {
		t.calm = false
		if level == t.level {
			return DegradationChange{}, false
		}
		return t.change(now, level), true
	}
	if !t.calm {
		t.calm, t.calmSince, t.calmPeak = true, now, level
	}
	t.calmPeak = max(t.calmPeak, level)
	if now.Sub(t.calmSince) < t.lowerAfter {
		return DegradationChange{}, false
	}
	c := t.change(now, t.calmPeak)
	// The reading that lowered the level may start the next calm.
	t.calm, t.calmSince, t.calmPeak = level < t.level, now, level
	return c, true
}

func (t *DegradationTracker) change(now time.Time, to messages.Degradation) DegradationChange {
	c := DegradationChange{At: now, From: t.level, To: to}
	t.level = to
	return c
}
