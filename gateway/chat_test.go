package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

func attempts(pairs ...any) []*messages.Attempt {
	var out []*messages.Attempt
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, &messages.Attempt{Model: pairs[i].(string), ErrorClass: pairs[i+1].(messages.ErrorClass)})
	}
	return out
}

func TestChatSuccess(t *testing.T) {
	f := newFake(t)
	f.respond = answer(&messages.InferResponse{
		RequestId: "r1", Content: "Hello there", ServedBy: "claude-4-sonnet", Node: "n2",
		Attempts:    attempts("gpt-5", messages.ErrorClass_server_error, "claude-4-sonnet", messages.ErrorClass_ok),
		Usage:       &messages.Usage{PromptTokens: 3, CompletionTokens: 2},
		Degradation: messages.Degradation_minimal,
	})
	rec := post(handler(t, f, nil), simple, map[string]string{"X-Request-Id": "r1"})

	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.NotZero(t, got["created"])
	delete(got, "created")
	assert.Equal(t, map[string]any{
		"id": "chatcmpl-r1", "object": "chat.completion", "model": "claude-4-sonnet",
		"choices": []any{map[string]any{"index": 0.0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": "Hello there"}}},
		"usage": map[string]any{"prompt_tokens": 3.0, "completion_tokens": 2.0, "total_tokens": 5.0},
	}, got)
	h := rec.Header()
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	assert.Equal(t, "claude-4-sonnet", h.Get("X-Hive-Served-By"))
	assert.Equal(t, "gpt-5=server_error,claude-4-sonnet=ok", h.Get("X-Hive-Attempts"))
	assert.Equal(t, "minimal", h.Get("X-Hive-Degradation"))
	assert.Equal(t, "n2", h.Get("X-Hive-Node"), "the node that answered, not the one that took the request")
	assert.Equal(t, "r1", h.Get("X-Request-Id"))
	assert.Empty(t, h.Get("Retry-After"))
}

func TestChatGeneratesRequestID(t *testing.T) {
	f := newFake(t)
	f.respond = answer(&messages.InferResponse{Content: "ok", ServedBy: "gpt-5"})
	rec := post(handler(t, f, nil), simple, nil)

	require.Equal(t, http.StatusOK, rec.Code)
	id := rec.Header().Get("X-Request-Id")
	require.NotEmpty(t, id)
	assert.Equal(t, id, f.last().GetRequestId())
	assert.Equal(t, "n1", rec.Header().Get("X-Hive-Node"))
	assert.Contains(t, rec.Body.String(), `"id":"chatcmpl-`+id+`"`)
	assert.Equal(t, "none", rec.Header().Get("X-Hive-Degradation"))
	assert.Empty(t, rec.Header().Get("X-Hive-Attempts"))
}

// Every class maps to its status; Retry-After is sent, rounded up to whole
// seconds, exactly when the reply says when to retry.
func TestChatErrorClasses(t *testing.T) {
	for v := range messages.ErrorClass_name {
		class := messages.ErrorClass(v)
		if class == messages.ErrorClass_ok {
			continue
		}
		for _, retryAfter := range []int32{0, 1500} {
			t.Run(fmt.Sprintf("%s/retry_after_ms=%d", class, retryAfter), func(t *testing.T) {
				f := newFake(t)
				f.respond = answer(&messages.InferResponse{
					Attempts: attempts("gpt-5", class),
					Error:    &messages.Error{Class: class, Code: "code_" + class.String(), Message: "it failed", RetryAfterMs: retryAfter},
				})
				rec := post(handler(t, f, nil), simple, nil)

				assert.Equal(t, class.Status(), rec.Code)
				assert.JSONEq(t, `{"error":{"message":"it failed","type":"`+class.String()+`","code":"code_`+class.String()+`","param":null}}`, rec.Body.String())
				want := ""
				if retryAfter > 0 {
					want = "2"
				}
				assert.Equal(t, want, rec.Header().Get("Retry-After"))
				if retryAfter > 0 {
					assert.Equal(t, "1500", rec.Header().Get("Retry-After-Ms"))
				} else {
					assert.Empty(t, rec.Header().Get("Retry-After-Ms"))
				}
				assert.Equal(t, "gpt-5="+class.String(), rec.Header().Get("X-Hive-Attempts"))
				assert.Empty(t, rec.Header().Get("X-Hive-Served-By"))
			})
		}
	}
}

func TestChatDispatcherErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        *messages.Error
		wantStatus int
		wantRetry  string
	}{
		{"every model down", &messages.Error{Class: messages.ErrorClass_all_failed, Code: "all_down", Message: "every model is down", RetryAfterMs: 30_000}, 503, "30"},
		{"breakers open", &messages.Error{Class: messages.ErrorClass_circuit_open, Code: "open", RetryAfterMs: 1}, 503, "1"},
		{"rate limited", &messages.Error{Class: messages.ErrorClass_rate_limited, Code: "rate_limited", RetryAfterMs: 7000}, 429, "7"},
		{"unknown model", &messages.Error{Class: messages.ErrorClass_bad_request, Code: "unknown_model"}, 400, ""},
		{"class ok with an error", &messages.Error{Class: messages.ErrorClass_ok, Code: "odd"}, 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.respond = answer(&messages.InferResponse{Error: tt.err})
			rec := post(handler(t, f, nil), simple, nil)
			assert.Equal(t, tt.wantStatus, rec.Code)
			assert.Equal(t, tt.wantRetry, rec.Header().Get("Retry-After"))
			var body errorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, tt.err.GetCode(), body.Error.Code)
			assert.Equal(t, tt.err.GetClass().String(), body.Error.Type)
		})
	}
}

