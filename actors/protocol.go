package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
	"github.com/cmmv-hive/resilience/route"
)

// The messages actors exchange. None leaves the process.

// call asks a model actor for one attempt. The reply is a *callResult sent
// to replyTo, always exactly once.
type call struct {
	ctx      context.Context
	req      *messages.InferRequest
	id       route.AttemptID
	deadline time.Time  // the request's total deadline
	why      route.Kind // Trickle: admitted past an open breaker
	replyTo  *actor.PID
	// sink, for a streamed request, takes the answer's pieces; nil for a
	// plain one.
	sink messages.Sink
	// trimLead, for a continuation of a stream whose text sent so far ends
	// with white space, drops the white space its answer begins with.
	trimLead bool
}

// cancelCall tells a model actor that the router no longer wants an
// attempt (a loser of a race): its provider call is cancelled and its
// breaker permit released, not counted.
type cancelCall struct{ id route.AttemptID }

// callResult is the outcome of one attempt.
type callResult struct {
	id      route.AttemptID
	result  *providers.Result
	err     *providers.Error // nil on success
	latency time.Duration
	// text is what of the attempt's answer reached the caller (a stream).
	text string
	// malformed counts the stream's unparsable events skipped.
	malformed int32
}

// view is what a model actor tells the router of itself, whenever it
// changes.
type view struct {
	name string
	route.View
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
	id         route.AttemptID
	result     *providers.Result
	err        *providers.Error
	latency    time.Duration
	firstToken time.Duration
	malformed  int32 // unparsable stream events skipped
}

type providerPanicked struct {
	id    route.AttemptID
	value any
}

// piece is one piece of a streamed answer, from the provider goroutine of
// attempt id to its model actor, which passes it to the caller's sink if
// the attempt is still its own.
type piece struct {
	id   route.AttemptID
	text string
}

type timerFired struct{ seq uint64 }

type probeDue struct{}

type probeDone struct {
	outcome resilience.Outcome
	permit  resilience.Permit
	trial   bool   // the probe held a half-open permit
	early   bool   // sent while open by the node allowed to probe: a success half-opens
	ramp    bool   // sent while ramping: its outcome is evidence of the step
	gen     uint64 // the breaker's generation when it was sent
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

// peerBreaker is another node's breaker transition for the model's
// upstream (same identity), for the model actor to adopt or not.
type peerBreaker struct{ ev *messages.BreakerTransition }

// leaseDone is the answer to a lease request made in generation gen of
// the breaker.
type leaseDone struct {
	gen uint64
	won bool
	err error
}
