package anthropic

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

func TestStreamSuccess(t *testing.T) {
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		events(w, messageStart, blockStart, ping, delta("Hel"), ": keep-alive\n\n", delta("lo"),
			ev("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"hmm"}}`),
			delta(" world"), blockStop, messageDelta("end_turn"), messageStop)
	})
	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	defer s.Close()
	text, usage, err := collect(s)
	assert.ErrorIs(t, err, io.EOF, "a complete answer ends with io.EOF")
	assert.Equal(t, "Hello world", text)
	require.NotNil(t, usage)
	assert.Equal(t, int32(30), usage.PromptTokens, "from message_start, cached tokens included")
	assert.Equal(t, int32(15), usage.CompletionTokens, "from message_delta")

	r := <-u.got
	assert.Equal(t, "text/event-stream", r.Header.Get("Accept"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(<-u.bodies, &body))
	assert.Equal(t, true, body["stream"])
	assert.Equal(t, "be brief", body["system"])
}

func TestStreamEnds(t *testing.T) {
	tests := []struct {
		name     string
		script   func(t *testing.T, w http.ResponseWriter)
		wantText string
		want     messages.ErrorClass // ok: complete
	}{
		{"stop_reason then clean end without message_stop", func(t *testing.T, w http.ResponseWriter) {
			events(w, messageStart, delta("all "), delta("there"), messageDelta("end_turn"))
		}, "all there", messages.ErrorClass_ok},
		{"stop_reason then reset without message_stop", func(t *testing.T, w http.ResponseWriter) {
			events(w, messageStart, delta("all "), delta("there"), messageDelta("max_tokens"))
			cut(t, w)
		}, "all there", messages.ErrorClass_ok},
		{"clean end mid-answer", func(t *testing.T, w http.ResponseWriter) {
			events(w, messageStart, delta("half "), delta("an answ"))
		}, "half an answ", messages.ErrorClass_stream_cut},
		{"reset mid-answer", func(t *testing.T, w http.ResponseWriter) {
			events(w, messageStart, delta("half "), delta("an answ"))
			cut(t, w)
		}, "half an answ", messages.ErrorClass_stream_cut},
		{"unparsable data line", func(t *testing.T, w http.ResponseWriter) {
			events(w, messageStart, delta("half "), "event: content_block_delta\ndata: {oops\n\n", delta("never"))
		}, "half ", messages.ErrorClass_malformed},
		{"unknown events are skipped", func(t *testing.T, w http.ResponseWriter) {
			events(w, messageStart, ev("future_event", `{"type":"future_event","x":1}`), delta("fine"), messageDelta("end_turn"), messageStop)
		}, "fine", messages.ErrorClass_ok},
		{"overloaded mid-stream", func(t *testing.T, w http.ResponseWriter) {
			events(w, messageStart, delta("half "), ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
		}, "half ", messages.ErrorClass_overloaded},
		{"api error mid-stream", func(t *testing.T, w http.ResponseWriter) {
			events(w, messageStart, delta("half "), ev("error", `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`))
		}, "half ", messages.ErrorClass_server_error},
		{"prompt too long in a stream error", func(t *testing.T, w http.ResponseWriter) {
			events(w, ev("error", `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}`))
		}, "", messages.ErrorClass_context_length},
		{"refusal", func(t *testing.T, w http.ResponseWriter) {
			events(w, messageStart, delta("I won't "), messageDelta("refusal"), messageStop)
		}, "I won't ", messages.ErrorClass_content_policy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) { tt.script(t, w) })
			s, err := m.Stream(bounded(t), hello)
			require.NoError(t, err)
			defer s.Close()
			text, _, err := collect(s)
			assert.Equal(t, tt.wantText, text)
			if tt.want == messages.ErrorClass_ok {
				assert.ErrorIs(t, err, io.EOF, "want a complete answer")
				return
			}
			assert.Equal(t, tt.want, class(t, err), "%v", err)
		})
	}
}

// TestStreamFinalisedAtOnce: after the message_delta with the stop_reason
// and usage, the answer is complete although the upstream holds the
// connection open without message_stop.
func TestStreamFinalisedAtOnce(t *testing.T) {
	handlerDone := make(chan struct{})
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		defer close(handlerDone)
		events(w, messageStart, delta("done"), messageDelta("end_turn"))
		u.hang(r)
	})
	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	defer s.Close()
	text, usage, err := collect(s)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, "done", text)
	assert.NotNil(t, usage)
	select {
	case <-handlerDone:
		t.Fatal("the stream waited for the upstream to give up")
	default:
	}
}

func TestStreamReusesConnections(t *testing.T) {
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		events(w, messageStart, delta("a"), messageDelta("end_turn"), messageStop)
	})
	for range 3 {
		s, err := m.Stream(bounded(t), hello)
		require.NoError(t, err)
		_, _, err = collect(s)
		assert.ErrorIs(t, err, io.EOF)
		require.NoError(t, s.Close())
	}
	assert.Equal(t, int32(1), u.conns.Load(), "three streams, one connection")
}

func TestStreamNotAnEventStream(t *testing.T) {
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(answer))
	})
	_, err := m.Stream(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_malformed, class(t, err))
}

func TestStreamDeadlines(t *testing.T) {
	tests := []struct {
		name     string
		d        providers.StreamDeadlines
		script   func(w http.ResponseWriter, r *http.Request, u *upstream)
		wantText string
		want     messages.ErrorClass
	}{
		{"slow first token: no headers", providers.StreamDeadlines{FirstToken: 50 * time.Millisecond},
			func(w http.ResponseWriter, r *http.Request, u *upstream) { u.hang(r) },
			"", messages.ErrorClass_stream_stall},
		{"slow first token: message_start and pings, no text", providers.StreamDeadlines{FirstToken: 50 * time.Millisecond},
			func(w http.ResponseWriter, r *http.Request, u *upstream) {
				events(w, messageStart, blockStart, ping)
				u.hang(r)
			},
			"", messages.ErrorClass_stream_stall},
		{"stall mid-stream", providers.StreamDeadlines{FirstToken: 5 * time.Second, Idle: 50 * time.Millisecond},
			func(w http.ResponseWriter, r *http.Request, u *upstream) {
				events(w, messageStart, delta("one "), delta("two "))
				u.hang(r)
			},
			"one two ", messages.ErrorClass_stream_stall},
		{"total deadline", providers.StreamDeadlines{Total: 50 * time.Millisecond},
			func(w http.ResponseWriter, r *http.Request, u *upstream) {
				events(w, messageStart, delta("one "))
				u.hang(r)
			},
			"one ", messages.ErrorClass_timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := serve(t, tt.script)
			s, err := providers.WithDeadlines(bounded(t), tt.d, func(ctx context.Context) (providers.Stream, error) {
				return m.Stream(ctx, hello)
			})
			var text string
			if err == nil {
				defer s.Close()
				text, _, err = collect(s)
			}
			assert.Equal(t, tt.wantText, text)
			assert.Equal(t, tt.want, class(t, err), "%v", err)
		})
	}
}

func TestStreamCloseEndsRecv(t *testing.T) {
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		events(w, messageStart, delta("one "))
		u.hang(r)
	})
	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	c, err := s.Recv()
	require.NoError(t, err)
	assert.Equal(t, "one ", c.Delta)
	ended := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		ended <- err
	}()
	require.NoError(t, s.Close())
	select {
	case err := <-ended:
		assert.Equal(t, messages.ErrorClass_cancelled, class(t, err))
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a Recv in progress")
	}
}
