package messages

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Bounds of CheckRequest. Both ingresses (NATS and HTTP) refuse a request
// past them with the same code, before any model is called.
const (
	MaxMessages      = 10000 // messages in one request
	MaxMetadataKeys  = 64    // metadata entries
	MaxMetadataKey   = 64    // bytes of one metadata key
	MaxMetadataValue = 512   // bytes of one metadata value
	MaxIDLength      = 128   // bytes of request_id and idempotency_key
	MaxTemperature   = 2.0   // OpenAI's upper bound
)

// Roles are the message roles a request may carry, OpenAI's set.
var Roles = []string{"system", "developer", "user", "assistant", "tool", "function"}

// Problem is why CheckRequest refused a request: a stable code (the same
// over NATS and HTTP), the field in protojson's names ("messages[3].role",
// "maxTokens"), and a message that quotes no content of the request.
type Problem struct {
	Code, Field, Message string
}

// Error returns the problem as the bad_request Error a reply carries.
func (p *Problem) Error() *Error {
	return &Error{Class: ErrorClass_bad_request, Code: p.Code, Message: p.Message}
}

// CheckRequest returns the first problem of r, or nil when a node may serve
// it: a model and at least one message (at most MaxMessages), each with a
// known role (only the last, of role assistant, may be a prefix); tools
// and response_format, when set, a JSON array and object; max_tokens, deadline_ms not negative (0 means the default);
// temperature, when set, a number in [0, 2]; a known priority; request_id
// and idempotency_key, when set, visible ASCII of at most MaxIDLength bytes;
// at most MaxMetadataKeys metadata entries of bounded size. Strings are
// valid UTF-8 whenever r was decoded by protobuf or protojson, which refuse
// anything else.
func CheckRequest(r *InferRequest) *Problem {
	bad := func(code, field, format string, args ...any) *Problem {
		return &Problem{Code: code, Field: field, Message: Printable(fmt.Sprintf(format, args...))}
	}
	if id := r.GetRequestId(); id != "" && !visibleASCII(id) {
		return bad("invalid_request_id", "requestId", "requestId must be 1 to %d visible ASCII characters", MaxIDLength)
	}
	if k := r.GetIdempotencyKey(); k != "" && !visibleASCII(k) {
		return bad("invalid_idempotency_key", "idempotencyKey", "idempotencyKey must be 1 to %d visible ASCII characters", MaxIDLength)
	}
	if r.GetModel() == "" {
		return bad("missing_model", "model", "model is required")
	}
	switch n := len(r.GetMessages()); {
	case n == 0:
		return bad("missing_messages", "messages", "messages must hold at least one message")
	case n > MaxMessages:
		return bad("too_many_messages", "messages", "messages holds %d messages, more than %d", n, MaxMessages)
	}
	last := len(r.GetMessages()) - 1
	for i, m := range r.GetMessages() {
		if !knownRole(m.GetRole()) {
			return bad("invalid_role", fmt.Sprintf("messages[%d].role", i), "messages[%d].role must be %s", i, strings.Join(Roles, ", "))
		}
		if m.GetPrefix() && (i != last || m.GetRole() != "assistant") {
			return bad("invalid_prefix", fmt.Sprintf("messages[%d].prefix", i), "only the last message, of role assistant, may be a prefix")
		}
	}
	if t := r.GetTools(); t != "" && !jsonOf(t, '[') {
		return bad("invalid_tools", "tools", "tools must be a JSON array")
	}
	if f := r.GetResponseFormat(); f != "" && !jsonOf(f, '{') {
		return bad("invalid_response_format", "responseFormat", "responseFormat must be a JSON object")
	}
	if r.GetMaxTokens() < 0 {
		return bad("invalid_max_tokens", "maxTokens", "maxTokens must be between 1 and %d (0 or absent: the model's default)", math.MaxInt32)
	}
	if r.Temperature != nil {
		if t := r.GetTemperature(); math.IsNaN(t) || t < 0 || t > MaxTemperature {
			return bad("invalid_temperature", "temperature", "temperature must be between 0 and 2")
		}
	}
	if r.GetDeadlineMs() < 0 {
		return bad("invalid_deadline", "deadlineMs", "deadlineMs must be a positive number of milliseconds (0 or absent: the configured default)")
	}
	if _, ok := InferRequest_Priority_name[int32(r.GetPriority())]; !ok {
		return bad("invalid_priority", "priority", "priority must be normal, high or critical")
	}
	if n := len(r.GetMetadata()); n > MaxMetadataKeys {
		return bad("too_many_metadata", "metadata", "metadata holds %d keys, more than %d", n, MaxMetadataKeys)
	}
	for k, v := range r.GetMetadata() {
		if k == "" || len(k) > MaxMetadataKey || len(v) > MaxMetadataValue {
			return bad("invalid_metadata", "metadata", "metadata keys must be 1 to %d bytes and values at most %d bytes", MaxMetadataKey, MaxMetadataValue)
		}
	}
	return nil
}

// jsonOf reports whether s is valid JSON whose value opens with open.
func jsonOf(s string, open byte) bool {
	t := strings.TrimSpace(s)
	return len(t) > 0 && t[0] == open && json.Valid([]byte(t))
}

func knownRole(role string) bool {
	for _, r := range Roles {
		if r == role {
			return true
		}
	}
	return false
}

// visibleASCII reports whether s is a short run of visible ASCII, safe to
// echo in a header and a log line.
func visibleASCII(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLength {
		return false
	}
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Printable returns s as valid UTF-8, each invalid byte replaced by U+FFFD,
// so that a message that quotes its input always encodes (protojson refuses
// invalid UTF-8 in a string).
func Printable(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
