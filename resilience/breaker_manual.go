package resilience

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// ForceOpen refuses every call for d, then turns half-open (reason timer)
// so the model earns its traffic back through trials; d <= 0 keeps it open
// until another manual action. Forcing open does not count as a trip.
// reason is what the owner publishes, manual when unspecified. Forcing a
// forced-open breaker again sets the new period and is reported as a
// forced_open -> forced_open transition.
func (b *Breaker) ForceOpen(now time.Time, d time.Duration, reason messages.BreakerTransition_Reason) []Transition {
	if reason == messages.BreakerTransition_unspecified {
		reason = messages.BreakerTransition_manual
	}
	var until time.Time
	if d > 0 {
		until = now.Add(d)
	}
	return b.moveTo(messages.BreakerState_forced_open, now, reason, messages.ErrorClass_ok, until)
}

// Disable forces the breaker closed: it admits every call, never trips,
// records nothing and reports nothing until Reset, ForceOpen or
// MetricsOnly. It returns nil when already disabled.
func (b *Breaker) Disable(now time.Time) []Transition {
	if b.state == messages.BreakerState_disabled {
		return nil
	}
	return b.moveTo(messages.BreakerState_disabled, now, messages.BreakerTransition_manual, messages.ErrorClass_ok, time.Time{})
}

// MetricsOnly admits every call and records outcomes but never trips:
// when the evidence crosses a threshold it returns one report (a
// Transition from metrics_only to metrics_only with the reason it would
// have tripped for, Generation unchanged), and again only after the
// evidence has fallen back under every threshold. The window carries over
// from the state before. It returns nil when already metrics-only.
func (b *Breaker) MetricsOnly(now time.Time) []Transition {
	if b.state == messages.BreakerState_metrics_only {
		return nil
	}
	return b.moveTo(messages.BreakerState_metrics_only, now, messages.BreakerTransition_manual, messages.ErrorClass_ok, time.Time{})
}

// Reset closes the breaker with its evidence and trips cleared (reason
// manual). A closed breaker only has its evidence and trips cleared, which
// is not a transition: it returns nil, and calls already admitted stay
// valid.
func (b *Breaker) Reset(now time.Time) []Transition {
	b.trips = 0
	if b.state == messages.BreakerState_closed {
		b.window.clear()
		b.consecutive = 0
		b.closedSince = now
		return nil
	}
	return b.moveTo(messages.BreakerState_closed, now, messages.BreakerTransition_manual, messages.ErrorClass_ok, time.Time{})
}

// BreakerSnapshot is the part of a breaker worth persisting across a
// restart. Evidence is not kept: a restarted breaker starts a fresh
// window.
type BreakerSnapshot struct {
	State      messages.BreakerState
	Generation uint64
	Trips      int
	// OpenUntil ends an open or forced-open period; zero otherwise, and
	// for forced open until changed.
	OpenUntil time.Time
	// Class is the error class that caused the state (ok when none did).
	Class messages.ErrorClass
	// Origin is the node whose evidence put the breaker in its state. The
	// breaker does not know nodes: Snapshot leaves it empty and its owner
	// fills it in; Restore ignores it.
	Origin string
}

// Snapshot returns the breaker's persistent state.
func (b *Breaker) Snapshot() BreakerSnapshot {
	return BreakerSnapshot{State: b.state, Generation: b.generation, Trips: b.trips, OpenUntil: b.openUntil, Class: b.class}
}

// Report returns a transition that changes nothing: the breaker's state as
// it stands, with reason, for observers (a model actor restarted in the
// same process keeps its breaker and reports it as restored).
func (b *Breaker) Report(now time.Time, reason messages.BreakerTransition_Reason) Transition {
	return Transition{From: b.state, To: b.state, Reason: reason, Generation: b.generation,
		OpenUntil: b.openUntil, Trips: b.trips, At: now, Evidence: b.Evidence()}
}

