package route

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// Request is the state machine of one request in its group. It is made by
// NewRequest, started by a Started event and driven by Step until it
// returns a Finish; later events are ignored. It is a value so that its
// owner can keep it inside its own record of the request, and it must not
// be copied once started: it keeps its first attempts in itself.
type Request struct {
	id       uint64
	g        *Group
	received time.Time     // when the node took the request; the times below count from it
	budget   time.Duration // the request's whole time: its deadline is received + budget

	order    []candidate // the candidates, in the order this request tries them
	next     int         // index in order of the next candidate to launch
	attempts []*messages.Attempt
	live     []live // attempts out
	// Room for the usual attempts, so that a request costs no allocation
	// for them: most have one or two, and one out at a time.
	attemptsBuf [2]*messages.Attempt
	liveBuf     [1]live

	retryAfter time.Duration // the shortest Retry-After a model gave
	last       failure       // the last failure, for a request with one attempt
	busy       time.Duration // time with at least one attempt out
	busySince  time.Duration // since received: when the attempts out began being out
	retryModel *Member       // the model RetryTimer retries
	cutBy      *Member       // the model whose stream was last cut after its text went out

	// The small fields together, so that they share a word or two: a
	// request is allocated for every request the node serves (and a run,
	// which holds it, stays in the 384-byte size class).
	prompt    int32  // estimated prompt tokens, for the pre-call check
	maxTokens int32  // the request's max_tokens, 0 when it gives none
	n         uint16 // the last attempt number given
	extra     uint16 // retries and hedges taken from the group's budget (a request makes far fewer attempts than 2^16)
	normal    Kind   // how the next candidate is launched: First, or Race
	stream    bool
	noSplice  bool  // tools or a response format: a cut stream is not continued
	textOut   bool  // some of the stream's text reached the caller
	continued uint8 // continuations begun (a cut followed by another model)
	reprefill bool  // a rejected prefill was retried as an instruction
	started   bool  // counted in the group's budget
	done      bool
	waited    bool // the wait for a member has been spent
	waiting   bool // parked until a member admits traffic
	widened   bool // the group's context fallbacks have joined the candidates
	mode      mode // which candidates may still be tried
	armed     [timerCount]bool
}

// failure is what a request keeps of a failed attempt.
type failure struct {
	class      messages.ErrorClass
	message    string
	retryAfter time.Duration
}

// live is an attempt out.
type live struct {
	id     AttemptID
	member *Member
	why    Kind
	cont   Continue
	began  time.Duration // since the request was received
}

// NewRequest returns the machine of request number id (unique on the node:
// its attempts are named after it) in group g.
func NewRequest(id uint64, g *Group) Request {
	return Request{id: id, g: g}
}

// Group returns the request's group.
func (r *Request) Group() *Group { return r.g }

// Waiting reports whether the request is parked until a member of its group
// admits traffic: its owner then steps it with ViewChanged when a view
// changes.
func (r *Request) Waiting() bool { return r.waiting }

// Step applies ev at now and returns what the owner must do, in order. The
// slice belongs to the group, which reuses it: it is valid until the next
// Step of any of the group's requests.
func (r *Request) Step(now time.Time, ev Event) []Effect {
	if r.done {
		return nil
	}
	r.g.fx = r.g.fx[:0]
	switch ev := ev.(type) {
	case Started:
		r.start(now, ev)
	case Result:
		r.result(now, ev)
	case TimerFired:
		r.fired(now, ev.Timer)
	case ViewChanged:
		r.viewChanged(now, ev.Model)
	case Shutdown:
		r.fail(now, messages.ErrorClass_cancelled, "shutting_down", "node "+r.g.node+" is shutting down", 0)
	}
	return r.g.fx
}

func (r *Request) emit(e Effect) { r.g.fx = append(r.g.fx, e) }

// deadline is when the request's time is up.
func (r *Request) deadline() time.Time { return r.received.Add(r.budget) }

