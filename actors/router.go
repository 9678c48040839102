package actors

import (
	"context"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
)

// sweepEvery is how often the router looks for runs past their deadline
// that no reply will end (a call lost to a stopped actor). It is a safety
// net: model calls carry the deadline themselves.
const sweepEvery = 250 * time.Millisecond

// route is a decoded request as Dispatch hands it to the router, inside a
// new run (one allocation per request). done is called exactly once.
type route struct {
	ctx      context.Context
	req      *messages.InferRequest
	done     func(*messages.InferResponse)
	emit     func(*messages.InferChunk) // set for a streamed request, instead of done
	received time.Time
}

// runTimer wakes a run: a retry or hedge that is due, or the end of a
// wait for recovery.
type runTimer struct {
	run  uint64
	kind timerKind
	seq  uint64
}

type timerKind int

const (
	retryTimer timerKind = iota
	hedgeTimer
	waitTimer
)

type sweep struct{}

// group is the router's state for one fallback group: the requests for one
// configured model and its fallbacks.
type group struct {
	name        string
	spec        *ModelSpec
	members     []string // the model, then its fallbacks; read-only
	budget      *resilience.Budget
	protect     *resilience.Group
	degradation *resilience.DegradationTracker
	latency     time.Duration // moving average of served requests
	success     float64       // moving average of request success
	swrr        map[string]float64
}

// router picks candidates for each request and runs its group's strategy.
// It never sends traffic where it cannot succeed: models whose breaker is
// open, that are disabled, restarting or given up are skipped, and a
// ramping model gets only its share.
type router struct {
	env    *env
	log    zerolog.Logger
	specs  map[string]*ModelSpec
	order  []string
	pids   map[string]*actor.PID
	views  map[string]*view
	groups map[string]*group

	nextRun  uint64
	runs     map[uint64]*run
	waiting  map[uint64]*run // parked until a candidate admits traffic
	timerSeq uint64
	sweeping bool
	draining bool         // new requests are refused
	drained  []*actor.PID // who waits for the open runs to end

	served resilience.AlertSample // requests answered since the alerts actor last asked
}

// drain stops the router taking new requests; it answers *drained once no
// request is open.
type drain struct{}

// drained answers drain: every request taken has been answered.
type drained struct{}

func newRouter(e *env) (*router, error) {
	r := &router{
		env:     e,
		log:     e.log,
		specs:   make(map[string]*ModelSpec, len(e.cfg.Models)),
		pids:    make(map[string]*actor.PID),
		views:   make(map[string]*view),
		groups:  make(map[string]*group),
		runs:    make(map[uint64]*run),
		waiting: make(map[uint64]*run),
	}
	for i := range e.cfg.Models {
		spec := &e.cfg.Models[i]
		r.specs[spec.Name] = spec
		r.order = append(r.order, spec.Name)
		// Up until told otherwise: a call sent before the actor started waits
		// in its mailbox.
		r.views[spec.Name] = &view{name: spec.Name, up: true, enabled: true, ramp: 100, score: 0.5}
		g, err := newGroup(spec, e.cfg)
		if err != nil {
			return nil, err
		}
		r.groups[spec.Name] = g
	}
	return r, nil
}

func newGroup(spec *ModelSpec, cfg *Config) (*group, error) {
	b, err := resilience.NewBudget(cfg.BudgetRatio, cfg.BudgetMin)
	if err != nil {
		return nil, err
	}
	p, err := resilience.NewGroup(cfg.Group)
	if err != nil {
		return nil, err
	}
	d, err := resilience.NewDegradationTracker(cfg.Degradation)
	if err != nil {
		return nil, err
	}
	members := append([]string{spec.Name}, spec.Fallbacks...)
	return &group{name: spec.Name, spec: spec, members: members, budget: b, protect: p, degradation: d, success: 1, swrr: make(map[string]float64)}, nil
}

