package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
)

// A client reads a stream as the Ingress doc shows and as collectStream
// does: nats.NewInbox, SubscribeSync on it, PublishRequest with the inbox as
// reply subject, then NextMsg until a chunk with final set. NextMsg reports
// nats.ErrNoResponders when no node serves hive.v1.infer
// (TestIngressStreamRefused).

// streamOf is a stream request for model whose last message is content.
func streamOf(model, content string) *messages.InferRequest {
	return &messages.InferRequest{Model: model, Stream: true,
		Messages: []*messages.ChatMessage{{Role: "user", Content: content}}}
}

func TestIngressStream(t *testing.T) {
	_, client := setup(t, echoDispatcher{})
	withID := streamOf("gpt-5", "hello big world")
	withID.RequestId = "caller-chose-this"

	tests := []struct {
		name   string
		header nats.Header
		enc    bus.Encoding // of the request, and so of every chunk
		req    *messages.InferRequest
		wantID string // "" means assigned by the node
	}{
		{"protobuf", nil, bus.Protobuf, streamOf("gpt-5", "hello big world"), ""},
		{"json by first byte", nil, bus.JSON, streamOf("gpt-5", "hello big world"), ""},
		{"json by header", nats.Header{"Content-Type": {"application/json"}}, bus.JSON, streamOf("gpt-5", "hello big world"), ""},
		{"protobuf keeps the caller's request id", nil, bus.Protobuf, withID, "caller-chose-this"},
		{"json keeps the caller's request id", nil, bus.JSON, withID, "caller-chose-this"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := encode(t, tt.enc, tt.req)
			if tt.header != nil {
				body = append([]byte("  "), body...) // only the header can say JSON
			}
			msgs, chunks, err := collectStream(client, tt.enc, body, tt.header)
			require.NoError(t, err)

			require.Len(t, chunks, 4, "three deltas and the final chunk")
			var text strings.Builder
			for i, ch := range chunks {
				m := msgs[i]
				assert.Equal(t, tt.enc.ContentType(), m.Header.Get("Content-Type"), "chunk %d", i)
				assert.Empty(t, m.Header.Get(micro.ErrorCodeHeader), "chunk %d of a complete stream carries no error header", i)
				if tt.enc == bus.JSON {
					assert.Equal(t, byte('{'), m.Data[0], "chunk %d is JSON: %q", i, m.Data)
				}
				assert.Equal(t, uint32(i+1), ch.GetSeq(), "seq of chunk %d", i)
				assert.Equal(t, chunks[0].GetRequestId(), ch.GetRequestId(), "chunk %d has the stream's request id", i)
				assert.Equal(t, i == len(chunks)-1, ch.GetFinal(), "only the last chunk is final; chunk %d", i)
				text.WriteString(ch.GetDelta())
			}
			assert.Equal(t, "hello big world", text.String())
			if tt.wantID != "" {
				assert.Equal(t, tt.wantID, chunks[0].GetRequestId())
			} else {
				assert.NotEmpty(t, chunks[0].GetRequestId(), "the node assigns a request id")
			}
			final := chunks[len(chunks)-1]
			assert.Equal(t, messages.InferChunk_complete, final.GetOutcome())
			assert.Equal(t, "gpt-5", final.GetServedBy())
			assert.Equal(t, int32(3), final.GetUsage().GetCompletionTokens())
			assert.Equal(t, int32(1), final.GetUsage().GetPromptTokens())
			assert.Nil(t, final.GetError())
		})
	}
}

