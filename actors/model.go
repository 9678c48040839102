package actors

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
	"github.com/cmmv-hive/resilience/route"
)

// healthTickEvery is how often a model's health window is advanced when
// nothing else wakes the actor, so a quiet model's status can recover.
const healthTickEvery = 5 * time.Second

// p95Every is how many outcomes pass between two updates of the p95 the
// router hedges against.
const p95Every = 64

// running is an attempt in progress. A call admitted past its breaker (a
// panic-mode trickle) holds the zero Permit, which the breaker ignores.
type running struct {
	call   *call
	cancel context.CancelFunc
	permit resilience.Permit
	// text is what of the answer was passed to the caller's sink: a later
	// attempt may have to continue from it.
	text     strings.Builder
	trimLead bool // drop the white space the answer begins with (call.trimLead)
}

// queued is an admitted call waiting for a concurrency slot.
type queued struct {
	call     *call
	permit   resilience.Permit
	admitted time.Time // the attempt's timeout counts from here
}

// model is the actor that owns one model: its breaker, health, ramp,
// concurrency limit, queue and in-flight calls. One incarnation lives
// between a start and a restart; the breaker survives through the store.
type model struct {
	spec     ModelSpec
	provider providers.Provider
	env      *env

	breaker *resilience.Breaker
	health  *resilience.Health
	ramp    *resilience.Ramp
	enabled bool
	log     zerolog.Logger

	inFlight map[route.AttemptID]*running
	queue    []queued

	timerSeq  uint64
	timerAt   time.Time
	timerStop func() bool
	lastTick  time.Time
	nextProbe time.Time
	probing   bool
	// The recovery probes (model_recovery.go): open or ramping, at the
	// spec's intervals, not before probePause.
	nextRecovery time.Time
	recoveryFor  recoveryPhase
	probePause   time.Time
	// probes is the context of this incarnation's probes: cancelled when
	// the actor stops or restarts, so a probe never outlives it.
	probes     context.Context
	stopProbes context.CancelFunc

	counts   *modelCounts
	p95      time.Duration
	sinceP95 int

	breakerSince time.Time // when the breaker entered its state
	keptBreaker  bool      // the breaker is the previous incarnation's

	// Sharing with peers (peer.go).
	witnesses  resilience.Witnesses
	origin     string // the node whose evidence put the breaker in its state; "" while closed
	adopted    bool   // origin is a peer
	peerOrigin string // set while transitions publishes a peer's transitions
	lease      leaseState
	leaseRetry time.Time // leaseWaiting: when to ask again
}

// modelCounts is what of a model outlives its actor's restarts: the
// request counters and the breaker.
type modelCounts struct {
	requests, successes, failures int64
	probes                        int64       // probes answered
	alert                         alertCounts // since the alerts actor last asked
	breaker                       *resilience.Breaker
}

func newModel(spec ModelSpec, e *env, counts *modelCounts) (*model, error) {
	p := spec.Provider
	if spec.NewProvider != nil {
		fresh, err := spec.NewProvider()
		if err != nil {
			return nil, fmt.Errorf("model %s: new provider: %w", spec.Name, err)
		}
		p = fresh
	}
	// The breaker outlives an actor restart in this process, with its
	// evidence: a restart (a crash, or recovery's fresh client) must not
	// forget the failures that were about to open it. Only a new process
	// goes through the store's snapshot.
	b, kept := counts.breaker, counts.breaker != nil
	if !kept {
		var err error
		if b, err = resilience.NewBreaker(spec.Breaker, e.random); err != nil {
			return nil, err
		}
		counts.breaker = b
	}
	h, err := resilience.NewHealth(spec.Health)
	if err != nil {
		return nil, err
	}
	r, err := resilience.NewRamp(spec.Ramp)
	if err != nil {
		return nil, err
	}
	return &model{
		spec:        spec,
		provider:    p,
		env:         e,
		breaker:     b,
		keptBreaker: kept,
		health:      h,
		ramp:        r,
		enabled:     true,
		counts:      counts,
		log:         e.log.With().Str("model", spec.Name).Logger(),
		inFlight:    make(map[route.AttemptID]*running),
		witnesses:   resilience.Witnesses{Window: e.cfg.Peers.WitnessWindow},
	}, nil
}

