package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// askTimeout bounds a question to an actor (status, manual actions).
const askTimeout = 5 * time.Second

var (
	// ErrUnknownModel is returned for a model name that is not configured.
	ErrUnknownModel = errors.New("unknown model")
	// ErrUnknownAlert is returned for an alert id that is not firing.
	ErrUnknownAlert = errors.New("unknown alert")
	// ErrGaveUp is returned by Control for a model whose supervisor gave
	// up on it after repeated crashes; OpEnable starts it again.
	ErrGaveUp = errors.New("its supervisor gave up on it after repeated crashes")
)

// Hive is one node's actor system: a supervised actor per configured
// model, the router in front of them, the recovery actor and, when
// configured, the alerts actor.
type Hive struct {
	env        *env
	system     *actor.ActorSystem
	router     *actor.PID
	supervisor *actor.PID
	recovery   *actor.PID
	alerts     *actor.PID // nil when alerts are off
	models     map[string]*actor.PID
	upstreams  map[string][]string // identity -> the models calling it
	deadLetter *eventstream.Subscription

	calls   sync.WaitGroup // provider and probe goroutines
	stopped atomic.Bool
	stop    sync.Once
}

// New validates cfg, applies its defaults and starts the actors.
func New(cfg Config) (*Hive, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("actors: %w", err)
	}
	log := cfg.Logger
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slogBridge{log: log.With().Str("component", "protoactor").Logger()})
	}))
	h := &Hive{system: system}
	e := &env{cfg: &cfg, log: log, now: cfg.Now, random: cfg.Random, pub: cfg.Publisher, store: cfg.Store, wg: &h.calls, system: system}
	h.env = e

	rt, err := newRouter(e)
	if err != nil {
		return nil, fmt.Errorf("actors: %w", err)
	}
	if h.router, err = system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return rt }, actor.WithDispatcher(presized(routerThroughput))), "router"); err != nil {
		return nil, fmt.Errorf("actors: spawn router: %w", err)
	}
	e.router = h.router
	h.supervisor = actor.NewPID(system.Address(), supervisorName)
	rec := newRecovery(e, h.supervisor)
	if h.recovery, err = system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return rec }), "recovery"); err != nil {
		h.Stop()
		return nil, fmt.Errorf("actors: spawn recovery: %w", err)
	}
	e.recovery = h.recovery
	if cfg.Alerts.Enabled {
		al := newAlerter(e)
		if h.alerts, err = system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return al }), "alerts"); err != nil {
			h.Stop()
			return nil, fmt.Errorf("actors: spawn alerts: %w", err)
		}
		e.alerts = h.alerts
	}
	strategy := &backoff{cfg: cfg.Supervision, random: cfg.Random, system: system, supervisor: h.supervisor}
	sup := &supervisor{env: e, children: make(map[string]*actor.PID), names: make(map[string]string), counts: make(map[string]*modelCounts)}
	props := actor.PropsFromProducer(func() actor.Actor { return sup }, actor.WithSupervisor(strategy))
	if _, err := system.Root.SpawnNamed(props, supervisorName); err != nil {
		h.Stop()
		return nil, fmt.Errorf("actors: spawn supervisor: %w", err)
	}
	res, err := system.Root.RequestFuture(h.supervisor, &childrenQuery{}, askTimeout).Result()
	if err != nil {
		h.Stop()
		return nil, fmt.Errorf("actors: start models: %w", err)
	}
	h.models = res.(map[string]*actor.PID)
	h.upstreams = make(map[string][]string)
	for _, m := range cfg.Models {
		h.upstreams[m.Identity] = append(h.upstreams[m.Identity], m.Name)
	}
	if h.alerts != nil {
		system.Root.Send(h.alerts, &alertTargets{models: maps.Clone(h.models), router: h.router})
	}
	// A call that reaches a stopped model actor is answered, not lost.
	h.deadLetter = system.EventStream.Subscribe(func(evt any) {
		dl, ok := evt.(*actor.DeadLetterEvent)
		if !ok {
			return
		}
		if c, ok := dl.Message.(*call); ok {
			system.Root.Send(c.replyTo, &callResult{id: c.id,
				err: providers.Errorf(messages.ErrorClass_server_error, "model actor is not running")})
		}
	})
	return h, nil
}

// Dispatch hands a request to the router. It never blocks. The reply goes
// to sink (see messages.Sink): the pieces of a streamed answer (req.Stream),
// then exactly one Final, from any goroutine. After Stop it answers at once
// with a cancelled error.
func (h *Hive) Dispatch(ctx context.Context, req *messages.InferRequest, sink messages.Sink) {
	if h.stopped.Load() {
		sink.Final(&messages.InferResponse{
			RequestId: req.GetRequestId(),
			Node:      h.env.cfg.Node,
			Error:     messages.Failure(messages.ErrorClass_cancelled, "shutting_down", "node %s is shutting down", h.env.cfg.Node),
		})
		return
	}
	h.system.Root.Send(h.router, &run{ctx: ctx, req: req, sink: sink, received: h.env.now()})
}

