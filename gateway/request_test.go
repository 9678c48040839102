package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/messages"
)

func ptr[T any](v T) *T { return &v }

// The OpenAI request becomes the InferRequest the node routes.
func TestRequestMapping(t *testing.T) {
	msgs := func(pairs ...string) []*messages.ChatMessage {
		var out []*messages.ChatMessage
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, &messages.ChatMessage{Role: pairs[i], Content: pairs[i+1]})
		}
		return out
	}
	tests := []struct {
		name   string
		body   string
		header map[string]string
		want   *messages.InferRequest
	}{
		{"minimal", simple, nil,
			&messages.InferRequest{Model: "gpt-5", Messages: msgs("user", "hi")}},
		{"every field", `{"model":"gpt-5","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],
			"max_tokens":100,"temperature":0.5,"user":"u-42","n":1}`, nil,
			&messages.InferRequest{Model: "gpt-5", Messages: msgs("system", "be brief", "user", "hi"), MaxTokens: 100,
				Temperature: ptr(0.5), Metadata: map[string]string{"user": "u-42"}}},
		{"max_completion_tokens wins over max_tokens", `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":100,"max_completion_tokens":7}`, nil,
			&messages.InferRequest{Model: "m", Messages: msgs("user", "x"), MaxTokens: 7}},
		{"temperature zero is kept", `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0}`, nil,
			&messages.InferRequest{Model: "m", Messages: msgs("user", "x"), Temperature: ptr(0.0)}},
		{"text parts are joined", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"one"},{"type":"text","text":"two"}]}]}`, nil,
			&messages.InferRequest{Model: "m", Messages: msgs("user", "one\ntwo")}},
		{"null content", `{"model":"m","messages":[{"role":"assistant","content":null},{"role":"user","content":"x"}]}`, nil,
			&messages.InferRequest{Model: "m", Messages: msgs("assistant", "", "user", "x")}},
		{"unknown fields are ignored", `{"model":"m","messages":[{"role":"user","content":"x","name":"bob"}],"seed":4,"tools":[],"logit_bias":{"1":2}}`, nil,
			&messages.InferRequest{Model: "m", Messages: msgs("user", "x")}},
		{"tools and response_format are passed on", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}}`, nil,
			&messages.InferRequest{Model: "m", Messages: msgs("user", "x"), Tools: `[{"type":"function","function":{"name":"f"}}]`, ResponseFormat: `{"type":"json_object"}`}},
		{"stream", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`, nil,
			&messages.InferRequest{Model: "m", Messages: msgs("user", "x"), Stream: true}},
		{"headers", simple, map[string]string{"X-Request-Id": "abc-123", "X-Hive-Priority": "critical", "X-Hive-Deadline-Ms": "2500", "Idempotency-Key": "k1"},
			&messages.InferRequest{RequestId: "abc-123", Model: "gpt-5", Messages: msgs("user", "hi"),
				Priority: messages.InferRequest_critical, DeadlineMs: 2500, IdempotencyKey: "k1"}},
		{"priority high", simple, map[string]string{"X-Hive-Priority": "high"},
			&messages.InferRequest{Model: "gpt-5", Messages: msgs("user", "hi"), Priority: messages.InferRequest_high}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.respond = answer(&messages.InferResponse{Content: "ok", ServedBy: "m"})
			f.script = emits(final(&messages.InferResponse{}))
			rec := post(handler(t, f, nil), tt.body, tt.header)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

			got := proto.Clone(f.last()).(*messages.InferRequest)
			require.NotEmpty(t, got.RequestId)
			if tt.want.RequestId == "" {
				got.RequestId = "" // generated
			}
			assert.True(t, proto.Equal(tt.want, got), "got %v, want %v", got, tt.want)
		})
	}
}

// Bad requests are answered by the gateway, in OpenAI's error shape, and
// never reach the dispatcher.
func TestRequestRejected(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		header     map[string]string
		wantStatus int
		wantCode   string
		wantParam  string
	}{
		{"malformed JSON", `{"model":`, nil, 400, "invalid_json", ""},
		{"not JSON", `model=gpt-5`, nil, 400, "invalid_json", ""},
		{"empty body", ``, nil, 400, "invalid_json", ""},
		{"two JSON values", simple + simple, nil, 400, "invalid_json", ""},
		{"trailing garbage", simple + `x`, nil, 400, "invalid_json", ""},
		{"an array", `[1]`, nil, 400, "invalid_json", ""},
		{"model of the wrong type", `{"model":5,"messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_type", "model"},
		{"missing model", `{"messages":[{"role":"user","content":"x"}]}`, nil, 400, "missing_model", "model"},
		{"missing messages", `{"model":"m"}`, nil, 400, "missing_messages", "messages"},
		{"empty messages", `{"model":"m","messages":[]}`, nil, 400, "missing_messages", "messages"},
		{"n of 2", `{"model":"m","n":2,"messages":[{"role":"user","content":"x"}]}`, nil, 400, "unsupported_n", "n"},
		{"image part", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"see"},{"type":"image_url","image_url":{"url":"x"}}]}]}`, nil,
			400, "unsupported_content", "messages[0].content[1].type"},
		{"content a number", `{"model":"m","messages":[{"role":"user","content":3}]}`, nil, 400, "invalid_type", "messages[0].content"},
		{"unknown role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, nil, 400, "invalid_role", "messages[0].role"},
		{"tools an object", `{"model":"m","tools":{"a":1},"messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_tools", "tools"},
		{"response_format a string", `{"model":"m","response_format":"json","messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_response_format", "response_format"},
		{"missing role", `{"model":"m","messages":[{"content":"x"}]}`, nil, 400, "invalid_role", "messages[0].role"},
		{"max_tokens zero", `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_max_tokens", "max_tokens"},
		{"max_completion_tokens too big", `{"model":"m","max_completion_tokens":3000000000,"messages":[{"role":"user","content":"x"}]}`, nil,
			400, "invalid_max_tokens", "max_completion_tokens"},
		{"temperature above 2", `{"model":"m","temperature":2.5,"messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_temperature", "temperature"},
		{"temperature -1e308", `{"model":"m","temperature":-1e308,"messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_temperature", "temperature"},
		{"max_tokens -1", `{"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_max_tokens", "max_tokens"},
		{"bad priority", simple, map[string]string{"X-Hive-Priority": "urgent"}, 400, "invalid_priority", ""},
		{"bad deadline", simple, map[string]string{"X-Hive-Deadline-Ms": "soon"}, 400, "invalid_deadline", ""},
		{"negative deadline", simple, map[string]string{"X-Hive-Deadline-Ms": "-5"}, 400, "invalid_deadline", ""},
		{"request id with a space", simple, map[string]string{"X-Request-Id": "a b"}, 400, "invalid_request_id", ""},
		{"request id too long", simple, map[string]string{"X-Request-Id": strings.Repeat("a", 129)}, 400, "invalid_request_id", ""},
		{"body over MaxBody", `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, nil,
			413, "body_too_large", ""},
		{"trailing data over MaxBody", simple + strings.Repeat(" ", 5000) + "x", nil, 413, "body_too_large", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			rec := post(handler(t, f, nil), tt.body, tt.header)

			assert.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var body struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Code    string  `json:"code"`
					Param   *string `json:"param"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
			assert.Equal(t, "bad_request", body.Error.Type)
			assert.Equal(t, tt.wantCode, body.Error.Code)
			assert.NotEmpty(t, body.Error.Message)
			if tt.wantParam == "" {
				assert.Nil(t, body.Error.Param)
			} else if assert.NotNil(t, body.Error.Param) {
				assert.Equal(t, tt.wantParam, *body.Error.Param)
			}
			assert.Nil(t, f.last(), "a rejected request must not be dispatched")
		})
	}
}

// Neither the Authorization header nor the body reaches the log or an
// error message.
func TestSecretsNotEchoed(t *testing.T) {
	const secret = "sk-live-SECRET"
	for _, body := range []string{
		`{"model":"gpt-5","messages":[{"role":"user","content":"` + secret + `"}]`, // cut short
		`{"model":"gpt-5","messages":[{"role":"user","content":[{"type":"` + secret + `"}]}]}`,
		`{"model":"gpt-5","messages":[{"role":"` + secret + `","content":"x"}]}`,
		`{"model":"gpt-5","messages":` + secret + `}`,
		`{"model":"gpt-5","messages":[{"role":"user","content":"x"}],"temperature":"` + secret + `"}`,
		simple,
	} {
		f := newFake(t)
		f.respond = answer(&messages.InferResponse{Content: "ok", ServedBy: "gpt-5"})
		var log syncBuffer
		rec := post(handler(t, f, &log), body, map[string]string{"Authorization": "Bearer " + secret})
		assert.NotContains(t, rec.Body.String()+rec.Header().Get("X-Request-Id"), secret, "reply to %s", body)
		assert.NotContains(t, log.String(), secret, "log of %s", body)
		assert.Contains(t, log.String(), `"message":"chat completion"`)
	}
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
		wantAllow    string
	}{
		{"GET", "/v1/models", 200, `{"object":"list","data":[{"id":"gpt-5","object":"model","created":0,"owned_by":"hive"},{"id":"claude-4-sonnet","object":"model","created":0,"owned_by":"hive"}]}`, ""},
		{"GET", "/v1/models/claude-4-sonnet", 200, `{"id":"claude-4-sonnet","object":"model","created":0,"owned_by":"hive"}`, ""},
		{"GET", "/v1/models/nope", 404, `{"error":{"message":"no model of that name is configured","type":"bad_request","code":"unknown_model","param":"model"}}`, ""},
		{"POST", "/v1/models", 405, `{"error":{"message":"method not allowed; use GET","type":"bad_request","code":"method_not_allowed","param":null}}`, "GET"},
		{"GET", "/v1/chat/completions", 405, `{"error":{"message":"method not allowed; use POST","type":"bad_request","code":"method_not_allowed","param":null}}`, "POST"},
		{"PUT", "/v1/chat/completions", 405, `{"error":{"message":"method not allowed; use POST","type":"bad_request","code":"method_not_allowed","param":null}}`, "POST"},
		{"GET", "/v1/embeddings", 404, `{"error":{"message":"no such route","type":"bad_request","code":"not_found","param":null}}`, ""},
		{"GET", "/healthz", 200, `{"node":"n1","status":"ok"}`, ""},
		{"GET", "/readyz", 200, `{"node":"n1","status":"ready"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			handler(t, newFake(t), nil).ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			assert.Equal(t, tt.wantStatus, rec.Code)
			var got map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), rec.Body.String())
			zeroCreated(got)
			assert.JSONEq(t, tt.wantBody, mustJSON(t, got))
			assert.Equal(t, tt.wantAllow, rec.Header().Get("Allow"))
		})
	}
}