// TestIngressStreamIncomplete: a stream cut upstream ends with an
// incomplete final chunk whose error is also in the service error headers.
func TestIngressStreamIncomplete(t *testing.T) {
	_, client := setup(t, echoDispatcher{})
	for _, enc := range []bus.Encoding{bus.Protobuf, bus.JSON} {
		t.Run(enc.String(), func(t *testing.T) {
			msgs, chunks := readStream(t, client, enc, streamOf("cut", "half an answer"), nil)

			require.Len(t, chunks, 4, "three deltas and the final chunk")
			for i, ch := range chunks[:3] {
				assert.Equal(t, uint32(i+1), ch.GetSeq())
				assert.False(t, ch.GetFinal())
				assert.Empty(t, msgs[i].Header.Get(micro.ErrorCodeHeader), "delta %d carries no error header", i)
			}
			final, m := chunks[3], msgs[3]
			assert.True(t, final.GetFinal())
			assert.Equal(t, uint32(4), final.GetSeq())
			assert.Equal(t, messages.InferChunk_incomplete, final.GetOutcome())
			require.NotNil(t, final.GetError(), "final chunk %v carries an error", final)
			assert.Equal(t, messages.ErrorClass_stream_cut, final.GetError().GetClass())
			assert.Equal(t, "upstream_closed", final.GetError().GetCode())
			assert.Equal(t, enc.ContentType(), m.Header.Get("Content-Type"))
			assert.Equal(t, "502", m.Header.Get(micro.ErrorCodeHeader), "stream_cut's status")
			assert.Equal(t, "stream_cut: upstream closed mid-answer", m.Header.Get(micro.ErrorHeader))
		})
	}
}

// TestIngressStreamRefused: a stream request the node cannot take gets a
// single final chunk; with no node at all, the client's inbox read reports
// no responders.
func TestIngressStreamRefused(t *testing.T) {
	nd, client := setup(t, echoDispatcher{})

	t.Run("missing model", func(t *testing.T) {
		msgs, chunks := readStream(t, client, bus.JSON, streamOf("", "hi"), nil)
		require.Len(t, chunks, 1)
		ch, m := chunks[0], msgs[0]
		assert.True(t, ch.GetFinal())
		assert.Equal(t, uint32(1), ch.GetSeq())
		assert.NotEmpty(t, ch.GetRequestId())
		assert.Equal(t, messages.InferChunk_incomplete, ch.GetOutcome())
		assert.Equal(t, messages.ErrorClass_bad_request, ch.GetError().GetClass())
		assert.Equal(t, "missing_model", ch.GetError().GetCode())
		assert.Equal(t, "400", m.Header.Get(micro.ErrorCodeHeader))
		assert.Equal(t, bus.JSON.ContentType(), m.Header.Get("Content-Type"))
	})

	t.Run("no responders", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		require.NoError(t, nd.in.Stop(ctx))
		_, _, err := collectStream(client, bus.Protobuf, encode(t, bus.Protobuf, streamOf("gpt-5", "hi")), nil)
		require.ErrorIs(t, err, nats.ErrNoResponders)
	})
}

