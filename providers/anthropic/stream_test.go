package anthropic

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
		upstreamtest.Events(w, messageStart, blockStart, ping, delta("Hel"), ": keep-alive\n\n", delta("lo"),
			ev("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"hmm"}}`),
			delta(" world"), blockStop, messageDelta("end_turn"), messageStop)
	})
	text, usage, err := upstreamtest.Collect(upstreamtest.Open(t, m))
	assert.ErrorIs(t, err, io.EOF, "a complete answer ends with io.EOF")
	assert.Equal(t, "Hello world", text)
	require.NotNil(t, usage)
	assert.Equal(t, int32(30), usage.PromptTokens, "from message_start, cached tokens included")
	assert.Equal(t, int32(15), usage.CompletionTokens, "from message_delta")

	r, body := u.Request(t)
	assert.Equal(t, "text/event-stream", r.Header.Get("Accept"))
	assert.Equal(t, true, body["stream"])
	assert.Equal(t, "be brief", body["system"])
}

func TestStreamEnds(t *testing.T) {
	tests := []upstreamtest.StreamEnd{
		{Name: "stop_reason then clean end without message_stop", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, messageStart, delta("all "), delta("there"), messageDelta("end_turn"))
		}, WantText: "all there", Want: messages.ErrorClass_ok},
		{Name: "stop_reason then reset without message_stop", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, messageStart, delta("all "), delta("there"), messageDelta("max_tokens"))
			upstreamtest.Cut(t, w)
		}, WantText: "all there", Want: messages.ErrorClass_ok},
		{Name: "clean end mid-answer", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, messageStart, delta("half "), delta("an answ"))
		}, WantText: "half an answ", Want: messages.ErrorClass_stream_cut},
		{Name: "reset mid-answer", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, messageStart, delta("half "), delta("an answ"))
			upstreamtest.Cut(t, w)
		}, WantText: "half an answ", Want: messages.ErrorClass_stream_cut},
		{Name: "unparsable data line", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, messageStart, delta("half "), "event: content_block_delta\ndata: {oops\n\n", delta("never"))
		}, WantText: "half ", Want: messages.ErrorClass_malformed},
		{Name: "unknown events are skipped", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, messageStart, ev("future_event", `{"type":"future_event","x":1}`), delta("fine"), messageDelta("end_turn"), messageStop)
		}, WantText: "fine", Want: messages.ErrorClass_ok},
		{Name: "overloaded mid-stream", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, messageStart, delta("half "), ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
		}, WantText: "half ", Want: messages.ErrorClass_overloaded},
		{Name: "api error mid-stream", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, messageStart, delta("half "), ev("error", `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`))
		}, WantText: "half ", Want: messages.ErrorClass_server_error},
		{Name: "prompt too long in a stream error", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, ev("error", `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}`))
		}, WantText: "", Want: messages.ErrorClass_context_length},
		{Name: "refusal", Script: func(t *testing.T, w http.ResponseWriter) {
			upstreamtest.Events(w, messageStart, delta("I won't "), messageDelta("refusal"), messageStop)
		}, WantText: "I won't ", Want: messages.ErrorClass_content_policy},
	}
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) { upstreamtest.CheckStreamEnd(t, serve, tt) })
	}
}

// TestStreamFinalisedAtOnce: after the message_delta with the stop_reason
// and usage, the answer is complete although the upstream holds the
// connection open without message_stop.
func TestStreamFinalisedAtOnce(t *testing.T) {
	upstreamtest.CheckFinalisedAtOnce(t, serve, "done", messageStart, delta("done"), messageDelta("end_turn"))
}

func TestStreamReusesConnections(t *testing.T) {
	upstreamtest.CheckReusesConnections(t, serve, messageStart, delta("a"), messageDelta("end_turn"), messageStop)
}

func TestStreamNotAnEventStream(t *testing.T) {
	upstreamtest.CheckNotAnEventStream(t, serve, answer)
}

func TestStreamDeadlines(t *testing.T) {
	tests := []upstreamtest.Deadline{
		{Name: "slow first token: no headers", D: providers.StreamDeadlines{FirstToken: 50 * time.Millisecond},
			Script:   func(w http.ResponseWriter, r *http.Request, u *upstream) { u.Hang(r) },
			WantText: "", Want: messages.ErrorClass_stream_stall},
		{Name: "slow first token: message_start and pings, no text", D: providers.StreamDeadlines{FirstToken: 50 * time.Millisecond},
			Script: func(w http.ResponseWriter, r *http.Request, u *upstream) {
				upstreamtest.Events(w, messageStart, blockStart, ping)
				u.Hang(r)
			},
			WantText: "", Want: messages.ErrorClass_stream_stall},
		{Name: "stall mid-stream", D: providers.StreamDeadlines{FirstToken: 5 * time.Second, Idle: 50 * time.Millisecond},
			Script: func(w http.ResponseWriter, r *http.Request, u *upstream) {
				upstreamtest.Events(w, messageStart, delta("one "), delta("two "))
				u.Hang(r)
			},
			WantText: "one two ", Want: messages.ErrorClass_stream_stall},
		{Name: "total deadline", D: providers.StreamDeadlines{Total: 50 * time.Millisecond},
			Script: func(w http.ResponseWriter, r *http.Request, u *upstream) {
				upstreamtest.Events(w, messageStart, delta("one "))
				u.Hang(r)
			},
			WantText: "one ", Want: messages.ErrorClass_timeout},
	}
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) { upstreamtest.CheckDeadline(t, serve, tt) })
	}
}

func TestStreamCloseEndsRecv(t *testing.T) {
	upstreamtest.CheckCloseEndsRecv(t, serve, "one ", messageStart, delta("one "))
}
