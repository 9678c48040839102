package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// ControlOp is a manual action on a model.
type ControlOp string

// Manual actions.
const (
	// OpStatus changes nothing and returns the model's status.
	OpStatus ControlOp = "status"
	// OpForceOpen refuses all traffic, for a duration or until changed.
	OpForceOpen ControlOp = "breaker_open"
	// OpClose closes the breaker (its evidence and trips cleared); traffic
	// then ramps back.
	OpClose ControlOp = "breaker_close"
	// OpReset clears the breaker's evidence and trips and closes it.
	OpReset ControlOp = "breaker_reset"
	// OpDisableBreaker forces the breaker closed: it never trips.
	OpDisableBreaker ControlOp = "breaker_disable"
	// OpMetricsOnly records and reports but never trips.
	OpMetricsOnly ControlOp = "breaker_metrics_only"
	// OpDisable takes the model out of rotation (health: maintenance).
	OpDisable ControlOp = "model_disable"
	// OpEnable puts it back.
	OpEnable ControlOp = "model_enable"
)

// control applies a manual action and answers with the model's status.
// Every change is published with who asked; manual actions are also
// RecoveryEvents (kind manual_action) for the audit trail.
func (m *model) control(ctx actor.Context, c *control) *controlDone {
	now := m.env.now()
	var ts []resilience.Transition
	switch c.op {
	case OpStatus:
		return &controlDone{status: m.status()}
	case OpForceOpen:
		ts = m.breaker.ForceOpen(now, c.duration, messages.BreakerTransition_manual)
	case OpClose, OpReset:
		ts = m.breaker.Reset(now)
	case OpDisableBreaker:
		ts = m.breaker.Disable(now)
	case OpMetricsOnly:
		ts = m.breaker.MetricsOnly(now)
	case OpDisable:
		m.enabled = false
		m.healthChanges(ctx, m.health.SetMaintenance(now, true))
	case OpEnable:
		m.enabled = true
		m.healthChanges(ctx, m.health.SetMaintenance(now, false))
	default:
		return &controlDone{err: fmt.Errorf("unknown action %q", c.op)}
	}
	m.transitions(ctx, ts, c.actor)
	m.env.pub.Recovery(&messages.RecoveryEvent{
		Time:   timestamp(now),
		Node:   m.env.cfg.Node,
		Model:  m.spec.Name,
		Kind:   messages.RecoveryEvent_manual_action,
		Actor:  c.actor,
		Detail: manualDetail(c),
	})
	m.log.Info().Str("action", string(c.op)).Str("actor", c.actor).Str("reason", c.reason).Msg("manual action")
	m.sendView(ctx)
	m.schedule(ctx)
	return &controlDone{status: m.status()}
}

func manualDetail(c *control) string {
	s := string(c.op)
	if c.duration > 0 {
		s += " for " + c.duration.String()
	}
	if c.reason != "" {
		s += ": " + c.reason
	}
	return s
}

// status describes the model for admin replies and the dashboard.
func (m *model) status() *messages.ModelStatus {
	return &messages.ModelStatus{
		Name:           m.spec.Name,
		Provider:       m.spec.Kind,
		Breaker:        m.breaker.State(),
		Health:         m.health.Status(),
		RampPercent:    int32(m.ramp.Percent()),
		InFlight:       int32(len(m.inFlight)),
		MaxConcurrent:  int32(m.spec.MaxConcurrent),
		Enabled:        m.enabled,
		Requests:       m.counts.requests,
		Probes:         m.counts.probes,
		Successes:      m.counts.successes,
		Failures:       m.counts.failures,
		Fallbacks:      m.spec.Fallbacks,
		Strategy:       string(m.spec.Strategy),
		Evidence:       m.health.Snapshot().Evidence(),
		BreakerSince:   timestamp(m.breakerSince),
		Queued:         int32(len(m.queue)),
		BreakerOrigin:  m.origin,
		BreakerAdopted: m.adopted,
		Identity:       m.spec.Identity,
	}
}
