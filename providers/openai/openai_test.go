package openai

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

func TestCompleteSuccess(t *testing.T) {
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}`))
	})
	temp := 0.2
	req := &messages.InferRequest{Model: "gpt", Messages: hello.Messages, MaxTokens: 50, Temperature: &temp}
	res, err := m.Complete(bounded(t), req)
	require.NoError(t, err)
	assert.Equal(t, "Hi!", res.Content)
	assert.Equal(t, int32(12), res.Usage.PromptTokens)
	assert.Equal(t, int32(2), res.Usage.CompletionTokens)
	assert.Equal(t, 200, res.StatusCode)

	r := <-u.got
	assert.Equal(t, "/v1/chat/completions", r.URL.Path)
	assert.Equal(t, "Bearer "+apiKey, r.Header.Get("Authorization"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(<-u.bodies, &body))
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
	m, err := New(Config{BaseURL: u.srv.URL + "/", Name: "local", MaxCompletionTokens: true,
		Headers: map[string]string{"OpenAI-Project": "proj_1"}, Client: u.srv.Client()})
	require.NoError(t, err)
	res, err := m.Complete(bounded(t), &messages.InferRequest{Messages: hello.Messages, MaxTokens: 9})
	require.NoError(t, err, "finish_reason length is the caller's max_tokens: a success")
	assert.Equal(t, "ok", res.Content)
	assert.Nil(t, res.Usage)

	r := <-u.got
	assert.Equal(t, "/chat/completions", r.URL.Path)
	assert.Empty(t, r.Header.Get("Authorization"), "no key, no Authorization header")
	assert.Equal(t, "proj_1", r.Header.Get("OpenAI-Project"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(<-u.bodies, &body))
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
	tests := []struct {
		status     int
		header     map[string]string
		body       string
		want       messages.ErrorClass
		retryAfter time.Duration // lower bound; 0 means none
	}{
		{500, nil, `{"error":{"message":"The server had an error","type":"server_error"}}`, messages.ErrorClass_server_error, 0},
		{502, nil, `<html>Bad Gateway</html>`, messages.ErrorClass_server_error, 0},
		{504, nil, ``, messages.ErrorClass_server_error, 0},
		{501, nil, ``, messages.ErrorClass_bad_request, 0},
		{503, map[string]string{"Retry-After": "3"}, `{"error":{"message":"overloaded"}}`, messages.ErrorClass_overloaded, 3 * time.Second},
		{529, nil, ``, messages.ErrorClass_overloaded, 0},
		{429, map[string]string{"Retry-After": "7"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, messages.ErrorClass_rate_limited, 7 * time.Second},
		{429, map[string]string{"Retry-After": date}, ``, messages.ErrorClass_rate_limited, 80 * time.Second},
		{429, nil, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`, messages.ErrorClass_auth, 0},
		{401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`, messages.ErrorClass_auth, 0},
		{403, nil, ``, messages.ErrorClass_auth, 0},
		{400, nil, `{"error":{"message":"bad role","type":"invalid_request_error"}}`, messages.ErrorClass_bad_request, 0},
		{404, nil, `{"error":{"message":"The model does not exist","code":"model_not_found"}}`, messages.ErrorClass_bad_request, 0},
		{422, nil, `{"detail":"unprocessable"}`, messages.ErrorClass_bad_request, 0},
	}
	for _, tt := range tests {
		name := http.StatusText(tt.status)
		if tt.header != nil || strings.Contains(tt.body, "quota") {
			name += " " + strings.Join(strings.Fields(tt.body+" "+tt.header["Retry-After"]), " ")
		}
		t.Run(name, func(t *testing.T) {
			m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			})
			for _, call := range []string{"complete", "stream"} {
				var err error
				if call == "complete" {
					_, err = m.Complete(bounded(t), hello)
				} else {
					_, err = m.Stream(bounded(t), hello)
				}
				require.Equal(t, tt.want, class(t, err), "%s: %v", call, err)
				pe := providers.Classify(err)
				assert.Equal(t, tt.status, pe.StatusCode)
				if tt.retryAfter > 0 {
					assert.GreaterOrEqual(t, pe.RetryAfter, tt.retryAfter, "Retry-After")
					assert.LessOrEqual(t, pe.RetryAfter, tt.retryAfter+15*time.Second, "Retry-After")
				} else {
					assert.Zero(t, pe.RetryAfter)
				}
			}
		})
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
			_, err := m.Complete(bounded(t), hello)
			assert.Equal(t, tt.want, class(t, err))
			assert.Contains(t, err.Error(), tt.reason)
		})
	}
}

func TestFilteredOrRefusedAnswer(t *testing.T) {
	for name, body := range map[string]string{
		"finish_reason content_filter": `{"choices":[{"message":{"content":""},"finish_reason":"content_filter"}]}`,
		"refusal":                      `{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) { w.Write([]byte(body)) })
			_, err := m.Complete(bounded(t), hello)
			assert.Equal(t, messages.ErrorClass_content_policy, class(t, err))
		})
	}
}

