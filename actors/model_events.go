package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
	"github.com/cmmv-hive/resilience/route"
)

// transitions publishes breaker transitions, saves the new snapshot,
// starts or stops the ramp, and tells recovery. It reports whether the
// state changed. A model's transitions are logged here, once.
func (m *model) transitions(ctx actor.Context, ts []resilience.Transition, actorName string) bool {
	if len(ts) == 0 {
		return false
	}
	changed := false
	for _, t := range ts {
		ev := m.breakerEvent(t, actorName)
		m.env.pub.Breaker(ev)
		if m.env.recovery != nil {
			ctx.Send(m.env.recovery, ev)
		}
		if !t.Changed() {
			// A report without a change: a restore into the same state, a
			// forced period set anew, or a metrics-only threshold crossing.
			m.log.Info().Str("state", t.To.String()).Str("reason", t.Reason.String()).Msg("breaker report")
			continue
		}
		changed = true
		m.breakerSince = t.At
		m.originAfter(t)
		m.leaseAfter(t)
		m.log.Info().Str("from", t.From.String()).Str("to", t.To.String()).Str("reason", t.Reason.String()).
			Int("trips", t.Trips).Int("failures", t.Evidence.Failures).Int("calls", t.Evidence.Calls).Msg("breaker transition")
		switch t.To {
		case messages.BreakerState_closed:
			if t.From == messages.BreakerState_half_open || t.From == messages.BreakerState_open || t.From == messages.BreakerState_forced_open {
				m.rampEvent(ctx, t.At, m.ramp.Start(t.At), closeTrigger(t, actorName))
			}
		case messages.BreakerState_open, messages.BreakerState_forced_open:
			m.ramp.Stop()
			if t.Reason == messages.BreakerTransition_retry_after ||
				t.Reason == messages.BreakerTransition_peer && t.Class == messages.ErrorClass_rate_limited {
				m.pauseProbes(t.OpenUntil) // the upstream asked for a pause: no probe before it ends
			}
		}
	}
	snap := m.breaker.Snapshot()
	snap.Origin = m.origin
	m.env.store.Save(m.spec.Name, snap)
	return changed
}

// originAfter notes whose evidence a changed transition t stands on:
// a peer's while adopting, this node's otherwise; nobody's once closed.
// This node's own node-local openings witness a peer's (see Witnesses).
func (m *model) originAfter(t resilience.Transition) {
	switch {
	case t.To == messages.BreakerState_closed:
		m.origin, m.adopted = "", false
	case m.peerOrigin != "":
		m.origin, m.adopted = m.peerOrigin, true
	default:
		m.origin, m.adopted = m.env.cfg.Node, false
		if t.To == messages.BreakerState_open && !resilience.PolicyFor(t.Class).PeerAtOnce {
			m.witnesses.Witness(t.At, m.env.cfg.Node)
		}
	}
}

func (m *model) breakerEvent(t resilience.Transition, actorName string) *messages.BreakerTransition {
	ev := &messages.BreakerTransition{
		Time:       timestamppb.New(t.At),
		Node:       m.env.cfg.Node,
		Model:      m.spec.Name,
		From:       t.From,
		To:         t.To,
		Reason:     t.Reason,
		Generation: uint32(t.Generation),
		Trips:      int32(t.Trips),
		Actor:      actorName,
		Class:      t.Class,
		Identity:   m.spec.Identity,
		Origin:     m.env.cfg.Node,
		Evidence: &messages.Evidence{
			Calls:               int32(t.Evidence.Calls),
			Failures:            int32(t.Evidence.Failures),
			ConsecutiveFailures: int32(t.Evidence.Consecutive),
			SuccessRate:         successRate(t.Evidence),
			SlowRate:            t.Evidence.SlowRate,
		},
	}
	if m.peerOrigin != "" {
		ev.Origin = m.peerOrigin
	}
	if !t.OpenUntil.IsZero() {
		ev.OpenUntil = timestamppb.New(t.OpenUntil)
	}
	return ev
}

func successRate(e resilience.Evidence) float64 {
	if e.Calls == 0 {
		return 1
	}
	return 1 - e.FailureRate
}

// healthChanges publishes health status changes and tells recovery.
func (m *model) healthChanges(ctx actor.Context, cs []resilience.HealthChange) bool {
	for _, c := range cs {
		ev := &messages.HealthChanged{
			Time:     timestamppb.New(c.At),
			Node:     m.env.cfg.Node,
			Model:    m.spec.Name,
			From:     c.From,
			To:       c.To,
			Reason:   c.Reason,
			Evidence: c.Evidence.Evidence(),
		}
		m.env.pub.Health(ev)
		if m.env.recovery != nil {
			ctx.Send(m.env.recovery, ev)
		}
		m.log.Info().Str("from", c.From.String()).Str("to", c.To.String()).Str("reason", c.Reason).Msg("health changed")
	}
	return len(cs) > 0
}

// The triggers of ramp_step RecoveryEvents: what moved the ramp.
const (
	triggerClosed = "breaker_closed" // Start: trials of real traffic closed the breaker (or an operator did)
	triggerProbe  = "probe"          // a probe: its trial closed the breaker, or its outcome judged the step
	triggerPeer   = "peer"           // Start: the node holding the trial lease closed it
	triggerCalls  = "calls"          // a real call's outcome judged the step
	triggerHold   = "hold"           // time: the step's hold (or maxHold) passed
)

// closeTrigger names what closed the breaker in t, for the ramp's start.
func closeTrigger(t resilience.Transition, actorName string) string {
	switch {
	case actorName == triggerProbe:
		return triggerProbe
	case t.Reason == messages.BreakerTransition_peer:
		return triggerPeer
	}
	return triggerClosed
}

// rampEvent publishes a progressive-restoration step, with what moved it
// (trigger). A regression sends the model back to open.
func (m *model) rampEvent(ctx actor.Context, now time.Time, ev resilience.RampEvent, trigger string) {
	m.env.pub.Recovery(&messages.RecoveryEvent{
		Time:        timestamppb.New(ev.At),
		Node:        m.env.cfg.Node,
		Model:       m.spec.Name,
		Kind:        messages.RecoveryEvent_ramp_step,
		Trigger:     trigger,
		DurationMs:  messages.Millis(ev.Held),
		RampPercent: int32(ev.To),
		Detail:      ev.String(),
	})
	m.log.Info().Int("from", ev.From).Int("to", ev.To).Str("step", ev.Kind.String()).Str("trigger", trigger).Msg("traffic ramp")
	if ev.Kind == resilience.RampRegressed {
		m.transitions(ctx, m.breaker.Trip(now, messages.BreakerTransition_threshold), "")
	}
}

// sendView tells the router what it needs to route around this model.
func (m *model) sendView(ctx actor.Context) {
	if m.env.router == nil {
		return
	}
	snap := m.health.Snapshot()
	v := &view{name: m.spec.Name, View: route.View{
		Up:      true,
		Enabled: m.enabled,
		Breaker: m.breaker.State(),
		Ramp:    m.ramp.Percent(),
		Score:   snap.Score,
		P95:     m.p95,
	}}
	if v.P95 == 0 {
		v.P95 = snap.P95
	}
	if s := m.breaker.Snapshot(); !s.OpenUntil.IsZero() {
		v.OpenUntil = s.OpenUntil
	}
	ctx.Send(m.env.router, v)
}
