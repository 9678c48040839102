package actors

import (
	"strings"
	"unicode"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
	"github.com/cmmv-hive/resilience/route"
)

// step gives a request's machine an event and carries out its effects, in
// order. This is the router's whole part in routing: it sends, cancels,
// arms and answers as told.
func (r *router) step(ctx actor.Context, rn *run, ev route.Event) {
	fxs := rn.m.Step(r.env.now(), ev)
	for i := range fxs {
		fx := &fxs[i]
		switch fx.Kind {
		case route.Launch:
			r.launch(ctx, rn, fx)
		case route.Cancel:
			if pid, ok := r.pids[fx.Model]; ok {
				ctx.Send(pid, &cancelCall{id: fx.Attempt})
			}
		case route.Arm:
			if fx.Timer == route.DeadlineTimer {
				rn.deadline = fx.At.UnixNano()
				r.swept.arm()
				break
			}
			r.clock.arm(rn, fx.Timer, fx.At)
		case route.Piece:
			rn.sink.Piece(fx.Model, fx.Text)
		case route.Finish:
			r.finish(ctx, rn, fx)
			return
		}
	}
	switch {
	case rn.m.Waiting():
		r.waiting[rn.id] = rn
	case len(r.waiting) > 0:
		delete(r.waiting, rn.id)
	}
}

// launch sends one attempt to its model actor. A model the router has no
// actor for answers at once, as a call to a stopped actor does.
func (r *router) launch(ctx actor.Context, rn *run, fx *route.Effect) {
	pid, ok := r.pids[fx.Model]
	if !ok {
		ctx.Send(ctx.Self(), &callResult{id: fx.Attempt, err: providers.Errorf(messages.ErrorClass_server_error, "model actor %s is not running", fx.Model)})
		return
	}
	c := &call{ctx: rn.ctx, req: rn.req, id: fx.Attempt, deadline: fx.Deadline, why: fx.Why, replyTo: ctx.Self()}
	if rn.req.GetStream() {
		c.sink = rn.sink
	}
	if fx.Continue != route.Fresh { // the rest of a cut stream, from the text sent so far
		sent := rn.sent
		c.req = providers.Continuation(rn.req, sent, fx.Continue == route.Prefill)
		c.trimLead = strings.TrimRightFunc(sent, unicode.IsSpace) != sent
	}
	ctx.Send(pid, c)
}

// finish hands the reply to the caller and forgets the request and its
// timers.
func (r *router) finish(ctx actor.Context, rn *run, fx *route.Effect) {
	delete(r.runs, rn.id)
	delete(r.waiting, rn.id)
	r.clock.drop(rn)
	resp := fx.Reply
	resp.RequestId = rn.req.GetRequestId()
	if d := fx.Degraded; d != nil {
		g := rn.m.Group()
		r.log.Warn().Str("group", g.Name()).Str("from", d.From.String()).Str("to", d.To.String()).
			Dur("latency", g.Latency()).Float64("success", g.Success()).Msg("degradation level changed")
	}
	s := resilience.AlertSample{Calls: 1}
	if resp.Error != nil {
		s.Failures = 1
	}
	r.served = r.served.Add(s)
	rn.sink.Final(resp)
	if r.draining {
		r.checkDrained(ctx)
	}
}
