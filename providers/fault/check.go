package fault

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// ErrInvalid is matched by the error of Check.
var ErrInvalid = errors.New("invalid fault")

// Problems is what Check found wrong with a FaultSpec, one entry each. It
// matches ErrInvalid.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "; ") }

// Is makes Problems match ErrInvalid.
func (p Problems) Is(target error) bool { return target == ErrInvalid }

// Check says what is wrong with a FaultSpec, every problem at once, or
// returns nil. It refuses an unknown kind or error class, a probability
// outside (0, 1] (0 means 1), any negative number, a status code outside
// 400..599 (0 for none), latency and slow_first_token without latencyMs,
// cut_stream without afterTokens (a cut before the first piece is an error
// fault), and a partition without durationMs (a partitioned node cannot
// hear the clear). The id and model are the transport's to check: they are
// subject tokens.
func Check(s *messages.FaultSpec) error {
	var p Problems
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	kind := s.GetKind()
	if _, ok := messages.FaultSpec_Kind_name[int32(kind)]; !ok {
		add("unknown kind %d", kind)
	}
	if pr := s.GetProbability(); math.IsNaN(pr) || pr < 0 || pr > 1 {
		add("probability %v is outside (0, 1] (0 means 1)", pr)
	}
	for _, f := range []struct {
		name string
		v    int32
	}{{"latencyMs", s.GetLatencyMs()}, {"jitterMs", s.GetJitterMs()}, {"afterTokens", s.GetAfterTokens()},
		{"retryAfterMs", s.GetRetryAfterMs()}, {"startAfterMs", s.GetStartAfterMs()}, {"durationMs", s.GetDurationMs()}} {
		if f.v < 0 {
			add("%s %d is negative", f.name, f.v)
		}
	}
	if _, ok := messages.ErrorClass_name[int32(s.GetErrorClass())]; !ok {
		add("unknown error class %d", s.GetErrorClass())
	}
	if st := s.GetStatusCode(); st != 0 && (st < 400 || st > 599) {
		add("statusCode %d is not an HTTP error status (400..599, or 0 for the class's own)", st)
	}
	switch kind {
	case messages.FaultSpec_latency, messages.FaultSpec_slow_first_token:
		if s.GetLatencyMs() <= 0 {
			add("%s needs latencyMs above 0", kind)
		}
	case messages.FaultSpec_cut_stream:
		if s.GetAfterTokens() <= 0 {
			add("cut_stream needs afterTokens of at least 1 (to fail before the first piece, inject an error)")
		}
	case messages.FaultSpec_partition:
		if s.GetDurationMs() <= 0 {
			add("partition needs durationMs above 0: a partitioned node cannot hear a clear")
		}
	}
	if len(p) > 0 {
		return p
	}
	return nil
}

// Describe is a one-line description of a fault, for logs and the
// audit trail: "error server_error 500 on primary, p=0.5, after 1s, for
// 10s (f1)".
func Describe(s *messages.FaultSpec) string {
	var b strings.Builder
	b.WriteString(s.GetKind().String())
	ms := func(v int32) string { return (time.Duration(v) * time.Millisecond).String() }
	switch s.GetKind() {
	case messages.FaultSpec_error:
		if s.GetErrorClass() != messages.ErrorClass_ok {
			b.WriteString(" " + s.GetErrorClass().String())
		}
		if s.GetStatusCode() != 0 {
			fmt.Fprintf(&b, " %d", s.GetStatusCode())
		}
	case messages.FaultSpec_latency, messages.FaultSpec_slow_first_token:
		b.WriteString(" " + ms(s.GetLatencyMs()))
		if s.GetJitterMs() > 0 {
			b.WriteString(" +-" + ms(s.GetJitterMs()))
		}
	case messages.FaultSpec_cut_stream, messages.FaultSpec_stall_stream, messages.FaultSpec_malformed_chunk:
		fmt.Fprintf(&b, " after %d tokens", s.GetAfterTokens())
	case messages.FaultSpec_rate_limit:
		if s.GetRetryAfterMs() > 0 {
			b.WriteString(" retry after " + ms(s.GetRetryAfterMs()))
		}
	}
	switch s.GetKind() {
	case messages.FaultSpec_partition, messages.FaultSpec_kill:
		b.WriteString(" of the node")
	default:
		if m := s.GetModel(); m == "" || m == "*" {
			b.WriteString(" on every model")
		} else {
			b.WriteString(" on " + m)
		}
	}
	if p := s.GetProbability(); p > 0 && p < 1 {
		fmt.Fprintf(&b, ", p=%g", p)
	}
	if s.GetStartAfterMs() > 0 {
		b.WriteString(", after " + ms(s.GetStartAfterMs()))
	}
	if s.GetDurationMs() > 0 {
		b.WriteString(", for " + ms(s.GetDurationMs()))
	} else if s.GetKind() != messages.FaultSpec_kill {
		b.WriteString(", until cleared")
	}
	if s.GetId() != "" {
		b.WriteString(" (" + s.GetId() + ")")
	}
	return b.String()
}
