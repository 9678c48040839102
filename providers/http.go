package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// maxMessage bounds the provider text carried in an Error's Message, so a
// huge error page does not travel through the bus.
const maxMessage = 512

// ClassifyHTTP classifies a non-2xx answer from an upstream HTTP API. The
// status decides the class (the table of docs/policy.md): 500, 502, 504 and other
// 5xx are server_error; 501 (not implemented: a wrong endpoint or feature,
// not a transient fault) is bad_request; 503 and 529 are overloaded; 429 is
// rate_limited; 408 is timeout; 401 and 403 are auth; 400, 404, 422 and the
// other 4xx are bad_request. A 4xx body that names a more precise cause wins
// over the status: context_length (code context_length_exceeded, Anthropic's
// "prompt is too long", "maximum context length"), content_policy (code
// content_policy_violation or content_filter, with the provider's reason in
// Message) and auth for an account out of quota (insufficient_quota: no
// Retry-After will cure it). RetryAfter comes from Retry-After (or
// retry-after-ms) on any status. Message is the provider's own message when
// the body has one, bounded and with anything that looks like a credential
// removed.
func ClassifyHTTP(status int, header http.Header, body []byte) *Error {
	class := statusClass(status)
	info := parseErrorBody(body)
	if status < 500 {
		if c, ok := info.preciseClass(); ok {
			class = c
		}
	}
	msg := info.message
	if msg == "" {
		msg = strings.TrimSpace(string(body))
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	e := &Error{
		Class:      class,
		StatusCode: status,
		RetryAfter: retryAfter(header, time.Now()),
		Message:    fmt.Sprintf("HTTP %d: %s", status, scrub(msg)),
	}
	if status/100 == 4 && PrefillRefusal(msg) {
		e.Code = CodePrefillUnsupported
	}
	return e
}

// ClassifyEvent classifies an error object that arrived inside a successful
// response: an error event in the middle of a stream, or an error body sent
// with status 200 by some OpenAI-compatible servers. Both shapes are
// understood: OpenAI's {"error": {"message", "type", "code"}} and
// Anthropic's {"type": "error", "error": {"type", "message"}}. Without a
// status the error's type decides (overloaded_error is overloaded,
// rate_limit_error rate_limited, authentication_error auth,
// invalid_request_error bad_request, ...); an unknown type is fallback. The
// second result is false when data holds no error object.
func ClassifyEvent(data []byte, fallback messages.ErrorClass) (*Error, bool) {
	info := parseErrorBody(data)
	if !info.found {
		return nil, false
	}
	class, ok := info.preciseClass()
	if !ok {
		class, ok = typeClass[info.kind]
	}
	if !ok {
		class, ok = typeClass[info.code]
	}
	if !ok {
		class = fallback
	}
	msg := info.message
	if msg == "" {
		msg = firstNonEmpty(info.kind, info.code, "error event without a message")
	}
	return &Error{Class: class, Message: "upstream error: " + scrub(msg)}, true
}

// ClassifyTransport classifies an error returned by http.Client.Do or by
// reading a response body: the caller's context first (timeout, cancelled),
// then a network timeout (timeout), then everything else the transport can
// fail with (refused, reset, DNS, TLS, a connection closed before or during
// the answer) as connection. Message names the failure, not the URL.
func ClassifyTransport(err error) *Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	if c := Classify(err); c.Class == messages.ErrorClass_timeout || c.Class == messages.ErrorClass_cancelled {
		return c
	}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Class: messages.ErrorClass_timeout, Message: scrub(inner.Error()), Err: err}
	}
	return &Error{Class: messages.ErrorClass_connection, Message: scrub(inner.Error()), Err: err}
}

// ParseRetryAfter reads a Retry-After value, delta-seconds or an HTTP-date,
// as a duration from now. An empty, unparsable, negative or past value is 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return maxRetryAfter
			}
			return 0
		}
		return min(time.Duration(secs)*time.Second, maxRetryAfter)
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d := t.Sub(now); d > 0 {
		return min(d, maxRetryAfter)
	}
	return 0
}

// maxRetryAfter caps a Retry-After so that an absurd value cannot overflow
// a duration or park a model for days; a day is longer than any real one.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads Retry-After, or the millisecond retry-after-ms that
// OpenAI and Azure send beside it.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if ms := strings.TrimSpace(h.Get("Retry-After-Ms")); ms != "" {
		if n, err := strconv.ParseFloat(ms, 64); err == nil && n > 0 && n < float64(maxRetryAfter/time.Millisecond) {
			return time.Duration(n * float64(time.Millisecond))
		}
	}
	return ParseRetryAfter(h.Get("Retry-After"), now)
}

func statusClass(status int) messages.ErrorClass {
	switch {
	case status == 429:
		return messages.ErrorClass_rate_limited
	case status == 503 || status == 529:
		return messages.ErrorClass_overloaded
	case status == 501:
		return messages.ErrorClass_bad_request
	case status == 401 || status == 403:
		return messages.ErrorClass_auth
	case status == 408:
		return messages.ErrorClass_timeout
	case status >= 400 && status < 500:
		return messages.ErrorClass_bad_request
	}
	return messages.ErrorClass_server_error
}

