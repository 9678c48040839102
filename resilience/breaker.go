package resilience

import (
	"errors"
	"fmt"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// ErrOpen is the error of a call the breaker does not admit: it is open,
// forced open, or half-open with every trial permit taken. Allow returns it
// wrapped in an *OpenError; match it with errors.Is.
var ErrOpen = errors.New("circuit open")

// OpenError is Allow's rejection, with the data a caller needs to answer
// with a Retry-After. errors.Is(err, ErrOpen) holds for it.
type OpenError struct {
	// State is the breaker's state: open, forced_open or half_open.
	State messages.BreakerState
	// Until is when a call may next be admitted: the end of the open
	// period, or in half-open the earliest permit lease's expiry. It is
	// zero for a breaker forced open until changed, and in the past when
	// the period is over but the owner has not called Tick yet.
	Until time.Time
}

// Error describes the rejection.
func (e *OpenError) Error() string {
	if e.Until.IsZero() {
		return fmt.Sprintf("%v (%v)", ErrOpen, e.State)
	}
	return fmt.Sprintf("%v (%v) until %v", ErrOpen, e.State, e.Until.Format(time.RFC3339Nano))
}

// Unwrap returns ErrOpen.
func (e *OpenError) Unwrap() error { return ErrOpen }

// Permit is an admitted call's ticket, to hand back to Done or Release: a
// small value that costs no allocation. It ties the call to the breaker's
// generation at admission. Every change of generation frees all half-open
// leases, so a permit from an older generation holds no slot and is simply
// dropped: its result is never recorded. The zero Permit is stale.
type Permit struct {
	generation uint64
	lease      uint64 // the half-open lease held; 0 for other states
	slot       int32  // the lease's index in Breaker.leases
}

// Transition is one state change, returned exactly once, in order, for the
// owner to publish as a messages.BreakerTransition.
//
// A Transition whose From equals To reports without changing the state:
// a metrics-only breaker crossing a threshold it would have tripped on
// (Generation unchanged), a forced-open period set anew, or a Restore into
// the state the breaker was in (both of which take a new generation).
type Transition struct {
	From, To messages.BreakerState
	Reason   messages.BreakerTransition_Reason
	// Class is the error class of the outcome that caused the transition
	// (auth for an auth failure's opening), ok when no outcome did.
	Class messages.ErrorClass
	// Generation is the breaker's generation after the transition.
	Generation uint64
	// OpenUntil is when an open or forced-open breaker turns half-open;
	// zero for other states and for forced open until changed.
	OpenUntil time.Time
	// Trips counts consecutive openings; it lengthens the open period.
	Trips int
	// At is the now of the call that made the transition.
	At time.Time
	// Evidence is the window as it stood when the transition was decided.
	Evidence Evidence
}

// Changed reports whether the transition changed the state.
func (t Transition) Changed() bool { return t.From != t.To }

// Evidence is what the breaker's window holds: the counted calls in it
// (for NoWindow, all of them), and the counted failures in a row. The
// window starts afresh whenever the breaker closes or turns half-open, so
// in half-open it holds the trials. Rates are 0 when the window is empty.
type Evidence struct {
	Calls, Failures, Slow, Consecutive int
	FailureRate, SlowRate              float64
}

// Breaker is a circuit breaker: a pure state machine that takes time as a
// parameter, reads no clock, starts no goroutine and takes no lock. It is
// NOT safe for concurrent use: one actor owns it and calls every method.
//
// A call goes Allow, then exactly one of Done (with its Outcome) or Release
// (cancelled, or its result ignored). The owner calls Tick when
// NextDeadline comes, and publishes every returned Transition.
type Breaker struct {
	cfg    BreakerConfig
	random func() float64

	state      messages.BreakerState
	generation uint64
	trips      int
	// openUntil ends an open or forced-open period; zero otherwise, and
	// for forced open until changed.
	openUntil   time.Time
	closedSince time.Time // when the breaker last closed, for TripReset
	// class is the error class that caused the current state (ok when
	// none did), for peers deciding whether to trust the opening.
	class messages.ErrorClass

	window      breakerWindow
	consecutive int // counted failures in a row
	successes   int // half-open: successful trials so far
	// crossed is set in metrics-only once a crossing is reported, until
	// the evidence is back under every threshold.
	crossed bool

	leases   []breakerLease // half-open trial permits, HalfOpenPermits long
	leaseSeq uint64         // the last lease id handed out
}

// NewBreaker returns a closed breaker for c, after Validate and with c's
// unset fields filled in (see BreakerConfig). random returns a number in
// [0, 1) for the open period's jitter; nil means no jitter.
func NewBreaker(c BreakerConfig, random func() float64) (*Breaker, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	return &Breaker{
		cfg:        c,
		random:     random,
		state:      messages.BreakerState_closed,
		generation: 1,
		window:     newBreakerWindow(c),
		leases:     make([]breakerLease, c.HalfOpenPermits),
	}, nil
}

// State returns the current state.
func (b *Breaker) State() messages.BreakerState { return b.state }

// Allow admits a call or refuses it with an *OpenError wrapping ErrOpen.
// Closed, disabled and metrics-only breakers admit every call at no cost.
// A half-open breaker admits while a trial permit is free (reclaiming
// expired leases first) and refuses at once otherwise; open and forced-open
// breakers refuse. Allow never changes the state: an open period that has
// ended waits for Tick, so every transition is returned by a method that
// can return it.
func (b *Breaker) Allow(now time.Time) (Permit, error) {
	switch b.state {
	case messages.BreakerState_closed, messages.BreakerState_disabled, messages.BreakerState_metrics_only:
		return Permit{generation: b.generation}, nil
	case messages.BreakerState_half_open:
		if p, ok := b.acquireLease(now); ok {
			return p, nil
		}
		until, _ := b.earliestLease()
		return Permit{}, &OpenError{State: b.state, Until: until}
	}
	return Permit{}, &OpenError{State: b.state, Until: b.openUntil}
}

// Done records the outcome o of the call p admitted, frees its half-open
// permit, and returns the transitions it caused. A permit from an older
// generation, or whose lease expired, records nothing and changes nothing.
// Outcomes whose Counts is false (the caller's fault) only free the
// permit. A disabled breaker records nothing.
func (b *Breaker) Done(p Permit, now time.Time, o Outcome) []Transition {
	if p.generation != b.generation {
		return nil
	}
	if b.state == messages.BreakerState_half_open && !b.releaseLease(p) {
		return nil
	}
	if !o.Counts() || b.state == messages.BreakerState_disabled {
		return nil
	}
	failed := !o.Success()
	b.window.record(now, failed, b.isSlow(o))
	if failed {
		b.consecutive++
	} else {
		b.consecutive = 0
	}
	switch b.state {
	case messages.BreakerState_closed:
		if reason, exact, trip := b.verdict(o); trip {
			return b.open(now, reason, o.Class, exact)
		}
	case messages.BreakerState_half_open:
		return b.judgeTrial(now, o)
	case messages.BreakerState_metrics_only:
		return b.reportCrossing(now, o)
	}
	return nil
}

// Release frees the half-open permit of a call that was cancelled or whose
// result is ignored, and records nothing. Freeing a permit is not a
// transition, so it returns nil; it has Done's shape so an owner can treat
// both alike.
func (b *Breaker) Release(p Permit, now time.Time) []Transition {
	if p.generation == b.generation && b.state == messages.BreakerState_half_open {
		b.releaseLease(p)
	}
	return nil
}

// Evidence returns the window's totals as of the last Done or Tick (a
// time window expires its buckets only then).
func (b *Breaker) Evidence() Evidence {
	w := &b.window
	e := Evidence{Calls: w.calls, Failures: w.failures, Slow: w.slow, Consecutive: b.consecutive}
	if w.calls > 0 {
		e.FailureRate = float64(w.failures) / float64(w.calls)
		e.SlowRate = float64(w.slow) / float64(w.calls)
	}
	return e
}

// isSlow reports whether o took longer than SlowCall: its time to first
// token for a stream, else its latency.
func (b *Breaker) isSlow(o Outcome) bool {
	if b.cfg.SlowCall == 0 {
		return false
	}
	d := o.Latency
	if o.FirstToken > 0 {
		d = o.FirstToken
	}
	return d > b.cfg.SlowCall
}

// verdict decides whether the evidence, just updated with o, trips the
// breaker, and why. exact is the open period when it is not the grown one.
// The first rule that holds wins: an auth failure (open for AuthOpen), a
// rate_limited failure with a Retry-After (open for exactly that), the
// failure rate, the slow rate, consecutive failures.
func (b *Breaker) verdict(o Outcome) (reason messages.BreakerTransition_Reason, exact time.Duration, trip bool) {
	c := &b.cfg
	if !o.Success() {
		if PolicyFor(o.Class).ForcesOpen {
			return messages.BreakerTransition_threshold, c.AuthOpen, true
		}
		if o.Class == messages.ErrorClass_rate_limited && o.RetryAfter > 0 {
			return messages.BreakerTransition_retry_after, o.RetryAfter, true
		}
	}
	e := b.Evidence()
	if e.Calls > 0 && e.Calls >= c.MinimumCalls {
		if c.FailureRate > 0 && e.FailureRate >= c.FailureRate {
			return messages.BreakerTransition_threshold, 0, true
		}
		if c.SlowRate > 0 && e.SlowRate >= c.SlowRate {
			return messages.BreakerTransition_slow, 0, true
		}
	}
	if c.ConsecutiveFailures > 0 && b.consecutive >= c.ConsecutiveFailures {
		return messages.BreakerTransition_consecutive, 0, true
	}
	return messages.BreakerTransition_unspecified, 0, false
}

// judgeTrial applies a half-open trial's outcome: SuccessThreshold
// successes close the breaker; a counted failure reopens it, as does a
// slow call when slow calls can trip it (SlowRate set), since closing on
// one would trip again at once. Auth and Retry-After failures open as they
// do from closed.
func (b *Breaker) judgeTrial(now time.Time, o Outcome) []Transition {
	if !o.Success() {
		reason, exact, _ := b.verdict(o)
		if exact == 0 {
			reason = messages.BreakerTransition_probe
		}
		return b.open(now, reason, o.Class, exact)
	}
	if b.cfg.SlowRate > 0 && b.isSlow(o) {
		return b.open(now, messages.BreakerTransition_slow, o.Class, 0)
	}
	b.successes++
	if b.successes < b.cfg.SuccessThreshold {
		return nil
	}
	return b.moveTo(messages.BreakerState_closed, now, messages.BreakerTransition_probe, o.Class, time.Time{})
}

// reportCrossing reports, once per crossing, that a metrics-only breaker
// would have tripped; the report is re-armed once the evidence falls back
// under every threshold.
func (b *Breaker) reportCrossing(now time.Time, o Outcome) []Transition {
	reason, _, trip := b.verdict(o)
	if !trip || b.crossed {
		b.crossed = trip
		return nil
	}
	b.crossed = true
	return []Transition{b.transition(b.state, now, reason, o.Class)}
}

// open trips the breaker: one more trip, open for exact, or for the grown
// and jittered period when exact is 0.
func (b *Breaker) open(now time.Time, reason messages.BreakerTransition_Reason, class messages.ErrorClass, exact time.Duration) []Transition {
	if b.state == messages.BreakerState_closed {
		b.resetTripsIfDue(now)
	}
	b.trips++
	d := exact
	if d == 0 {
		d = b.openDuration()
	}
	return b.moveTo(messages.BreakerState_open, now, reason, class, now.Add(d))
}

// moveTo changes the state, starts a new generation (so every permit out
// is stale and every lease freed), and returns the transition. Entering
// closed or half-open starts a fresh period of evidence; entering open
// keeps the evidence that tripped it on show.
func (b *Breaker) moveTo(to messages.BreakerState, now time.Time, reason messages.BreakerTransition_Reason, class messages.ErrorClass, openUntil time.Time) []Transition {
	from, evidence := b.state, b.Evidence()
	b.generation++
	b.state = to
	b.openUntil = openUntil
	b.class = class
	b.successes = 0
	b.crossed = false
	b.freeLeases()
	if to == messages.BreakerState_closed || to == messages.BreakerState_half_open {
		b.window.clear()
		b.consecutive = 0
	}
	if to == messages.BreakerState_closed {
		b.closedSince = now
	}
	t := b.transition(from, now, reason, class)
	t.Evidence = evidence
	return []Transition{t}
}

// transition describes the breaker as it now is, as entered from from.
func (b *Breaker) transition(from messages.BreakerState, now time.Time, reason messages.BreakerTransition_Reason, class messages.ErrorClass) Transition {
	return Transition{
		From: from, To: b.state, Reason: reason, Class: class,
		Generation: b.generation, OpenUntil: b.openUntil, Trips: b.trips,
		At: now, Evidence: b.Evidence(),
	}
}
