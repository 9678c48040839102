package messages

import "fmt"

// Status returns the HTTP-style status code that stands for c when a reply
// leaves Hive: in the HTTP gateway and in the NATS service error header.
// Upstream faults map to 5xx because they are not the caller's doing; ok is 200.
func (c ErrorClass) Status() int {
	switch c {
	case ErrorClass_ok:
		return 200
	case ErrorClass_bad_request, ErrorClass_context_length, ErrorClass_content_policy:
		return 400
	case ErrorClass_rate_limited:
		return 429
	case ErrorClass_cancelled:
		return 499
	case ErrorClass_timeout, ErrorClass_stream_stall:
		return 504
	case ErrorClass_overloaded, ErrorClass_circuit_open, ErrorClass_no_capacity, ErrorClass_all_failed:
		return 503
	default: // connection, server_error, auth, malformed, stream_cut
		return 502
	}
}

// ParseErrorClass returns the class named s ("timeout", "server_error", ...).
// It fails for unknown names.
func ParseErrorClass(s string) (ErrorClass, error) {
	v, ok := ErrorClass_value[s]
	if !ok {
		return 0, fmt.Errorf("unknown error class %q", s)
	}
	return ErrorClass(v), nil
}

// Failure builds an Error with class, a stable code and a human message.
// The message is made valid UTF-8 (see Printable), so that an error that
// quotes a bad input byte still encodes.
func Failure(class ErrorClass, code, format string, args ...any) *Error {
	return &Error{Class: class, Code: code, Message: Printable(fmt.Sprintf(format, args...))}
}
