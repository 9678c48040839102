package actors

import (
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
)

// run is one request being served: its candidates and its attempts.
type run struct {
	route
	id       uint64
	group    *group
	started  bool // counted in the group's budget
	finished bool
	deadline time.Time

	order    []string // candidates, in the order this run tries them
	next     int      // index of the next candidate to launch
	attempts []*messages.Attempt
	live     []liveAttempt // attempts out
	nextID   uint64
	tries    map[string]int // failed attempts per model, for retries
	extra    int            // retries and hedges taken from the budget

	retryAfter time.Duration // the shortest Retry-After a model gave
	lastErr    *providers.Error

	busy      time.Duration // time with at least one attempt out
	busySince time.Time
	liveCount int

	retrySeq, hedgeSeq, waitSeq uint64
	retryModel                  string

	out *streamOut // a streamed request's pieces; nil for a plain one
}

type liveAttempt struct {
	id      uint64
	model   string
	began   time.Time
	retried bool
	hedged  bool
}

// takeLive removes and returns the live attempt id.
func (rn *run) takeLive(id uint64) (liveAttempt, bool) {
	for i, a := range rn.live {
		if a.id == id {
			rn.live = append(rn.live[:i], rn.live[i+1:]...)
			return a, true
		}
	}
	return liveAttempt{}, false
}

func (rn *run) busyStart(now time.Time) {
	if rn.liveCount == 0 {
		rn.busySince = now
	}
	rn.liveCount++
}

func (rn *run) busyEnd(now time.Time) {
	rn.liveCount--
	if rn.liveCount == 0 {
		rn.busy += now.Sub(rn.busySince)
	}
}

// candidates orders a group's members for one request: the strategy's
// order over the members that admit traffic now (a ramping member only for
// its share), then members kept in by the group's open cap, marked for a
// panic-mode call.
func (r *router) candidates(g *group, now time.Time) []string {
	members := g.members
	if r.allAdmit(members, now) && g.spec.Strategy != Weighted && g.spec.Strategy != Random {
		return members // the common case: shared, read-only, no allocation
	}
	admitting := make([]string, 0, len(members))
	var closedOut []string
	for _, name := range members {
		v := r.views[name]
		switch {
		case !v.admits(now):
			if v.up && v.enabled && v.breaker != messages.BreakerState_forced_open {
				closedOut = append(closedOut, name)
			}
		case v.ramp < 100 && r.env.random()*100 >= float64(v.ramp):
			// Ramping back: this request goes elsewhere.
		default:
			admitting = append(admitting, name)
		}
	}
	switch g.spec.Strategy {
	case Weighted:
		admitting = r.weighted(g, admitting)
	case Random:
		for i := len(admitting) - 1; i > 0; i-- {
			j := int(r.env.random() * float64(i+1))
			admitting[i], admitting[j] = admitting[j], admitting[i]
		}
	}
	// The open cap: while some member admits, members beyond the share
	// allowed open still get traffic as a last resort, least bad first.
	// MayOpen(open, total) asks whether one more may open when open are.
	if len(admitting) > 0 && len(closedOut) > 0 && !g.protect.MayOpen(len(closedOut)-1, len(members)) {
		slices.SortFunc(closedOut, func(a, b string) int { return r.views[a].openUntil.Compare(r.views[b].openUntil) })
		allowed := len(closedOut)
		for allowed > 0 && !g.protect.MayOpen(allowed-1, len(members)) {
			allowed--
		}
		for _, name := range closedOut[:len(closedOut)-allowed] {
			admitting = append(admitting, panicPrefix+name)
		}
	}
	return admitting
}

// allAdmit reports whether every member admits all traffic now.
func (r *router) allAdmit(members []string, now time.Time) bool {
	for _, name := range members {
		if v := r.views[name]; !v.admits(now) || v.ramp < 100 {
			return false
		}
	}
	return true
}

// panicPrefix marks a candidate to be called past its open breaker.
const panicPrefix = "!"