// TestIngressStreamStop: Stop waits for an open stream, which keeps
// flowing; the stream either ends within the grace, or gets the
// node_stopping final chunk when the grace runs out and nothing after it.
func TestIngressStreamStop(t *testing.T) {
	// start opens one stream on a fresh node, has its first delta read by
	// the client, and starts Stop with ctx; it returns once the node has
	// left the queue group and Stop is under way.
	start := func(ctx context.Context, t *testing.T) (node, *nats.Subscription, heldStream, <-chan error) {
		d := newQueueDispatcher()
		s := bustest.NewServer(t)
		nd := startNode(t, s, "n1", d)
		client := bustest.Connect(t, s)

		sub, err := openStream(client, encode(t, bus.Protobuf, streamOf("gpt-5", "hi")), nil)
		require.NoError(t, err)
		held := d.nextStream(t)
		held.sink.Piece("gpt-5", "one")
		_, ch, err := nextChunk(sub, bus.Protobuf)
		require.NoError(t, err)
		require.Equal(t, "one", ch.GetDelta())

		stopped := make(chan error, 1)
		go func() { stopped <- nd.in.Stop(ctx) }() // ends when Stop returns; each subtest waits for it
		acc := s.GlobalAccount()
		require.Eventually(t, func() bool { return acc.Interest(subjects.Infer()) == 0 }, wait, time.Millisecond,
			"the infer subscription is removed")
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned %v with a stream open", err)
		default:
		}
		assert.Equal(t, 1, nd.in.InFlight(), "the open stream is in flight")

		held.sink.Piece("gpt-5", " two")
		_, ch, err = nextChunk(sub, bus.Protobuf)
		require.NoError(t, err)
		assert.Equal(t, " two", ch.GetDelta(), "the stream keeps flowing while Stop waits")
		assert.Equal(t, uint32(2), ch.GetSeq())
		return nd, sub, held, stopped
	}

	t.Run("the stream ends within the grace", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		nd, sub, held, stopped := start(ctx, t)

		held.sink.Final(&messages.InferResponse{ServedBy: "gpt-5"})
		_, ch, err := nextChunk(sub, bus.Protobuf)
		require.NoError(t, err)
		assert.True(t, ch.GetFinal())
		assert.Equal(t, messages.InferChunk_complete, ch.GetOutcome())
		select {
		case err := <-stopped:
			require.NoError(t, err)
		case <-time.After(wait):
			t.Fatalf("Stop did not return after the final chunk")
		}
		assert.Equal(t, 0, nd.in.InFlight())
	})

	t.Run("the grace runs out", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		nd, sub, held, stopped := start(ctx, t)

		cancel() // the grace runs out
		select {
		case err := <-stopped:
			require.ErrorIs(t, err, bus.ErrAbandoned)
			require.ErrorIs(t, err, context.Canceled)
			assert.Contains(t, err.Error(), "1 in-flight requests abandoned")
		case <-time.After(wait):
			t.Fatalf("Stop did not return after its context ended")
		}
		assert.Error(t, held.ctx.Err(), "the dispatch context is cancelled")

		m, ch, err := nextChunk(sub, bus.Protobuf)
		require.NoError(t, err)
		assert.True(t, ch.GetFinal())
		assert.Equal(t, uint32(3), ch.GetSeq(), "the node_stopping chunk follows the last delta")
		assert.NotEmpty(t, ch.GetRequestId())
		assert.Equal(t, messages.InferChunk_incomplete, ch.GetOutcome())
		assert.Equal(t, messages.ErrorClass_no_capacity, ch.GetError().GetClass())
		assert.Equal(t, "node_stopping", ch.GetError().GetCode())
		assert.Equal(t, "503", m.Header.Get(micro.ErrorCodeHeader))

		// What the dispatcher sends later is dropped: the next message on
		// the inbox, published after it on the same connection, is the
		// marker.
		held.sink.Piece("gpt-5", " three")
		held.sink.Final(&messages.InferResponse{ServedBy: "gpt-5"})
		requireMarkerNext(t, nd, sub)
		assert.Equal(t, 0, nd.in.InFlight())
	})
}

// requireMarkerNext publishes a marker to sub's subject from the node's
// connection, after everything the node has published there, and requires
// it to be the next message: nothing else was sent.
func requireMarkerNext(t *testing.T, nd node, sub *nats.Subscription) {
	t.Helper()
	require.NoError(t, nd.nc.Publish(sub.Subject, []byte("marker")))
	m, err := sub.NextMsg(wait)
	require.NoError(t, err)
	assert.Equal(t, "marker", string(m.Data), "nothing after the final chunk")
}