// start admits the request against the group's degradation level, takes it
// into the budget and launches by the strategy.
func (r *Request) start(now time.Time, ev Started) {
	g := r.g
	r.received, r.stream, r.noSplice = ev.Received, ev.Stream, ev.NoSplice
	r.prompt, r.maxTokens = clamp32(ev.Prompt), clamp32(ev.MaxTokens)
	if !g.degradation.Admit(ev.Priority) {
		r.fail(now, messages.ErrorClass_no_capacity, "shed_degraded",
			g.name+" is degraded ("+g.degradation.Level().String()+"): only critical requests are admitted", 0)
		return
	}
	g.budget.Start()
	r.started = true
	r.budget = ev.Budget
	if r.budget <= 0 {
		r.budget = g.requestTimeout
	}
	r.arm(DeadlineTimer, r.deadline().Add(DeadlineGrace))
	r.order = g.candidates(now)

	strategy := g.strategy
	if r.stream {
		strategy = Sequential // two racing streams would interleave their answers
	}
	switch strategy {
	case Parallel:
		r.normal = Race
		for i := 0; i < g.maxParallel && r.launchNext(now, Race); i++ {
		}
	case Hedged:
		if r.launchNext(now, First) {
			r.armHedge(now)
		}
	default:
		r.launchNext(now, First)
	}
}

// launchNext launches the next candidate that still admits traffic, as
// why. When none is left it ends the request, unless attempts or a retry
// are still out. It reports whether an attempt was launched.
func (r *Request) launchNext(now time.Time, why Kind) bool {
	for r.next < len(r.order) {
		c := r.order[r.next]
		r.next++
		if !c.lastResort && !c.member.View.Admits(now) {
			continue // it went down since the request started
		}
		if why := r.limit(c.member); why != messages.Attempt_called {
			r.skip(c.member, why)
			continue
		}
		if !now.Before(r.deadline()) {
			r.next-- // not tried: failAll tells the deadline cut the request short
			break
		}
		if c.lastResort {
			why = Trickle
		}
		r.launch(now, c.member, why)
		return true
	}
	if len(r.live) == 0 && !r.armed[RetryTimer] {
		r.exhausted(now)
	}
	return false
}

func (r *Request) launch(now time.Time, m *Member, why Kind) { r.launchAs(now, m, why, Fresh) }

// launchAs launches an attempt on m, as why, continuing a cut stream as
// cont.
func (r *Request) launchAs(now time.Time, m *Member, why Kind, cont Continue) {
	if len(r.live) == 0 {
		r.busySince = now.Sub(r.received)
	}
	r.n++
	id := NewAttemptID(r.id, r.n)
	if r.live == nil {
		r.live = r.liveBuf[:0]
	}
	r.live = append(r.live, live{id: id, member: m, why: why, cont: cont, began: now.Sub(r.received)})
	r.emit(Effect{Kind: Launch, Attempt: id, Model: m.Name, Why: why, Deadline: r.deadline(), Continue: cont})
}

// takeLive removes and returns the live attempt id.
func (r *Request) takeLive(now time.Time, id AttemptID) (live, bool) {
	for i, a := range r.live {
		if a.id == id {
			r.live = append(r.live[:i], r.live[i+1:]...)
			if len(r.live) == 0 {
				r.busy += now.Sub(r.received) - r.busySince
			}
			return a, true
		}
	}
	return live{}, false
}

// result records an attempt's outcome and decides what comes next: the
// reply, a retry, the next candidate, or waiting for attempts still out.
func (r *Request) result(now time.Time, res Result) {
	a, ok := r.takeLive(now, res.Attempt)
	if !ok {
		return // cancelled by the request already
	}
	r.record(&messages.Attempt{
		Model: a.member.Name, Node: r.g.node, ErrorClass: res.Class, LatencyMs: millis(res.Latency),
		StatusCode: res.Status, Retried: a.why == Retry, Hedged: a.why == Hedge, Continued: a.cont.String(),
		MalformedSkipped: res.MalformedSkipped,
	})
	if res.Class == messages.ErrorClass_ok {
		resp := &messages.InferResponse{ServedBy: a.member.Name, Usage: res.Usage}
		if r.textOut {
			resp.Continuation = ContinuationComplete
		}
		if !r.stream { // a stream's text went out as pieces
			resp.Content = res.Content
		}
		r.finish(now, resp)
		return
	}
	if r.stream && (res.TextSent || r.textOut) {
		// Part of the answer reached the caller: it cannot be taken back
		// or restarted elsewhere unnoticed; another model may continue it.
		r.cut(now, a, res)
		return
	}
	r.last = failure{class: res.Class, message: res.Message, retryAfter: res.RetryAfter}
	if res.RetryAfter > 0 && (r.retryAfter == 0 || res.RetryAfter < r.retryAfter) {
		r.retryAfter = res.RetryAfter
	}
	switch {
	case res.Class == messages.ErrorClass_context_length || res.Class == messages.ErrorClass_content_policy:
		// Never the same model again: only other candidates may serve.
		if !r.answered(a.member, res.Class) {
			r.fail(now, res.Class, "", res.Message, res.RetryAfter)
			return
		}
	case !resilience.PolicyFor(res.Class).FailOver:
		r.fail(now, res.Class, "", res.Message, res.RetryAfter)
		return
	case r.retry(now, a.member, r.failed(a.member), res):
		return
	}
	if r.g.strategy == Hedged && !r.stream && len(r.live) > 0 {
		return // the hedge is still out; its result decides
	}
	r.launchNext(now, r.normal)
}

