package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/cmmv-hive/resilience/messages"
)

func TestClassifyHTTP(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  http.Header
		body    string
		want    messages.ErrorClass
		message string
	}{
		{"500", 500, nil, `{"error":{"message":"boom","type":"server_error"}}`, messages.ErrorClass_server_error, "HTTP 500: boom"},
		{"502 html", 502, nil, "<html>bad gateway</html>", messages.ErrorClass_server_error, "HTTP 502: <html>bad gateway</html>"},
		{"504 empty", 504, nil, "", messages.ErrorClass_server_error, "HTTP 504: Gateway Timeout"},
		{"520 unknown 5xx", 520, nil, "", messages.ErrorClass_server_error, "HTTP 520: "},
		{"501", 501, nil, "", messages.ErrorClass_bad_request, "HTTP 501: Not Implemented"},
		{"503", 503, nil, "", messages.ErrorClass_overloaded, ""},
		{"529 anthropic", 529, nil, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, messages.ErrorClass_overloaded, "HTTP 529: Overloaded"},
		{"429", 429, nil, "", messages.ErrorClass_rate_limited, ""},
		{"429 out of quota", 429, nil, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`, messages.ErrorClass_auth, ""},
		{"401", 401, nil, "", messages.ErrorClass_auth, ""},
		{"403", 403, nil, "", messages.ErrorClass_auth, ""},
		{"408", 408, nil, "", messages.ErrorClass_timeout, ""},
		{"400", 400, nil, `{"error":"flat error string"}`, messages.ErrorClass_bad_request, "HTTP 400: flat error string"},
		{"404", 404, nil, "", messages.ErrorClass_bad_request, ""},
		{"413", 413, nil, "", messages.ErrorClass_bad_request, ""},
		{"422", 422, nil, `{"message":"unprocessable"}`, messages.ErrorClass_bad_request, "HTTP 422: unprocessable"},
		{"context length code", 400, nil, `{"error":{"message":"too long","code":"context_length_exceeded"}}`, messages.ErrorClass_context_length, "HTTP 400: too long"},
		{"anthropic prompt too long", 400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}`, messages.ErrorClass_context_length, ""},
		{"content policy", 400, nil, `{"error":{"message":"rejected by the safety system","code":"content_policy_violation"}}`, messages.ErrorClass_content_policy, "HTTP 400: rejected by the safety system"},
		{"content words in a 5xx stay server_error", 500, nil, `{"error":{"message":"maximum context length","code":"context_length_exceeded"}}`, messages.ErrorClass_server_error, ""},
		{"key in the message", 401, nil, `{"error":{"message":"Incorrect API key provided: sk-proj-abcdEFGH1234. Authorization: Bearer sk-proj-abcdEFGH1234"}}`,
			messages.ErrorClass_auth, "HTTP 401: Incorrect API key provided: [redacted]. Authorization: Bearer [redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ClassifyHTTP(tt.status, tt.header, []byte(tt.body))
			assert.Equal(t, tt.want, e.Class, "class of %d %s", tt.status, tt.body)
			assert.Equal(t, tt.status, e.StatusCode)
			if tt.message != "" {
				assert.Equal(t, tt.message, e.Message)
			}
		})
	}
}

func TestClassifyHTTPRetryAfter(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "7")
	assert.Equal(t, 7*time.Second, ClassifyHTTP(429, h, nil).RetryAfter)
	h.Set("Retry-After-Ms", "1500")
	assert.Equal(t, 1500*time.Millisecond, ClassifyHTTP(429, h, nil).RetryAfter, "retry-after-ms is the finer of the two")
	h = http.Header{}
	h.Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	got := ClassifyHTTP(503, h, nil).RetryAfter
	assert.True(t, got > 59*time.Minute && got <= time.Hour, "HTTP-date an hour ahead gave %v", got)
}