// Node returns the node name.
func (h *Hive) Node() string { return h.env.cfg.Node }

// Control applies a manual action to a model and returns its status after
// it. actorName is who asked, for the audit trail.
func (h *Hive) Control(model string, op ControlOp, d time.Duration, actorName, reason string) (*messages.ModelStatus, error) {
	if _, ok := h.models[model]; !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownModel, model)
	}
	// Through the supervisor, which knows whether the model runs and can
	// start a given-up one again on an enable.
	res, err := h.system.Root.RequestFuture(h.supervisor, &controlModel{name: model,
		control: &control{op: op, duration: d, actor: actorName, reason: reason}}, askTimeout).Result()
	if err != nil {
		return nil, fmt.Errorf("model %s did not answer: %w", model, err)
	}
	cd := res.(*controlDone)
	return cd.status, cd.err
}

// Drain stops the Hive taking new requests (they are answered at once
// with no_capacity, code draining, so a client can go to another node) and
// waits, until ctx ends, for every request already taken to be answered.
func (h *Hive) Drain(ctx context.Context) error {
	d, ok := ctx.Deadline()
	timeout := time.Hour
	if ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	if _, err := h.system.Root.RequestFuture(h.router, &drain{}, timeout).Result(); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	return nil
}

// Status returns every model's status, in name order. A model whose actor
// does not answer (given up, restarting) is reported unavailable, with
// GaveUp set when its supervisor gave up on it.
func (h *Hive) Status() []*messages.ModelStatus {
	out := make([]*messages.ModelStatus, 0, len(h.env.cfg.Models))
	for _, spec := range h.env.cfg.Models {
		st, err := h.Control(spec.Name, OpStatus, 0, "", "")
		if err != nil {
			st = &messages.ModelStatus{Name: spec.Name, Provider: spec.Kind, Breaker: messages.BreakerState_open,
				Health: messages.HealthStatus_unavailable, Fallbacks: spec.Fallbacks, Strategy: string(spec.Strategy),
				GaveUp: errors.Is(err, ErrGaveUp)}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Observe hands the Hive an event seen on the bus. Events of this node's
// own models are ignored here (the model actors already told recovery);
// those of other nodes are noted, and another node's breaker transition
// goes to every model of this node calling the same upstream (identity),
// which may adopt it (unless Config.Peers.Off).
func (h *Hive) Observe(ev any) {
	switch ev := ev.(type) {
	case *messages.HealthChanged:
		if ev.GetNode() != h.env.cfg.Node {
			h.system.Root.Send(h.recovery, ev)
		}
	case *messages.BreakerTransition:
		if ev.GetNode() == h.env.cfg.Node {
			return
		}
		h.system.Root.Send(h.recovery, ev)
		if h.env.cfg.Peers.Off {
			return
		}
		for _, name := range h.upstreams[ev.GetIdentity()] {
			if pid, ok := h.models[name]; ok {
				h.system.Root.Send(pid, &peerBreaker{ev: ev})
			}
		}
	}
}

// Adopt hands the Hive the shared state a joining node reads before it
// takes traffic (other nodes' last transitions, as Observe takes them) and
// returns once every model has taken them.
func (h *Hive) Adopt(evs []*messages.BreakerTransition) {
	for _, ev := range evs {
		h.Observe(ev)
	}
	// A model handles its mailbox in order: once it answers a status
	// asked after the events, it has acted on them.
	h.Status()
}

// Stop stops the router (answering its open requests with cancelled), the
// models (cancelling their provider calls) and recovery, waits for every
// provider goroutine and shuts the actor system down. It is safe to call
// more than once.
func (h *Hive) Stop() {
	h.stop.Do(func() {
		h.stopped.Store(true)
		const bound = 10 * time.Second
		if h.router != nil {
			_ = h.system.Root.PoisonFuture(h.router).Wait()
		}
		if h.alerts != nil {
			_ = h.system.Root.StopFuture(h.alerts).Wait()
		}
		if h.models != nil {
			_ = h.system.Root.StopFuture(h.supervisor).Wait()
		}
		if h.recovery != nil {
			_ = h.system.Root.StopFuture(h.recovery).Wait()
		}
		if h.deadLetter != nil {
			h.system.EventStream.Unsubscribe(h.deadLetter)
		}
		waited := make(chan struct{})
		go func() { h.calls.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(bound):
			h.env.log.Error().Dur("waited", bound).Msg("provider calls ignored cancellation; shutting down without them")
		}
		h.system.Shutdown()
	})
}

// routerThroughput is how many messages the router handles before it
// yields its thread. protoactor's default (300) makes the router, which
// every request passes through twice, queue behind every runnable
// goroutine several times a millisecond under load.
const routerThroughput = 100_000
