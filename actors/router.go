package actors

import (
	"context"

	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
)

// route hands a decoded request to the router. done is called exactly once.
type route struct {
	ctx      context.Context
	req      *messages.InferRequest
	done     func(*messages.InferResponse)
	received time.Time
}

// run is one request being served: its candidates and the attempts so far.
type run struct {
	*route
	id         uint64
	candidates []string
	next       int // index of the next candidate to try
	deadline   time.Time
	attempts   []*messages.Attempt
	inModels   time.Duration // time spent waiting on models, for overhead
	retryAfter time.Duration // the shortest Retry-After any model gave
}

// router picks candidates for each request and runs the fallback strategy.
// So far every strategy runs sequentially: the model, then its fallbacks in
// order, each tried once, within the request's total deadline.
type router struct {
	node           string
	specs          map[string]*ModelSpec
	order          []string
	models         map[string]*actor.PID
	requestTimeout time.Duration
	now            func() time.Time
	log            zerolog.Logger

	nextRun uint64
	runs    map[uint64]*run
}

func (r *router) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *route:
		r.start(ctx, msg)
	case *callResult:
		r.onResult(ctx, msg)
	case *actor.Stopping:
		for _, rn := range r.runs {
			r.fail(rn, providers.Errorf(messages.ErrorClass_cancelled, "node %s is shutting down", r.node), "shutting_down")
		}
	}
}

func (r *router) start(ctx actor.Context, rt *route) {
	r.nextRun++
	rn := &run{route: rt, id: r.nextRun}
	r.runs[rn.id] = rn

	req := rt.req
	spec, ok := r.specs[req.GetModel()]
	switch {
	case req.GetModel() == "":
		r.fail(rn, providers.Errorf(messages.ErrorClass_bad_request, "the request names no model"), "missing_model")
		return
	case !ok:
		r.fail(rn, providers.Errorf(messages.ErrorClass_bad_request, "unknown model %q (configured: %s)",
			req.GetModel(), strings.Join(r.order, ", ")), "unknown_model")
		return
	case len(req.GetMessages()) == 0:
		r.fail(rn, providers.Errorf(messages.ErrorClass_bad_request, "the request has no messages"), "missing_messages")
		return
	}

	budget := r.requestTimeout
	if ms := req.GetDeadlineMs(); ms > 0 {
		budget = time.Duration(ms) * time.Millisecond
	}
	rn.deadline = rt.received.Add(budget)
	rn.candidates = append([]string{spec.Name}, spec.Fallbacks...)
	r.tryNext(ctx, rn)
}

// tryNext sends the request to the next candidate, or ends the run when
// none is left or the deadline has passed.
func (r *router) tryNext(ctx actor.Context, rn *run) {
	if rn.next >= len(rn.candidates) {
		r.failAll(rn)
		return
	}
	if !r.now().Before(rn.deadline) {
		r.fail(rn, providers.Errorf(messages.ErrorClass_timeout, "request deadline passed after %d attempts", len(rn.attempts)), "deadline_exceeded")
		return
	}
	name := rn.candidates[rn.next]
	rn.next++
	ctx.Send(r.models[name], &call{ctx: rn.ctx, req: rn.req, deadline: rn.deadline, run: rn.id, replyTo: ctx.Self()})
}

func (r *router) onResult(ctx actor.Context, res *callResult) {
	rn, ok := r.runs[res.run]
	if !ok {
		return // the run already ended
	}
	rn.inModels += res.latency
	at := &messages.Attempt{Model: res.model, Node: r.node, LatencyMs: float64(res.latency.Microseconds()) / 1000}
	if res.result != nil {
		at.StatusCode = int32(res.result.StatusCode)
	}
	if res.err != nil {
		at.ErrorClass = res.err.Class
		at.StatusCode = int32(res.err.StatusCode)
	}
	rn.attempts = append(rn.attempts, at)

	if res.err == nil {
		r.finish(rn, &messages.InferResponse{Content: res.result.Content, ServedBy: res.model, Usage: res.result.Usage})
		return
	}
	if res.err.RetryAfter > 0 && (rn.retryAfter == 0 || res.err.RetryAfter < rn.retryAfter) {
		rn.retryAfter = res.err.RetryAfter
	}
	if !resilience.PolicyFor(res.err.Class).FailOver {
		r.fail(rn, res.err, "")
		return
	}
	r.tryNext(ctx, rn)
}

// failAll ends a run whose every candidate failed. With one candidate the
// caller gets that model's own error class; with several, all_failed.
func (r *router) failAll(rn *run) {
	if len(rn.attempts) == 1 {
		last := rn.attempts[0]
		r.fail(rn, providers.Errorf(last.ErrorClass, "model %s failed with %s", last.Model, last.ErrorClass), "")
		return
	}
	parts := make([]string, len(rn.attempts))
	for i, a := range rn.attempts {
		parts[i] = a.Model + ": " + a.ErrorClass.String()
	}
	r.fail(rn, providers.Errorf(messages.ErrorClass_all_failed, "every candidate failed (%s)", strings.Join(parts, "; ")), "")
}

func (r *router) fail(rn *run, err *providers.Error, code string) {
	if code == "" {
		code = err.Class.String()
	}
	resp := &messages.InferResponse{Error: &messages.Error{
		Class:        err.Class,
		Code:         code,
		Message:      err.Message,
		RetryAfterMs: messages.Millis(max(err.RetryAfter, rn.retryAfter)),
	}}
	r.finish(rn, resp)
}

// finish fills in what every reply carries and hands it to the caller.
func (r *router) finish(rn *run, resp *messages.InferResponse) {
	delete(r.runs, rn.id)
	resp.RequestId = rn.req.GetRequestId()
	resp.Node = r.node
	resp.Attempts = rn.attempts
	resp.OverheadUs = messages.Micros(r.now().Sub(rn.received) - rn.inModels)
	rn.done(resp)
}

func newRouter(cfg *Config, models map[string]*actor.PID) *router {
	specs := make(map[string]*ModelSpec, len(cfg.Models))
	order := make([]string, 0, len(cfg.Models))
	for i := range cfg.Models {
		specs[cfg.Models[i].Name] = &cfg.Models[i]
		order = append(order, cfg.Models[i].Name)
	}
	slices.Sort(order)
	return &router{
		node:           cfg.Node,
		specs:          specs,
		order:          order,
		models:         models,
		requestTimeout: cfg.RequestTimeout,
		now:            cfg.Now,
		log:            cfg.Logger,
		runs:           make(map[uint64]*run),
	}
}
