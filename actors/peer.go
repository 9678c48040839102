package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// A model actor acts on other nodes' breaker events for its upstream
// (docs/policy.md, "Sharing breaker state between nodes"): it adopts their
// trusted openings for the rest of their period, and, with Leases, leaves
// the half-open trials of an ended period to the one node holding the
// upstream's lease, closing or reopening when that node reports.

// leaseState is where a model is in asking for its upstream's trial lease.
type leaseState int

const (
	leaseIdle    leaseState = iota // not needed: the breaker is not open past its period
	leaseAsking                    // a request is out
	leaseWaiting                   // another node holds it; ask again at leaseRetry
	leaseHeld                      // this node takes the trials
	leaseBypass                    // the lease could not be asked for: trials are this node's, as without Leases
)

// peer takes another node's transition of the same upstream.
func (m *model) peer(ctx actor.Context, ev *messages.BreakerTransition) {
	if ev.GetNode() == m.env.cfg.Node || ev.GetReason() == messages.BreakerTransition_peer {
		return // our own, or adopted: only first-hand evidence travels
	}
	now := m.env.now()
	switch {
	case ev.GetTo() == messages.BreakerState_open:
		o := resilience.PeerOpen{Node: ev.GetNode(), Class: ev.GetClass(), Until: ev.GetOpenUntil().AsTime(), Trips: int(ev.GetTrips())}
		if ev.GetOpenUntil() == nil || !m.witnesses.Judge(now, o) {
			if m.lease == leaseWaiting && ev.GetFrom() == messages.BreakerState_half_open {
				m.leaseRetry = now // the holder's trial ended: ask again
				m.schedule(ctx)
			}
			m.log.Debug().Str("peer", ev.GetNode()).Str("class", ev.GetClass().String()).Msg("peer opening noted, not adopted (no second witness)")
			return
		}
		m.adopt(ctx, ev.GetNode(), m.breaker.Adopt(now, o.Until, o.Trips, o.Class))
	case ev.GetTo() == messages.BreakerState_closed && ev.GetFrom() == messages.BreakerState_half_open:
		// The peer's trials succeeded. Without leases every node runs its
		// own trials, so only a lease holder's success is taken.
		if m.env.cfg.Peers.Leases == nil {
			return
		}
		m.adopt(ctx, ev.GetNode(), m.breaker.PeerClose(now))
	}
}

// adopt publishes transitions taken from node, with node as their origin.
func (m *model) adopt(ctx actor.Context, node string, ts []resilience.Transition) {
	if len(ts) == 0 {
		return
	}
	m.peerOrigin = node
	m.transitions(ctx, ts, "")
	m.peerOrigin = ""
	m.sendView(ctx)
	m.schedule(ctx)
}

// leaseGated reports whether the breaker's ended open period waits for the
// trial lease instead of turning half-open by itself.
func (m *model) leaseGated(now time.Time) bool {
	if m.env.cfg.Peers.Leases == nil || m.breaker.State() != messages.BreakerState_open {
		return false
	}
	d, ok := m.breaker.NextDeadline()
	return ok && !now.Before(d) && m.lease != leaseHeld && m.lease != leaseBypass
}

// askLease asks for the trial lease in a goroutine, unless a request is
// already out or the holder's time is not yet up.
func (m *model) askLease(ctx actor.Context, now time.Time) {
	if m.lease == leaseAsking || (m.lease == leaseWaiting && now.Before(m.leaseRetry)) {
		return
	}
	m.lease = leaseAsking
	self, root, leases, identity := ctx.Self(), ctx.ActorSystem().Root, m.env.cfg.Peers.Leases, m.spec.Identity
	gen, probes := m.breaker.Snapshot().Generation, m.probes
	m.env.wg.Add(1)
	go func() {
		defer m.env.wg.Done()
		won, err := leases.Acquire(probes, identity)
		root.Send(self, &leaseDone{gen: gen, won: won, err: err})
	}()
}

// leaseAnswered acts on the lease: the holder turns half-open and takes
// the trials; the others keep the breaker open until the holder reports,
// or until the lease's TTL, in case the holder died.
func (m *model) leaseAnswered(ctx actor.Context, d *leaseDone) {
	if m.lease != leaseAsking {
		return
	}
	if d.gen != m.breaker.Snapshot().Generation {
		// A peer's report moved the breaker meanwhile.
		m.lease = leaseIdle
		if d.won {
			m.env.cfg.Peers.Leases.Release(m.spec.Identity)
		}
		m.schedule(ctx)
		return
	}
	now := m.env.now()
	switch {
	case d.err != nil:
		m.log.Warn().Err(d.err).Msg("trial lease not available: this node takes the half-open trials itself")
		m.lease = leaseBypass
	case d.won:
		m.lease = leaseHeld
	default:
		m.lease, m.leaseRetry = leaseWaiting, now.Add(m.env.cfg.Peers.LeaseTTL)
		m.log.Debug().Msg("another node holds the trial lease: staying open until it reports")
		m.schedule(ctx)
		return
	}
	if m.transitions(ctx, m.breaker.Tick(now), "") {
		m.sendView(ctx)
	}
	if m.lease == leaseHeld && (m.spec.ProbeInterval > 0 || m.spec.OpenProbeInterval > 0) {
		m.probe(ctx) // a trial after the period, or an early probe while open
	}
	m.schedule(ctx)
}

// leaseAfter updates the lease for a changed transition t: a holder whose
// trials decided, or whose open breaker left open other than for its
// trials (a peer's close, an operator), gives the lease back; a breaker
// that left open, or opened anew, needs no lease until its new period
// ends or its next early probe.
func (m *model) leaseAfter(t resilience.Transition) {
	if m.env.cfg.Peers.Leases == nil {
		return
	}
	if m.lease == leaseHeld && (t.From == messages.BreakerState_half_open || t.To != messages.BreakerState_half_open) {
		m.env.cfg.Peers.Leases.Release(m.spec.Identity)
	}
	if t.To != messages.BreakerState_half_open {
		m.lease = leaseIdle
	}
}
