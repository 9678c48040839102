package openai

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/internal/upstreamtest"
)

func TestStreamSuccess(t *testing.T) {
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		upstreamtest.Events(w, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n",
			": keep-alive\n\n", delta("Hel"), delta("lo"), delta(" world"), finish("stop"), usageLine, done)
	})
	s := upstreamtest.Open(t, m)
	text, usage, err := upstreamtest.Collect(s)
	assert.ErrorIs(t, err, io.EOF, "a complete answer ends with io.EOF")
	assert.Equal(t, "Hello world", text)
	require.NotNil(t, usage)
	assert.Equal(t, int32(7), usage.PromptTokens)
	assert.Equal(t, int32(3), usage.CompletionTokens)

	r, body := u.Request(t)
	assert.Equal(t, "text/event-stream", r.Header.Get("Accept"))
	assert.Equal(t, true, body["stream"])
	assert.Equal(t, map[string]any{"include_usage": true}, body["stream_options"])

	_, err = s.Recv()
	assert.ErrorIs(t, err, io.EOF, "Recv after the end repeats it")
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice")
}

// TestStreamEnds covers how a stream may end and what the caller is told.
func TestStreamEnds(t *testing.T) {
	tests := []upstreamtest.StreamEnd{
		{Name: "finish_reason then clean end without [DONE]", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, delta("all "), delta("there"), finish("stop"))
		}, WantText: "all there", Want: messages.ErrorClass_ok},
		{Name: "finish_reason then reset without [DONE]", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, delta("all "), delta("there"), finish("length"))
			upstreamtest.Cut(t, w)
		}, WantText: "all there", Want: messages.ErrorClass_ok},
		{Name: "clean end mid-answer", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, delta("half "), delta("an answ"))
		}, WantText: "half an answ", Want: messages.ErrorClass_stream_cut},
		{Name: "reset mid-answer", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, delta("half "), delta("an answ"))
			upstreamtest.Cut(t, w)
		}, WantText: "half an answ", Want: messages.ErrorClass_stream_cut},
		{Name: "line cut in the middle", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, delta("half "), `data: {"choices":[{"index":0,"del`)
		}, WantText: "half ", Want: messages.ErrorClass_stream_cut},
		{Name: "unparsable data line", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, delta("half "), "data: {not json\n\n", delta("never"), done)
		}, WantText: "half ", Want: messages.ErrorClass_malformed},
		{Name: "comments, unknown events and id lines are skipped", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, ": ping\n\n", "event: vendor_progress\ndata: {\"pct\": 50}\n\n", "id: 4\nretry: 1000\n\n", delta("fine"), finish("stop"), done)
		}, WantText: "fine", Want: messages.ErrorClass_ok},
		{Name: "error event mid-stream", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, delta("half "), `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`+"\n\n")
		}, WantText: "half ", Want: messages.ErrorClass_server_error},
		{Name: "context length in a stream error", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, `data: {"error":{"message":"maximum context length exceeded","code":"context_length_exceeded"}}`+"\n\n")
		}, WantText: "", Want: messages.ErrorClass_context_length},
		{Name: "content policy in a stream error", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, "event: error\n"+`data: {"error":{"message":"flagged by the safety system","code":"content_policy_violation"}}`+"\n\n")
		}, WantText: "", Want: messages.ErrorClass_content_policy},
		{Name: "content filter stops the answer", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, delta("I will "), finish("content_filter"), done)
		}, WantText: "I will ", Want: messages.ErrorClass_content_policy},
	}
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) { upstreamtest.CheckStreamEnd(t, serve, tt) })
	}
}

// TestStreamFinalisedAtOnce: once the finish_reason and the usage have
// come, the answer is complete although the upstream holds the connection
// open without [DONE].
func TestStreamFinalisedAtOnce(t *testing.T) {
	upstreamtest.CheckFinalisedAtOnce(t, serve, "all there", delta("all "), delta("there"), finish("stop"), usageLine)
}

// TestStreamReusesConnections: a stream that ended complete hands its
// connection back to the pool, [DONE] or not.
func TestStreamReusesConnections(t *testing.T) {
	upstreamtest.CheckReusesConnections(t, serve, delta("a"), finish("stop"), usageLine, done)
}

func TestStreamNotAnEventStream(t *testing.T) {
	upstreamtest.CheckNotAnEventStream(t, serve, `{"choices":[{"message":{"content":"plain"}}]}`)
}

// TestStreamDeadlines runs the real stream under providers.WithDeadlines.
func TestStreamDeadlines(t *testing.T) {
	tests := []upstreamtest.Deadline{
		{Name: "slow first token: no headers", D: providers.StreamDeadlines{FirstToken: 50 * time.Millisecond},
			Script:   func(w http.ResponseWriter, r *http.Request, u *upstream) { u.Hang(r) },
			WantText: "", Want: messages.ErrorClass_stream_stall},
		{Name: "slow first token: headers, keep-alives, no text", D: providers.StreamDeadlines{FirstToken: 50 * time.Millisecond},
			Script: func(w http.ResponseWriter, r *http.Request, u *upstream) {
				upstreamtest.Events(w, `data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}`+"\n\n", ": keep-alive\n\n")
				u.Hang(r)
			},
			WantText: "", Want: messages.ErrorClass_stream_stall},
		{Name: "stall mid-stream", D: providers.StreamDeadlines{FirstToken: 5 * time.Second, Idle: 50 * time.Millisecond},
			Script: func(w http.ResponseWriter, r *http.Request, u *upstream) {
				upstreamtest.Events(w, delta("one "), delta("two "))
				u.Hang(r)
			},
			WantText: "one two ", Want: messages.ErrorClass_stream_stall},
		{Name: "total deadline", D: providers.StreamDeadlines{Total: 50 * time.Millisecond},
			Script: func(w http.ResponseWriter, r *http.Request, u *upstream) {
				upstreamtest.Events(w, delta("one "))
				u.Hang(r)
			},
			WantText: "one ", Want: messages.ErrorClass_timeout},
		{Name: "complete within the deadlines", D: providers.StreamDeadlines{FirstToken: 5 * time.Second, Idle: 5 * time.Second, Total: 5 * time.Second},
			Script: func(w http.ResponseWriter, r *http.Request, u *upstream) {
				upstreamtest.Events(w, delta("one "), delta("two"), finish("stop"), usageLine, done)
			},
			WantText: "one two", Want: messages.ErrorClass_ok},
	}
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) { upstreamtest.CheckDeadline(t, serve, tt) })
	}
}

func TestStreamCloseEndsRecv(t *testing.T) {
	upstreamtest.CheckCloseEndsRecv(t, serve, "one ", delta("one "))
}

// TestStreamSkippableEvent: an event that does not parse is a Skippable
// malformed error, and the stream reads on past it to a complete answer.
func TestStreamSkippableEvent(t *testing.T) {
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *upstream) {
		upstreamtest.Events(w, delta("half "), "data: {oops\n\n", delta("whole"), finish("stop"), done)
	})
	s := upstreamtest.Open(t, m)
	c, err := s.Recv()
	require.NoError(t, err)
	assert.Equal(t, "half ", c.Delta)
	_, err = s.Recv()
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, messages.ErrorClass_malformed, pe.Class)
	assert.True(t, pe.Skippable, "one bad event: the stream can be read on")
	text, _, err := upstreamtest.Collect(s)
	assert.ErrorIs(t, err, io.EOF, "the answer ends complete after the skipped event")
	assert.Equal(t, "whole", text)
}