// typeClass maps the error types that OpenAI-compatible and Anthropic APIs
// put in an error object to a class, for errors that come without a status.
var typeClass = map[string]messages.ErrorClass{
	"overloaded_error":      messages.ErrorClass_overloaded,
	"rate_limit_error":      messages.ErrorClass_rate_limited,
	"rate_limit_exceeded":   messages.ErrorClass_rate_limited,
	"tokens":                messages.ErrorClass_rate_limited,
	"requests":              messages.ErrorClass_rate_limited,
	"api_error":             messages.ErrorClass_server_error,
	"server_error":          messages.ErrorClass_server_error,
	"internal_error":        messages.ErrorClass_server_error,
	"timeout_error":         messages.ErrorClass_timeout,
	"authentication_error":  messages.ErrorClass_auth,
	"permission_error":      messages.ErrorClass_auth,
	"invalid_api_key":       messages.ErrorClass_auth,
	"invalid_request_error": messages.ErrorClass_bad_request,
	"not_found_error":       messages.ErrorClass_bad_request,
	"request_too_large":     messages.ErrorClass_bad_request,
}

// errorInfo is what an upstream error body says, whatever its dialect.
type errorInfo struct {
	found   bool   // the body is a JSON error object
	kind    string // error.type
	code    string // error.code (a string, or a number written as one)
	message string // error.message
	inner   string // Azure's error.innererror.code
}

// preciseClass is the class named by the body itself, when it names one
// that the status alone cannot tell.
func (i errorInfo) preciseClass() (messages.ErrorClass, bool) {
	code := strings.ToLower(i.code)
	msg := strings.ToLower(i.message)
	switch {
	case code == "context_length_exceeded",
		strings.Contains(msg, "prompt is too long"),
		strings.Contains(msg, "maximum context length"),
		strings.Contains(msg, "context length exceeded"),
		strings.Contains(msg, "context_length_exceeded"):
		return messages.ErrorClass_context_length, true
	case code == "content_policy_violation", code == "content_filter",
		strings.EqualFold(i.inner, "ResponsibleAIPolicyViolation"):
		return messages.ErrorClass_content_policy, true
	case code == "insufficient_quota", i.kind == "insufficient_quota":
		return messages.ErrorClass_auth, true
	}
	return 0, false
}

// parseErrorBody reads OpenAI's {"error": {...}}, Anthropic's
// {"type": "error", "error": {...}}, and the flat {"error": "text"} or
// {"message": "text"} that smaller servers send.
func parseErrorBody(body []byte) errorInfo {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return errorInfo{}
	}
	var doc struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return errorInfo{}
	}
	var obj struct {
		Message    string          `json:"message"`
		Type       string          `json:"type"`
		Code       json.RawMessage `json:"code"`
		InnerError struct {
			Code string `json:"code"`
		} `json:"innererror"`
	}
	raw := bytes.TrimSpace(doc.Error)
	switch {
	case len(raw) > 0 && raw[0] == '{':
		if json.Unmarshal(raw, &obj) != nil {
			return errorInfo{}
		}
	case len(raw) > 0 && raw[0] == '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return errorInfo{found: true, message: s}
	case doc.Type == "error" || doc.Message != "":
		return errorInfo{found: doc.Type == "error", message: doc.Message}
	default:
		return errorInfo{}
	}
	code := strings.Trim(string(bytes.TrimSpace(obj.Code)), `"`)
	if code == "null" {
		code = ""
	}
	return errorInfo{found: true, kind: obj.Type, code: code, message: obj.Message, inner: obj.InnerError.Code}
}

// keyPattern matches API keys as providers shape them (OpenAI's sk-...,
// sk-proj-..., Anthropic's sk-ant-..., xAI's xai-..., Groq's gsk_...), and
// headerPattern the value of a credential header echoed back.
var (
	keyPattern    = regexp.MustCompile(`\b(?:sk|xai|gsk)[-_][A-Za-z0-9_*\-]{6,}`)
	headerPattern = regexp.MustCompile(`(?i)\b((?:authorization|x-api-key|api-key)\s*[:=]\s*(?:bearer\s+)?|bearer\s+)[^\s"',;]+`)
)

// scrub bounds a provider message and removes anything credential-like.
func scrub(s string) string {
	s = keyPattern.ReplaceAllString(s, "[redacted]")
	s = headerPattern.ReplaceAllString(s, "${1}[redacted]")
	s = strings.Join(strings.Fields(messages.Printable(s)), " ")
	if len(s) > maxMessage {
		s = strings.ToValidUTF8(s[:maxMessage], "") + "..."
	}
	return s
}

// Redact removes from e's Message what looks like a credential (API keys
// as providers shape them, the values of Authorization, x-api-key and
// api-key headers) and every non-empty secret given, for the credentials a
// provider knows exactly (its API key, configured header values). It
// returns e.
func (e *Error) Redact(secrets ...string) *Error {
	if e == nil {
		return nil
	}
	e.Message = keyPattern.ReplaceAllString(e.Message, "[redacted]")
	e.Message = headerPattern.ReplaceAllString(e.Message, "${1}[redacted]")
	for _, s := range secrets {
		if s != "" {
			e.Message = strings.ReplaceAll(e.Message, s, "[redacted]")
		}
	}
	return e
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
