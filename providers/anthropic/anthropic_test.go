package anthropic

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
	res, err := m.Complete(bounded(t), req)
	require.NoError(t, err)
	assert.Equal(t, "Hi there", res.Content, "text blocks joined, other blocks skipped")
	assert.Equal(t, int32(20), res.Usage.PromptTokens, "input tokens, cached ones included")
	assert.Equal(t, int32(4), res.Usage.CompletionTokens)
	assert.Equal(t, 200, res.StatusCode)

	r := <-u.got
	assert.Equal(t, "/v1/messages", r.URL.Path)
	assert.Equal(t, apiKey, r.Header.Get("x-api-key"))
	assert.Equal(t, "2023-06-01", r.Header.Get("anthropic-version"))
	assert.Empty(t, r.Header.Get("Authorization"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(<-u.bodies, &body))
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
	m, err := New(Config{Name: "claude-x", BaseURL: u.srv.URL + "/v1/", Version: "2099-01-01", MaxTokens: 300,
		Headers: map[string]string{"anthropic-beta": "beta-1"}, Client: u.srv.Client()})
	require.NoError(t, err)
	res, err := m.Complete(bounded(t), &messages.InferRequest{Messages: hello.Messages})
	require.NoError(t, err, "stop_reason max_tokens is the caller's limit: a success")
	assert.Equal(t, "cut short", res.Content)
	r := <-u.got
	assert.Equal(t, "/v1/messages", r.URL.Path)
	assert.Equal(t, "2099-01-01", r.Header.Get("anthropic-version"))
	assert.Equal(t, "beta-1", r.Header.Get("anthropic-beta"))
	assert.Empty(t, r.Header.Get("x-api-key"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(<-u.bodies, &body))
	assert.Equal(t, "claude-x", body["model"])
	assert.Equal(t, 300.0, body["max_tokens"])
	assert.NotContains(t, body, "temperature")
	assert.NotContains(t, body, "stream")

	res, err = m.Complete(bounded(t), &messages.InferRequest{Messages: hello.Messages, MaxTokens: 77})
	require.NoError(t, err)
	<-u.got
	require.NoError(t, json.Unmarshal(<-u.bodies, &body))
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
	tests := []struct {
		status     int
		header     map[string]string
		body       string
		want       messages.ErrorClass
		retryAfter time.Duration
	}{
		{500, nil, errBody("api_error", "Internal server error"), messages.ErrorClass_server_error, 0},
		{502, nil, `<html>Bad Gateway</html>`, messages.ErrorClass_server_error, 0},
		{503, nil, ``, messages.ErrorClass_overloaded, 0},
		{529, nil, errBody("overloaded_error", "Overloaded"), messages.ErrorClass_overloaded, 0},
		{429, map[string]string{"Retry-After": "7"}, errBody("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), messages.ErrorClass_rate_limited, 7 * time.Second},
		{429, map[string]string{"Retry-After": date}, errBody("rate_limit_error", "slow down"), messages.ErrorClass_rate_limited, 80 * time.Second},
		{401, nil, errBody("authentication_error", "invalid x-api-key"), messages.ErrorClass_auth, 0},
		{403, nil, errBody("permission_error", "no access"), messages.ErrorClass_auth, 0},
		{400, nil, errBody("invalid_request_error", "messages: field required"), messages.ErrorClass_bad_request, 0},
		{404, nil, errBody("not_found_error", "model: claude-nope"), messages.ErrorClass_bad_request, 0},
		{413, nil, errBody("request_too_large", "Request exceeds the maximum allowed number of bytes"), messages.ErrorClass_bad_request, 0},
		{422, nil, ``, messages.ErrorClass_bad_request, 0},
	}
	for _, tt := range tests {
		name := http.StatusText(tt.status)
		if tt.header != nil {
			name += " " + tt.header["Retry-After"]
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
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.WriteHeader(400)
		w.Write([]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}`))
	})
	_, err := m.Complete(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_context_length, class(t, err))
	assert.Contains(t, err.Error(), "208310 tokens > 200000 maximum")

	refuse, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Write([]byte(`{"type":"message","content":[{"type":"text","text":"I can't help with that request."}],"stop_reason":"refusal","usage":{"input_tokens":1,"output_tokens":7}}`))
	})
	_, err = refuse.Complete(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_content_policy, class(t, err))
	assert.Contains(t, err.Error(), "I can't help with that request.", "the reason is returned")
}

func TestMalformedAnswer(t *testing.T) {
	for name, body := range map[string]string{
		"not json":        `{"content":[`,
		"no content":      `{"id":"x"}`,
		"error with 200":  `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		"plain text body": `ok`,
	} {
		t.Run(name, func(t *testing.T) {
			m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) { w.Write([]byte(body)) })
			_, err := m.Complete(bounded(t), hello)
			want := messages.ErrorClass_malformed
			if name == "error with 200" {
				want = messages.ErrorClass_overloaded
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
	m, err := New(Config{Name: "claude", BaseURL: "http://" + addr + "/v1", APIKey: apiKey, Client: client})
	require.NoError(t, err)
	_, err = m.Complete(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_connection, class(t, err), "%v", err)
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
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		key := r.Header.Get("x-api-key")
		msg, _ := json.Marshal("invalid x-api-key: " + key)
		if strings.Contains(string(<-u.bodies), `"stream":true`) {
			events(w, messageStart, delta("a"), ev("error", `{"type":"error","error":{"type":"api_error","message":`+string(msg)+`}}`))
			return
		}
		w.WriteHeader(401)
		w.Write([]byte(`{"type":"error","error":{"type":"authentication_error","message":` + string(msg) + `}}`))
	})
	_, err := m.Complete(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_auth, class(t, err))
	assert.Contains(t, err.Error(), "invalid x-api-key: [redacted]")

	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	defer s.Close()
	_, _, err = collect(s)
	assert.Equal(t, messages.ErrorClass_server_error, class(t, err))
}
