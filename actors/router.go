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

// run is one request in the router: what Dispatch handed over, and its
// state machine once the request names a configured model (one allocation
// for both, made by Dispatch).
type run struct {
	ctx      context.Context
	req      *messages.InferRequest
	sink     messages.Sink
	received time.Time
	sent     string // a stream's text that reached the caller, which a continuation goes on from (added once per attempt)

	id       uint64
	m        route.Request
	timers   *[route.DeadlineTimer]timer // the request's armed timers but its deadline, by route.Timer; nil until one is
	deadline int64                       // when its DeadlineTimer fires, in Unix nanoseconds; 0 until armed
}

// router is the actor every request passes through. It refuses what it
// cannot route (an unknown model, a drain), keeps the route package's
// groups and the models' views, and carries out the effects of each
// request's state machine: every routing decision is the machine's.
type router struct {
	env     *env
	log     zerolog.Logger
	order   []string // configured model names, for errors
	pids    map[string]*actor.PID
	members map[string]*route.Member
	groups  map[string]*route.Group

	nextRun  uint64
	runs     map[uint64]*run
	waiting  map[uint64]*run // parked until a member admits traffic
	clock    timers
	swept    deadlines
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
	cfg := e.cfg
	r := &router{
		env:     e,
		log:     e.log,
		pids:    make(map[string]*actor.PID),
		members: make(map[string]*route.Member, len(cfg.Models)),
		groups:  make(map[string]*route.Group, len(cfg.Models)),
		runs:    make(map[uint64]*run),
		waiting: make(map[uint64]*run),
		clock:   timers{now: e.now},
	}
	for i := range cfg.Models {
		spec := &cfg.Models[i]
		r.order = append(r.order, spec.Name)
		m := route.NewMember(spec.Name, spec.Weight, spec.Retry)
		m.ContextWindow, m.MaxOutput = spec.Limits.ContextWindow, spec.Limits.MaxOutputTokens
		m.Prefill = spec.Prefill
		r.members[spec.Name] = m
	}
	for i := range cfg.Models {
		spec := &cfg.Models[i]
		members := []*route.Member{r.members[spec.Name]}
		for _, f := range spec.Fallbacks {
			members = append(members, r.members[f])
		}
		var contextFallbacks, policyFallbacks []*route.Member
		for _, f := range spec.Limits.ContextFallbacks {
			contextFallbacks = append(contextFallbacks, r.members[f])
		}
		for _, f := range spec.Limits.PolicyFallbacks {
			policyFallbacks = append(policyFallbacks, r.members[f])
		}
		g, err := route.NewGroup(route.GroupConfig{
			Node:           cfg.Node,
			Members:        members,
			Strategy:       spec.Strategy,
			MaxParallel:    spec.MaxParallel,
			HedgeDelay:     spec.HedgeDelay,
			Timeout:        spec.Timeout,
			RequestTimeout: cfg.RequestTimeout,
			BudgetRatio:    cfg.BudgetRatio,
			BudgetMin:      cfg.BudgetMin,
			Protection:     cfg.Group,
			Degradation:    cfg.Degradation,
			AllDown:        cfg.AllDown,
			Random:         e.random,

			MaxContinuations: spec.MaxContinuations,

			ContextFallbacks: contextFallbacks,
			PolicyFallbacks:  policyFallbacks,
		})
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", spec.Name, err)
		}
		r.groups[spec.Name] = g
	}
	return r, nil
}

func (r *router) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *run:
		r.start(ctx, msg)
	case *actor.Started:
		self, root := ctx.Self(), ctx.ActorSystem().Root
		r.clock.ring = func() { root.Send(self, wakeUp) }
		r.swept.ring = func() { root.Send(self, sweepUp) }
	case *callResult:
		if rn, ok := r.runs[msg.id.Request()]; ok {
			if msg.text != "" {
				rn.sent += msg.text
			}
			r.step(ctx, rn, result(msg))
		}
	case *timersDue:
		r.clock.due(func(rn *run, t route.Timer) { r.step(ctx, rn, route.TimerFired{Timer: t}) })
	case *deadlinesDue:
		r.sweep(ctx)
	case *view:
		r.onView(ctx, msg)
	case *register:
		r.pids[msg.name] = msg.pid
	case *modelDown:
		if m, ok := r.members[msg.name]; ok {
			m.View.Up = false
		}
	case *alertQuery:
		ctx.Respond(&alertReport{round: msg.round, model: nodeReport, sample: r.served})
		r.served = resilience.AlertSample{}
	case *drain:
		r.draining = true
		r.drained = append(r.drained, ctx.Sender())
		r.checkDrained(ctx)
	case *actor.Stopping:
		for _, rn := range r.runs {
			r.step(ctx, rn, route.Shutdown{})
		}
		r.clock.stop()
		r.swept.stop()
	}
}