func (m *model) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *call:
		m.admit(ctx, msg)
	case *finished:
		m.finish(ctx, msg)
	case *piece:
		m.piece(msg)
	case *cancelCall:
		m.cancel(ctx, msg)
	case *timerFired:
		if msg.seq == m.timerSeq {
			m.timerAt = time.Time{}
			m.tick(ctx)
		}
	case *probeDue:
		m.probe(ctx)
	case *probeDone:
		m.probeFinished(ctx, msg)
	case *control:
		ctx.Respond(m.control(ctx, msg))
	case *alertQuery:
		ctx.Respond(m.alertReport(msg))
	case *beginProbing:
		m.beginProbing(ctx, msg)
	case *peerBreaker:
		m.peer(ctx, msg.ev)
	case *leaseDone:
		m.leaseAnswered(ctx, msg)
	case *providerPanicked:
		m.crash(ctx, msg)
	case *actor.Started:
		m.started(ctx)
	case *actor.Restarting:
		// no_capacity: the router fails over at once; a same-model retry
		// (what server_error would get) would only wait for the restart.
		m.abandonAll(ctx, providers.Errorf(messages.ErrorClass_no_capacity, "model %s is restarting", m.spec.Name))
		m.stopped()
	case *actor.Stopping:
		m.abandonAll(ctx, providers.Errorf(messages.ErrorClass_cancelled, "model %s stopped", m.spec.Name))
		m.stopped()
	}
}

// started restores the breaker from the store, so a restart never reopens
// traffic to a failing model, and tells the router the model is up.
func (m *model) started(ctx actor.Context) {
	now := m.env.now()
	m.probes, m.stopProbes = context.WithCancel(context.Background())
	m.lastTick = now
	m.breakerSince = now
	if m.keptBreaker {
		// The same breaker, evidence and all: reported, not restored, so
		// observers see the chain go on across the restart.
		m.transitions(ctx, []resilience.Transition{m.breaker.Report(now, messages.BreakerTransition_restored)}, "")
	} else if snap, ok := m.env.store.Load(m.spec.Name); ok {
		ts := m.breaker.Restore(snap, now)
		// The restore continues the saved breaker's story, not this fresh
		// one's, so observers see an unbroken chain across a restart.
		for i := range ts {
			ts[i].From = snap.State
		}
		m.transitions(ctx, ts, "")
	}
	if m.spec.ProbeInterval > 0 {
		m.nextProbe = now.Add(m.jittered(m.spec.ProbeInterval))
	}
	m.sendView(ctx)
	m.schedule(ctx)
}

// admit checks the breaker, then the concurrency limit and the queue.
func (m *model) admit(ctx actor.Context, c *call) {
	now := m.env.now()
	m.counts.requests++
	if !m.enabled {
		m.refuse(ctx, c, &providers.Error{Class: messages.ErrorClass_circuit_open, Message: fmt.Sprintf("model %s is disabled by an operator", m.spec.Name)})
		return
	}
	var permit resilience.Permit
	if !c.why.PastBreaker() {
		p, err := m.breaker.Allow(now)
		if err != nil {
			m.refuse(ctx, c, m.openError(now, err))
			return
		}
		permit = p
	}
	switch {
	case len(m.inFlight) < m.spec.MaxConcurrent:
		m.start(ctx, c, permit, now, now)
	case len(m.queue) < m.spec.QueueSize:
		m.queue = append(m.queue, queued{call: c, permit: permit, admitted: now})
	default:
		m.transitions(ctx, m.breaker.Release(permit, now), "")
		m.refuse(ctx, c, &providers.Error{
			Class:   messages.ErrorClass_no_capacity,
			Message: fmt.Sprintf("%s has %d calls in flight and %d queued", m.spec.Name, len(m.inFlight), len(m.queue)),
		})
	}
}