func TestMalformedAnswer(t *testing.T) {
	for name, body := range map[string]string{
		"not json":       `{"choices":[{"message":`,
		"no choices":     `{"id":"x","choices":[]}`,
		"html":           `<html>oops</html>`,
		"error with 200": `{"error":{"message":"upstream model crashed","type":"server_error"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) { w.Write([]byte(body)) })
			_, err := m.Complete(bounded(t), hello)
			want := messages.ErrorClass_malformed
			if name == "error with 200" {
				want = messages.ErrorClass_server_error
			}
			assert.Equal(t, want, class(t, err), "%v", err)
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	m, err := New(Config{Name: "gpt", BaseURL: "http://" + addr + "/v1", APIKey: apiKey, Client: client})
	require.NoError(t, err)
	_, err = m.Complete(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_connection, class(t, err), "%v", err)
	assert.Contains(t, err.Error(), "refused")
	_, err = m.Stream(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_connection, class(t, err), "%v", err)
}

func TestConnectionReset(t *testing.T) {
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) { cut(t, w) })
	_, err := m.Complete(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_connection, class(t, err), "%v", err)
	_, err = m.Stream(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_connection, class(t, err), "%v", err)
}

func TestHangIsTimeout(t *testing.T) {
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) { u.hang(r) })
	ctx, cancel := context.WithTimeout(bounded(t), 50*time.Millisecond)
	defer cancel()
	_, err := m.Complete(ctx, hello)
	assert.Equal(t, messages.ErrorClass_timeout, class(t, err), "%v", err)
}

func TestKeyNeverInErrors(t *testing.T) {
	// An upstream that echoes the credentials it was sent, in a status
	// error and in a stream error event.
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		auth := r.Header.Get("Authorization")
		msg, _ := json.Marshal("Incorrect API key provided: " + strings.TrimPrefix(auth, "Bearer ") + " (header " + auth + ")")
		if strings.Contains(string(<-u.bodies), `"stream":true`) {
			events(w, delta("a"), `data: {"error":{"message":`+string(msg)+`,"type":"server_error"}}`+"\n\n")
			return
		}
		w.WriteHeader(401)
		w.Write([]byte(`{"error":{"message":` + string(msg) + `,"code":"invalid_api_key"}}`))
	})
	_, err := m.Complete(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_auth, class(t, err))
	assert.Contains(t, err.Error(), "Incorrect API key provided: [redacted]")

	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	defer s.Close()
	_, _, err = collect(s)
	assert.Equal(t, messages.ErrorClass_server_error, class(t, err))
}

// TestDefaultClient: with no Client the shared pooled one is used.
func TestDefaultClient(t *testing.T) {
	_, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Write([]byte(`{"choices":[{"message":{"content":"pooled"},"finish_reason":"stop"}]}`))
	})
	t.Cleanup(providers.HTTPClient().CloseIdleConnections)
	m, err := New(Config{Name: "gpt", BaseURL: u.srv.URL})
	require.NoError(t, err)
	assert.Same(t, providers.HTTPClient(), m.api.Client)
	res, err := m.Complete(bounded(t), hello)
	require.NoError(t, err)
	assert.Equal(t, "pooled", res.Content)
	r := <-u.got
	assert.Equal(t, 1, r.ProtoMajor, "HTTP/1.1: one connection per stream")
}
