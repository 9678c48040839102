package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
)

// The messages actors exchange. None leaves the process.

// call asks a model actor for one attempt. The reply is a *callResult sent
// to replyTo, always exactly once.
type call struct {
	ctx      context.Context
	req      *messages.InferRequest
	deadline time.Time // the request's total deadline
	run      uint64    // the router's request run
	attempt  uint64    // the attempt within the run
	replyTo  *actor.PID
	// panicMode admits the call past an open breaker: the fallback group's
	// panic trickle, sent when no member admits traffic.
	panicMode bool
	// out, for a streamed request, takes the answer's pieces.
	out *streamOut
}

// cancelCall tells a model actor that the router no longer wants an
// attempt (a loser of a race): its provider call is cancelled and its
// breaker permit released, not counted.
type cancelCall struct{ run, attempt uint64 }

// callResult is the outcome of one attempt.
type callResult struct {
	run, attempt uint64
	model        string
	result       *providers.Result
	err          *providers.Error // nil on success
	latency      time.Duration
}

// view is what the router knows of a model: enough to skip it, weight it
// or hedge against it without asking. Model actors send one whenever it
// changes.
type view struct {
	name      string
	up        bool // the actor runs (false while restarting or given up)
	enabled   bool // in rotation (false: an operator disabled it)
	breaker   messages.BreakerState
	openUntil time.Time
	ramp      int     // percent of traffic admitted while ramping back
	score     float64 // health score, for weighted routing
	p95       time.Duration
}

// admits reports whether the router may send the model traffic at now.
func (v *view) admits(now time.Time) bool {
	if !v.up || !v.enabled {
		return false
	}
	switch v.breaker {
	case messages.BreakerState_open:
		return !now.Before(v.openUntil) // due to half-open: let the model decide
	case messages.BreakerState_forced_open:
		return false
	}
	return true
}

// modelDown tells the router a model actor is not running: restarting, or
// given up by its supervisor.
type modelDown struct {
	name   string
	gaveUp bool
}

// register gives the router a model actor's PID.
type register struct {
	name string
	pid  *actor.PID
}

// Model actor internals.

type finished struct {
	seq        uint64
	result     *providers.Result
	err        *providers.Error
	latency    time.Duration
	firstToken time.Duration
}

type providerPanicked struct {
	seq   uint64
	value any
}

type timerFired struct{ seq uint64 }

type probeDue struct{}

type probeDone struct {
	outcome resilience.Outcome
	permit  resilience.Permit
	trial   bool // the probe held a half-open permit
}

// Manual control of a model, sent by the Hive with a future.
type control struct {
	op       ControlOp
	duration time.Duration // ForceOpen: 0 until changed
	actor    string        // who asked
	reason   string
}

// controlDone answers a control with the model's status after it.
type controlDone struct {
	status *messages.ModelStatus
	err    error
}

// beginProbing asks a model to test itself now: recovery after a restart.
type beginProbing struct{ trigger string }