// openError turns the breaker's refusal into circuit_open with a Retry-After.
func (m *model) openError(now time.Time, err error) *providers.Error {
	pe := &providers.Error{Class: messages.ErrorClass_circuit_open, Message: fmt.Sprintf("%s: %v", m.spec.Name, err)}
	var oe *resilience.OpenError
	if asOpenError(err, &oe) && oe.Until.After(now) {
		pe.RetryAfter = oe.Until.Sub(now)
	}
	return pe
}

// attemptBudget is how long one attempt of c may take.
func (m *model) attemptBudget(c *call) time.Duration {
	if c.sink != nil && m.spec.Streaming.Total > 0 {
		return m.spec.Streaming.Total // a stream's whole answer, bounded by its own deadline
	}
	return m.spec.Timeout
}

// start runs the provider call in a goroutine under the earlier of the
// attempt timeout, counted from when the call was admitted (a wait in the
// queue spends it), and the request deadline.
func (m *model) start(ctx actor.Context, c *call, permit resilience.Permit, now, admitted time.Time) {
	deadline := admitted.Add(m.attemptBudget(c))
	if c.deadline.Before(deadline) {
		deadline = c.deadline
	}
	callCtx, cancel := context.WithDeadline(c.ctx, deadline)
	id := c.id
	m.inFlight[id] = &running{call: c, cancel: cancel, permit: permit, trimLead: c.trimLead}

	self, root, provider, clock, log := ctx.Self(), ctx.ActorSystem().Root, m.provider, m.env.now, m.log
	deadlines, skip := m.spec.Streaming, !m.spec.FailOnMalformed
	m.env.wg.Add(1)
	go func() {
		defer m.env.wg.Done()
		defer cancel()
		began := clock()
		f := &finished{id: id}
		var panicked any
		if c.sink != nil {
			send := func(text string) { root.Send(self, &piece{id: id, text: text}) }
			f.result, f.firstToken, f.malformed, f.err, panicked = streamCall(callCtx, provider, c.req, deadlines, skip, send)
		} else {
			f.result, f.err, panicked = complete(callCtx, provider, c.req)
		}
		if panicked != nil {
			log.Error().Interface("panic", panicked).Msg("provider panicked")
			root.Send(self, &providerPanicked{id: id, value: panicked})
			return
		}
		f.latency = clock().Sub(began)
		root.Send(self, f)
	}()
}

// complete calls the provider and catches a panic, which is a bug path:
// the caller gets an error and the actor is restarted.
func complete(ctx context.Context, p providers.Provider, req *messages.InferRequest) (res *providers.Result, perr *providers.Error, panicked any) {
	defer func() {
		if r := recover(); r != nil {
			res, perr, panicked = nil, nil, r
		}
	}()
	res, err := p.Complete(ctx, req)
	if err != nil {
		return nil, providers.Classify(err), nil
	}
	return res, nil, nil
}

func (m *model) finish(ctx actor.Context, f *finished) {
	r, ok := m.inFlight[f.id]
	if !ok {
		return // cancelled, or abandoned by an earlier incarnation
	}
	delete(m.inFlight, f.id)
	now := m.env.now()
	o := resilience.Outcome{Latency: f.latency, FirstToken: f.firstToken}
	if f.err != nil {
		o.Class, o.RetryAfter = f.err.Class, f.err.RetryAfter
	}
	m.record(ctx, now, r, o)
	m.reply(ctx, r.call, f.result, f.err, f.latency, r.text.String(), f.malformed)
	m.drainQueue(ctx, now)
	m.schedule(ctx)
}

// record feeds an outcome to the breaker, health and ramp, and publishes
// whatever changed.
func (m *model) record(ctx actor.Context, now time.Time, r *running, o resilience.Outcome) {
	if o.Success() {
		m.counts.successes++
	} else if o.Counts() {
		m.counts.failures++
	}
	m.counts.alert.observe(o)
	changed := m.transitions(ctx, m.breaker.Done(r.permit, now, o), "")
	changed = m.healthChanges(ctx, m.health.Observe(now, o)) || changed
	if m.ramp.Ramping() {
		if ev, ok := m.ramp.Observe(now, o); ok {
			m.rampEvent(ctx, now, ev, triggerCalls)
			changed = true
		}
	}
	m.sinceP95++
	if m.sinceP95 >= p95Every {
		m.sinceP95 = 0
		snap := m.health.Snapshot()
		if snap.P95 != m.p95 {
			m.p95 = snap.P95
			changed = true
		}
	}
	if changed {
		m.sendView(ctx)
	}
}