func (r *router) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *run:
		r.start(ctx, msg)
	case *callResult:
		if rn, ok := r.runs[msg.run]; ok {
			r.onResult(ctx, rn, msg)
		}
	case *runTimer:
		r.onTimer(ctx, msg)
	case *view:
		r.onView(ctx, msg)
	case *register:
		r.pids[msg.name] = msg.pid
	case *modelDown:
		if v, ok := r.views[msg.name]; ok {
			v.up = false
		}
	case *sweep:
		r.sweep(ctx)
	case *alertQuery:
		ctx.Respond(&alertReport{round: msg.round, model: nodeReport, sample: r.served})
		r.served = resilience.AlertSample{}
	case *drain:
		r.draining = true
		r.drained = append(r.drained, ctx.Sender())
		r.checkDrained(ctx)
	case *actor.Stopping:
		for _, rn := range r.runs {
			r.fail(ctx, rn, providers.Errorf(messages.ErrorClass_cancelled, "node %s is shutting down", r.env.cfg.Node), "shutting_down")
		}
	}
}

// start validates a request, admits it against the group's degradation
// level and starts its strategy.
// start takes a new run (sent by Dispatch with only its route set).
func (r *router) start(ctx actor.Context, rn *run) {
	r.nextRun++
	rn.id = r.nextRun
	rt := &rn.route
	r.runs[rn.id] = rn
	r.armSweep(ctx)

	req := rt.req
	spec, ok := r.specs[req.GetModel()]
	switch {
	case r.draining:
		r.fail(ctx, rn, providers.Errorf(messages.ErrorClass_no_capacity, "node %s is draining: send the request to another node", r.env.cfg.Node), "draining")
		return
	case req.GetModel() == "":
		r.fail(ctx, rn, providers.Errorf(messages.ErrorClass_bad_request, "the request names no model"), "missing_model")
		return
	case !ok:
		r.fail(ctx, rn, providers.Errorf(messages.ErrorClass_bad_request, "unknown model %q (configured: %s)",
			req.GetModel(), strings.Join(r.order, ", ")), "unknown_model")
		return
	case len(req.GetMessages()) == 0:
		r.fail(ctx, rn, providers.Errorf(messages.ErrorClass_bad_request, "the request has no messages"), "missing_messages")
		return
	}
	rn.group = r.groups[spec.Name]
	if !rn.group.degradation.Admit(req.GetPriority()) {
		r.fail(ctx, rn, providers.Errorf(messages.ErrorClass_no_capacity, "%s is degraded (%s): only critical requests are admitted",
			spec.Name, rn.group.degradation.Level()), "shed_degraded")
		return
	}
	rn.group.budget.Start()
	rn.started = true
	budget := r.env.cfg.RequestTimeout
	if ms := req.GetDeadlineMs(); ms > 0 {
		budget = messages.Duration(ms)
	}
	rn.deadline = rt.received.Add(budget)
	if rt.emit != nil {
		rn.out = &streamOut{emit: rt.emit, requestID: req.GetRequestId()}
	}
	rn.order = r.candidates(rn.group, r.env.now())
	r.launchInitial(ctx, rn)
}

// onView records what a model actor says of itself, and resumes runs that
// were waiting for a model to come back.
func (r *router) onView(ctx actor.Context, v *view) {
	r.views[v.name] = v
	if len(r.waiting) == 0 || !v.admits(r.env.now()) {
		return
	}
	for id, rn := range r.waiting {
		for _, name := range rn.order {
			if name == v.name {
				delete(r.waiting, id)
				rn.waitSeq = 0
				r.launchNext(ctx, rn)
				break
			}
		}
	}
}

// armSweep makes sure a sweep is scheduled while runs are open.
func (r *router) armSweep(ctx actor.Context) {
	if r.sweeping {
		return
	}
	r.sweeping = true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(sweepEvery, func() { root.Send(self, &sweep{}) })
}

// sweep ends runs well past their deadline: a reply that will never come
// (a model actor stopped with the call in its mailbox) must not leave the
// caller waiting.
func (r *router) sweep(ctx actor.Context) {
	r.sweeping = false
	now := r.env.now()
	for _, rn := range r.runs {
		if !rn.deadline.IsZero() && now.After(rn.deadline.Add(sweepEvery)) {
			r.fail(ctx, rn, providers.Errorf(messages.ErrorClass_timeout, "request deadline passed after %d attempts", len(rn.attempts)), "deadline_exceeded")
		}
	}
	if len(r.runs) > 0 {
		r.armSweep(ctx)
	}
}

