package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
)

// recovery restarts models that health evidence condemns, with a fresh
// provider client, and puts them through half-open probing: automatic
// recovery that needs no human. It acts on this node's models only; events
// of other nodes' models are noted. At most MaxConcurrent recoveries run at
// once; further triggers wait their turn.
type recovery struct {
	env        *env
	supervisor *actor.PID
	local      map[string]bool

	active  map[string]*recoveryRun
	pending []pendingRecovery
	ended   map[string]time.Time // for the cooldown
	seq     uint64
}

type recoveryRun struct {
	trigger string
	began   time.Time
	seq     uint64
}

type pendingRecovery struct{ model, trigger string }

type recoveryTimeout struct {
	model string
	seq   uint64
}

func newRecovery(e *env, supervisor *actor.PID) *recovery {
	local := make(map[string]bool, len(e.cfg.Models))
	for _, m := range e.cfg.Models {
		local[m.Name] = true
	}
	return &recovery{env: e, supervisor: supervisor, local: local, active: make(map[string]*recoveryRun), ended: make(map[string]time.Time)}
}

func (r *recovery) Receive(ctx actor.Context) {
	switch ev := ctx.Message().(type) {
	case *messages.HealthChanged:
		if !r.mine(ev.GetNode(), ev.GetModel()) {
			return
		}
		if run, ok := r.active[ev.Model]; ok {
			switch ev.To {
			case messages.HealthStatus_available:
				r.end(ctx, ev.Model, run, true, "health available")
			case messages.HealthStatus_unavailable:
				if r.env.now().Sub(run.began) > time.Second {
					r.end(ctx, ev.Model, run, false, "still unavailable: "+ev.Reason)
				}
			}
			return
		}
		if trigger := r.trigger(ev); trigger != "" {
			r.request(ctx, ev.Model, trigger)
		}
	case *messages.BreakerTransition:
		if !r.mine(ev.GetNode(), ev.GetModel()) {
			return
		}
		run, ok := r.active[ev.Model]
		if !ok {
			return
		}
		switch {
		case ev.To == messages.BreakerState_closed && ev.From != messages.BreakerState_closed:
			// A change only: the restarted actor's report of a breaker
			// still closed (closed -> closed, restored) proves nothing.
			r.end(ctx, ev.Model, run, true, "breaker closed")
		case ev.From == messages.BreakerState_half_open && ev.To == messages.BreakerState_open:
			r.end(ctx, ev.Model, run, false, "trial failed: breaker reopened")
		}
	case *recoveryTimeout:
		if run, ok := r.active[ev.model]; ok && run.seq == ev.seq {
			r.end(ctx, ev.model, run, false, fmt.Sprintf("not recovered within %v", r.env.cfg.Recovery.Timeout))
		}
	}
}

func (r *recovery) mine(node, model string) bool {
	return node == r.env.cfg.Node && r.local[model] && !r.env.cfg.Recovery.Disabled
}

// trigger names the proposal's rule a health change meets, or "".
func (r *recovery) trigger(ev *messages.HealthChanged) string {
	c := r.env.cfg.Recovery
	e := ev.GetEvidence()
	switch {
	case ev.To == messages.HealthStatus_unavailable:
		return "model_unavailable"
	case int(e.GetCalls()) >= c.MinCalls && 1-e.GetSuccessRate() > c.ErrorRate:
		return "error_rate"
	case e.GetLatencyAvgMs() > float64(c.ResponseTime.Milliseconds()):
		return "response_time"
	case int(e.GetFailures()) > c.Failures:
		return "failures"
	}
	return ""
}

// request starts a recovery now, or queues it when MaxConcurrent run.
func (r *recovery) request(ctx actor.Context, model, trigger string) {
	if last, ok := r.ended[model]; ok && r.env.now().Sub(last) < r.env.cfg.Recovery.Cooldown {
		return
	}
	if len(r.active) >= r.env.cfg.Recovery.MaxConcurrent {
		for _, p := range r.pending {
			if p.model == model {
				return
			}
		}
		r.pending = append(r.pending, pendingRecovery{model, trigger})
		return
	}
	now := r.env.now()
	r.seq++
	run := &recoveryRun{trigger: trigger, began: now, seq: r.seq}
	r.active[model] = run
	r.env.pub.Recovery(&messages.RecoveryEvent{
		Time: timestamp(now), Node: r.env.cfg.Node, Model: model,
		Kind: messages.RecoveryEvent_recovery_started, Trigger: trigger,
		Detail: "restarting with a fresh provider client, then probing",
	})
	r.env.log.Warn().Str("model", model).Str("trigger", trigger).Msg("recovery started")
	ctx.Send(r.supervisor, &restartModel{name: model, trigger: trigger})
	self, root, seq := ctx.Self(), ctx.ActorSystem().Root, run.seq
	time.AfterFunc(r.env.cfg.Recovery.Timeout, func() { root.Send(self, &recoveryTimeout{model: model, seq: seq}) })
}

func (r *recovery) end(ctx actor.Context, model string, run *recoveryRun, ok bool, detail string) {
	now := r.env.now()
	delete(r.active, model)
	r.ended[model] = now
	kind := messages.RecoveryEvent_recovery_succeeded
	if !ok {
		kind = messages.RecoveryEvent_recovery_failed
	}
	r.env.pub.Recovery(&messages.RecoveryEvent{
		Time: timestamp(now), Node: r.env.cfg.Node, Model: model,
		Kind: kind, Trigger: run.trigger, DurationMs: messages.Millis(now.Sub(run.began)), Detail: detail,
	})
	r.env.log.Info().Str("model", model).Str("trigger", run.trigger).Bool("recovered", ok).Dur("took", now.Sub(run.began)).Str("detail", detail).Msg("recovery ended")
	if len(r.pending) > 0 {
		next := r.pending[0]
		r.pending = r.pending[1:]
		r.request(ctx, next.model, next.trigger)
	}
}
