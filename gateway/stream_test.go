package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

// norm drops a chunk's created time, which the test cannot know.
func norm(t *testing.T, data string) string {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(data), &v), data)
	if _, ok := v["created"]; ok {
		require.NotZero(t, v["created"])
		delete(v, "created")
	}
	return mustJSON(t, v)
}

func TestStream(t *testing.T) {
	const head = `{"id":"chatcmpl-r1","object":"chat.completion.chunk","model":`
	done := final(&messages.InferResponse{ServedBy: "claude-4-sonnet",
		Usage:    &messages.Usage{PromptTokens: 4, CompletionTokens: 2},
		Attempts: attempts("gpt-5", messages.ErrorClass_timeout, "claude-4-sonnet", messages.ErrorClass_ok)})
	cut := final(&messages.InferResponse{ServedBy: "claude-4-sonnet",
		Attempts: attempts("claude-4-sonnet", messages.ErrorClass_stream_cut),
		Error:    &messages.Error{Class: messages.ErrorClass_stream_cut, Code: "eof", Message: "the stream ended early", RetryAfterMs: 2000}})
	tests := []struct {
		name         string
		body         string
		steps        []step
		wantStatus   int
		wantEvents   []string // normalised; for an HTTP error, the one JSON body
		wantHeader   map[string]string
		wantTrailer  map[string]string
		wantNoHeader []string
	}{
		{
			name:       "complete",
			body:       streamed,
			steps:      []step{piece("claude-4-sonnet", "Hel"), piece("claude-4-sonnet", "lo"), done},
			wantStatus: 200,
			wantEvents: []string{
				head + `"claude-4-sonnet","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`,
				head + `"claude-4-sonnet","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}`,
				head + `"claude-4-sonnet","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				`[DONE]`,
			},
			wantHeader:  map[string]string{"Content-Type": "text/event-stream", "X-Hive-Served-By": "claude-4-sonnet", "X-Request-Id": "r1", "X-Hive-Node": "n1"},
			wantTrailer: map[string]string{"X-Hive-Attempts": "gpt-5=timeout,claude-4-sonnet=ok"},
		},
		{
			name:       "complete with usage",
			body:       `{"model":"gpt-5","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			steps:      []step{piece("claude-4-sonnet", "Hi"), done},
			wantStatus: 200,
			wantEvents: []string{
				head + `"claude-4-sonnet","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
				head + `"claude-4-sonnet","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				head + `"claude-4-sonnet","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}`,
				`[DONE]`,
			},
		},
		{
			name: "served_by learnt at the end",
			body: streamed,
			steps: []step{piece("", "Hel"), piece("", "lo"),
				final(&messages.InferResponse{ServedBy: "claude-4-sonnet"})},
			wantStatus: 200,
			wantEvents: []string{
				head + `"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`,
				head + `"gpt-5","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}`,
				head + `"claude-4-sonnet","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				`[DONE]`,
			},
			wantTrailer:  map[string]string{"X-Hive-Served-By": "claude-4-sonnet"},
			wantNoHeader: []string{"X-Hive-Served-By"},
		},
		{
			name:       "whole answer in the final reply",
			body:       streamed,
			steps:      []step{final(&messages.InferResponse{Content: "All", ServedBy: "gpt-5", Attempts: attempts("gpt-5", messages.ErrorClass_ok)})},
			wantStatus: 200,
			wantEvents: []string{
				head + `"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":"All"},"finish_reason":null}]}`,
				head + `"gpt-5","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				`[DONE]`,
			},
			wantHeader: map[string]string{"X-Hive-Served-By": "gpt-5", "X-Hive-Attempts": "gpt-5=ok"},
		},
		{
			name:       "empty answer",
			body:       streamed,
			steps:      []step{final(&messages.InferResponse{ServedBy: "gpt-5"})},
			wantStatus: 200,
			wantEvents: []string{
				head + `"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
				head + `"gpt-5","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				`[DONE]`,
			},
		},
		{
			name:       "empty pieces do not start the stream",
			body:       streamed,
			steps:      []step{piece("gpt-5", ""), cut},
			wantStatus: 502,
			wantEvents: []string{`{"error":{"message":"the stream ended early","type":"stream_cut","code":"eof","param":null}}`},
		},
		{
			name:       "incomplete after two chunks",
			body:       streamed,
			steps:      []step{piece("claude-4-sonnet", "Hel"), piece("claude-4-sonnet", "lo"), cut},
			wantStatus: 200,
			wantEvents: []string{
				head + `"claude-4-sonnet","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`,
				head + `"claude-4-sonnet","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}`,
				`{"error":{"message":"the stream ended early","type":"stream_cut","code":"stream_incomplete","param":null}}`,
			},
			wantTrailer: map[string]string{"X-Hive-Attempts": "claude-4-sonnet=stream_cut"},
		},
		{
			name:       "no reply after text is a cut answer",
			body:       streamed,
			steps:      []step{piece("gpt-5", "Hel"), final(nil)},
			wantStatus: 200,
			wantEvents: []string{
				head + `"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`,
				`{"error":{"message":"the answer ended before it was complete","type":"stream_cut","code":"stream_incomplete","param":null}}`,
			},
		},
		{
			name: "a reply with an error is not a success",
			body: streamed,
			steps: []step{piece("gpt-5", "Hel"),
				final(&messages.InferResponse{ServedBy: "gpt-5", Error: messages.Failure(messages.ErrorClass_stream_stall, "idle", "no chunk for 10s")})},
			wantStatus: 200,
			wantEvents: []string{
				head + `"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`,
				`{"error":{"message":"no chunk for 10s","type":"stream_stall","code":"stream_incomplete","param":null}}`,
			},
		},
		{
			name: "failure before the first chunk",
			body: streamed,
			steps: []step{final(&messages.InferResponse{
				Attempts: attempts("gpt-5", messages.ErrorClass_overloaded, "claude-4-sonnet", messages.ErrorClass_circuit_open),
				Error:    &messages.Error{Class: messages.ErrorClass_all_failed, Code: "all_down", Message: "every model is down", RetryAfterMs: 12_500}})},
			wantStatus:   503,
			wantEvents:   []string{`{"error":{"message":"every model is down","type":"all_failed","code":"all_down","param":null}}`},
			wantHeader:   map[string]string{"Content-Type": "application/json", "Retry-After": "13", "X-Hive-Attempts": "gpt-5=overloaded,claude-4-sonnet=circuit_open"},
			wantNoHeader: []string{"X-Hive-Served-By"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.script = emits(tt.steps...)
			rec := post(handler(t, f, nil), tt.body, map[string]string{"X-Request-Id": "r1"})

			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			var got []string
			if rec.Code == http.StatusOK {
				for _, ev := range events(t, rec.Body.String()) {
					if ev == "[DONE]" {
						got = append(got, ev)
						continue
					}
					got = append(got, norm(t, ev))
				}
			} else {
				got = []string{norm(t, rec.Body.String())}
			}
			want := make([]string, len(tt.wantEvents))
			for i, w := range tt.wantEvents {
				if w != "[DONE]" {
					w = norm(t, w)
				}
				want[i] = w
			}
			assert.Equal(t, want, got)
			for k, v := range tt.wantHeader {
				assert.Equal(t, v, rec.Header().Get(k), "header %s", k)
			}
			for _, k := range tt.wantNoHeader {
				assert.Empty(t, rec.Result().Header.Get(k), "header %s", k)
			}
			for k, v := range tt.wantTrailer {
				assert.Equal(t, v, rec.Result().Trailer.Get(k), "trailer %s", k)
			}
		})
	}
}

