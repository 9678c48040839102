package actors

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
)

// supervisorName is the supervisor's actor name, so its PID is known
// before it starts.
const supervisorName = "supervisor"

// supervisor is the parent of every model actor. It restarts a crashed
// model with a growing delay and gives up past a limit: the model is then
// unavailable, an alert fires, and the router stops routing to it.
type supervisor struct {
	env      *env
	children map[string]*actor.PID
	names    map[string]string // child PID id -> model name
	// counts outlive a model's incarnations: they are handed to each new
	// one. Incarnations of a model run one after another on one mailbox,
	// so they never touch them at the same time.
	counts map[string]*modelCounts
	spawns int // incarnations spawned by an operator, for unique names
}

// Supervisor messages.
type (
	// restarting comes from the strategy when a child will be restarted.
	restarting struct {
		child   *actor.PID
		attempt int
		delay   time.Duration
		reason  any
	}
	// gaveUp comes from the strategy when a child crashed too often.
	gaveUp struct {
		child    *actor.PID
		failures int
		reason   any
	}
	// restartModel is recovery asking for a fresh incarnation (and so a
	// fresh provider client), then probing.
	restartModel struct {
		name    string
		trigger string
	}
	// childrenQuery asks for the model PIDs.
	childrenQuery struct{}
	// controlModel carries a manual action to a model through its
	// supervisor, which can bring back a model it gave up on: an
	// operator's enable spawns it anew.
	controlModel struct {
		name    string
		control *control
	}
)

func (s *supervisor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		for i := range s.env.cfg.Models {
			spec := s.env.cfg.Models[i]
			s.counts[spec.Name] = &modelCounts{}
			s.spawn(ctx, spec, "model-"+spec.Name)
		}
	case *childrenQuery:
		out := make(map[string]*actor.PID, len(s.children))
		for k, v := range s.children {
			out[k] = v
		}
		ctx.Respond(out)
	case *restarting:
		name := s.names[msg.child.Id]
		ctx.Send(s.env.router, &modelDown{name: name})
		s.env.pub.Recovery(&messages.RecoveryEvent{
			Time: timestamp(s.env.now()), Node: s.env.cfg.Node, Model: name,
			Kind: messages.RecoveryEvent_restart, Trigger: "crash", Attempt: int32(msg.attempt),
			DurationMs: messages.Millis(msg.delay), Detail: fmt.Sprintf("restart in %v after: %v", msg.delay.Round(time.Millisecond), msg.reason),
		})
		s.env.log.Warn().Str("model", name).Int("attempt", msg.attempt).Dur("delay", msg.delay).Interface("reason", msg.reason).Msg("model actor crashed: restarting")
		if sup, ok := ctx.(actor.Supervisor); ok {
			child := msg.child
			time.AfterFunc(msg.delay, func() { sup.RestartChildren(child) })
		}
	case *gaveUp:
		s.gaveUp(ctx, msg)
	case *controlModel:
		s.control(ctx, msg)
	case *restartModel:
		pid, ok := s.children[msg.name]
		if !ok {
			return
		}
		ctx.Send(s.env.router, &modelDown{name: msg.name})
		sup, ok := ctx.(actor.Supervisor)
		if !ok {
			s.env.log.Error().Msg("supervisor context cannot restart children")
			return
		}
		sup.RestartChildren(pid)
		// System messages go first, so this reaches the fresh incarnation.
		ctx.Send(pid, &beginProbing{trigger: msg.trigger})
	}
}

// spawn starts an incarnation of spec and registers it with the router.
func (s *supervisor) spawn(ctx actor.Context, spec ModelSpec, name string) *actor.PID {
	counts := s.counts[spec.Name]
	props := actor.PropsFromProducer(func() actor.Actor { return s.produce(spec, counts) }, actor.WithDispatcher(presized(modelThroughput)))
	pid, err := ctx.SpawnNamed(props, name)
	if err != nil {
		s.env.log.Error().Err(err).Str("model", spec.Name).Msg("spawn model actor")
		return nil
	}
	s.children[spec.Name] = pid
	s.names[pid.Id] = spec.Name
	ctx.Send(s.env.router, &register{name: spec.Name, pid: pid})
	return pid
}

// control hands a manual action to the model's actor, whose answer goes to
// the asker. A model given up on answers with ErrGaveUp, unless the action
// is an enable: that spawns it anew (its breaker and counters kept), as
// an operator's way back.
func (s *supervisor) control(ctx actor.Context, msg *controlModel) {
	pid, ok := s.children[msg.name]
	if !ok {
		if msg.control.op != OpEnable {
			ctx.Respond(&controlDone{err: fmt.Errorf("model %s: %w (enable it to start it again)", msg.name, ErrGaveUp)})
			return
		}
		if pid = s.respawn(ctx, msg.name, msg.control.actor); pid == nil {
			ctx.Respond(&controlDone{err: fmt.Errorf("model %s: could not be started again", msg.name)})
			return
		}
	}
	ctx.RequestWithCustomSender(pid, msg.control, ctx.Sender())
}

