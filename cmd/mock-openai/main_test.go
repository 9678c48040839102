package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func post(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body)))
	return rec
}

func TestPlainAnswer(t *testing.T) {
	rec := post(t, newHandler("m", 200, 0, 0), `{"model":"x","messages":[{"role":"user","content":"hi"}]}`)
	if rec.Code != 200 {
		t.Fatalf("status %d, want 200", rec.Code)
	}
	var got struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
	if got.Model != "m" || len(got.Choices) != 1 || got.Choices[0].Message.Content != "Hello from the mock." || got.Usage.CompletionTokens != 4 {
		t.Fatalf("got %+v, want model m, one choice with the mock's text and 4 completion tokens", got)
	}
}

func TestStream(t *testing.T) {
	rec := post(t, newHandler("m", 200, 0, 0), `{"model":"x","stream":true}`)
	if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	body := rec.Body.String()
	events := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	if len(events) < 3 || events[len(events)-1] != "data: [DONE]" {
		t.Fatalf("events %q, want a few chunks and data: [DONE] last", events)
	}
	if !strings.Contains(events[len(events)-2], `"usage"`) {
		t.Fatalf("event before [DONE] is %q, want the usage chunk", events[len(events)-2])
	}
}

func TestStreamFalseIsPlain(t *testing.T) {
	rec := post(t, newHandler("m", 200, 0, 0), `{"model":"x","stream":false}`)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
}

func TestStatus(t *testing.T) {
	rec := post(t, newHandler("m", 500, 0, 0), `{"model":"x","stream":true}`)
	if rec.Code != 500 {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	var got struct {
		Error struct{ Message string } `json:"error"`
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Error.Message == "" {
		t.Fatalf("body %q, want an OpenAI-shaped error (%v)", b, err)
	}
}

func TestContextWindow(t *testing.T) {
	h := newHandler("m", 200, 0, 20)
	// "hi": 3 + 3 + 1 = 7 tokens, and 10 of max_tokens: 17, inside 20.
	if rec := post(t, h, `{"messages":[{"role":"user","content":"hi"}],"max_tokens":10}`); rec.Code != 200 {
		t.Fatalf("a request of 17 tokens: status %d, want 200 (%s)", rec.Code, rec.Body)
	}
	// 40 bytes are 10 tokens: 16 with the format, 26 with max_tokens.
	rec := post(t, h, `{"messages":[{"role":"user","content":"`+strings.Repeat("x", 40)+`"}],"max_tokens":10}`)
	var got struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != 400 || err != nil || got.Error.Code != "context_length_exceeded" {
		t.Fatalf("a request of 26 tokens: status %d, body %s; want 400 context_length_exceeded", rec.Code, rec.Body)
	}
	if !strings.Contains(got.Error.Message, "maximum context length is 20 tokens") {
		t.Errorf("message %q, want the window in it as OpenAI gives it", got.Error.Message)
	}
}
