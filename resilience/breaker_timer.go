package resilience

import (
	"math"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// breakerLease is one half-open trial permit: held by the call with lease
// id until expires. id 0 means free.
type breakerLease struct {
	id      uint64
	expires time.Time
}

// Tick does what time alone does to the breaker, and returns the
// transitions: an open or forced-open period that has ended turns
// half-open (reason timer); in half-open, leases past PermitLease are
// freed; in closed, trips go back to 0 after TripReset; a time window
// expires its old buckets.
//
// A freed lease is not a transition and causes none (docs/policy.md, breaker case 3:
// an expired lease frees its permit for the next trial), so Tick never
// reports lease_expired; the lost call's late result is dropped, as a
// stale permit's would be. Tick never trips the breaker: thresholds are
// checked when an outcome is recorded, not when old ones expire.
func (b *Breaker) Tick(now time.Time) []Transition {
	switch b.state {
	case messages.BreakerState_open, messages.BreakerState_forced_open:
		if !b.openUntil.IsZero() && !now.Before(b.openUntil) {
			return b.moveTo(messages.BreakerState_half_open, now, messages.BreakerTransition_timer, messages.ErrorClass_ok, time.Time{})
		}
	case messages.BreakerState_half_open:
		b.expireLeases(now)
	case messages.BreakerState_closed:
		b.resetTripsIfDue(now)
		b.window.advance(now)
	case messages.BreakerState_metrics_only:
		b.window.advance(now)
	}
	return nil
}

// NextDeadline returns when Tick next has something to do: the end of the
// open period, the earliest half-open lease expiry, or the trip reset. ok
// is false when only a call or a manual action can change anything (time
// windows expire lazily and need no timer). The owner keeps one timer and
// re-reads this after every call that returned a transition, and after
// Allow in half-open.
func (b *Breaker) NextDeadline() (deadline time.Time, ok bool) {
	switch b.state {
	case messages.BreakerState_open, messages.BreakerState_forced_open:
		return b.openUntil, !b.openUntil.IsZero()
	case messages.BreakerState_half_open:
		return b.earliestLease()
	case messages.BreakerState_closed:
		if b.trips > 0 {
			return b.closedSince.Add(b.cfg.TripReset), true
		}
	}
	return time.Time{}, false
}

// openDuration is the open period of trip number b.trips: OpenDuration
// grown by Growth, capped at MaxOpenDuration, then spread by OpenJitter.
// The cap applies before jitter so that breakers at the cap still spread
// out; the longest period is MaxOpenDuration x (1 + OpenJitter).
func (b *Breaker) openDuration() time.Duration {
	c := &b.cfg
	d := float64(c.OpenDuration)
	if c.Growth == GrowLinear {
		d *= float64(b.trips)
	} else {
		d *= math.Pow(c.Multiplier, float64(b.trips-1))
	}
	d = min(d, float64(c.MaxOpenDuration))
	if c.OpenJitter > 0 && b.random != nil {
		r := b.random()
		if !(r >= 0 && r < 1) {
			r = 0.5 // a broken source gets no jitter rather than a wild one
		}
		d *= 1 + c.OpenJitter*(2*r-1)
	}
	return time.Duration(d)
}

// resetTripsIfDue forgets the trips once the breaker has stayed closed
// TripReset. Open calls it too, so the count is right even when the
// owner's timer is late.
func (b *Breaker) resetTripsIfDue(now time.Time) {
	if b.trips > 0 && !now.Before(b.closedSince.Add(b.cfg.TripReset)) {
		b.trips = 0
	}
}

// acquireLease takes a free trial permit, reclaiming expired leases when
// none is free.
func (b *Breaker) acquireLease(now time.Time) (Permit, bool) {
	i := b.freeLeaseSlot()
	if i < 0 {
		b.expireLeases(now)
		if i = b.freeLeaseSlot(); i < 0 {
			return Permit{}, false
		}
	}
	b.leaseSeq++
	b.leases[i] = breakerLease{id: b.leaseSeq, expires: now.Add(b.cfg.PermitLease)}
	return Permit{generation: b.generation, lease: b.leaseSeq, slot: int32(i)}, true
}

// freeLeaseSlot returns the index of a free lease, or -1.
func (b *Breaker) freeLeaseSlot() int {
	for i, l := range b.leases {
		if l.id == 0 {
			return i
		}
	}
	return -1
}

// releaseLease frees p's lease and reports whether p still held it; an
// expired lease may have gone to another call since.
func (b *Breaker) releaseLease(p Permit) bool {
	if p.lease == 0 || int(p.slot) >= len(b.leases) || b.leases[p.slot].id != p.lease {
		return false
	}
	b.leases[p.slot] = breakerLease{}
	return true
}

// expireLeases frees the leases held past their expiry.
func (b *Breaker) expireLeases(now time.Time) {
	for i := range b.leases {
		if l := &b.leases[i]; l.id != 0 && !now.Before(l.expires) {
			*l = breakerLease{}
		}
	}
}

// freeLeases frees every lease, at a change of generation.
func (b *Breaker) freeLeases() {
	clear(b.leases)
}

// earliestLease returns the first expiry among the held leases.
func (b *Breaker) earliestLease() (time.Time, bool) {
	var first time.Time
	for _, l := range b.leases {
		if l.id != 0 && (first.IsZero() || l.expires.Before(first)) {
			first = l.expires
		}
	}
	return first, !first.IsZero()
}
