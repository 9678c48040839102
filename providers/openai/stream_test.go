package openai

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
		events(w, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n",
			": keep-alive\n\n", delta("Hel"), delta("lo"), delta(" world"), finish("stop"), usageLine, done)
	})
	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	defer s.Close()
	text, usage, err := collect(s)
	assert.ErrorIs(t, err, io.EOF, "a complete answer ends with io.EOF")
	assert.Equal(t, "Hello world", text)
	require.NotNil(t, usage)
	assert.Equal(t, int32(7), usage.PromptTokens)
	assert.Equal(t, int32(3), usage.CompletionTokens)

	r := <-u.got
	assert.Equal(t, "text/event-stream", r.Header.Get("Accept"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(<-u.bodies, &body))
	assert.Equal(t, true, body["stream"])
	assert.Equal(t, map[string]any{"include_usage": true}, body["stream_options"])

	_, err = s.Recv()
	assert.ErrorIs(t, err, io.EOF, "Recv after the end repeats it")
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice")
}

// TestStreamEnds covers how a stream may end and what the caller is told.
func TestStreamEnds(t *testing.T) {
	tests := []struct {
		name     string
		script   func(t *testing.T, w http.ResponseWriter)
		wantText string
		want     messages.ErrorClass // ok means complete (io.EOF)
	}{
		{"finish_reason then clean end without [DONE]", func(t *testing.T, w http.ResponseWriter) {
			events(w, delta("all "), delta("there"), finish("stop"))
		}, "all there", messages.ErrorClass_ok},
		{"finish_reason then reset without [DONE]", func(t *testing.T, w http.ResponseWriter) {
			events(w, delta("all "), delta("there"), finish("length"))
			cut(t, w)
		}, "all there", messages.ErrorClass_ok},
		{"clean end mid-answer", func(t *testing.T, w http.ResponseWriter) {
			events(w, delta("half "), delta("an answ"))
		}, "half an answ", messages.ErrorClass_stream_cut},
		{"reset mid-answer", func(t *testing.T, w http.ResponseWriter) {
			events(w, delta("half "), delta("an answ"))
			cut(t, w)
		}, "half an answ", messages.ErrorClass_stream_cut},
		{"line cut in the middle", func(t *testing.T, w http.ResponseWriter) {
			events(w, delta("half "), `data: {"choices":[{"index":0,"del`)
		}, "half ", messages.ErrorClass_stream_cut},
		{"unparsable data line", func(t *testing.T, w http.ResponseWriter) {
			events(w, delta("half "), "data: {not json\n\n", delta("never"), done)
		}, "half ", messages.ErrorClass_malformed},
		{"comments, unknown events and id lines are skipped", func(t *testing.T, w http.ResponseWriter) {
			events(w, ": ping\n\n", "event: vendor_progress\ndata: {\"pct\": 50}\n\n", "id: 4\nretry: 1000\n\n", delta("fine"), finish("stop"), done)
		}, "fine", messages.ErrorClass_ok},
		{"error event mid-stream", func(t *testing.T, w http.ResponseWriter) {
			events(w, delta("half "), `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`+"\n\n")
		}, "half ", messages.ErrorClass_server_error},
		{"context length in a stream error", func(t *testing.T, w http.ResponseWriter) {
			events(w, `data: {"error":{"message":"maximum context length exceeded","code":"context_length_exceeded"}}`+"\n\n")
		}, "", messages.ErrorClass_context_length},
		{"content policy in a stream error", func(t *testing.T, w http.ResponseWriter) {
			events(w, "event: error\n"+`data: {"error":{"message":"flagged by the safety system","code":"content_policy_violation"}}`+"\n\n")
		}, "", messages.ErrorClass_content_policy},
		{"content filter stops the answer", func(t *testing.T, w http.ResponseWriter) {
			events(w, delta("I will "), finish("content_filter"), done)
		}, "I will ", messages.ErrorClass_content_policy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
				tt.script(t, w)
			})
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

// TestStreamFinalisedAtOnce: once the finish_reason and the usage have
// come, the answer is complete although the upstream holds the connection
// open without [DONE].
func TestStreamFinalisedAtOnce(t *testing.T) {
	handlerDone := make(chan struct{})
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		defer close(handlerDone)
		events(w, delta("all "), delta("there"), finish("stop"), usageLine)
		u.hang(r)
	})
	s, err := m.Stream(bounded(t), hello)
	require.NoError(t, err)
	defer s.Close()
	text, usage, err := collect(s)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, "all there", text)
	assert.NotNil(t, usage)
	select {
	case <-handlerDone:
		t.Fatal("the stream waited for the upstream to give up")
	default:
	}
}

// TestStreamReusesConnections: a stream that ended complete hands its
// connection back to the pool, [DONE] or not.
func TestStreamReusesConnections(t *testing.T) {
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		events(w, delta("a"), finish("stop"), usageLine, done)
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
		w.Write([]byte(`{"choices":[{"message":{"content":"plain"}}]}`))
	})
	_, err := m.Stream(bounded(t), hello)
	assert.Equal(t, messages.ErrorClass_malformed, class(t, err))
}

// TestStreamDeadlines runs the real stream under providers.WithDeadlines.
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
		{"slow first token: headers, keep-alives, no text", providers.StreamDeadlines{FirstToken: 50 * time.Millisecond},
			func(w http.ResponseWriter, r *http.Request, u *upstream) {
				events(w, `data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}`+"\n\n", ": keep-alive\n\n")
				u.hang(r)
			},
			"", messages.ErrorClass_stream_stall},
		{"stall mid-stream", providers.StreamDeadlines{FirstToken: 5 * time.Second, Idle: 50 * time.Millisecond},
			func(w http.ResponseWriter, r *http.Request, u *upstream) {
				events(w, delta("one "), delta("two "))
				u.hang(r)
			},
			"one two ", messages.ErrorClass_stream_stall},
		{"total deadline", providers.StreamDeadlines{Total: 50 * time.Millisecond},
			func(w http.ResponseWriter, r *http.Request, u *upstream) {
				events(w, delta("one "))
				u.hang(r)
			},
			"one ", messages.ErrorClass_timeout},
		{"complete within the deadlines", providers.StreamDeadlines{FirstToken: 5 * time.Second, Idle: 5 * time.Second, Total: 5 * time.Second},
			func(w http.ResponseWriter, r *http.Request, u *upstream) {
				events(w, delta("one "), delta("two"), finish("stop"), usageLine, done)
			},
			"one two", messages.ErrorClass_ok},
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
			if tt.want == messages.ErrorClass_ok {
				assert.ErrorIs(t, err, io.EOF)
				return
			}
			assert.Equal(t, tt.want, class(t, err), "%v", err)
		})
	}
}

func TestStreamCloseEndsRecv(t *testing.T) {
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		events(w, delta("one "))
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
