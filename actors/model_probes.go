package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
)

// Recovery probes: while a model's breaker is open, and while it ramps
// back after closing, it is probed at short intervals (the spec's
// OpenProbeInterval and RampProbeInterval), so that a model that healed is
// noticed and brought back on evidence rather than on the open period and
// the ramp's holds alone.
//
// While open, a probe success half-opens the breaker at once (reason
// probe): its open period is a maximum, not a minimum. A failure changes
// nothing: the period is neither lengthened nor counted as a trip (a
// half-open trial's failure still reopens for the grown period, as
// before). With Peers.Leases a node probes an open model only while it
// holds the upstream's trial lease, asked for again before every probe (a
// holder's ask keeps it, and the Leases refresh it while it is held; the
// bucket's TTL frees it if the holder dies), so
// one node in the deployment probes: the others lost the lease and ask
// again only after its TTL. They stay open until the holder's trials close
// it, as at the end of a period. The holder keeps the lease while the
// model stays open and gives it back when the breaker leaves open and
// half-open. No probe goes out before a Retry-After ends: an opening for
// a Retry-After (or a peer's rate_limited opening) and a probe answered
// with one pause the probes until then.
//
// While ramping, a probe's outcome is evidence of the step, as a call's is
// (resilience.RampConfig.Successes passes a step on it).

// recoveryPhase is what a model's recovery probes are for.
type recoveryPhase int

const (
	phaseNone recoveryPhase = iota
	phaseOpen               // the breaker is open: probe to half-open it early
	phaseRamp               // the model ramps back: probe for evidence of the step
)

// recoveryPhaseNow returns the phase the model is in and its probe period.
func (m *model) recoveryPhaseNow() (recoveryPhase, time.Duration) {
	switch {
	case !m.enabled:
	case m.breaker.State() == messages.BreakerState_open && m.spec.OpenProbeInterval > 0:
		return phaseOpen, m.spec.OpenProbeInterval
	case m.breaker.State() == messages.BreakerState_closed && m.ramp.Ramping() && m.spec.RampProbeInterval > 0:
		return phaseRamp, m.spec.RampProbeInterval
	}
	return phaseNone, 0
}

// planRecovery plans the first probe of a phase the model just entered,
// one jittered period from now and not before probePause.
//
// The jitter only shortens a period (80 to 100 % of it), so the interval
// is a bound: a model that heals is probed within it. That bound is what
// a busy model's time back is made of (its trials and ramp take well
// under a second at 100 requests/s).
func (m *model) planRecovery(now time.Time) {
	phase, every := m.recoveryPhaseNow()
	if phase == m.recoveryFor {
		return
	}
	m.recoveryFor, m.nextRecovery = phase, time.Time{}
	if phase != phaseNone {
		m.nextRecovery = later(now.Add(m.jitteredDown(every)), m.probePause)
	}
}

// recoveryDue sends the recovery probe that is due at now, if any, and
// plans the next one.
func (m *model) recoveryDue(ctx actor.Context, now time.Time) {
	m.planRecovery(now)
	if m.nextRecovery.IsZero() || now.Before(m.nextRecovery) {
		return
	}
	_, every := m.recoveryPhaseNow()
	m.nextRecovery = later(now.Add(m.jitteredDown(every)), m.probePause)
	if m.recoveryFor == phaseOpen && m.env.cfg.Peers.Leases != nil && m.lease != leaseBypass {
		m.askLease(ctx, now) // leaseAnswered probes when this node holds it
		return
	}
	m.probe(ctx)
}

// probeLeaseHeld reports whether this node may probe an open model: it
// holds the trial lease, or the lease could not be asked for.
func (m *model) probeLeaseHeld() bool {
	return m.lease == leaseHeld || m.lease == leaseBypass
}

// earlyProbe reports whether a probe sent now, while the breaker is open,
// may half-open it when it succeeds.
func (m *model) earlyProbe(now time.Time) bool {
	return m.breaker.State() == messages.BreakerState_open && m.spec.OpenProbeInterval > 0 &&
		!now.Before(m.probePause) && (m.env.cfg.Peers.Leases == nil || m.probeLeaseHeld())
}

// earlyProbeDone acts on an early probe's outcome: a success half-opens
// the breaker (this node keeps the lease for the trials), a failure
// changes nothing. It reports whether the state changed.
func (m *model) earlyProbeDone(ctx actor.Context, p *probeDone, now time.Time) bool {
	if !p.early || !p.outcome.Success() || p.gen != m.breaker.Snapshot().Generation ||
		m.breaker.State() != messages.BreakerState_open {
		return false // failed, or the breaker moved meanwhile
	}
	return m.transitions(ctx, m.breaker.HalfOpen(now), "probe")
}

// pauseProbes keeps recovery probes away until until (a Retry-After).
func (m *model) pauseProbes(until time.Time) {
	m.probePause = later(m.probePause, until)
	if !m.nextRecovery.IsZero() {
		m.nextRecovery = later(m.nextRecovery, m.probePause)
	}
}

// jitteredDown is d shortened by up to 20 %, at random.
func (m *model) jitteredDown(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.2*m.env.random()))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
