package providers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// Provider is a model backend. Complete answers one request; it returns an
// error for every failure, preferably an *Error that carries its class, and
// returns when ctx ends.
type Provider interface {
	Complete(ctx context.Context, req *messages.InferRequest) (*Result, error)
}

// Result is a complete answer from a model.
type Result struct {
	Content    string
	Usage      *messages.Usage
	StatusCode int // upstream HTTP status, 0 when there was no HTTP call
}

// Error is a classified provider failure. Message is safe to show to a
// caller: it never contains credentials.
type Error struct {
	Class      messages.ErrorClass
	StatusCode int           // upstream HTTP status, 0 when none
	RetryAfter time.Duration // from a Retry-After header, 0 when none
	Message    string
	Err        error // the underlying cause, if any
	// Code is a stable detail within Class, when one matters to the
	// router: CodePrefillUnsupported.
	Code string
	// Skippable marks a malformed event of a stream that can be read on
	// past it: the events after it may parse (see Stream.Recv).
	Skippable bool
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Class.String()
	}
	return e.Class.String() + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// UpstreamStatus is the HTTP status a real upstream sends with a failure of
// class, so that simulated and injected failures look like the real thing;
// 0 for the classes that come without one (timeout, connection ...).
func UpstreamStatus(class messages.ErrorClass) int {
	switch class {
	case messages.ErrorClass_server_error:
		return 500
	case messages.ErrorClass_overloaded:
		return 503
	case messages.ErrorClass_rate_limited:
		return 429
	case messages.ErrorClass_auth:
		return 401
	case messages.ErrorClass_bad_request, messages.ErrorClass_context_length, messages.ErrorClass_content_policy:
		return 400
	}
	return 0
}

// Errorf returns an *Error of the given class with a formatted message.
func Errorf(class messages.ErrorClass, format string, args ...any) *Error {
	return &Error{Class: class, Message: fmt.Sprintf(format, args...)}
}

// Classify turns any error from a provider call into an *Error. A context
// deadline becomes timeout and a cancelled context becomes cancelled;
// anything unclassified is a server_error, the class that fails over.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Class: messages.ErrorClass_timeout, Message: "no answer within the attempt deadline", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Class: messages.ErrorClass_cancelled, Message: "the caller went away", Err: err}
	}
	return &Error{Class: messages.ErrorClass_server_error, Message: err.Error(), Err: err}
}
