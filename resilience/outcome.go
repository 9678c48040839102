package resilience

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// Outcome is the result of one call as the policies see it.
type Outcome struct {
	// Class is ok for a success, else the failure's class.
	Class messages.ErrorClass
	// Latency is the call's duration (for a stream, until its end).
	Latency time.Duration
	// FirstToken is a stream's time to first token; 0 for plain calls.
	FirstToken time.Duration
	// RetryAfter is the model's own Retry-After, 0 when it gave none.
	RetryAfter time.Duration
}

// Success reports whether the call succeeded.
func (o Outcome) Success() bool { return o.Class == messages.ErrorClass_ok }

// Counts reports whether the outcome is evidence about the model: a
// success, or a failure whose class counts against the breaker. The
// caller's own mistakes (bad_request, cancelled ...) are not.
func (o Outcome) Counts() bool { return o.Success() || PolicyFor(o.Class).CountsAgainstBreaker }
