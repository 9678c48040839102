package route

import (
	"strconv"
	"strings"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// finish ends the request with resp: the attempts still out are cancelled
// (and listed as cancelled), the group's budget and service level learn of
// the request, and resp gets what every reply carries, but its request id,
// which the owner has.
func (r *Request) finish(now time.Time, resp *messages.InferResponse) {
	r.done, r.waiting = true, false
	for _, a := range r.live { // losers of a race, and anything still out
		r.emit(Effect{Kind: Cancel, Attempt: a.id, Model: a.member.Name})
		r.record(&messages.Attempt{
			Model: a.member.Name, Node: r.g.node, ErrorClass: messages.ErrorClass_cancelled,
			LatencyMs: millis(now.Sub(r.received) - a.began), Retried: a.why == Retry,
		})
	}
	if len(r.live) > 0 {
		r.busy += now.Sub(r.received) - r.busySince
		r.live = nil
	}
	fx := Effect{Kind: Finish, Reply: resp}
	if g := r.g; r.started {
		g.budget.Finish()
		for range r.extra {
			g.budget.Release()
		}
		// A request its caller cancelled (gone, or the node shutting down)
		// says nothing of the service: it is not observed.
		if resp.Error.GetClass() != messages.ErrorClass_cancelled {
			if c, changed := g.observe(now, now.Sub(r.received), resp.Error == nil); changed {
				d := c // only a change is worth an allocation
				fx.Degraded = &d
			}
		}
		resp.Degradation = max(resp.Degradation, g.degradation.Level())
	}
	resp.Node = r.g.node
	resp.Attempts = r.attempts
	resp.OverheadUs = messages.Micros(now.Sub(r.received) - r.busy)
	r.emit(fx)
}

// fail finishes the request with an error of class; code "" is the class's
// name. The reply's Retry-After is the longer of retryAfter and the
// shortest one a model gave.
func (r *Request) fail(now time.Time, class messages.ErrorClass, code, message string, retryAfter time.Duration) {
	if code == "" {
		code = class.String()
	}
	r.finish(now, &messages.InferResponse{Error: &messages.Error{
		Class:        class,
		Code:         code,
		Message:      message,
		RetryAfterMs: messages.Millis(max(retryAfter, r.retryAfter)),
	}})
}

// failAll ends a request whose every call failed. When the request's
// deadline ended it (the last attempt timed out at it, or candidates were
// left untried) the caller gets timeout / deadline_exceeded; otherwise,
// with one call, that model's own error class, and so with several that
// all failed context_length or all content_policy; else all_failed.
func (r *Request) failAll(now time.Time) {
	timedOut := r.last.class == messages.ErrorClass_timeout
	if !now.Before(r.deadline()) && (r.next < len(r.order) || timedOut) {
		r.fail(now, messages.ErrorClass_timeout, "deadline_exceeded", "the request's deadline of "+r.budget.String()+
			" passed after "+itoa(r.calls())+" attempt(s) ("+r.attemptList()+")", 0)
		return
	}
	same := true
	for _, a := range r.attempts {
		same = same && (a.Skipped != messages.Attempt_called || a.ErrorClass == r.last.class)
	}
	if r.last.class != messages.ErrorClass_ok && (r.calls() == 1 ||
		same && (r.last.class == messages.ErrorClass_context_length || r.last.class == messages.ErrorClass_content_policy)) {
		r.fail(now, r.last.class, "", r.last.message, r.last.retryAfter)
		return
	}
	r.fail(now, messages.ErrorClass_all_failed, "", "every candidate failed ("+r.attemptList()+")", 0)
}

// attemptList is the request's attempts as "model: class" pairs.
func (r *Request) attemptList() string {
	var b strings.Builder
	for i, a := range r.attempts {
		if i > 0 {
			b.WriteString("; ")
		}
		if a.Skipped != messages.Attempt_called {
			b.WriteString(a.Model + ": skipped (" + a.Skipped.String() + ")")
			continue
		}
		b.WriteString(a.Model + ": " + a.ErrorClass.String())
	}
	return b.String()
}

// UnknownRetryAfter is the Retry-After of a request no member could take
// when no breaker of its group will reopen by itself (forced open until
// closed, disabled, given up, restarting): the caller is always told when
// to come back, and a refused request costs no model call.
const UnknownRetryAfter = time.Second

// failAllDown answers a request no member could take: the configured
// degraded reply, or circuit_open with the earliest time a member may take
// traffic again (an open breaker's, or a breaker forced open for a
// duration), else UnknownRetryAfter.
func (r *Request) failAllDown(now time.Time) {
	g := r.g
	if reply := g.allDown.Reply; reply != "" {
		resp := &messages.InferResponse{ServedBy: DegradedReply, Degradation: messages.Degradation_critical}
		if r.stream {
			r.emit(Effect{Kind: Piece, Model: DegradedReply, Text: reply})
		} else {
			resp.Content = reply
		}
		r.finish(now, resp)
		return
	}
	var earliest time.Time
	for _, m := range g.members {
		v := &m.View
		timed := v.Breaker == messages.BreakerState_open || v.Breaker == messages.BreakerState_forced_open
		if timed && v.Up && v.Enabled && !v.OpenUntil.IsZero() && (earliest.IsZero() || v.OpenUntil.Before(earliest)) {
			earliest = v.OpenUntil
		}
	}
	wait := UnknownRetryAfter
	if earliest.After(now) {
		wait = max(earliest.Sub(now), time.Millisecond) // never rounded to none
	}
	r.fail(now, messages.ErrorClass_circuit_open, "all_unavailable",
		"no model of "+g.name+" can take traffic now ("+g.describe()+")", wait)
}

// describe lists the group's members and why each takes no traffic.
func (g *Group) describe() string {
	var b strings.Builder
	for i, m := range g.members {
		if i > 0 {
			b.WriteString("; ")
		}
		state := m.View.Breaker.String()
		switch {
		case !m.View.Up:
			state = "not running"
		case !m.View.Enabled:
			state = "disabled"
		}
		b.WriteString(m.Name + ": " + state)
	}
	return b.String()
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func itoa(n int) string { return strconv.Itoa(n) }
