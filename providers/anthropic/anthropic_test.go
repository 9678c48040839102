package anthropic

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/internal/upstreamtest"
)

const answer = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-up",
	"content":[{"type":"text","text":"Hi "},{"type":"tool_use","id":"t","name":"x","input":{}},{"type":"text","text":"there"}],
	"stop_reason":"end_turn","stop_sequence":null,
	"usage":{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":4}}`

func TestCompleteSuccess(t *testing.T) {
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(answer))
	})
	temp := 0.5
	req := &messages.InferRequest{Messages: []*messages.ChatMessage{
		{Role: "system", Content: "be brief"},
		{Role: "user", Content: "hello"},
		{Role: "assistant", Content: "hi"},
		{Role: "developer", Content: "and kind"},
		{Role: "tool", Content: "42"},
	}, Temperature: &temp}
	res, err := m.Complete(upstreamtest.Bounded(t), req)
	require.NoError(t, err)
	assert.Equal(t, "Hi there", res.Content, "text blocks joined, other blocks skipped")
	assert.Equal(t, int32(20), res.Usage.PromptTokens, "input tokens, cached ones included")
	assert.Equal(t, int32(4), res.Usage.CompletionTokens)
	assert.Equal(t, 200, res.StatusCode)

	r, body := u.Request(t)
	assert.Equal(t, "/v1/messages", r.URL.Path)
	assert.Equal(t, upstreamtest.APIKey, r.Header.Get("x-api-key"))
	assert.Equal(t, "2023-06-01", r.Header.Get("anthropic-version"))
	assert.Empty(t, r.Header.Get("Authorization"))
	assert.Equal(t, "claude-up", body["model"])
	assert.Equal(t, 1024.0, body["max_tokens"], "max_tokens is required: 1024 when the request gives none")
	assert.Equal(t, 0.5, body["temperature"])
	assert.Equal(t, "be brief\n\nand kind", body["system"])
	assert.Equal(t, []any{
		map[string]any{"role": "user", "content": "hello"},
		map[string]any{"role": "assistant", "content": "hi"},
		map[string]any{"role": "user", "content": "42"},
	}, body["messages"])
}

func TestRequestOptions(t *testing.T) {
	_, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Write([]byte(`{"type":"message","content":[{"type":"text","text":"cut short"}],"stop_reason":"max_tokens","usage":{"input_tokens":1,"output_tokens":9}}`))
	})
	m, err := New(Config{Name: "claude-x", BaseURL: u.URL + "/v1/", Version: "2099-01-01", MaxTokens: 300,
		Headers: map[string]string{"anthropic-beta": "beta-1"}, Client: u.Client()})
	require.NoError(t, err)
	res, err := m.Complete(upstreamtest.Bounded(t), &messages.InferRequest{Messages: upstreamtest.Hello.Messages})
	require.NoError(t, err, "stop_reason max_tokens is the caller's limit: a success")
	assert.Equal(t, "cut short", res.Content)
	r, body := u.Request(t)
	assert.Equal(t, "/v1/messages", r.URL.Path)
	assert.Equal(t, "2099-01-01", r.Header.Get("anthropic-version"))
	assert.Equal(t, "beta-1", r.Header.Get("anthropic-beta"))
	assert.Empty(t, r.Header.Get("x-api-key"))
	assert.Equal(t, "claude-x", body["model"])
	assert.Equal(t, 300.0, body["max_tokens"])
	assert.NotContains(t, body, "temperature")
	assert.NotContains(t, body, "stream")

	res, err = m.Complete(upstreamtest.Bounded(t), &messages.InferRequest{Messages: upstreamtest.Hello.Messages, MaxTokens: 77})
	require.NoError(t, err)
	_, body = u.Request(t)
	assert.Equal(t, 77.0, body["max_tokens"])
}

func TestNew(t *testing.T) {
	m, err := New(Config{Name: "c"})
	require.NoError(t, err)
	assert.Equal(t, "https://api.anthropic.com/v1/messages", m.api.URL)
	_, err = New(Config{Name: "c", BaseURL: "ftp://x"})
	assert.EqualError(t, err, `anthropic c: BaseURL "ftp://x" is not an absolute http(s) URL`)
	_, err = New(Config{Name: "c", MaxTokens: -1})
	assert.EqualError(t, err, "anthropic c: MaxTokens -1 is negative")
	_, err = New(Config{})
	assert.EqualError(t, err, "anthropic: neither UpstreamModel nor Name is set")
}

