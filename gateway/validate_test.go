package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

// TestTooManyMessages: the message count bound is the one NATS applies,
// with its code, for a body within the size limit.
func TestTooManyMessages(t *testing.T) {
	f := newFake(t)
	h, err := New(Config{Node: "n1", Dispatcher: f, Models: func() []string { return []string{"m"} }, Readiness: ready{}, MaxBody: 8 << 20})
	require.NoError(t, err)
	body := `{"model":"m","messages":[` + strings.TrimSuffix(strings.Repeat(`{"role":"user","content":"x"},`, messages.MaxMessages+1), ",") + `]}`
	rec := post(serveWire(t, h), body, nil)
	assert.Equal(t, 400, rec.Code)
	assert.Contains(t, rec.Body.String(), `"code":"too_many_messages"`)
	assert.Nil(t, f.last(), "dispatched")
}

// FuzzChatCompletions: whatever the body, the gateway answers with JSON
// that parses and is valid UTF-8: a completion, or an OpenAI-shaped error
// with a code; it never dispatches a request that CheckRequest refuses.
func FuzzChatCompletions(f *testing.F) {
	for _, seed := range []string{
		`{"model":"gpt-5","messages":[{"role":"user","content":"x"}]}`,
		`{"model":"gpt-5","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"gpt-5","temperature":-1e308,"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"gpt-5","messages":[{"role":"wizard","content":"x"}]}`,
		`{"model":"gpt-5","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}`,
		"{\"mod\xffel\":1}",
		`{"model":"gpt-5","stream":true,"messages":[{"role":"user","content":"x"}]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fk := newFake(t)
		fk.respond = answer(&messages.InferResponse{Content: "ok", ServedBy: "gpt-5"})
		fk.script = emits(piece("", "ok"), final(&messages.InferResponse{ServedBy: "gpt-5"}))
		rec := post(handler(t, fk, nil), body, nil)
		out := rec.Body.String()
		require.True(t, utf8.ValidString(out), "body %q", out)
		if rec.Code == 200 {
			if req := fk.last(); req != nil {
				assert.Nil(t, messages.CheckRequest(req), "dispatched a request the check refuses")
			}
			return
		}
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), "status %d body %q", rec.Code, out)
		assert.NotEmpty(t, e.Error.Code, "status %d body %q", rec.Code, out)
		assert.Nil(t, fk.last(), "status %d, yet dispatched", rec.Code)
	})
}