// respawn starts a model its supervisor gave up on, on an operator's word.
func (s *supervisor) respawn(ctx actor.Context, name, actorName string) *actor.PID {
	i := slices.IndexFunc(s.env.cfg.Models, func(m ModelSpec) bool { return m.Name == name })
	if i < 0 {
		return nil
	}
	s.spawns++
	pid := s.spawn(ctx, s.env.cfg.Models[i], fmt.Sprintf("model-%s-%d", name, s.spawns))
	if pid == nil {
		return nil
	}
	s.env.pub.Recovery(&messages.RecoveryEvent{
		Time: timestamp(s.env.now()), Node: s.env.cfg.Node, Model: name, Kind: messages.RecoveryEvent_restart,
		Trigger: "operator", Actor: actorName, Detail: "started again by an operator after the supervisor gave up",
	})
	if s.env.alerts != nil {
		ctx.Send(s.env.alerts, &alertTargets{models: maps.Clone(s.children), router: s.env.router})
	}
	s.env.log.Warn().Str("model", name).Str("actor", actorName).Msg("model started again by an operator")
	return pid
}

// produce builds a model actor; when that fails (a provider client that
// cannot be built) the actor fails on start, which the supervisor treats
// as a crash.
func (s *supervisor) produce(spec ModelSpec, counts *modelCounts) actor.Actor {
	m, err := newModel(spec, s.env, counts)
	if err != nil {
		return brokenModel{err: err}
	}
	return m
}

func (s *supervisor) gaveUp(ctx actor.Context, g *gaveUp) {
	name := s.names[g.child.Id]
	delete(s.children, name)
	ctx.Send(s.env.router, &modelDown{name: name, gaveUp: true})
	now := s.env.now()
	detail := fmt.Sprintf("%d crashes within %v, last: %v", g.failures, s.env.cfg.Supervision.Within, g.reason)
	s.env.pub.Recovery(&messages.RecoveryEvent{
		Time: timestamp(now), Node: s.env.cfg.Node, Model: name,
		Kind: messages.RecoveryEvent_gave_up, Trigger: "crash", Attempt: int32(g.failures), Detail: detail,
	})
	s.env.pub.Health(&messages.HealthChanged{
		Time: timestamp(now), Node: s.env.cfg.Node, Model: name,
		To: messages.HealthStatus_unavailable, Reason: "supervisor gave up: " + detail,
	})
	if s.env.alerts != nil {
		ctx.Send(s.env.alerts, &modelGaveUp{model: name, crashes: g.failures, detail: detail})
	}
	s.env.log.Error().Str("model", name).Str("detail", detail).Msg("supervisor gave up: model unavailable")
}

// brokenModel stands for a model whose actor could not be built.
type brokenModel struct{ err error }

func (b brokenModel) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		panic(b.err)
	}
}

// backoff is the supervision strategy: one-for-one, with a real
// exponential delay (base x 2^(n-1), capped, with jitter) before each
// restart, and a limit of restarts within a window. protoactor's own
// "exponential" strategy grows linearly without a cap.
type backoff struct {
	cfg        Supervision
	random     func() float64
	system     *actor.ActorSystem
	supervisor *actor.PID
}

// HandleFailure runs in the supervisor's context. It only decides and
// schedules; the supervisor actor publishes.
func (b *backoff) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason any, _ any) {
	rs.Fail()
	n := rs.NumberOfFailures(b.cfg.Within)
	if n > b.cfg.MaxRestarts {
		rs.Reset()
		sup.StopChildren(child)
		b.system.Root.Send(b.supervisor, &gaveUp{child: child, failures: n, reason: reason})
		return
	}
	delay := b.delay(n)
	// The supervisor schedules the restart itself, after it has told the
	// router the model is down, so that notice can never arrive after the
	// fresh incarnation's "up".
	b.system.Root.Send(b.supervisor, &restarting{child: child, attempt: n, delay: delay, reason: reason})
}

// delay is the wait before restart n (1-based).
func (b *backoff) delay(n int) time.Duration {
	d := float64(b.cfg.BaseDelay) * math.Pow(2, float64(n-1))
	d = min(d, float64(b.cfg.MaxDelay))
	if b.cfg.Jitter > 0 {
		d *= 1 + b.cfg.Jitter*(2*b.random()-1)
	}
	return time.Duration(d)
}
