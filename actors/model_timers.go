package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// A model actor keeps one timer: at the earliest of the breaker's, the
// ramp's, the next probe's, the next recovery probe's and the next health
// tick's deadlines. A timer
// is a message to itself; a stale one (superseded) is ignored by seq.

// schedule (re)arms the timer for the earliest deadline.
func (m *model) schedule(ctx actor.Context) {
	at := m.lastTick.Add(healthTickEvery)
	now := m.env.now()
	m.planRecovery(now)
	switch {
	case !m.leaseGated(now):
		if d, ok := m.breaker.NextDeadline(); ok && d.Before(at) {
			at = d
		}
	case m.lease == leaseWaiting && m.leaseRetry.Before(at):
		at = m.leaseRetry
	case m.lease == leaseIdle:
		at = now // ask for the lease at once
	}
	if d, ok := m.ramp.NextDeadline(); ok && d.Before(at) {
		at = d
	}
	if !m.nextProbe.IsZero() && m.nextProbe.Before(at) {
		at = m.nextProbe
	}
	if !m.nextRecovery.IsZero() && m.nextRecovery.Before(at) {
		at = m.nextRecovery
	}
	if !m.timerAt.IsZero() && !at.Before(m.timerAt) {
		return // an earlier or equal timer is already armed
	}
	m.stopTimer()
	m.timerSeq++
	m.timerAt = at
	seq, self, root := m.timerSeq, ctx.Self(), ctx.ActorSystem().Root
	m.timerStop = time.AfterFunc(max(at.Sub(now), 0), func() { root.Send(self, &timerFired{seq: seq}) }).Stop
}

func (m *model) stopTimer() {
	if m.timerStop != nil {
		m.timerStop()
		m.timerStop = nil
	}
	m.timerAt = time.Time{}
}

// tick gives every policy the time, then re-arms the timer.
func (m *model) tick(ctx actor.Context) {
	now := m.env.now()
	changed := false
	if m.leaseGated(now) {
		m.askLease(ctx, now)
	} else {
		changed = m.transitions(ctx, m.breaker.Tick(now), "")
	}
	if m.ramp.Ramping() {
		if ev, ok := m.ramp.Tick(now); ok {
			m.rampEvent(ctx, now, ev, triggerHold)
			changed = true
		}
	}
	if !now.Before(m.lastTick.Add(healthTickEvery)) {
		m.lastTick = now
		changed = m.healthChanges(ctx, m.health.Tick(now)) || changed
	}
	if !m.nextProbe.IsZero() && !now.Before(m.nextProbe) {
		m.nextProbe = now.Add(m.jittered(m.spec.ProbeInterval))
		m.probe(ctx)
	}
	m.recoveryDue(ctx, now)
	if changed {
		m.sendView(ctx)
	}
	m.schedule(ctx)
}

// probeRequest is the active health check: the smallest possible call.
var probeRequest = &messages.InferRequest{
	RequestId: "health-probe",
	Messages:  []*messages.ChatMessage{{Role: "user", Content: "ping"}},
	MaxTokens: 1,
}

// probe runs one health check in a goroutine. In half-open it takes a
// trial permit, so probes can close a breaker that sees no traffic; in
// open it informs health, and half-opens the breaker when it succeeds and
// this node may probe early (model_probes.go); while ramping its outcome
// is evidence of the step.
func (m *model) probe(ctx actor.Context) {
	if m.probing || !m.enabled {
		return
	}
	now := m.env.now()
	var permit resilience.Permit
	trial := false
	if m.breaker.State() == messages.BreakerState_half_open {
		p, err := m.breaker.Allow(now)
		if err != nil {
			return // every trial permit is taken: real traffic is probing
		}
		permit, trial = p, true
	}
	done := probeDone{permit: permit, trial: trial, early: m.earlyProbe(now),
		ramp: m.ramp.Ramping() && m.breaker.State() == messages.BreakerState_closed,
		gen:  m.breaker.Snapshot().Generation}
	m.probing = true
	self, root, provider, clock, timeout := ctx.Self(), ctx.ActorSystem().Root, m.provider, m.env.now, m.spec.ProbeTimeout
	probes := m.probes // cancelled when this incarnation stops
	m.env.wg.Add(1)
	go func() {
		defer m.env.wg.Done()
		pctx, cancel := context.WithTimeout(probes, timeout)
		defer cancel()
		began := clock()
		_, err, panicked := complete(pctx, provider, probeRequest)
		o := resilience.Outcome{Latency: clock().Sub(began)}
		switch {
		case panicked != nil:
			o.Class = messages.ErrorClass_server_error
		case err != nil:
			o.Class, o.RetryAfter = err.Class, err.RetryAfter
		}
		done.outcome = o
		root.Send(self, &done)
	}()
}

func (m *model) probeFinished(ctx actor.Context, p *probeDone) {
	m.probing = false
	m.counts.alert.probe(p.outcome)
	m.counts.probes++
	now := m.env.now()
	if p.outcome.RetryAfter > 0 {
		m.pauseProbes(now.Add(p.outcome.RetryAfter))
	}
	changed := false
	rampEvidence := p.ramp && p.gen == m.breaker.Snapshot().Generation && m.ramp.Ramping()
	if p.trial {
		changed = m.transitions(ctx, m.breaker.Done(p.permit, now, p.outcome), "probe")
	} else {
		changed = m.earlyProbeDone(ctx, p, now)
	}
	changed = m.healthChanges(ctx, m.health.Probe(now, p.outcome)) || changed
	if rampEvidence {
		if ev, ok := m.ramp.Observe(now, p.outcome); ok {
			m.rampEvent(ctx, now, ev, triggerProbe)
			changed = true
		}
	}
	if changed {
		m.sendView(ctx)
	}
	// While half-open with no traffic, keep probing until it decides.
	if m.breaker.State() == messages.BreakerState_half_open && p.outcome.Success() {
		ctx.Send(ctx.Self(), &probeDue{})
	}
	m.schedule(ctx)
}

// beginProbing is recovery's request after a restart with a fresh client:
// end the open period early and test the model now. A breaker still closed
// is tripped first: health evidence condemned the model, so only trial
// calls may reach it until a probe or a trial succeeds (full traffic to a
// model recovery just restarted would only hand it more failures).
func (m *model) beginProbing(ctx actor.Context, b *beginProbing) {
	now := m.env.now()
	if m.breaker.State() == messages.BreakerState_closed {
		m.transitions(ctx, m.breaker.Trip(now, messages.BreakerTransition_threshold), b.trigger)
	}
	m.transitions(ctx, m.breaker.HalfOpen(now), b.trigger)
	m.sendView(ctx)
	m.probe(ctx)
	m.schedule(ctx)
}

func asOpenError(err error, target **resilience.OpenError) bool { return errors.As(err, target) }