// start refuses a request the router cannot route and hands the others to
// a new state machine in the group of the model they name.
func (r *router) start(ctx actor.Context, rn *run) {
	req := rn.req
	g, ok := r.groups[req.GetModel()]
	switch {
	case r.draining:
		r.refuse(rn, messages.Failure(messages.ErrorClass_no_capacity, "draining", "node %s is draining: send the request to another node", r.env.cfg.Node))
		return
	case req.GetModel() == "":
		r.refuse(rn, messages.Failure(messages.ErrorClass_bad_request, "missing_model", "the request names no model"))
		return
	case !ok:
		r.refuse(rn, messages.Failure(messages.ErrorClass_bad_request, "unknown_model", "unknown model %q (configured: %s)",
			req.GetModel(), strings.Join(r.order, ", ")))
		return
	case len(req.GetMessages()) == 0:
		r.refuse(rn, messages.Failure(messages.ErrorClass_bad_request, "missing_messages", "the request has no messages"))
		return
	}
	r.nextRun++
	rn.id = r.nextRun
	rn.m = route.NewRequest(rn.id, g)
	r.runs[rn.id] = rn
	ev := route.Started{
		Received:  rn.received,
		Budget:    messages.Duration(req.GetDeadlineMs()),
		Priority:  req.GetPriority(),
		Stream:    req.GetStream(),
		MaxTokens: int(req.GetMaxTokens()),
		NoSplice:  req.GetTools() != "" || req.GetResponseFormat() != "",
	}
	if g.Limits() { // else no window to check: the estimate's cost is spared
		ev.Prompt = route.EstimateTokens(req.GetMessages())
	}
	r.step(ctx, rn, ev)
}

// refuse answers a request that names no configured model, or that came
// during a drain, without a state machine.
func (r *router) refuse(rn *run, e *messages.Error) {
	rn.sink.Final(&messages.InferResponse{
		RequestId:  rn.req.GetRequestId(),
		Node:       r.env.cfg.Node,
		Error:      e,
		OverheadUs: messages.Micros(r.env.now().Sub(rn.received)),
	})
}

// onView records what a model actor says of itself, where every group
// sees it, and tells the requests waiting for a member to come back.
func (r *router) onView(ctx actor.Context, v *view) {
	m, ok := r.members[v.name]
	if !ok {
		return
	}
	m.View = v.View
	for _, rn := range r.waiting {
		r.step(ctx, rn, route.ViewChanged{Model: v.name})
	}
}

// sweep fires the DeadlineTimer of every request past its deadline, and
// sets the next sweep while requests are open.
func (r *router) sweep(ctx actor.Context) {
	r.swept.armed = false
	now := r.env.now().UnixNano()
	for _, rn := range r.runs {
		if rn.deadline != 0 && now >= rn.deadline {
			rn.deadline = 0
			r.step(ctx, rn, route.TimerFired{Timer: route.DeadlineTimer})
		}
	}
	if len(r.runs) > 0 {
		r.swept.arm()
	}
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

// result turns a model actor's answer into the machine's event.
func result(c *callResult) route.Result {
	ev := route.Result{Attempt: c.id, Latency: c.latency, TextSent: c.text != "", MalformedSkipped: c.malformed}
	if res := c.result; res != nil {
		ev.Status, ev.Content, ev.Usage = int32(res.StatusCode), res.Content, res.Usage
	}
	if e := c.err; e != nil {
		ev.Class, ev.Message, ev.RetryAfter, ev.Status = e.Class, e.Message, e.RetryAfter, int32(e.StatusCode)
		ev.PrefillRejected = e.Code == providers.CodePrefillUnsupported
	}
	return ev
}
