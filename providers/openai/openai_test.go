package openai

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

func TestCompleteSuccess(t *testing.T) {
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}`))
	})
	temp := 0.2
	req := &messages.InferRequest{Model: "gpt", Messages: upstreamtest.Hello.Messages, MaxTokens: 50, Temperature: &temp}
	res, err := m.Complete(upstreamtest.Bounded(t), req)
	require.NoError(t, err)
	assert.Equal(t, "Hi!", res.Content)
	assert.Equal(t, int32(12), res.Usage.PromptTokens)
	assert.Equal(t, int32(2), res.Usage.CompletionTokens)
	assert.Equal(t, 200, res.StatusCode)

	r, body := u.Request(t)
	assert.Equal(t, "/v1/chat/completions", r.URL.Path)
	assert.Equal(t, "Bearer "+upstreamtest.APIKey, r.Header.Get("Authorization"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "gpt-up", body["model"])
	assert.Equal(t, 50.0, body["max_tokens"])
	assert.Equal(t, 0.2, body["temperature"])
	assert.Nil(t, body["stream"])
	assert.Equal(t, []any{
		map[string]any{"role": "system", "content": "be brief"},
		map[string]any{"role": "user", "content": "hello there"},
	}, body["messages"])
}

func TestRequestOptions(t *testing.T) {
	_, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"choices":[{"message":{"content":"ok"},"finish_reason":"length"}]}`))
	})
	m, err := New(Config{BaseURL: u.URL + "/", Name: "local", MaxCompletionTokens: true,
		Headers: map[string]string{"OpenAI-Project": "proj_1"}, Client: u.Client()})
	require.NoError(t, err)
	res, err := m.Complete(upstreamtest.Bounded(t), &messages.InferRequest{Messages: upstreamtest.Hello.Messages, MaxTokens: 9})
	require.NoError(t, err, "finish_reason length is the caller's max_tokens: a success")
	assert.Equal(t, "ok", res.Content)
	assert.Nil(t, res.Usage)

	r, body := u.Request(t)
	assert.Equal(t, "/chat/completions", r.URL.Path)
	assert.Empty(t, r.Header.Get("Authorization"), "no key, no Authorization header")
	assert.Equal(t, "proj_1", r.Header.Get("OpenAI-Project"))
	assert.Equal(t, "local", body["model"], "an empty UpstreamModel means Name")
	assert.Equal(t, 9.0, body["max_completion_tokens"])
	assert.NotContains(t, body, "max_tokens")
	assert.NotContains(t, body, "temperature")
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{Name: "x", BaseURL: "api.openai.com/v1"})
	assert.EqualError(t, err, `openai x: BaseURL "api.openai.com/v1" is not an absolute http(s) URL`)
	_, err = New(Config{BaseURL: "http://127.0.0.1:1/v1"})
	assert.EqualError(t, err, "openai: neither UpstreamModel nor Name is set")
}

