package route

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// Event is what happens to a request: Started, Result, TimerFired,
// ViewChanged or Shutdown. Events are plain values; Step does not keep
// them.
type Event interface{ event() }

// Started begins a request. It is the first event of every Request.
type Started struct {
	// Received is when the node took the request: its deadline, latency and
	// overhead count from here.
	Received time.Time
	// Budget is the request's whole time (its deadline_ms); 0 means the
	// group's RequestTimeout.
	Budget time.Duration
	// Priority is weighed against the group's degradation level.
	Priority messages.InferRequest_Priority
	// Stream asks for the answer in pieces: candidates are then tried one
	// at a time, since two answers would interleave.
	Stream bool
	// NoSplice says the request carries tools or a response format: a
	// stream of it cut after text went out is never continued elsewhere,
	// since a splice would corrupt a tool call or a structured answer.
	NoSplice bool
	// Prompt is the request's estimated prompt tokens (EstimateTokens) and
	// MaxTokens its max_tokens (0: none given): a candidate whose known
	// limits cannot hold them is skipped. A Prompt of 0 checks max_tokens
	// only, as the router does for a group in which no limit is known.
	Prompt, MaxTokens int
}

// Result is the outcome of one attempt, success or failure.
type Result struct {
	Attempt AttemptID
	// Class is ok for a success, else the failure's class.
	Class      messages.ErrorClass
	Message    string        // the failure's message
	RetryAfter time.Duration // the model's Retry-After, 0 when it gave none
	Status     int32         // the upstream's HTTP-like status, 0 when unknown
	Latency    time.Duration // the call's own time
	// TextSent reports whether any of the attempt's text reached the
	// caller (a streamed request): such a failure cannot be taken back, nor
	// restarted elsewhere unnoticed.
	TextSent bool
	// PrefillRejected reports that the model refused an assistant prefill
	// (a 400 that says so, providers.CodePrefillUnsupported): a Prefill
	// continuation is then retried once on it as an Instruction.
	PrefillRejected bool
	// MalformedSkipped counts the unparsable events of the attempt's
	// stream that were skipped (Attempt.malformed_skipped).
	MalformedSkipped int32
	// Content and Usage are a success's answer.
	Content string
	Usage   *messages.Usage
}

// TimerFired reports that a timer the request armed is due.
type TimerFired struct{ Timer Timer }

// ViewChanged reports that the view of Model changed: a request waiting
// for a member to come back may go on.
type ViewChanged struct{ Model string }

// Shutdown ends the request because the node is stopping.
type Shutdown struct{}

func (Started) event()     {}
func (Result) event()      {}
func (TimerFired) event()  {}
func (ViewChanged) event() {}
func (Shutdown) event()    {}

// Timer names one of a request's timers; a request has at most one of each
// armed at a time.
type Timer uint8

// A request's timers.
const (
	// RetryTimer ends the wait before a same-model retry.
	RetryTimer Timer = iota
	// HedgeTimer ends the hedge delay.
	HedgeTimer
	// WaitTimer ends the wait for a member to come back.
	WaitTimer
	// DeadlineTimer is the request's deadline plus DeadlineGrace: a safety
	// net, since every attempt carries the deadline itself and normally
	// answers by then; it ends the request if one did not.
	DeadlineTimer
	timerCount
)

// DeadlineGrace is how long past its deadline a request waits for an
// attempt to answer before the DeadlineTimer ends it: a call lost to a
// stopped actor must not leave the caller waiting.
const DeadlineGrace = 250 * time.Millisecond

var timerNames = [...]string{RetryTimer: "retry", HedgeTimer: "hedge", WaitTimer: "wait", DeadlineTimer: "deadline"}

func (t Timer) String() string {
	if int(t) < len(timerNames) {
		return timerNames[t]
	}
	return "timer?"
}
