package route

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// Continuing a cut stream.
//
// Once some of a stream's text reached the caller, a failure can neither
// be taken back nor restarted elsewhere unnoticed. When its class fails
// over, the request goes on to its next candidate with the conversation
// and the text sent so far (Effect.Continue): as an assistant prefill for
// a member that takes one (Member.Prefill), else as an instruction in a
// user turn. The caller sees one stream: the pieces already sent, then the
// continuation, then the final reply, whose attempts show the cut attempt
// and the one that continued (Attempt.continued) and whose Continuation
// says how it ended.
//
// Bounds: at most the group's MaxContinuations cuts are continued per
// request; never after the request's deadline; never for a request that
// carries tools or a response format (Started.NoSplice). A continuation
// that fails before its first piece goes on to the next candidate, as a
// plain attempt would; one whose prefill the model refuses is retried once
// on it as an instruction. When no continuation may follow, the stream
// ends incomplete (code stream_incomplete) with the class of the failure
// that cut it.

// The values of InferResponse.continuation.
const (
	ContinuationComplete     = "complete"      // another model finished the answer
	ContinuationFailed       = "failed"        // a continuation began but the answer stays incomplete
	ContinuationRefusedTools = "refused_tools" // the request carries tools or a response format
	ContinuationLimit        = "limit"         // MaxContinuations reached
	ContinuationDeadline     = "deadline"      // the request's time was up
	ContinuationNoCandidate  = "no_candidate"  // no model left to continue
)

// cut handles the failure of attempt a of a stream whose text (a's, or an
// earlier attempt's) already reached the caller.
func (r *Request) cut(now time.Time, a live, res Result) {
	if res.TextSent || !r.textOut {
		r.textOut, r.cutBy = true, a.member
		r.last = failure{class: res.Class, message: res.Message}
	}
	fails := resilience.PolicyFor(res.Class).FailOver || res.Class == messages.ErrorClass_context_length
	switch {
	case a.cont == Prefill && res.PrefillRejected && !res.TextSent && !r.reprefill && now.Before(r.deadline()):
		// The model takes no prefill after all: once more, as an
		// instruction. Not a new continuation: the same cut goes on. Nor
		// a retry out of the group's budget, which bounds retries of
		// failures that may be load: a refused prefill is a quick 400
		// about the request's shape, at most once per request (the
		// stream-prefill-refused scenario lost streams to an exhausted
		// budget when it was taken from it).
		r.reprefill = true
		r.launchAs(now, a.member, Retry, Instruction)
		return
	case !res.TextSent:
		// A continuation failed before its first piece: like a plain
		// failure, it fails over when its class does.
		if !fails {
			r.incomplete(now, ContinuationFailed)
			return
		}
	case !fails && r.continued == 0:
		r.incomplete(now, "") // not a failure the router rescues
		return
	case !fails:
		r.incomplete(now, ContinuationFailed)
		return
	case r.noSplice:
		r.incomplete(now, ContinuationRefusedTools)
		return
	case int(r.continued) >= r.g.continuations:
		r.incomplete(now, ContinuationLimit)
		return
	}
	if !now.Before(r.deadline()) {
		r.incomplete(now, ContinuationDeadline)
		return
	}
	for r.next < len(r.order) {
		c := r.order[r.next]
		r.next++
		if !c.lastResort && !c.member.View.Admits(now) {
			continue
		}
		if why := r.limit(c.member); why != messages.Attempt_called {
			r.skip(c.member, why)
			continue
		}
		why := First
		if c.lastResort {
			why = Trickle
		}
		mode := Instruction
		if c.member.Prefill {
			mode = Prefill
		}
		if res.TextSent {
			r.continued++
		}
		r.launchAs(now, c.member, why, mode)
		return
	}
	if res.TextSent {
		r.incomplete(now, ContinuationNoCandidate)
		return
	}
	r.incomplete(now, ContinuationFailed)
}

// incomplete ends a stream whose text went out but whose answer did not
// end: the class and message of the failure that last cut it, code
// stream_incomplete, served by the model that was cut; continuation says
// why no continuation finished it ("" when none was considered).
func (r *Request) incomplete(now time.Time, continuation string) {
	r.finish(now, &messages.InferResponse{ServedBy: r.cutBy.Name, Continuation: continuation, Error: &messages.Error{
		Class: r.last.class, Code: "stream_incomplete", Message: r.last.message}})
}