// A dispatcher may answer from inside Dispatch, as actors.Hive does after
// Stop; the sink never blocks.
func TestStreamAnswerInline(t *testing.T) {
	h, err := New(Config{Node: "n1", Dispatcher: inline{}, Readiness: ready{}})
	require.NoError(t, err)
	rec := post(serveWire(t, h), streamed, nil)
	assert.Equal(t, 499, rec.Code)
	assert.JSONEq(t, `{"error":{"message":"node n1 is shutting down","type":"cancelled","code":"shutting_down","param":null}}`, rec.Body.String())
}

type inline struct{}

func (inline) Dispatch(_ context.Context, req *messages.InferRequest, sink messages.Sink) {
	if req.GetStream() {
		for range 1000 { // more than any channel buffer would hold
			sink.Piece("", "")
		}
	}
	sink.Final(&messages.InferResponse{Error: messages.Failure(messages.ErrorClass_cancelled, "shutting_down", "node n1 is shutting down")})
}

// Each chunk is flushed as it comes: the client reads the first piece while
// the dispatcher still holds the rest.
func TestStreamFlushesEachChunk(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	f.script = func(_ context.Context, _ *messages.InferRequest, sink messages.Sink) {
		sink.Piece("gpt-5", "first")
		<-release
		sink.Final(&messages.InferResponse{ServedBy: "gpt-5"})
	}
	srv := handler(t, f, nil)
	defer close(release) // before Close waits for the handler, if a check fails

	resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(streamed))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "gpt-5", resp.Header.Get("X-Hive-Served-By"))
	buf := make([]byte, 4096)
	n, err := resp.Body.Read(buf)
	require.NoError(t, err)
	assert.Contains(t, string(buf[:n]), `"content":"first"`)
	assert.NotContains(t, string(buf[:n]), "[DONE]")
}
