package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
)

// Hive is one node's actor system: a model actor per configured model and
// the router in front of them.
type Hive struct {
	cfg    Config
	system *actor.ActorSystem
	router *actor.PID
	models map[string]*actor.PID

	calls   sync.WaitGroup // provider goroutines
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
	h := &Hive{cfg: cfg, system: system, models: make(map[string]*actor.PID, len(cfg.Models))}
	for _, spec := range cfg.Models {
		props := actor.PropsFromProducer(func() actor.Actor { return newModel(spec, log, cfg.Now, &h.calls) })
		pid, err := system.Root.SpawnNamed(props, "model-"+spec.Name)
		if err != nil {
			h.Stop()
			return nil, fmt.Errorf("actors: spawn model %s: %w", spec.Name, err)
		}
		h.models[spec.Name] = pid
	}
	rt := newRouter(&h.cfg, h.models)
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return rt }), "router")
	if err != nil {
		h.Stop()
		return nil, fmt.Errorf("actors: spawn router: %w", err)
	}
	h.router = pid
	return h, nil
}

// Dispatch hands a request to the router. It never blocks; done is called
// exactly once, from any goroutine, with the reply. After Stop it answers
// at once with a cancelled error.
func (h *Hive) Dispatch(ctx context.Context, req *messages.InferRequest, done func(*messages.InferResponse)) {
	if h.stopped.Load() {
		done(&messages.InferResponse{
			RequestId: req.GetRequestId(),
			Node:      h.cfg.Node,
			Error:     messages.Failure(messages.ErrorClass_cancelled, "shutting_down", "node %s is shutting down", h.cfg.Node),
		})
		return
	}
	h.system.Root.Send(h.router, &route{ctx: ctx, req: req, done: done, received: h.cfg.Now()})
}

// Node returns the node name.
func (h *Hive) Node() string { return h.cfg.Node }

// Stop stops the router (answering its open requests with cancelled), then
// the model actors (cancelling their provider calls), waits for every
// provider goroutine and shuts the actor system down. It is safe to call
// more than once.
func (h *Hive) Stop() {
	h.stop.Do(func() {
		h.stopped.Store(true)
		const bound = 10 * time.Second
		if h.router != nil {
			_ = h.system.Root.PoisonFuture(h.router).Wait()
		}
		for _, pid := range h.models {
			_ = h.system.Root.StopFuture(pid).Wait()
		}
		waited := make(chan struct{})
		go func() { h.calls.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(bound):
			h.cfg.Logger.Error().Dur("waited", bound).Msg("provider calls ignored cancellation; shutting down without them")
		}
		h.system.Shutdown()
	})
}