func (m *model) drainQueue(ctx actor.Context, now time.Time) {
	for len(m.queue) > 0 && len(m.inFlight) < m.spec.MaxConcurrent {
		q := m.queue[0]
		m.queue[0] = queued{}
		m.queue = m.queue[1:]
		if !now.Before(q.call.deadline) || !now.Before(q.admitted.Add(m.attemptBudget(q.call))) {
			m.transitions(ctx, m.breaker.Release(q.permit, now), "")
			// no_capacity: the time went waiting for a slot, not to the
			// model; the router fails over.
			m.refuse(ctx, q.call, providers.Errorf(messages.ErrorClass_no_capacity,
				"waited %v in %s's queue, past the attempt's timeout", now.Sub(q.admitted).Round(time.Millisecond), m.spec.Name))
			continue
		}
		m.start(ctx, q.call, q.permit, now, q.admitted)
	}
}

// cancel ends an attempt the router no longer wants. Its breaker permit is
// released: a cancelled loser is no evidence against the model.
func (m *model) cancel(ctx actor.Context, c *cancelCall) {
	now := m.env.now()
	if r, ok := m.inFlight[c.id]; ok {
		delete(m.inFlight, c.id)
		r.cancel()
		m.transitions(ctx, m.breaker.Release(r.permit, now), "")
		m.drainQueue(ctx, now)
		return
	}
	for i, q := range m.queue { // a cancel is rare, the queue short
		if q.call.id == c.id {
			m.queue = append(m.queue[:i], m.queue[i+1:]...)
			m.transitions(ctx, m.breaker.Release(q.permit, now), "")
			return
		}
	}
}

// crash answers the caller of a call whose provider panicked, and every
// other caller, then panics so the supervisor restarts this actor: a panic
// in provider code is a bug, and a fresh incarnation is the safe state.
func (m *model) crash(ctx actor.Context, p *providerPanicked) {
	if r, ok := m.inFlight[p.id]; ok {
		delete(m.inFlight, p.id)
		m.transitions(ctx, m.breaker.Done(r.permit, m.env.now(), resilience.Outcome{Class: messages.ErrorClass_server_error}), "")
		m.reply(ctx, r.call, nil, providers.Errorf(messages.ErrorClass_server_error, "model %s crashed", m.spec.Name), 0, r.text.String(), 0)
	}
	panic(fmt.Sprintf("provider of model %s panicked: %v", m.spec.Name, p.value))
}

// abandonAll answers every queued and in-flight call with err, so no
// caller waits on an actor that is going away, and cancels the calls.
func (m *model) abandonAll(ctx actor.Context, err *providers.Error) {
	now := m.env.now()
	for id, r := range m.inFlight {
		r.cancel()
		m.breaker.Release(r.permit, now)
		m.reply(ctx, r.call, nil, err, 0, r.text.String(), 0)
		delete(m.inFlight, id)
	}
	for _, q := range m.queue {
		m.reply(ctx, q.call, nil, err, 0, "", 0)
	}
	m.queue = nil
}

// stopped ends this incarnation's timer and probes.
func (m *model) stopped() {
	m.stopTimer()
	if m.stopProbes != nil {
		m.stopProbes()
	}
}

func (m *model) refuse(ctx actor.Context, c *call, err *providers.Error) {
	m.reply(ctx, c, nil, err, 0, "", 0)
}

// reply answers c's caller; text is what of its answer reached the
// caller's sink, malformed the unparsable events its stream skipped.
func (m *model) reply(ctx actor.Context, c *call, res *providers.Result, err *providers.Error, latency time.Duration, text string, malformed int32) {
	ctx.Send(c.replyTo, &callResult{id: c.id, result: res, err: err, latency: latency, text: text, malformed: malformed})
}

func (m *model) jittered(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*m.env.random()))
}
