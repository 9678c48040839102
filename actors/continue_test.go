package actors

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/sim"
)

const whole = "one two three four five"

// cutAfter streams the first words of whole, then fails with class.
func cutAfter(class messages.ErrorClass, words ...string) script {
	return script{pieces: words, end: providers.Errorf(class, "cut")}
}

func wholeModel(t *testing.T, cfg sim.Config) providers.Provider {
	t.Helper()
	cfg.Reply = whole
	p, err := sim.New(cfg)
	require.NoError(t, err)
	return p
}

func collectReq(t *testing.T, h *Hive, req *messages.InferRequest) []*messages.InferChunk {
	t.Helper()
	req.Stream = true
	sink := newChunkSink(t, req.RequestId)
	h.Dispatch(context.Background(), req, sink)
	var out []*messages.InferChunk
	for {
		select {
		case c := <-sink.out:
			out = append(out, c)
			if c.Final {
				return out
			}
		case <-time.After(waitLimit):
			t.Fatalf("no final chunk; got %v", out)
		}
	}
}

// TestStreamContinued: a stream cut after text went out is finished by
// the fallback, by prefill when it takes one, else by instruction; the
// caller gets the whole answer once, in one numbered stream, and the
// final chunk says who continued and how.
func TestStreamContinued(t *testing.T) {
	tests := []struct {
		name     string
		cut      messages.ErrorClass
		fallback ModelSpec
		tries    []string
		how      []string // each attempt's continued
	}{
		{"prefill", messages.ErrorClass_stream_cut, ModelSpec{Prefill: true},
			[]string{"a=stream_cut", "b=ok"}, []string{"", "prefill"}},
		{"instruction", messages.ErrorClass_stream_stall, ModelSpec{},
			[]string{"a=stream_stall", "b=ok"}, []string{"", "instruction"}},
		{"prefill refused, then instruction", messages.ErrorClass_malformed, ModelSpec{Prefill: true},
			[]string{"a=malformed", "b=bad_request", "b=ok"}, []string{"", "prefill", "instruction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := tt.fallback
			fb.Name, fb.Retry = "b", noRetry
			fb.Provider = wholeModel(t, sim.Config{Name: "b", RejectPrefill: len(tt.tries) == 3})
			h := startHive(t, ModelSpec{Name: "a", Provider: cutAfter(tt.cut, "one ", "two "), Fallbacks: []string{"b"}, Retry: noRetry}, fb)
			chunks := collectReq(t, h, request("a"))
			final := chunks[len(chunks)-1]
			assert.Equal(t, messages.InferChunk_complete, final.Outcome, "final: %v", final)
			assert.Equal(t, whole, text(chunks), "the pieces sent, then the rest, the space between once")
			assert.Equal(t, tt.tries, classes(final.Attempts))
			var how []string
			for _, a := range final.Attempts {
				how = append(how, a.GetContinued())
			}
			assert.Equal(t, tt.how, how)
			assert.Equal(t, "b", final.ServedBy)
			assert.Equal(t, "complete", final.GetContinuation())
			for i, c := range chunks {
				assert.Equal(t, uint32(i+1), c.Seq, "chunk %d", i)
			}
		})
	}
}

// TestStreamWithToolsNotContinued: a request that carries tools or a
// response format ends incomplete after a cut, as a splice would corrupt
// it, and says why.
func TestStreamWithToolsNotContinued(t *testing.T) {
	h := startHive(t,
		ModelSpec{Name: "a", Provider: cutAfter(messages.ErrorClass_stream_cut, "one "), Fallbacks: []string{"b"}, Retry: noRetry},
		ModelSpec{Name: "b", Provider: wholeModel(t, sim.Config{Name: "b"}), Retry: noRetry})
	for name, set := range map[string]func(*messages.InferRequest){
		"tools":           func(r *messages.InferRequest) { r.Tools = `[{"type":"function","function":{"name":"f"}}]` },
		"response format": func(r *messages.InferRequest) { r.ResponseFormat = `{"type":"json_object"}` },
	} {
		t.Run(name, func(t *testing.T) {
			req := request("a")
			set(req)
			chunks := collectReq(t, h, req)
			final := chunks[len(chunks)-1]
			assert.Equal(t, messages.InferChunk_incomplete, final.Outcome)
			assert.Equal(t, "stream_incomplete", final.GetError().GetCode())
			assert.Equal(t, "refused_tools", final.GetContinuation())
			assert.Equal(t, "one ", text(chunks))
			assert.Equal(t, []string{"a=stream_cut"}, classes(final.Attempts))
		})
	}
}