// zeroCreated zeroes the start time in a model or a model list.
func zeroCreated(v map[string]any) {
	if _, ok := v["created"]; ok {
		v["created"] = 0
	}
	if data, ok := v["data"].([]any); ok {
		for _, m := range data {
			m.(map[string]any)["created"] = 0
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestNewValidates(t *testing.T) {
	ok := Config{Node: "n1", Dispatcher: &fake{}, Readiness: ready{}}
	tests := []struct {
		name   string
		change func(*Config)
		want   error
	}{
		{"no node", func(c *Config) { c.Node = "" }, ErrNoNode},
		{"no dispatcher", func(c *Config) { c.Dispatcher = nil }, ErrNoDispatcher},
		{"no readiness", func(c *Config) { c.Readiness = nil }, ErrNoReadiness},
		{"negative body limit", func(c *Config) { c.MaxBody = -1 }, ErrMaxBody},
		{"defaults", func(*Config) {}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			h, err := New(c)
			if tt.want != nil {
				assert.True(t, errors.Is(err, tt.want), "got %v, want %v", err, tt.want)
				assert.Nil(t, h)
				return
			}
			require.NoError(t, err)
			rec := httptest.NewRecorder()
			serveWire(t, h).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/models", nil))
			assert.JSONEq(t, `{"object":"list","data":[]}`, rec.Body.String(), "nil Models lists none")
		})
	}
}

// The default body limit is 1 MiB.
func TestDefaultMaxBody(t *testing.T) {
	h, err := New(Config{Node: "n1", Dispatcher: &fake{}, Readiness: ready{}})
	require.NoError(t, err)
	big := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", DefaultMaxBody) + `"}]}`
	rec := post(serveWire(t, h), big, nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
}