// TestIngressStreamConcurrent holds 50 streams open at once and feeds them
// from 50 goroutines, interleaved: each caller gets its own chunks, in
// order.
func TestIngressStreamConcurrent(t *testing.T) {
	const n = 50
	d := newQueueDispatcher()
	nd, client := setup(t, d)
	length := func(i int) int { return 1 + i%7 } // deltas in stream i

	type result struct {
		i      int
		chunks []*messages.InferChunk
		err    error
	}
	results := make(chan result, n)
	var clients sync.WaitGroup
	for i := range n {
		clients.Go(func() {
			enc := bus.Encoding(i % 2)
			req := streamOf("gpt-5", "hi")
			req.RequestId = fmt.Sprintf("s-%d", i)
			body, err := bus.Encode(enc, req)
			if err != nil {
				results <- result{i: i, err: err}
				return
			}
			_, chunks, err := collectStream(client, enc, body, nil)
			results <- result{i: i, chunks: chunks, err: err}
		})
	}

	held := make([]heldStream, 0, n)
	for range n {
		held = append(held, d.nextStream(t))
	}
	assert.Equal(t, n, nd.in.InFlight(), "every stream is open at once")
	assert.Contains(t, statsData(t, client), fmt.Sprintf(`"streaming":%d`, n))

	var emitters sync.WaitGroup
	for _, h := range held {
		emitters.Go(func() {
			var i int
			if _, err := fmt.Sscanf(h.req.GetRequestId(), "s-%d", &i); err != nil {
				h.sink.Final(&messages.InferResponse{Error: messages.Failure(messages.ErrorClass_bad_request, "test", "%v", err)})
				return
			}
			for j := range length(i) {
				h.sink.Piece("gpt-5", fmt.Sprintf("s-%d/%d ", i, j))
			}
			h.sink.Final(&messages.InferResponse{Usage: &messages.Usage{CompletionTokens: int32(length(i))}})
		})
	}
	emitters.Wait()
	clients.Wait()
	close(results)

	seen := make(map[int]bool)
	wantChunks := 0
	for r := range results {
		if !assert.NoError(t, r.err, "stream %d", r.i) {
			continue
		}
		id := fmt.Sprintf("s-%d", r.i)
		var want strings.Builder
		for j := range length(r.i) {
			fmt.Fprintf(&want, "s-%d/%d ", r.i, j)
		}
		var got strings.Builder
		for k, ch := range r.chunks {
			assert.Equal(t, id, ch.GetRequestId(), "stream %d chunk %d", r.i, k)
			assert.Equal(t, uint32(k+1), ch.GetSeq(), "stream %d chunk %d", r.i, k)
			got.WriteString(ch.GetDelta())
		}
		assert.Equal(t, want.String(), got.String(), "stream %d", r.i)
		final := r.chunks[len(r.chunks)-1]
		assert.Equal(t, messages.InferChunk_complete, final.GetOutcome(), "stream %d", r.i)
		assert.Equal(t, int32(length(r.i)), final.GetUsage().GetCompletionTokens(), "stream %d", r.i)
		wantChunks += len(r.chunks)
		seen[r.i] = true
	}
	assert.Len(t, seen, n)
	assert.Equal(t, 0, nd.in.InFlight())
	assert.JSONEq(t, fmt.Sprintf(`{"in_flight":0,"streaming":0,"replied":%d,"errors":0,"abandoned":0,"streams":%d,"chunks":%d,"forwarded":0,"refused_replies":0}`,
		n, n, wantChunks), statsData(t, client))
}

// TestIngressStreamStats: the stats data counts streams, their chunks, and
// an incomplete stream as an error.
func TestIngressStreamStats(t *testing.T) {
	_, client := setup(t, echoDispatcher{})
	readStream(t, client, bus.Protobuf, streamOf("gpt-5", "a b c"), nil) // 4 chunks
	readStream(t, client, bus.JSON, streamOf("cut", "a b"), nil)         // 3 chunks, incomplete
	readStream(t, client, bus.JSON, streamOf("", "a"), nil)              // refused: an error reply, no stream
	infer(t, client, encode(t, bus.Protobuf, hello("gpt-5")), nil)

	assert.JSONEq(t, `{"in_flight":0,"streaming":0,"replied":4,"errors":2,"abandoned":0,"streams":2,"chunks":7,"forwarded":0,"refused_replies":0}`,
		statsData(t, client))
}