// weighted orders members by smooth weighted round robin over weight x
// health score x ramp share: the first pick rotates fairly by weight, the
// rest follow by weight.
func (r *router) weighted(g *group, names []string) []string {
	if len(names) < 2 {
		return names
	}
	weight := func(n string) float64 {
		v := r.views[n]
		return r.specs[n].Weight * max(v.score, 0.01) * float64(max(v.ramp, 1)) / 100
	}
	total, best := 0.0, ""
	for _, n := range names {
		w := weight(n)
		total += w
		g.swrr[n] += w
		if best == "" || g.swrr[n] > g.swrr[best] {
			best = n
		}
	}
	g.swrr[best] -= total
	out := []string{best}
	rest := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == best })
	slices.SortStableFunc(rest, func(a, b string) int {
		switch wa, wb := weight(a), weight(b); {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return 0
	})
	return append(out, rest...)
}

// launchInitial starts a run according to its strategy.
func (r *router) launchInitial(ctx actor.Context, rn *run) {
	spec := rn.group.spec
	strategy := spec.Strategy
	if rn.out != nil {
		strategy = Sequential // two racing streams would interleave their answers
	}
	switch strategy {
	case Parallel:
		for i := 0; i < spec.MaxParallel && r.launchNext(ctx, rn); i++ {
		}
	case Hedged:
		if r.launchNext(ctx, rn) {
			r.armHedge(ctx, rn)
		}
	default:
		r.launchNext(ctx, rn)
	}
}

// launchNext sends the request to the next candidate. When none is left
// it ends the run unless attempts or a retry are still out. It reports
// whether an attempt was launched.
func (r *router) launchNext(ctx actor.Context, rn *run) bool {
	now := r.env.now()
	for rn.next < len(rn.order) {
		name := rn.order[rn.next]
		rn.next++
		panicMode := strings.HasPrefix(name, panicPrefix)
		name = strings.TrimPrefix(name, panicPrefix)
		if !panicMode && !r.views[name].admits(now) {
			continue // it went down since the run started
		}
		if !now.Before(rn.deadline) {
			rn.next-- // not tried: failAll tells the deadline cut the run short
			break
		}
		r.launch(ctx, rn, name, false, panicMode)
		return true
	}
	if len(rn.live) == 0 && rn.retrySeq == 0 {
		r.exhausted(ctx, rn)
	}
	return false
}

func (r *router) launch(ctx actor.Context, rn *run, model string, retried, panicMode bool) {
	pid, ok := r.pids[model]
	if !ok {
		return
	}
	now := r.env.now()
	rn.nextID++
	rn.live = append(rn.live, liveAttempt{id: rn.nextID, model: model, began: now, retried: retried})
	rn.busyStart(now)
	if rn.out != nil {
		rn.out.own(rn.nextID)
	}
	ctx.Send(pid, &call{ctx: rn.ctx, req: rn.req, deadline: rn.deadline, run: rn.id, attempt: rn.nextID, replyTo: ctx.Self(), panicMode: panicMode, out: rn.out})
}

func (r *router) onResult(ctx actor.Context, rn *run, res *callResult) {
	a, ok := rn.takeLive(res.attempt)
	if !ok {
		return // cancelled by the run already
	}
	// The run knows which model it asked; a reply made for a call that
	// never reached its actor (a dead letter) may not.
	res.model = a.model
	now := r.env.now()
	rn.busyEnd(now)
	at := &messages.Attempt{Model: res.model, Node: r.env.cfg.Node, LatencyMs: millis(res.latency), Retried: a.retried, Hedged: a.hedged}
	if res.result != nil {
		at.StatusCode = int32(res.result.StatusCode)
	}
	if res.err != nil {
		at.ErrorClass = res.err.Class
		at.StatusCode = int32(res.err.StatusCode)
	}
	rn.attempts = append(rn.attempts, at)

	if res.err == nil {
		r.finish(ctx, rn, &messages.InferResponse{Content: res.result.Content, ServedBy: res.model, Usage: res.result.Usage})
		return
	}
	if rn.out != nil && rn.out.sent() > 0 {
		// Part of the answer reached the caller: it cannot be taken back
		// or restarted elsewhere unnoticed, so the stream ends incomplete.
		// The stream counts what went out, whoever answers for the attempt:
		// one its actor gave up on (a crash) is answered by the actor,
		// which does not know what its goroutine had sent.
		r.finish(ctx, rn, &messages.InferResponse{ServedBy: res.model, Error: &messages.Error{
			Class: res.err.Class, Code: "stream_incomplete", Message: res.err.Message}})
		return
	}
	rn.lastErr = res.err
	if res.err.RetryAfter > 0 && (rn.retryAfter == 0 || res.err.RetryAfter < rn.retryAfter) {
		rn.retryAfter = res.err.RetryAfter
	}
	if !resilience.PolicyFor(res.err.Class).FailOver {
		r.fail(ctx, rn, res.err, "")
		return
	}
	if rn.tries == nil {
		rn.tries = make(map[string]int, 2)
	}
	rn.tries[res.model]++
	if r.retry(ctx, rn, res, now) {
		return
	}
	if rn.group.spec.Strategy == Hedged && rn.out == nil && len(rn.live) > 0 {
		return // the hedge is still running; its result decides
	}
	r.launchNext(ctx, rn)
}