// record adds a to the attempts the reply lists.
func (r *Request) record(a *messages.Attempt) {
	if r.attempts == nil {
		r.attempts = r.attemptsBuf[:0]
	}
	r.attempts = append(r.attempts, a)
}

// failed returns how many attempts on m have failed, the one just
// recorded included: every attempt recorded before the request ends is a
// failure that failed over.
func (r *Request) failed(m *Member) int {
	n := 0
	for _, a := range r.attempts {
		if a.Model == m.Name && a.Skipped == messages.Attempt_called {
			n++
		}
	}
	return n
}

// retry retries m when the error class, m's retry policy, the deadline and
// the group's budget all allow it: at once, or when RetryTimer fires. One
// retry waits at a time.
func (r *Request) retry(now time.Time, m *Member, n int, res Result) bool {
	o := resilience.Outcome{Class: res.Class, Latency: res.Latency, RetryAfter: res.RetryAfter}
	d := m.Retry.Next(n, o, now, r.deadline(), r.g.random)
	if !d.Retry || r.armed[RetryTimer] || !r.g.budget.TryAcquire() {
		return false
	}
	r.extra++
	if d.Wait <= 0 {
		r.launch(now, m, Retry)
		return true
	}
	r.retryModel = m
	r.arm(RetryTimer, now.Add(d.Wait))
	return true
}

// armHedge arms the hedge: the next candidate starts if the first has not
// answered within the hedge delay.
func (r *Request) armHedge(now time.Time) {
	g := r.g
	delay := g.hedgeDelay
	if delay <= 0 {
		delay = g.members[0].View.P95
	}
	if delay <= 0 {
		delay = g.timeout / 4
	}
	r.arm(HedgeTimer, now.Add(delay))
}

func (r *Request) arm(t Timer, at time.Time) {
	r.armed[t] = true
	r.emit(Effect{Kind: Arm, Timer: t, At: at})
}

// fired handles a due timer; one no longer armed (its wait ended another
// way) is ignored.
func (r *Request) fired(now time.Time, t Timer) {
	if t >= timerCount || !r.armed[t] {
		return
	}
	r.armed[t] = false
	switch t {
	case RetryTimer:
		if r.retryModel.View.Admits(now) {
			r.launch(now, r.retryModel, Retry)
		} else {
			r.launchNext(now, r.normal)
		}
	case HedgeTimer:
		if len(r.live) > 0 && r.next < len(r.order) && r.g.budget.TryAcquire() {
			r.extra++
			r.launchNext(now, Hedge)
		}
	case WaitTimer:
		r.waiting = false
		r.failAllDown(now)
	case DeadlineTimer:
		r.fail(now, messages.ErrorClass_timeout, "deadline_exceeded",
			"request deadline passed after "+itoa(r.calls())+" attempts", 0)
	}
}

// viewChanged resumes a request waiting for a member, when model is one
// and now admits traffic.
func (r *Request) viewChanged(now time.Time, model string) {
	if !r.waiting {
		return
	}
	for _, c := range r.order {
		if c.member.Name == model && c.member.View.Admits(now) {
			r.waiting = false
			r.armed[WaitTimer] = false
			r.launchNext(now, r.normal)
			return
		}
	}
}

// exhausted ends a request that has no candidate left: every one failed,
// or none admitted traffic in the first place. In the latter case a
// panic-mode trickle may still try the least bad member, and the request
// may wait for a member to come back.
func (r *Request) exhausted(now time.Time) {
	if r.calls() > 0 {
		r.failAll(now)
		return
	}
	if len(r.attempts) > 0 && !r.fitsSomewhere() {
		r.tooLarge(now)
		return
	}
	g := r.g
	if g.protect.Panic(0) && g.protect.AdmitInPanic(now) {
		if m, ok := g.leastBad(r); ok {
			r.launch(now, m, Trickle)
			return
		}
	}
	if wait := g.allDown.Wait; wait > 0 && !r.waited && now.Before(r.deadline()) {
		r.waited, r.waiting = true, true
		r.next, r.order, r.widened = 0, g.plain, false
		r.arm(WaitTimer, now.Add(min(wait, r.deadline().Sub(now))))
		return
	}
	r.failAllDown(now)
}
