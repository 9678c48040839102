package route

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// Effect is one thing the owner of a Request must do, in order. It is a
// plain struct with a kind rather than an interface so that a Step returns
// its effects without an allocation each.
type Effect struct {
	Kind EffectKind

	// Attempt is the attempt launched or cancelled.
	Attempt AttemptID
	// Model is the model called (Launch), cancelled (Cancel) or whose text
	// a Piece is.
	Model string
	// Why is a Launch's kind; Why.PastBreaker says whether the model admits
	// it without its breaker.
	Why Kind
	// Deadline bounds a Launch: the request's deadline.
	Deadline time.Time
	// Continue, on a Launch, says whether and how the attempt continues a
	// stream cut after its text reached the caller: the owner then sends
	// the conversation with the text sent so far, as a prefill or as an
	// instruction.
	Continue Continue

	// Timer and At are an Arm: the owner delivers TimerFired{Timer} at At
	// (by the clock the Steps are given), unless the request ends first.
	Timer Timer
	At    time.Time

	// Text is a Piece: text for the caller of a streamed request.
	Text string

	// Reply is a Finish: the whole reply but its request_id, which the
	// owner has (a streamed one has no Content: its text went out as
	// pieces). The request is over: the owner drops its timers, and later
	// Steps do nothing.
	Reply *messages.InferResponse
	// Degraded, on a Finish, is the change of the group's degradation
	// level the request caused, if any.
	Degraded *resilience.DegradationChange
}

// EffectKind says what an Effect asks for.
type EffectKind uint8

// Effect kinds.
const (
	// Launch sends the request to Model as Attempt.
	Launch EffectKind = iota
	// Cancel tells Model its Attempt is no longer wanted: the call is
	// cancelled and not counted against the model.
	Cancel
	// Arm arms Timer for At.
	Arm
	// Piece sends Text to the caller of a streamed request.
	Piece
	// Finish hands Reply to the caller.
	Finish
)