// retry schedules another attempt on the same model when the error class,
// the retry policy, the deadline and the group's budget all allow it.
func (r *router) retry(ctx actor.Context, rn *run, res *callResult, now time.Time) bool {
	spec := r.specs[res.model]
	o := resilience.Outcome{Class: res.err.Class, Latency: res.latency, RetryAfter: res.err.RetryAfter}
	d := spec.Retry.Next(rn.tries[res.model], o, now, rn.deadline, r.env.random)
	if !d.Retry || rn.retrySeq != 0 || !rn.group.budget.TryAcquire() {
		return false
	}
	rn.extra++
	if d.Wait <= 0 {
		r.launch(ctx, rn, res.model, true, false)
		return true
	}
	r.timerSeq++
	rn.retrySeq, rn.retryModel = r.timerSeq, res.model
	r.after(ctx, d.Wait, &runTimer{run: rn.id, kind: retryTimer, seq: rn.retrySeq})
	return true
}

// armHedge schedules the hedge: the next candidate starts if the first has
// not answered within the hedge delay.
func (r *router) armHedge(ctx actor.Context, rn *run) {
	spec := rn.group.spec
	delay := spec.HedgeDelay
	if delay <= 0 {
		delay = r.views[spec.Name].p95
	}
	if delay <= 0 {
		delay = spec.Timeout / 4
	}
	r.timerSeq++
	rn.hedgeSeq = r.timerSeq
	r.after(ctx, delay, &runTimer{run: rn.id, kind: hedgeTimer, seq: rn.hedgeSeq})
}

func (r *router) onTimer(ctx actor.Context, t *runTimer) {
	rn, ok := r.runs[t.run]
	if !ok {
		return
	}
	switch {
	case t.kind == retryTimer && t.seq == rn.retrySeq:
		rn.retrySeq = 0
		if r.views[rn.retryModel].admits(r.env.now()) {
			r.launch(ctx, rn, rn.retryModel, true, false)
		} else {
			r.launchNext(ctx, rn)
		}
	case t.kind == hedgeTimer && t.seq == rn.hedgeSeq:
		rn.hedgeSeq = 0
		if len(rn.live) > 0 && rn.next < len(rn.order) && rn.group.budget.TryAcquire() {
			rn.extra++
			if id := rn.nextID; r.launchNext(ctx, rn) && rn.nextID != id {
				rn.live[len(rn.live)-1].hedged = true // the attempt just launched is the hedge
			}
		}
	case t.kind == waitTimer && t.seq == rn.waitSeq:
		delete(r.waiting, rn.id)
		r.failAllDown(ctx, rn)
	}
}

// exhausted ends a run that has no candidate left: all failed, or none
// admitted traffic in the first place.
func (r *router) exhausted(ctx actor.Context, rn *run) {
	if len(rn.attempts) > 0 {
		r.failAll(ctx, rn)
		return
	}
	now := r.env.now()
	g := rn.group
	// Panic mode: no member admits traffic, so a trickle still tests them.
	if g.protect.Panic(0) && g.protect.AdmitInPanic(now) {
		if name, ok := r.leastBad(g); ok {
			r.launch(ctx, rn, name, false, true)
			return
		}
	}
	if wait := r.env.cfg.AllDown.Wait; wait > 0 && rn.waitSeq == 0 && now.Before(rn.deadline) {
		r.timerSeq++
		rn.waitSeq = r.timerSeq
		rn.next = 0
		rn.order = g.members
		r.waiting[rn.id] = rn
		r.after(ctx, min(wait, rn.deadline.Sub(now)), &runTimer{run: rn.id, kind: waitTimer, seq: rn.waitSeq})
		return
	}
	r.failAllDown(ctx, rn)
}