// TestIngressStreamDispatcherMistakes: whatever the Dispatcher sends, the
// caller gets a well-formed stream with exactly one final chunk.
func TestIngressStreamDispatcherMistakes(t *testing.T) {
	d := newQueueDispatcher()
	nd, client := setup(t, d)

	type want struct {
		seq     uint32
		delta   string
		final   bool
		outcome messages.InferChunk_Outcome
		class   messages.ErrorClass // checked when code is set
		code    string
		header  string // Nats-Service-Error-Code
	}
	piece := func(text string) func(messages.Sink) { return func(s messages.Sink) { s.Piece("gpt-5", text) } }
	final := func(resp *messages.InferResponse) func(messages.Sink) { return func(s messages.Sink) { s.Final(resp) } }
	tests := []struct {
		name   string
		script []func(messages.Sink)
		want   []want
	}{
		{
			name:   "what comes after the final reply is dropped",
			script: []func(messages.Sink){piece("a"), final(&messages.InferResponse{}), piece("b"), final(&messages.InferResponse{})},
			want:   []want{{seq: 1, delta: "a"}, {seq: 2, final: true, outcome: messages.InferChunk_complete}},
		},
		{
			name:   "a nil final reply ends the stream incomplete",
			script: []func(messages.Sink){piece("a"), final(nil)},
			want: []want{{seq: 1, delta: "a"}, {seq: 2, final: true, outcome: messages.InferChunk_incomplete,
				class: messages.ErrorClass_server_error, code: "no_reply", header: "502"}},
		},
		{
			name: "a final reply with an error is incomplete",
			script: []func(messages.Sink){
				final(&messages.InferResponse{Error: messages.Failure(messages.ErrorClass_stream_stall, "stalled", "no token for 30s")}),
			},
			want: []want{{seq: 1, final: true, outcome: messages.InferChunk_incomplete,
				class: messages.ErrorClass_stream_stall, code: "stalled", header: "504"}},
		},
		{
			name:   "a final reply's content is the stream's last text",
			script: []func(messages.Sink){piece("a"), final(&messages.InferResponse{Content: "b"})},
			want:   []want{{seq: 1, delta: "a"}, {seq: 2, delta: "b", final: true, outcome: messages.InferChunk_complete}},
		},
		{
			name:   "a piece that does not encode ends the stream",
			script: []func(messages.Sink){piece("a"), piece("\xff"), piece("b"), final(&messages.InferResponse{})},
			want: []want{{seq: 1, delta: "a"}, {seq: 2, final: true, outcome: messages.InferChunk_incomplete,
				class: messages.ErrorClass_server_error, code: "unencodable_chunk", header: "502"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := openStream(client, encode(t, bus.Protobuf, streamOf("gpt-5", "hi")), nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			held := d.nextStream(t)
			for _, step := range tt.script {
				step(held.sink)
			}

			msgs, chunks, err := readChunks(sub, bus.Protobuf)
			require.NoError(t, err)
			require.Len(t, chunks, len(tt.want), "chunks %v", chunks)
			for i, w := range tt.want {
				ch, m := chunks[i], msgs[i]
				assert.Equal(t, w.seq, ch.GetSeq(), "seq of chunk %d", i)
				assert.Equal(t, w.delta, ch.GetDelta(), "delta of chunk %d", i)
				assert.Equal(t, w.final, ch.GetFinal(), "final of chunk %d", i)
				assert.Equal(t, w.outcome, ch.GetOutcome(), "outcome of chunk %d", i)
				assert.Equal(t, w.header, m.Header.Get(micro.ErrorCodeHeader), "error header of chunk %d", i)
				assert.NotEmpty(t, ch.GetRequestId(), "request id of chunk %d", i)
				if w.code != "" {
					assert.Equal(t, w.class, ch.GetError().GetClass(), "error class of chunk %d", i)
					assert.Equal(t, w.code, ch.GetError().GetCode(), "error code of chunk %d", i)
				}
			}
			requireMarkerNext(t, nd, sub)
			assert.Equal(t, 0, nd.in.InFlight())
		})
	}
}