// Restore puts the breaker in s's state (reason restored) with a
// generation above both its own and s's, so generations keep increasing
// across restarts. It always returns one Transition, so the restore is on
// the record even when the state is unchanged.
//
// An open breaker stays open until its OpenUntil, so a restart never
// reopens traffic to a failing model; one whose period ended while it was
// down, and a half-open one, restore as half-open with fresh permits. An
// unknown state restores as half-open too. The trip count is kept, and
// TripReset counts from the moment it is closed again.
func (b *Breaker) Restore(s BreakerSnapshot, now time.Time) []Transition {
	to, until := s.State, s.OpenUntil
	switch to {
	case messages.BreakerState_open, messages.BreakerState_forced_open:
		if (to == messages.BreakerState_open || !until.IsZero()) && !now.Before(until) {
			to, until = messages.BreakerState_half_open, time.Time{}
		}
	case messages.BreakerState_closed, messages.BreakerState_half_open,
		messages.BreakerState_disabled, messages.BreakerState_metrics_only:
		until = time.Time{}
	default:
		to, until = messages.BreakerState_half_open, time.Time{}
	}
	b.generation = max(b.generation, s.Generation)
	b.trips = max(s.Trips, 0)
	return b.moveTo(to, now, messages.BreakerTransition_restored, s.Class, until)
}

// Adopt opens the breaker because a peer serving the same upstream opened
// its own (reason peer): until the peer's open period ends, with the trip
// count raised to the peer's so that the next opening grows as the peer's
// would. Adopting is not a trip of this breaker. A closed or half-open
// breaker moves; an open one moves only when until is later than its own
// period (so a peer's grown reopening is taken). Forced-open, disabled and
// metrics-only breakers stay as the operator set them, and an until not
// after now changes nothing: those return nil.
func (b *Breaker) Adopt(now, until time.Time, trips int, class messages.ErrorClass) []Transition {
	if !until.After(now) {
		return nil
	}
	switch b.state {
	case messages.BreakerState_closed, messages.BreakerState_half_open:
	case messages.BreakerState_open:
		if !until.After(b.openUntil) {
			return nil
		}
	default:
		return nil
	}
	b.trips = max(b.trips, trips)
	return b.moveTo(messages.BreakerState_open, now, messages.BreakerTransition_peer, class, until)
}

// PeerClose closes an open or half-open breaker because the node holding
// the upstream's trial lease closed its own after a successful trial
// (reason peer). The trip count is kept, so TripReset runs from now as
// after a local close. Other states return nil.
func (b *Breaker) PeerClose(now time.Time) []Transition {
	if b.state != messages.BreakerState_open && b.state != messages.BreakerState_half_open {
		return nil
	}
	return b.moveTo(messages.BreakerState_closed, now, messages.BreakerTransition_peer, messages.ErrorClass_ok, time.Time{})
}

// Trip opens a closed or half-open breaker as if a threshold had tripped
// it: one more trip, for the grown open period. The owner uses it when
// evidence outside the breaker condemns the model, such as a regression
// during progressive restoration (reason threshold when unspecified). In
// any other state it returns nil.
func (b *Breaker) Trip(now time.Time, reason messages.BreakerTransition_Reason) []Transition {
	if b.state != messages.BreakerState_closed && b.state != messages.BreakerState_half_open {
		return nil
	}
	if reason == messages.BreakerTransition_unspecified {
		reason = messages.BreakerTransition_threshold
	}
	return b.open(now, reason, messages.ErrorClass_ok, 0)
}

// HalfOpen ends an open period early (reason probe), so trial calls test
// a model that recovery has just restarted with a fresh client. Only an
// open breaker moves; a forced-open one stays as the operator set it, and
// other states return nil.
func (b *Breaker) HalfOpen(now time.Time) []Transition {
	if b.state != messages.BreakerState_open {
		return nil
	}
	return b.moveTo(messages.BreakerState_half_open, now, messages.BreakerTransition_probe, messages.ErrorClass_ok, time.Time{})
}
