package actors

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// call asks a model actor for one attempt. The reply is a *callResult sent
// to replyTo, always exactly once.
type call struct {
	ctx      context.Context
	req      *messages.InferRequest
	deadline time.Time // the request's total deadline
	run      uint64    // the router's request run
	replyTo  *actor.PID
}

// callResult is the outcome of one attempt.
type callResult struct {
	run     uint64
	model   string
	result  *providers.Result
	err     *providers.Error // nil on success
	latency time.Duration
}

// finished reports a provider goroutine's end to its model actor.
type finished struct {
	seq     uint64
	result  *providers.Result
	err     *providers.Error
	latency time.Duration
}

// running is an attempt in progress.
type running struct {
	call   *call
	cancel context.CancelFunc
}

// model is the actor that owns one model: its concurrency limit, its queue
// and its in-flight calls.
type model struct {
	spec ModelSpec
	log  zerolog.Logger
	now  func() time.Time
	wg   *sync.WaitGroup // owned by the Hive; lets shutdown wait for provider goroutines

	next     uint64
	inFlight map[uint64]*running
	queue    []*call
}

func newModel(spec ModelSpec, log zerolog.Logger, now func() time.Time, wg *sync.WaitGroup) *model {
	return &model{
		spec:     spec,
		log:      log.With().Str("model", spec.Name).Logger(),
		now:      now,
		wg:       wg,
		inFlight: make(map[uint64]*running),
	}
}

func (m *model) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *call:
		m.admit(ctx, msg)
	case *finished:
		m.finish(ctx, msg)
	case *actor.Stopping:
		m.abandonAll(ctx)
	}
}

// admit starts c when a slot is free, queues it when the queue has room, and
// refuses it with no_capacity otherwise.
func (m *model) admit(ctx actor.Context, c *call) {
	switch {
	case len(m.inFlight) < m.spec.MaxConcurrent:
		m.start(ctx, c)
	case len(m.queue) < m.spec.QueueSize:
		m.queue = append(m.queue, c)
	default:
		m.reply(ctx, c, nil, &providers.Error{
			Class:   messages.ErrorClass_no_capacity,
			Message: fmt.Sprintf("%s has %d calls in flight and %d queued", m.spec.Name, len(m.inFlight), len(m.queue)),
		}, 0)
	}
}

// start runs the provider call in a goroutine under the earlier of the
// attempt timeout and the request deadline.
func (m *model) start(ctx actor.Context, c *call) {
	now := m.now()
	deadline := now.Add(m.spec.Timeout)
	if c.deadline.Before(deadline) {
		deadline = c.deadline
	}
	callCtx, cancel := context.WithDeadline(c.ctx, deadline)
	m.next++
	seq := m.next
	m.inFlight[seq] = &running{call: c, cancel: cancel}

	self, root, provider, clock, log := ctx.Self(), ctx.ActorSystem().Root, m.spec.Provider, m.now, m.log
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		began := clock()
		res, err := complete(callCtx, provider, c.req, log)
		root.Send(self, &finished{seq: seq, result: res, err: err, latency: clock().Sub(began)})
	}()
}

// complete calls the provider and turns a panic into a server_error, so a
// bug in provider code costs one request, not the process.
func complete(ctx context.Context, p providers.Provider, req *messages.InferRequest, log zerolog.Logger) (res *providers.Result, perr *providers.Error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error().Interface("panic", r).Msg("provider panicked")
			res, perr = nil, providers.Errorf(messages.ErrorClass_server_error, "provider panicked")
		}
	}()
	res, err := p.Complete(ctx, req)
	if err != nil {
		return nil, providers.Classify(err)
	}
	return res, nil
}

func (m *model) finish(ctx actor.Context, f *finished) {
	r, ok := m.inFlight[f.seq]
	if !ok {
		return // abandoned when the actor stopped
	}
	delete(m.inFlight, f.seq)
	m.reply(ctx, r.call, f.result, f.err, f.latency)
	for len(m.queue) > 0 && len(m.inFlight) < m.spec.MaxConcurrent {
		c := m.queue[0]
		m.queue[0] = nil
		m.queue = m.queue[1:]
		if !m.now().Before(c.deadline) {
			m.reply(ctx, c, nil, providers.Errorf(messages.ErrorClass_timeout, "deadline passed while queued for %s", m.spec.Name), 0)
			continue
		}
		m.start(ctx, c)
	}
}

// abandonAll answers every queued and in-flight call with cancelled, so no
// caller waits on a stopped actor, and cancels the provider calls.
func (m *model) abandonAll(ctx actor.Context) {
	stopped := providers.Errorf(messages.ErrorClass_cancelled, "model %s stopped", m.spec.Name)
	for seq, r := range m.inFlight {
		r.cancel()
		m.reply(ctx, r.call, nil, stopped, 0)
		delete(m.inFlight, seq)
	}
	for _, c := range m.queue {
		m.reply(ctx, c, nil, stopped, 0)
	}
	m.queue = nil
}

func (m *model) reply(ctx actor.Context, c *call, res *providers.Result, err *providers.Error, latency time.Duration) {
	ctx.Send(c.replyTo, &callResult{run: c.run, model: m.spec.Name, result: res, err: err, latency: latency})
}
