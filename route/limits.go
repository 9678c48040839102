package route

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// The pre-call check and the fallbacks of context_length and
// content_policy (docs/context-windows.md).
//
// Before a candidate is called, the request's estimated prompt tokens plus
// its max_tokens must fit the candidate's known context window, and its
// max_tokens its known maximum output; a candidate that cannot hold the
// request is skipped and listed as such, and one whose limits are unknown
// is called. The group's context fallbacks join the candidates once one
// has been skipped. When no candidate could ever hold the request, it ends
// with context_length without calling any model.
//
// When a model answers context_length anyway (the estimate was low, or
// its window unknown), the request goes on only to candidates whose known
// window is larger than every window that already answered so, and to the
// group's context fallbacks (not smaller than those windows either); never
// back to a smaller one, and never the same model again. When a model
// answers content_policy, the request goes on only to the group's policy
// fallbacks; with none, the provider's reason is returned at once.

// mode says which candidates a request may still try.
type mode uint8

const (
	anyCandidate mode = iota // the strategy's order
	tooLong                  // a model answered context_length: larger windows and the context fallbacks only
	refused                  // a model answered content_policy: the policy fallbacks only
)

// limit returns why m cannot hold the request, or Attempt_called when it
// may be called: its limits hold the request, or are unknown.
func (r *Request) limit(m *Member) messages.Attempt_Skip {
	switch {
	case m.MaxOutput > 0 && int(r.maxTokens) > m.MaxOutput:
		return messages.Attempt_max_output_tokens
	case m.ContextWindow > 0 && int(r.prompt)+int(r.maxTokens) > m.ContextWindow:
		return messages.Attempt_context_window
	}
	return messages.Attempt_called
}

// skip lists m as skipped for why, once, and lets the group's context
// fallbacks join the candidates.
func (r *Request) skip(m *Member, why messages.Attempt_Skip) {
	listed := false // when the request first came by it, before a wait
	for _, a := range r.attempts {
		listed = listed || a.Model == m.Name && a.Skipped != messages.Attempt_called
	}
	if !listed {
		r.record(&messages.Attempt{Model: m.Name, Node: r.g.node, ErrorClass: messages.ErrorClass_context_length, Skipped: why})
	}
	if !r.widened && len(r.g.contextFallbacks) > 0 {
		r.widened = true
		r.reorder(r.g.contextFallbacks)
	}
}

// eligible reports whether m may still be tried in the request's mode.
func (r *Request) eligible(m *Member) bool {
	g := r.g
	switch r.mode {
	case tooLong:
		floor := r.floor()
		larger := m.ContextWindow > 0 && floor > 0 && m.ContextWindow > floor
		if isIn(m, g.contextFallbacks) {
			return m.ContextWindow == 0 || floor == 0 || larger
		}
		return larger
	case refused:
		return isIn(m, g.policyFallbacks)
	}
	return true
}

// floor is the largest known window of the models that answered
// context_length; 0 when none of them has a known window. It is read from
// the attempts, rather than kept, so that a request stays small: it is
// only needed after a context_length.
func (r *Request) floor() int {
	floor := 0
	for _, a := range r.attempts {
		if a.ErrorClass != messages.ErrorClass_context_length || a.Skipped != messages.Attempt_called {
			continue
		}
		for _, ms := range [3][]*Member{r.g.members, r.g.contextFallbacks, r.g.policyFallbacks} {
			for _, m := range ms {
				if m.Name == a.Model {
					floor = max(floor, m.ContextWindow)
				}
			}
		}
	}
	return floor
}

// answered handles a context_length or content_policy answer from m: the
// request's mode narrows, and the candidates left are those of the new
// mode. It reports false when the request must end now instead (a
// content_policy with no policy fallback).
func (r *Request) answered(m *Member, class messages.ErrorClass) bool {
	switch class {
	case messages.ErrorClass_context_length:
		r.mode = tooLong
		r.widened = true
		r.reorder(r.g.contextFallbacks)
	case messages.ErrorClass_content_policy:
		if len(r.g.policyFallbacks) == 0 {
			return false
		}
		r.mode = refused
		r.reorder(r.g.policyFallbacks)
	}
	return true
}

// reorder keeps the candidates not yet tried that the request's mode
// allows, in their order, then adds extra's members the request has not
// come by, in extra's order. The tried part of the order stays, for a
// wait that starts it over.
func (r *Request) reorder(extra []*Member) {
	out := make([]candidate, r.next, len(r.order)+len(extra))
	copy(out, r.order[:r.next]) // r.order may be the group's shared one: never written
	for _, c := range r.order[r.next:] {
		if r.eligible(c.member) {
			out = append(out, c)
		}
	}
	for _, m := range extra {
		seen := false
		for _, c := range out {
			seen = seen || c.member == m
		}
		if !seen && r.eligible(m) {
			out = append(out, candidate{member: m, index: -1})
		}
	}
	r.order = out
}

// fitsSomewhere reports whether a member of the group or a context
// fallback could hold the request, whatever its state now.
func (r *Request) fitsSomewhere() bool {
	for _, ms := range [2][]*Member{r.g.members, r.g.contextFallbacks} {
		for _, m := range ms {
			if r.limit(m) == messages.Attempt_called {
				return true
			}
		}
	}
	return false
}

// tooLarge ends a request that no model of its group can hold, without
// calling any: context_length, with the estimate and the largest limit.
func (r *Request) tooLarge(now time.Time) {
	var window, output *Member
	for _, ms := range [2][]*Member{r.g.members, r.g.contextFallbacks} {
		for _, m := range ms {
			if window == nil || m.ContextWindow > window.ContextWindow {
				window = m
			}
			if output == nil || m.MaxOutput > output.MaxOutput {
				output = m
			}
		}
	}
	need := "about " + itoa(int(r.prompt)) + " prompt tokens (estimated) + " + itoa(int(r.maxTokens)) + " max_tokens"
	if window.ContextWindow > 0 && int(r.prompt)+int(r.maxTokens) > window.ContextWindow {
		r.fail(now, messages.ErrorClass_context_length, "context_window", "the request needs "+need+
			"; the largest context window of "+r.g.name+" is "+itoa(window.ContextWindow)+" ("+window.Name+")", 0)
		return
	}
	r.fail(now, messages.ErrorClass_context_length, "max_output_tokens", "max_tokens "+itoa(int(r.maxTokens))+
		" is more than the largest max output of "+r.g.name+", "+itoa(output.MaxOutput)+" ("+output.Name+")", 0)
}

// calls counts the attempts that called a model.
func (r *Request) calls() int {
	n := 0
	for _, a := range r.attempts {
		if a.Skipped == messages.Attempt_called {
			n++
		}
	}
	return n
}

func isIn(m *Member, ms []*Member) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// clamp32 bounds n to what an int32 field holds.
func clamp32(n int) int32 {
	return int32(max(0, min(n, 1<<31-1)))
}