// badEvents streams "one ", then n events that do not parse, then "two".
type badEvents struct{ n int }

func (b badEvents) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	return nil, providers.Errorf(messages.ErrorClass_bad_request, "streams only")
}

func (b badEvents) Stream(context.Context, *messages.InferRequest) (providers.Stream, error) {
	return &badStream{left: b.n}, nil
}

type badStream struct {
	step, left int
}

func (s *badStream) Recv() (providers.Chunk, error) {
	s.step++
	switch {
	case s.step == 1:
		return providers.Chunk{Delta: "one "}, nil
	case s.left > 0:
		s.left--
		e := providers.Errorf(messages.ErrorClass_malformed, "unparsable")
		e.Skippable = true
		return providers.Chunk{}, e
	case s.step < 10:
		s.step = 10
		return providers.Chunk{Delta: "two"}, nil
	}
	return providers.Chunk{}, io.EOF
}

func (s *badStream) Close() error { return nil }

// TestStreamMalformedEvent: one event that does not parse is skipped and
// counted; two in a row fail the stream (which is then continued); with
// FailOnMalformed the first fails it.
func TestStreamMalformedEvent(t *testing.T) {
	tests := []struct {
		name    string
		bad     int
		fail    bool
		text    string
		tries   []string
		skipped int32
	}{
		{"one skipped", 1, false, "one two", []string{"a=ok"}, 1},
		{"two in a row fail, and are continued", 2, false, "one two three four five", []string{"a=malformed", "b=ok"}, 1},
		{"fail on the first", 1, true, "one two three four five", []string{"a=malformed", "b=ok"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHive(t,
				ModelSpec{Name: "a", Provider: badEvents{n: tt.bad}, FailOnMalformed: tt.fail, Fallbacks: []string{"b"}, Retry: noRetry},
				ModelSpec{Name: "b", Provider: wholeModel(t, sim.Config{Name: "b"}), Retry: noRetry})
			chunks := collectReq(t, h, request("a"))
			final := chunks[len(chunks)-1]
			assert.Equal(t, messages.InferChunk_complete, final.Outcome, "final: %v", final)
			assert.Equal(t, tt.text, text(chunks))
			assert.Equal(t, tt.tries, classes(final.Attempts))
			assert.Equal(t, tt.skipped, final.Attempts[0].GetMalformedSkipped())
		})
	}
}

// TestPlainCutOrMalformedFailsOver: a plain request whose upstream answer
// breaks off or does not parse fails over before anything reaches the
// caller, whatever onMalformed says (there is no stream to read on).
func TestPlainCutOrMalformedFailsOver(t *testing.T) {
	for _, class := range []messages.ErrorClass{messages.ErrorClass_stream_cut, messages.ErrorClass_malformed} {
		t.Run(class.String(), func(t *testing.T) {
			h := startHive(t,
				ModelSpec{Name: "a", Provider: failing{class: class}, Fallbacks: []string{"b"}, Retry: noRetry},
				ModelSpec{Name: "b", Provider: wholeModel(t, sim.Config{Name: "b"}), Retry: noRetry})
			resp := infer(t, h, "a")
			require.Nil(t, resp.GetError(), "reply: %v", resp)
			assert.Equal(t, whole, resp.GetContent())
			assert.Equal(t, []string{"a=" + class.String(), "b=ok"}, classes(resp.GetAttempts()))
			assert.Empty(t, resp.GetContinuation())
		})
	}
}

// failing answers every plain call with its class.
type failing struct{ class messages.ErrorClass }

func (f failing) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	return nil, providers.Errorf(f.class, "the answer broke off")
}