// unknownRetryAfter is the Retry-After of a request no model could take
// when no breaker of its group will reopen by itself (forced open until
// closed, disabled, given up, restarting): the caller is always told when
// to come back, and a refused request costs no model call.
const unknownRetryAfter = time.Second

// failAllDown answers a request no model could take: a configured degraded
// reply, or circuit_open with the earliest time a model may take traffic
// (an open breaker's, or a breaker forced open for a duration), else
// unknownRetryAfter.
func (r *router) failAllDown(ctx actor.Context, rn *run) {
	if reply := r.env.cfg.AllDown.Reply; reply != "" {
		r.finish(ctx, rn, &messages.InferResponse{Content: reply, ServedBy: DegradedReply, Degradation: messages.Degradation_critical})
		return
	}
	now := r.env.now()
	var earliest time.Time
	for _, name := range rn.group.members {
		v := r.views[name]
		timed := v.breaker == messages.BreakerState_open || v.breaker == messages.BreakerState_forced_open
		if timed && v.up && v.enabled && !v.openUntil.IsZero() && (earliest.IsZero() || v.openUntil.Before(earliest)) {
			earliest = v.openUntil
		}
	}
	err := providers.Errorf(messages.ErrorClass_circuit_open, "no model of %s can take traffic now (%s)", rn.group.name, r.describe(rn.group))
	err.RetryAfter = unknownRetryAfter
	if earliest.After(now) {
		err.RetryAfter = max(earliest.Sub(now), time.Millisecond) // never rounded to none
	}
	r.fail(ctx, rn, err, "all_unavailable")
}

// DegradedReply is the served_by of a configured degraded answer.
const DegradedReply = "hive-degraded"

// leastBad is the member of a group whose breaker opens earliest.
func (r *router) leastBad(g *group) (string, bool) {
	best := ""
	for _, name := range g.members {
		v := r.views[name]
		if !v.up || !v.enabled || v.breaker == messages.BreakerState_forced_open {
			continue
		}
		if best == "" || v.openUntil.Before(r.views[best].openUntil) {
			best = name
		}
	}
	return best, best != ""
}

func (r *router) describe(g *group) string {
	parts := make([]string, 0, 1+len(g.spec.Fallbacks))
	for _, name := range g.members {
		v := r.views[name]
		state := v.breaker.String()
		switch {
		case !v.up:
			state = "not running"
		case !v.enabled:
			state = "disabled"
		}
		parts = append(parts, name+": "+state)
	}
	return strings.Join(parts, "; ")
}

// failAll ends a run whose every attempt failed. When the request's
// deadline ended it (the last attempt timed out at it, or candidates were
// left untried) the caller gets timeout / deadline_exceeded; otherwise,
// with one attempt, that model's own error class, and with several,
// all_failed.
func (r *router) failAll(ctx actor.Context, rn *run) {
	timedOut := rn.lastErr != nil && rn.lastErr.Class == messages.ErrorClass_timeout
	if !r.env.now().Before(rn.deadline) && (rn.next < len(rn.order) || timedOut) {
		r.fail(ctx, rn, providers.Errorf(messages.ErrorClass_timeout, "the request's deadline of %v passed after %d attempt(s) (%s)",
			rn.deadline.Sub(rn.received), len(rn.attempts), rn.attemptList()), "deadline_exceeded")
		return
	}
	if len(rn.attempts) == 1 && rn.lastErr != nil {
		r.fail(ctx, rn, rn.lastErr, "")
		return
	}
	r.fail(ctx, rn, providers.Errorf(messages.ErrorClass_all_failed, "every candidate failed (%s)", rn.attemptList()), "")
}

// attemptList is the run's attempts as "model: class" pairs.
func (rn *run) attemptList() string {
	parts := make([]string, len(rn.attempts))
	for i, a := range rn.attempts {
		parts[i] = a.Model + ": " + a.ErrorClass.String()
	}
	return strings.Join(parts, "; ")
}

// after sends msg to the router after d.
func (r *router) after(ctx actor.Context, d time.Duration, msg any) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(d, func() { root.Send(self, msg) })
}