func TestStatusClasses(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []upstreamtest.Status{
		{Status: 500, Body: `{"error":{"message":"The server had an error","type":"server_error"}}`, Want: messages.ErrorClass_server_error},
		{Status: 502, Body: `<html>Bad Gateway</html>`, Want: messages.ErrorClass_server_error},
		{Status: 504, Want: messages.ErrorClass_server_error},
		{Status: 501, Want: messages.ErrorClass_bad_request},
		{Status: 503, Header: map[string]string{"Retry-After": "3"}, Body: `{"error":{"message":"overloaded"}}`, Want: messages.ErrorClass_overloaded, RetryAfter: 3 * time.Second},
		{Status: 529, Want: messages.ErrorClass_overloaded},
		{Status: 429, Header: map[string]string{"Retry-After": "7"}, Body: `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, Want: messages.ErrorClass_rate_limited, RetryAfter: 7 * time.Second},
		{Status: 429, Header: map[string]string{"Retry-After": date}, Want: messages.ErrorClass_rate_limited, RetryAfter: 80 * time.Second},
		{Status: 429, Body: `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`, Want: messages.ErrorClass_auth},
		{Status: 401, Body: `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`, Want: messages.ErrorClass_auth},
		{Status: 403, Want: messages.ErrorClass_auth},
		{Status: 400, Body: `{"error":{"message":"bad role","type":"invalid_request_error"}}`, Want: messages.ErrorClass_bad_request},
		{Status: 404, Body: `{"error":{"message":"The model does not exist","code":"model_not_found"}}`, Want: messages.ErrorClass_bad_request},
		{Status: 422, Body: `{"detail":"unprocessable"}`, Want: messages.ErrorClass_bad_request},
	}
	for _, tt := range tests {
		name := http.StatusText(tt.Status)
		if tt.Header != nil || strings.Contains(tt.Body, "quota") {
			name += " " + strings.Join(strings.Fields(tt.Body+" "+tt.Header["Retry-After"]), " ")
		}
		t.Run(name, func(t *testing.T) { upstreamtest.CheckStatus(t, serve, tt) })
	}
}

func TestContextLengthAndContentPolicy(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   messages.ErrorClass
		reason string
	}{
		{"context length code", 400, `{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			messages.ErrorClass_context_length, "maximum context length is 8192"},
		{"context length message only (vLLM)", 400, `{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens","type":"BadRequestError","code":400}`,
			messages.ErrorClass_context_length, "4096"},
		{"content policy", 400, `{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","code":"content_policy_violation"}}`,
			messages.ErrorClass_content_policy, "rejected as a result of our safety system"},
		{"azure content filter", 400, `{"error":{"message":"The response was filtered due to the prompt triggering content management policy.","code":"content_filter","innererror":{"code":"ResponsibleAIPolicyViolation"}}}`,
			messages.ErrorClass_content_policy, "content management policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			})
			_, err := m.Complete(upstreamtest.Bounded(t), upstreamtest.Hello)
			assert.Equal(t, tt.want, upstreamtest.Class(t, err))
			assert.Contains(t, err.Error(), tt.reason)
		})
	}
}

func TestFilteredOrRefusedAnswer(t *testing.T) {
	for name, body := range map[string]string{
		"finish_reason content_filter": `{"choices":[{"message":{"content":""},"finish_reason":"content_filter"}]}`,
		"refusal":                      `{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}`,
	} {
		t.Run(name, func(t *testing.T) { upstreamtest.CheckAnswerFails(t, serve, body, messages.ErrorClass_content_policy) })
	}
}

func TestMalformedAnswer(t *testing.T) {
	for name, body := range map[string]string{
		"not json":       `{"choices":[{"message":`,
		"no choices":     `{"id":"x","choices":[]}`,
		"html":           `<html>oops</html>`,
		"error with 200": `{"error":{"message":"upstream model crashed","type":"server_error"}}`,
	} {
		want := messages.ErrorClass_malformed
		if name == "error with 200" {
			want = messages.ErrorClass_server_error
		}
		t.Run(name, func(t *testing.T) { upstreamtest.CheckAnswerFails(t, serve, body, want) })
	}
}

func TestConnectionRefused(t *testing.T) { upstreamtest.CheckConnectionRefused(t, model) }

func TestConnectionReset(t *testing.T) { upstreamtest.CheckConnectionReset(t, serve) }

func TestHangIsTimeout(t *testing.T) { upstreamtest.CheckHangIsTimeout(t, serve) }