func TestStatusClasses(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	errBody := func(typ, msg string) string {
		return `{"type":"error","error":{"type":"` + typ + `","message":"` + msg + `"}}`
	}
	tests := []upstreamtest.Status{
		{Status: 500, Body: errBody("api_error", "Internal server error"), Want: messages.ErrorClass_server_error},
		{Status: 502, Body: `<html>Bad Gateway</html>`, Want: messages.ErrorClass_server_error},
		{Status: 503, Want: messages.ErrorClass_overloaded},
		{Status: 529, Body: errBody("overloaded_error", "Overloaded"), Want: messages.ErrorClass_overloaded},
		{Status: 429, Header: map[string]string{"Retry-After": "7"}, Body: errBody("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), Want: messages.ErrorClass_rate_limited, RetryAfter: 7 * time.Second},
		{Status: 429, Header: map[string]string{"Retry-After": date}, Body: errBody("rate_limit_error", "slow down"), Want: messages.ErrorClass_rate_limited, RetryAfter: 80 * time.Second},
		{Status: 401, Body: errBody("authentication_error", "invalid x-api-key"), Want: messages.ErrorClass_auth},
		{Status: 403, Body: errBody("permission_error", "no access"), Want: messages.ErrorClass_auth},
		{Status: 400, Body: errBody("invalid_request_error", "messages: field required"), Want: messages.ErrorClass_bad_request},
		{Status: 404, Body: errBody("not_found_error", "model: claude-nope"), Want: messages.ErrorClass_bad_request},
		{Status: 413, Body: errBody("request_too_large", "Request exceeds the maximum allowed number of bytes"), Want: messages.ErrorClass_bad_request},
		{Status: 422, Want: messages.ErrorClass_bad_request},
	}
	for _, tt := range tests {
		name := http.StatusText(tt.Status)
		if tt.Header != nil {
			name += " " + tt.Header["Retry-After"]
		}
		t.Run(name, func(t *testing.T) { upstreamtest.CheckStatus(t, serve, tt) })
	}
}

func TestContextLengthAndContentPolicy(t *testing.T) {
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.WriteHeader(400)
		w.Write([]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}`))
	})
	_, err := m.Complete(upstreamtest.Bounded(t), upstreamtest.Hello)
	assert.Equal(t, messages.ErrorClass_context_length, upstreamtest.Class(t, err))
	assert.Contains(t, err.Error(), "208310 tokens > 200000 maximum")

	refuse, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Write([]byte(`{"type":"message","content":[{"type":"text","text":"I can't help with that request."}],"stop_reason":"refusal","usage":{"input_tokens":1,"output_tokens":7}}`))
	})
	_, err = refuse.Complete(upstreamtest.Bounded(t), upstreamtest.Hello)
	assert.Equal(t, messages.ErrorClass_content_policy, upstreamtest.Class(t, err))
	assert.Contains(t, err.Error(), "I can't help with that request.", "the reason is returned")
}

func TestMalformedAnswer(t *testing.T) {
	for name, body := range map[string]string{
		"not json":        `{"content":[`,
		"no content":      `{"id":"x"}`,
		"error with 200":  `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		"plain text body": `ok`,
	} {
		want := messages.ErrorClass_malformed
		if name == "error with 200" {
			want = messages.ErrorClass_overloaded
		}
		t.Run(name, func(t *testing.T) { upstreamtest.CheckAnswerFails(t, serve, body, want) })
	}
}

func TestConnectionRefused(t *testing.T) { upstreamtest.CheckConnectionRefused(t, model) }

func TestConnectionReset(t *testing.T) { upstreamtest.CheckConnectionReset(t, serve) }

func TestHangIsTimeout(t *testing.T) { upstreamtest.CheckHangIsTimeout(t, serve) }

func TestKeyNeverInErrors(t *testing.T) {
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		key := r.Header.Get("x-api-key")
		msg, _ := json.Marshal("invalid x-api-key: " + key)
		if strings.Contains(string(<-u.Bodies), `"stream":true`) {
			upstreamtest.Events(w, messageStart, delta("a"), ev("error", `{"type":"error","error":{"type":"api_error","message":`+string(msg)+`}}`))
			return
		}
		w.WriteHeader(401)
		w.Write([]byte(`{"type":"error","error":{"type":"authentication_error","message":` + string(msg) + `}}`))
	})
	_, err := m.Complete(upstreamtest.Bounded(t), upstreamtest.Hello)
	assert.Equal(t, messages.ErrorClass_auth, upstreamtest.Class(t, err))
	assert.Contains(t, err.Error(), "invalid x-api-key: [redacted]")

	_, _, err = upstreamtest.Collect(upstreamtest.Open(t, m))
	assert.Equal(t, messages.ErrorClass_server_error, upstreamtest.Class(t, err))
}

// TestPrefill: a prefix message is the final assistant turn, its trailing
// white space trimmed (the API refuses it); the API's refusal of a
// prefill is bad_request with code prefill_unsupported.
func TestPrefill(t *testing.T) {
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(answer))
	})
	req := &messages.InferRequest{Messages: []*messages.ChatMessage{
		{Role: "user", Content: "tell me"}, {Role: "assistant", Content: "Once upon a \n", Prefix: true}}}
	_, err := m.Complete(upstreamtest.Bounded(t), req)
	require.NoError(t, err)
	_, body := u.Request(t)
	assert.Equal(t, []any{
		map[string]any{"role": "user", "content": "tell me"},
		map[string]any{"role": "assistant", "content": "Once upon a"},
	}, body["messages"])

	refusing, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill. The conversation must end with a user message."}}`))
	})
	_, err = refusing.Stream(upstreamtest.Bounded(t), req)
	pe := providers.Classify(err)
	assert.Equal(t, messages.ErrorClass_bad_request, pe.Class)
	assert.Equal(t, providers.CodePrefillUnsupported, pe.Code)
}

func TestAnswersReuseConnections(t *testing.T) {
	upstreamtest.CheckAnswersReuseConnections(t, serve, answer)
}

func TestCancelEndsTheCall(t *testing.T) { upstreamtest.CheckCancelEndsTheCall(t, serve) }