func TestLongMessageIsBounded(t *testing.T) {
	body := make([]byte, 10000)
	for i := range body {
		body[i] = 'x'
	}
	e := ClassifyHTTP(500, nil, body)
	assert.LessOrEqual(t, len(e.Message), maxMessage+20)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-3", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", 24 * time.Hour},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"Sunday, 01-Mar-26 12:01:00 GMT", time.Minute},
		{"Sun Mar  1 12:00:10 2026", 10 * time.Second},
		{"Sun, 01 Mar 2026 11:59:00 GMT", 0},
		{"Sun, 01 Mar 2026 25:00:00 GMT", 0},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.v, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestClassifyTransport(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "http://127.0.0.1:1/v1", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	dns := &url.Error{Op: "Post", URL: "http://nowhere.invalid/v1", Err: &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}}
	reset := &url.Error{Op: "Post", URL: "http://127.0.0.1:1/v1", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}
	dialTimeout := &url.Error{Op: "Post", URL: "http://10.255.255.1/v1", Err: &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}}
	tests := []struct {
		name string
		err  error
		want messages.ErrorClass
	}{
		{"refused", refused, messages.ErrorClass_connection},
		{"dns", dns, messages.ErrorClass_connection},
		{"reset", reset, messages.ErrorClass_connection},
		{"eof before headers", &url.Error{Op: "Post", URL: "u", Err: io.EOF}, messages.ErrorClass_connection},
		{"dial timeout", dialTimeout, messages.ErrorClass_timeout},
		{"attempt deadline", &url.Error{Op: "Post", URL: "u", Err: context.DeadlineExceeded}, messages.ErrorClass_timeout},
		{"caller gone", fmt.Errorf("read: %w", context.Canceled), messages.ErrorClass_cancelled},
		{"already classified", Errorf(messages.ErrorClass_malformed, "x"), messages.ErrorClass_malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ClassifyTransport(tt.err)
			assert.Equal(t, tt.want, e.Class, "%v", tt.err)
			assert.True(t, errors.Is(e, tt.err) || e == tt.err, "the cause is kept")
			assert.NotContains(t, e.Message, "http://", "the message names the failure, not the URL")
		})
	}
	assert.Nil(t, ClassifyTransport(nil))
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyEvent(t *testing.T) {
	tests := []struct {
		data string
		want messages.ErrorClass
		ok   bool
	}{
		{`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, messages.ErrorClass_overloaded, true},
		{`{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}`, messages.ErrorClass_rate_limited, true},
		{`{"type":"error","error":{"type":"api_error","message":"boom"}}`, messages.ErrorClass_server_error, true},
		{`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}`, messages.ErrorClass_context_length, true},
		{`{"error":{"message":"x","code":"context_length_exceeded"}}`, messages.ErrorClass_context_length, true},
		{`{"error":{"message":"flagged","code":"content_filter"}}`, messages.ErrorClass_content_policy, true},
		{`{"error":{"message":"??","type":"weird"}}`, messages.ErrorClass_server_error, true},
		{`{"error":null}`, 0, false},
		{`{"choices":[]}`, 0, false},
		{`not json`, 0, false},
	}
	for _, tt := range tests {
		e, ok := ClassifyEvent([]byte(tt.data), messages.ErrorClass_server_error)
		if ok != tt.ok || (ok && e.Class != tt.want) {
			t.Errorf("ClassifyEvent(%s) = %v, %v; want %v, %v", tt.data, e, ok, tt.want, tt.ok)
		}
	}
}

func TestRedact(t *testing.T) {
	e := Errorf(messages.ErrorClass_auth, "key my-secret-value rejected")
	assert.Equal(t, "auth: key [redacted] rejected", e.Redact("", "my-secret-value").Error())
	assert.Nil(t, (*Error)(nil).Redact("x"))
}

func TestRedactPatterns(t *testing.T) {
	e := Errorf(messages.ErrorClass_server_error, "exit status 1: using key sk-ant-api03-AAAAbbbbCCCC, header x-api-key: abc123")
	assert.Equal(t, "server_error: exit status 1: using key [redacted], header x-api-key: [redacted]", e.Redact().Error())
}

func TestHTTPClient(t *testing.T) {
	c := HTTPClient()
	assert.Same(t, c, HTTPClient(), "one shared client")
	tr := c.Transport.(*http.Transport)
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 100, "sized for many concurrent calls to one host")
	assert.True(t, tr.Protocols.HTTP1() && !tr.Protocols.HTTP2(), "HTTP/1.1 keep-alive only")
	assert.Zero(t, c.Timeout, "calls are bounded by their context")
}
