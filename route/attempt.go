package route

import "strconv"

// AttemptID names one attempt on a node: the router's number for the
// request in its high 48 bits, and the attempt's number within the
// request, from 1, in its low 16. The router, the model actor and the
// result that comes back all use it, and a model actor's in-flight calls
// are keyed by it, so no other number is needed to match a result, a
// cancel or a stream piece to its call. One integer, so that those maps
// take their fast path; 16 bits are plenty, since a request makes at most
// two attempts per member of its group (a retry each) and a trickle.
type AttemptID uint64

// NewAttemptID returns attempt n of request number request.
func NewAttemptID(request uint64, n uint16) AttemptID { return AttemptID(request<<16 | uint64(n)) }

// Request is the number of the attempt's request.
func (id AttemptID) Request() uint64 { return uint64(id) >> 16 }

// N is the attempt's number within its request, from 1.
func (id AttemptID) N() uint16 { return uint16(id) }

// String is "request.n", as testdata writes it.
func (id AttemptID) String() string {
	return strconv.FormatUint(id.Request(), 10) + "." + strconv.FormatUint(uint64(id.N()), 10)
}

// Kind says why an attempt is launched.
type Kind uint8

// Attempt kinds.
const (
	// First is a candidate's first call, in the strategy's order.
	First Kind = iota
	// Retry calls the same model again after a failure its class retries.
	Retry
	// Hedge calls the next candidate beside one that is slow to answer.
	Hedge
	// Race is one of the candidates a parallel request runs at once.
	Race
	// Trickle calls a model past its open breaker: the group's panic-mode
	// trickle, or a member the group's open cap keeps as a last resort.
	Trickle
)

var kindNames = [...]string{First: "first", Retry: "retry", Hedge: "hedge", Race: "race", Trickle: "trickle"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// PastBreaker reports whether the model admits the attempt without asking
// its breaker.
func (k Kind) PastBreaker() bool { return k == Trickle }

// Continue says how an attempt continues a stream that an earlier attempt
// left cut after its text reached the caller (see continue.go).
type Continue uint8

// Continuation modes.
const (
	// Fresh is an attempt that continues nothing.
	Fresh Continue = iota
	// Prefill gives the model the text sent as the start of its answer
	// (an assistant prefill), for a member that takes one.
	Prefill
	// Instruction asks the model, in a user turn, to go on from the text
	// sent without repeating it.
	Instruction
)

var continueNames = [...]string{Fresh: "", Prefill: "prefill", Instruction: "instruction"}

// String is the mode's name in Attempt.continued: "prefill",
// "instruction", or "" for Fresh.
func (c Continue) String() string {
	if int(c) < len(continueNames) {
		return continueNames[c]
	}
	return "continue(" + strconv.Itoa(int(c)) + ")"
}