// finish fills in what every reply carries, updates the group's service
// level and hands the reply to the caller.
func (r *router) finish(ctx actor.Context, rn *run, resp *messages.InferResponse) {
	if rn.finished {
		return
	}
	rn.finished = true
	now := r.env.now()
	delete(r.runs, rn.id)
	delete(r.waiting, rn.id)
	for _, a := range rn.live { // losers of a race, and anything still out
		ctx.Send(r.pids[a.model], &cancelCall{run: rn.id, attempt: a.id})
		rn.attempts = append(rn.attempts, &messages.Attempt{
			Model: a.model, Node: r.env.cfg.Node, ErrorClass: messages.ErrorClass_cancelled,
			LatencyMs: millis(now.Sub(a.began)), Retried: a.retried,
		})
		rn.busyEnd(now)
	}
	rn.live = nil
	if g := rn.group; g != nil && rn.started {
		g.budget.Finish()
		for range rn.extra {
			g.budget.Release()
		}
		r.observe(g, now, now.Sub(rn.received), resp.Error == nil)
		resp.Degradation = max(resp.Degradation, g.degradation.Level())
	}
	if rn.group != nil { // a request for a configured model, answered or not
		s := resilience.AlertSample{Calls: 1}
		if resp.Error != nil {
			s.Failures = 1
		}
		r.served = r.served.Add(s)
	}
	resp.RequestId = rn.req.GetRequestId()
	resp.Node = r.env.cfg.Node
	resp.Attempts = rn.attempts
	resp.OverheadUs = messages.Micros(now.Sub(rn.received) - rn.busy)
	if rn.out != nil {
		rn.out.final(finalChunk(rn, resp))
	} else if rn.emit != nil {
		rn.emit(finalChunk(rn, resp))
	} else {
		rn.done(resp)
	}
	if r.draining {
		r.checkDrained(ctx)
	}
}

// finalChunk turns a streamed request's reply into its terminal chunk:
// complete, or incomplete with the error that ended it.
func finalChunk(rn *run, resp *messages.InferResponse) *messages.InferChunk {
	c := &messages.InferChunk{
		RequestId: resp.RequestId, Final: true, Outcome: messages.InferChunk_complete,
		ServedBy: resp.ServedBy, Usage: resp.Usage, Attempts: resp.Attempts, Error: resp.Error,
	}
	c.Seq = 1 // refused before it started; streamOut.final numbers the others
	if resp.Error != nil {
		c.Outcome = messages.InferChunk_incomplete
	}
	return c
}

func (r *router) checkDrained(ctx actor.Context) {
	if len(r.runs) > 0 {
		return
	}
	for _, pid := range r.drained {
		ctx.Send(pid, &drained{})
	}
	r.drained = nil
}

// observe feeds a finished request into its group's service level.
func (r *router) observe(g *group, now time.Time, took time.Duration, ok bool) {
	const alpha = 0.1
	s := 0.0
	if ok {
		s = 1
		if g.latency == 0 {
			g.latency = took
		}
		g.latency += time.Duration(alpha * float64(took-g.latency))
	}
	g.success += alpha * (s - g.success)
	if ch, changed := g.degradation.Update(now, g.latency, g.success); changed {
		r.log.Warn().Str("group", g.name).Str("from", ch.From.String()).Str("to", ch.To.String()).
			Dur("latency", g.latency).Float64("success", g.success).Msg("degradation level changed")
	}
}

func (r *router) fail(ctx actor.Context, rn *run, err *providers.Error, code string) {
	if code == "" {
		code = err.Class.String()
	}
	r.finish(ctx, rn, &messages.InferResponse{Error: &messages.Error{
		Class:        err.Class,
		Code:         code,
		Message:      err.Message,
		RetryAfterMs: messages.Millis(max(err.RetryAfter, rn.retryAfter)),
	}})
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