func TestKeyNeverInErrors(t *testing.T) {
	// An upstream that echoes the credentials it was sent, in a status
	// error and in a stream error event.
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		auth := r.Header.Get("Authorization")
		msg, _ := json.Marshal("Incorrect API key provided: " + strings.TrimPrefix(auth, "Bearer ") + " (header " + auth + ")")
		if strings.Contains(string(<-u.Bodies), `"stream":true`) {
			upstreamtest.Events(w, delta("a"), `data: {"error":{"message":`+string(msg)+`,"type":"server_error"}}`+"\n\n")
			return
		}
		w.WriteHeader(401)
		w.Write([]byte(`{"error":{"message":` + string(msg) + `,"code":"invalid_api_key"}}`))
	})
	_, err := m.Complete(upstreamtest.Bounded(t), upstreamtest.Hello)
	assert.Equal(t, messages.ErrorClass_auth, upstreamtest.Class(t, err))
	assert.Contains(t, err.Error(), "Incorrect API key provided: [redacted]")

	_, _, err = upstreamtest.Collect(upstreamtest.Open(t, m))
	assert.Equal(t, messages.ErrorClass_server_error, upstreamtest.Class(t, err))
}

// TestDefaultClient: with no Client the endpoint's own pool of HTTP/1.1
// connections is used.
func TestDefaultClient(t *testing.T) {
	_, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Write([]byte(`{"choices":[{"message":{"content":"pooled"},"finish_reason":"stop"}]}`))
	})
	m, err := New(Config{Name: "gpt", BaseURL: u.URL})
	require.NoError(t, err)
	assert.Nil(t, m.api.Client)
	res, err := m.Complete(upstreamtest.Bounded(t), upstreamtest.Hello)
	require.NoError(t, err)
	assert.Equal(t, "pooled", res.Content)
	r := <-u.Got
	assert.Equal(t, 1, r.ProtoMajor, "HTTP/1.1: one connection per stream")
}

// TestPrefixAndTools: a prefill goes out as a final assistant message
// with "prefix": true; tools and response_format are passed on as given.
func TestPrefixAndTools(t *testing.T) {
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"rest"},"finish_reason":"stop"}]}`))
	})
	req := providers.Continuation(upstreamtest.Hello, "The start ", true)
	req.Tools = `[{"type":"function","function":{"name":"f"}}]`
	req.ResponseFormat = `{"type":"json_object"}`
	_, err := m.Complete(upstreamtest.Bounded(t), req)
	require.NoError(t, err)
	_, body := u.Request(t)
	msgs := body["messages"].([]any)
	last := msgs[len(msgs)-1].(map[string]any)
	assert.Equal(t, map[string]any{"role": "assistant", "content": "The start", "prefix": true}, last)
	assert.Equal(t, []any{map[string]any{"type": "function", "function": map[string]any{"name": "f"}}}, body["tools"])
	assert.Equal(t, map[string]any{"type": "json_object"}, body["response_format"])
	_, hasPrefix := msgs[0].(map[string]any)["prefix"]
	assert.False(t, hasPrefix, "no prefix on an ordinary message")
}

// TestToolCallIsNotAnEmptySuccess: Hive answers with text only, so an
// answer that is a tool call is a bad_request saying so, plain or
// streamed, never an empty success.
func TestToolCallIsNotAnEmptySuccess(t *testing.T) {
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		if strings.Contains(r.Header.Get("Accept"), "event-stream") {
			upstreamtest.Events(w, `data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}]}`+"\n\n",
				finish("tool_calls"), done)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`))
	})
	_, err := m.Complete(upstreamtest.Bounded(t), upstreamtest.Hello)
	pe := providers.Classify(err)
	assert.Equal(t, messages.ErrorClass_bad_request, pe.Class)
	assert.Equal(t, CodeToolCalls, pe.Code)

	s := upstreamtest.Open(t, m)
	_, _, err = upstreamtest.Collect(s)
	pe = providers.Classify(err)
	assert.Equal(t, messages.ErrorClass_bad_request, pe.Class, "streamed too: %v", err)
	assert.Equal(t, CodeToolCalls, pe.Code)
}

func TestAnswersReuseConnections(t *testing.T) {
	upstreamtest.CheckAnswersReuseConnections(t, serve, `{"choices":[{"message":{"content":"Hi"},"finish_reason":"stop"}]}`)
}

func TestCancelEndsTheCall(t *testing.T) { upstreamtest.CheckCancelEndsTheCall(t, serve) }
