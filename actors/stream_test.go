package actors

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/sim"
)

// collect dispatches a streamed request and returns its chunks, the last
// being the final one.
func collect(t *testing.T, h *Hive, model string) []*messages.InferChunk {
	t.Helper()
	req := request(model)
	req.Stream = true
	sink := newChunkSink(t, req.RequestId)
	h.Dispatch(context.Background(), req, sink)
	ch := sink.out
	var out []*messages.InferChunk
	deadline := time.After(waitLimit)
	for {
		select {
		case c := <-ch:
			out = append(out, c)
			if c.Final {
				return out
			}
		case <-deadline:
			t.Fatalf("no final chunk within %v; got %v", waitLimit, out)
			return nil
		}
	}
}

func text(chunks []*messages.InferChunk) string {
	var b strings.Builder
	for _, c := range chunks {
		b.WriteString(c.Delta)
	}
	return b.String()
}

// script is a streaming provider: it sends its pieces, then ends with end
// (nil: a complete answer), or blocks until its context ends when stall
// is set.
type script struct {
	pieces []string
	end    error
	stall  bool
	before time.Duration // wait before the first piece
}

func (s script) Complete(ctx context.Context, req *messages.InferRequest) (*providers.Result, error) {
	return nil, providers.Errorf(messages.ErrorClass_bad_request, "script streams only")
}

func (s script) Stream(ctx context.Context, _ *messages.InferRequest) (providers.Stream, error) {
	return &scriptStream{script: s, ctx: ctx}, nil
}

type scriptStream struct {
	script
	ctx  context.Context
	next int
}

func (s *scriptStream) Recv() (providers.Chunk, error) {
	if s.next == 0 && s.before > 0 {
		select {
		case <-time.After(s.before):
		case <-s.ctx.Done():
			return providers.Chunk{}, providers.Classify(s.ctx.Err())
		}
	}
	if s.next < len(s.pieces) {
		s.next++
		return providers.Chunk{Delta: s.pieces[s.next-1]}, nil
	}
	if s.stall {
		<-s.ctx.Done()
		return providers.Chunk{}, providers.Classify(s.ctx.Err())
	}
	if s.end != nil {
		return providers.Chunk{}, s.end
	}
	return providers.Chunk{Usage: &messages.Usage{CompletionTokens: int32(len(s.pieces))}}, io.EOF
}

func (s *scriptStream) Close() error { return nil }

func TestStreamComplete(t *testing.T) {
	p, err := sim.New(sim.Config{Name: "s", Reply: "one two three", TokenDelay: time.Millisecond})
	require.NoError(t, err)
	h := startHive(t, ModelSpec{Name: "s", Provider: p})
	chunks := collect(t, h, "s")
	final := chunks[len(chunks)-1]
	assert.Equal(t, messages.InferChunk_complete, final.Outcome, "final: %v", final)
	assert.Equal(t, "one two three", text(chunks))
	assert.Equal(t, "s", final.ServedBy)
	assert.Positive(t, final.Usage.GetCompletionTokens())
	assert.Equal(t, []string{"s=ok"}, classes(final.Attempts))
	for i, c := range chunks {
		assert.Equal(t, uint32(i+1), c.Seq, "chunk %d", i)
		assert.Equal(t, "r-s", c.RequestId)
	}
}

func TestStreamFailsOverBeforeFirstPiece(t *testing.T) {
	h := startHive(t,
		ModelSpec{Name: "a", Provider: script{end: providers.Errorf(messages.ErrorClass_overloaded, "busy")}, Fallbacks: []string{"b"}, Retry: noRetry},
		ModelSpec{Name: "b", Provider: script{pieces: []string{"from ", "b"}}, Retry: noRetry},
	)
	chunks := collect(t, h, "a")
	final := chunks[len(chunks)-1]
	assert.Equal(t, messages.InferChunk_complete, final.Outcome, "final: %v", final)
	assert.Equal(t, "from b", text(chunks), "the caller sees only b's answer")
	assert.Equal(t, "b", final.ServedBy)
	assert.Equal(t, []string{"a=overloaded", "b=ok"}, classes(final.Attempts))
}

// With continuations off, a stream cut after text went out ends
// incomplete (continue_test.go has them on).
func TestStreamCutAfterPiecesIsIncomplete(t *testing.T) {
	h := startHive(t,
		ModelSpec{Name: "a", Provider: script{pieces: []string{"half ", "an "}, end: providers.Errorf(messages.ErrorClass_stream_cut, "ended without [DONE]")},
			Fallbacks: []string{"b"}, Retry: noRetry, MaxContinuations: -1},
		ModelSpec{Name: "b", Provider: script{pieces: []string{"never"}}, Retry: noRetry},
	)
	chunks := collect(t, h, "a")
	final := chunks[len(chunks)-1]
	assert.Equal(t, messages.InferChunk_incomplete, final.Outcome, "a cut answer is never a success")
	assert.Equal(t, messages.ErrorClass_stream_cut, final.Error.GetClass())
	assert.Equal(t, "stream_incomplete", final.Error.GetCode())
	assert.Equal(t, "half an ", text(chunks))
	assert.Equal(t, []string{"a=stream_cut"}, classes(final.Attempts), "no fallback once text reached the caller")
	assert.Equal(t, "limit", final.GetContinuation())
}