func TestChatNilResponse(t *testing.T) {
	f := newFake(t)
	f.respond = answer(nil)
	rec := post(handler(t, f, nil), simple, nil)
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.Contains(t, rec.Body.String(), `"code":"no_response"`)
}

// A client that goes away cancels the dispatch, plain or streamed, and the
// handler returns without waiting for an answer nobody will read.
func TestClientDisconnectCancels(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "stream"}[stream], func(t *testing.T) {
			f := newFake(t)
			dispatched := make(chan struct{})
			cancelled := make(chan error, 1)
			f.respond = func(ctx context.Context, _ *messages.InferRequest) *messages.InferResponse {
				close(dispatched)
				<-ctx.Done()
				cancelled <- ctx.Err()
				return &messages.InferResponse{Error: messages.Failure(messages.ErrorClass_cancelled, "cancelled", "gone")}
			}
			f.script = func(ctx context.Context, _ *messages.InferRequest, sink messages.Sink) {
				sink.Piece("gpt-5", "Hel")
				close(dispatched)
				<-ctx.Done()
				cancelled <- ctx.Err()
				sink.Final(&messages.InferResponse{Error: messages.Failure(messages.ErrorClass_cancelled, "cancelled", "gone")})
			}
			srv := handler(t, f, nil)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			body := simple
			if stream {
				body = streamed
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
			require.NoError(t, err)
			result := make(chan error, 1)
			go func() {
				resp, err := srv.Client().Do(req)
				if err == nil {
					// A stream's 200 comes with its first chunk; read until cut.
					_, err = resp.Body.Read(make([]byte, 1<<16))
					for err == nil {
						_, err = resp.Body.Read(make([]byte, 1<<16))
					}
					resp.Body.Close()
				}
				result <- err
			}()
			waitFor(t, dispatched, "the dispatch")
			cancel()
			select {
			case err := <-cancelled:
				assert.ErrorIs(t, err, context.Canceled)
			case <-timeout():
				t.Fatal("the dispatch context was not cancelled")
			}
			select {
			case err := <-result:
				assert.True(t, errors.Is(err, context.Canceled), "client got %v, want context.Canceled", err)
			case <-timeout():
				t.Fatal("the client did not return")
			}
		})
	}
}

// A candidate the router skipped for its context window is listed as
// skipped, not as a call that failed.
func TestChatSkippedAttempt(t *testing.T) {
	f := newFake(t)
	f.respond = answer(&messages.InferResponse{
		Content: "long answer", ServedBy: "claude-4-sonnet",
		Attempts: []*messages.Attempt{
			{Model: "gpt-5", ErrorClass: messages.ErrorClass_context_length, Skipped: messages.Attempt_context_window},
			{Model: "claude-4-sonnet"},
		},
	})
	rec := post(handler(t, f, nil), simple, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "gpt-5=skipped:context_window,claude-4-sonnet=ok", rec.Header().Get("X-Hive-Attempts"))
}