func TestStreamDeadlines(t *testing.T) {
	tests := []struct {
		name      string
		primary   script
		deadlines providers.StreamDeadlines
		want      messages.InferChunk_Outcome
		wantText  string
		wantTries []string
	}{
		{
			name:      "stall after a piece is continued by the fallback",
			primary:   script{pieces: []string{"start "}, stall: true},
			deadlines: providers.StreamDeadlines{Idle: 20 * time.Millisecond},
			want:      messages.InferChunk_complete,
			wantText:  "start from b",
			wantTries: []string{"a=stream_stall", "b=ok"},
		},
		{
			name:      "slow first token fails over unnoticed",
			primary:   script{pieces: []string{"late"}, before: time.Hour},
			deadlines: providers.StreamDeadlines{FirstToken: 20 * time.Millisecond},
			want:      messages.InferChunk_complete,
			wantText:  "from b",
			wantTries: []string{"a=stream_stall", "b=ok"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHive(t,
				ModelSpec{Name: "a", Provider: tt.primary, Streaming: tt.deadlines, Fallbacks: []string{"b"}, Retry: noRetry},
				ModelSpec{Name: "b", Provider: script{pieces: []string{"from ", "b"}}, Retry: noRetry},
			)
			chunks := collect(t, h, "a")
			final := chunks[len(chunks)-1]
			assert.Equal(t, tt.want, final.Outcome, "final: %v", final)
			assert.Equal(t, tt.wantText, text(chunks))
			assert.Equal(t, tt.wantTries, classes(final.Attempts))
		})
	}
}

// plain answers whole: it has no stream of its own.
type plain struct{}

func (plain) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	return &providers.Result{Content: "all at once"}, nil
}

func TestStreamOfAPlainProviderIsOnePiece(t *testing.T) {
	h := startHive(t, ModelSpec{Name: "plain", Provider: plain{}}, ModelSpec{Name: "buggy", Provider: panicky{}, Retry: noRetry})
	chunks := collect(t, h, "plain")
	require.Len(t, chunks, 2, "one piece, then the final chunk")
	assert.Equal(t, "all at once", chunks[0].Delta)
	assert.Equal(t, messages.InferChunk_complete, chunks[1].Outcome)

	crashed := collect(t, h, "buggy")
	assert.Equal(t, messages.InferChunk_incomplete, crashed[len(crashed)-1].Outcome, "a crash ends the stream, never a hang")
}

// crashingStreamer streams one piece and then stalls; a plain call to it
// panics, which makes its model actor restart.
type crashingStreamer struct{ script }

func (crashingStreamer) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	panic("provider bug")
}

// A model actor that crashes while one of its streams has already sent
// text: another model's text is never appended to it unnoticed (found by
// the actor-crash chaos scenario). It is continued on the fallback, marked
// so, the chunks numbered on.
func TestStreamCrashAfterPiecesIsContinued(t *testing.T) {
	h := startHive(t,
		ModelSpec{Name: "a", Provider: crashingStreamer{script{pieces: []string{"half "}, stall: true}}, Fallbacks: []string{"b"}, Retry: noRetry},
		ModelSpec{Name: "b", Provider: script{pieces: []string{"from b"}}, Retry: noRetry},
	)
	req := request("a")
	req.Stream = true
	sink := newChunkSink(t, req.RequestId)
	h.Dispatch(context.Background(), req, sink)
	ch := sink.out
	var chunks []*messages.InferChunk
	select {
	case c := <-ch:
		chunks = append(chunks, c)
	case <-time.After(waitLimit):
		t.Fatal("no first piece")
	}
	require.Equal(t, "half ", chunks[0].Delta)

	crash := send(h, request("a")) // a plain call: the provider panics, the actor restarts
	for final := false; !final; {
		select {
		case c := <-ch:
			chunks = append(chunks, c)
			final = c.Final
		case <-time.After(waitLimit):
			t.Fatalf("no final chunk; got %v", chunks)
		}
	}
	await(t, crash)
	final := chunks[len(chunks)-1]
	assert.Equal(t, messages.InferChunk_complete, final.Outcome, "final: %v", final)
	assert.Equal(t, "half from b", text(chunks), "b's answer follows a's text (this script ignores the instruction)")
	require.Len(t, final.Attempts, 2)
	assert.Equal(t, "instruction", final.Attempts[1].GetContinued(), "the splice is marked")
	assert.Equal(t, "complete", final.GetContinuation())
	for i, c := range chunks {
		assert.Equal(t, uint32(i+1), c.Seq, "chunk %d", i)
	}
}
