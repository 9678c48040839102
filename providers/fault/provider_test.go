package fault

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/sim"
)

const reply = "one two three four five" // five pieces when streamed

var hello = &messages.InferRequest{Model: "m", Messages: []*messages.ChatMessage{{Role: "user", Content: "hi"}}}

// deadlines are the stream deadlines the model actor would put on a stream.
var deadlines = providers.StreamDeadlines{FirstToken: 2 * time.Second, Idle: time.Second, Total: time.Minute}

// attemptTimeout bounds each call, as the model actor's attempt deadline.
const attemptTimeout = 3 * time.Second

// wrapped returns a sim model answering reply at once, behind r's faults.
func wrapped(t *testing.T, r *Registry) providers.Streamer {
	t.Helper()
	m, err := sim.New(sim.Config{Name: "m", Reply: reply})
	require.NoError(t, err)
	s, ok := Wrap("m", m, r).(providers.Streamer)
	require.True(t, ok, "a wrapped streamer streams")
	return s
}

// outcome is what one call gave.
type outcome struct {
	text     string // the answer, or the pieces joined
	pieces   int
	first    time.Duration // to the first piece (streams)
	elapsed  time.Duration
	err      *providers.Error
	panicked any
}

func callPlain(p providers.Provider) (o outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	began := time.Now()
	defer func() {
		o.panicked = recover()
		o.elapsed = time.Since(began)
	}()
	res, err := p.Complete(ctx, hello)
	if err != nil {
		o.err = providers.Classify(err)
		return o
	}
	o.text = res.Content
	return o
}

// callStream reads a stream as the model actor does: under the stream
// deadlines, until io.EOF or an error.
func callStream(s providers.Streamer) (o outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	began := time.Now()
	defer func() {
		o.panicked = recover()
		o.elapsed = time.Since(began)
	}()
	st, err := providers.WithDeadlines(ctx, deadlines, func(ctx context.Context) (providers.Stream, error) { return s.Stream(ctx, hello) })
	if err != nil {
		o.err = providers.Classify(err)
		return o
	}
	defer st.Close()
	var b strings.Builder
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			o.text = b.String()
			return o
		}
		if err != nil {
			o.text = b.String()
			o.err = providers.Classify(err)
			return o
		}
		if o.pieces == 0 {
			o.first = time.Since(began)
		}
		o.pieces++
		b.WriteString(c.Delta)
	}
}

// want is the expected outcome of one call; class ok means success.
type want struct {
	class   messages.ErrorClass
	pieces  int
	first   time.Duration
	elapsed time.Duration
	panics  bool
}

func (w want) check(t *testing.T, got outcome, stream bool) {
	t.Helper()
	if w.panics {
		assert.NotNil(t, got.panicked, "want a panic")
		return
	}
	require.Nil(t, got.panicked)
	if w.class == messages.ErrorClass_ok {
		assert.Nil(t, got.err)
		assert.Equal(t, reply, strings.TrimSpace(got.text), "a complete answer")
	} else {
		require.NotNil(t, got.err, "want %s", w.class)
		assert.Equal(t, w.class, got.err.Class, "class (error %v)", got.err)
	}
	assert.Equal(t, w.elapsed, got.elapsed, "elapsed (fake time)")
	if stream {
		assert.Equal(t, w.pieces, got.pieces, "pieces")
		if w.pieces > 0 {
			assert.Equal(t, w.first, got.first, "time to the first piece (fake time)")
		}
	}
}

// TestEveryKind: each kind, in front of a sim model, on a plain call and
// on a stream read under the stream deadlines. Time is synctest's, so the
// durations are exact.
func TestEveryKind(t *testing.T) {
	ok := messages.ErrorClass_ok
	tests := []struct {
		name   string
		spec   *messages.FaultSpec
		plain  want
		stream want
	}{
		{"no fault",
			nil,
			want{class: ok}, want{class: ok, pieces: 5}},
		{"error",
			&messages.FaultSpec{Kind: messages.FaultSpec_error, ErrorClass: messages.ErrorClass_overloaded},
			want{class: messages.ErrorClass_overloaded}, want{class: messages.ErrorClass_overloaded}},
		{"latency",
			&messages.FaultSpec{Kind: messages.FaultSpec_latency, LatencyMs: 200},
			want{class: ok, elapsed: 200 * time.Millisecond}, want{class: ok, pieces: 5, first: 200 * time.Millisecond, elapsed: 200 * time.Millisecond}},
		{"latency past the attempt deadline",
			&messages.FaultSpec{Kind: messages.FaultSpec_latency, LatencyMs: 4000},
			want{class: messages.ErrorClass_timeout, elapsed: attemptTimeout}, want{class: messages.ErrorClass_stream_stall, elapsed: deadlines.FirstToken}},
		{"hang", // a stream's first-token deadline counts from the start of the call
			&messages.FaultSpec{Kind: messages.FaultSpec_hang},
			want{class: messages.ErrorClass_timeout, elapsed: attemptTimeout}, want{class: messages.ErrorClass_stream_stall, elapsed: deadlines.FirstToken}},
		{"connection reset",
			&messages.FaultSpec{Kind: messages.FaultSpec_connection_reset},
			want{class: messages.ErrorClass_connection}, want{class: messages.ErrorClass_connection}},
		{"slow first token",
			&messages.FaultSpec{Kind: messages.FaultSpec_slow_first_token, LatencyMs: 300},
			want{class: ok, elapsed: 300 * time.Millisecond}, want{class: ok, pieces: 5, first: 300 * time.Millisecond, elapsed: 300 * time.Millisecond}},
		{"first token later than its deadline",
			&messages.FaultSpec{Kind: messages.FaultSpec_slow_first_token, LatencyMs: 2500},
			want{class: ok, elapsed: 2500 * time.Millisecond}, want{class: messages.ErrorClass_stream_stall, elapsed: deadlines.FirstToken}},
		{"cut stream",
			&messages.FaultSpec{Kind: messages.FaultSpec_cut_stream, AfterTokens: 2},
			want{class: messages.ErrorClass_stream_cut}, want{class: messages.ErrorClass_stream_cut, pieces: 2}},
		{"cut after the whole answer's length",
			&messages.FaultSpec{Kind: messages.FaultSpec_cut_stream, AfterTokens: 6},
			want{class: messages.ErrorClass_stream_cut}, want{class: ok, pieces: 5}},
		{"stall stream",
			&messages.FaultSpec{Kind: messages.FaultSpec_stall_stream, AfterTokens: 2},
			want{class: messages.ErrorClass_timeout, elapsed: attemptTimeout}, want{class: messages.ErrorClass_stream_stall, pieces: 2, elapsed: deadlines.Idle}},
		{"stall before the first token",
			&messages.FaultSpec{Kind: messages.FaultSpec_stall_stream},
			want{class: messages.ErrorClass_timeout, elapsed: attemptTimeout}, want{class: messages.ErrorClass_stream_stall, elapsed: deadlines.FirstToken}},
		{"malformed chunk",
			&messages.FaultSpec{Kind: messages.FaultSpec_malformed_chunk, AfterTokens: 1},
			want{class: messages.ErrorClass_malformed}, want{class: messages.ErrorClass_malformed, pieces: 1}},
		{"rate limit",
			&messages.FaultSpec{Kind: messages.FaultSpec_rate_limit, RetryAfterMs: 2000},
			want{class: messages.ErrorClass_rate_limited}, want{class: messages.ErrorClass_rate_limited}},
		{"panic",
			&messages.FaultSpec{Kind: messages.FaultSpec_panic},
			want{panics: true}, want{panics: true}},
		{"partition does nothing to calls",
			&messages.FaultSpec{Kind: messages.FaultSpec_partition, DurationMs: 1000},
			want{class: ok}, want{class: ok, pieces: 5}},
		{"kill does nothing to calls",
			&messages.FaultSpec{Kind: messages.FaultSpec_kill, StartAfterMs: 60000},
			want{class: ok}, want{class: ok, pieces: 5}},
	}
	for _, tt := range tests {
		for _, streamed := range []bool{false, true} {
			name, w := tt.name+"/plain", tt.plain
			if streamed {
				name, w = tt.name+"/stream", tt.stream
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					r := NewRegistry(Config{})
					if tt.spec != nil {
						r.Inject(tt.spec, time.Now())
					}
					p := wrapped(t, r)
					if streamed {
						w.check(t, callStream(p), true)
					} else {
						w.check(t, callPlain(p), false)
					}
				})
			})
		}
	}
}

func TestErrorClassAndStatus(t *testing.T) {
	tests := []struct {
		name       string
		class      messages.ErrorClass
		status     int32
		wantClass  messages.ErrorClass
		wantStatus int
	}{
		{"neither", messages.ErrorClass_ok, 0, messages.ErrorClass_server_error, 500},
		{"class", messages.ErrorClass_auth, 0, messages.ErrorClass_auth, 401},
		{"status", messages.ErrorClass_ok, 503, messages.ErrorClass_overloaded, 503},
		{"status 429", messages.ErrorClass_ok, 429, messages.ErrorClass_rate_limited, 429},
		{"both", messages.ErrorClass_server_error, 502, messages.ErrorClass_server_error, 502},
		{"a class without HTTP", messages.ErrorClass_timeout, 0, messages.ErrorClass_timeout, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry(Config{})
			r.Inject(&messages.FaultSpec{Id: "e1", Kind: messages.FaultSpec_error, ErrorClass: tt.class, StatusCode: tt.status}, time.Now())
			_, err := wrapped(t, r).Complete(context.Background(), hello)
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.wantClass, pe.Class)
			assert.Equal(t, tt.wantStatus, pe.StatusCode)
			assert.Contains(t, pe.Message, "injected fault e1", "the message names the fault")
		})
	}
}

func TestRateLimitCarriesRetryAfter(t *testing.T) {
	r := NewRegistry(Config{})
	r.Inject(&messages.FaultSpec{Kind: messages.FaultSpec_rate_limit, RetryAfterMs: 2500}, time.Now())
	p := wrapped(t, r)
	for name, call := range map[string]func() error{
		"plain":  func() error { _, err := p.Complete(context.Background(), hello); return err },
		"stream": func() error { _, err := p.Stream(context.Background(), hello); return err },
	} {
		err := call()
		var pe *providers.Error
		require.ErrorAs(t, err, &pe, name)
		assert.Equal(t, 429, pe.StatusCode, name)
		assert.Equal(t, 2500*time.Millisecond, pe.RetryAfter, name)
	}
}

func TestConnectionResetLooksLikeOne(t *testing.T) {
	r := NewRegistry(Config{})
	r.Inject(&messages.FaultSpec{Kind: messages.FaultSpec_connection_reset}, time.Now())
	_, err := wrapped(t, r).Complete(context.Background(), hello)
	assert.ErrorIs(t, err, syscall.ECONNRESET)
	assert.Contains(t, err.Error(), "connection reset by peer")
}

func TestHangEndsWithTheCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(Config{})
		r.Inject(&messages.FaultSpec{Kind: messages.FaultSpec_hang}, time.Now())
		p := wrapped(t, r)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		_, err := p.Complete(ctx, hello)
		assert.Equal(t, messages.ErrorClass_cancelled, providers.Classify(err).Class, "the caller went away")
	})
}

// TestCloseEndsAStall: closing a stalled stream from another goroutine
// ends its Recv, as Close must.
func TestCloseEndsAStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(Config{})
		r.Inject(&messages.FaultSpec{Kind: messages.FaultSpec_stall_stream, AfterTokens: 1}, time.Now())
		st, err := wrapped(t, r).Stream(context.Background(), hello)
		require.NoError(t, err)
		_, err = st.Recv()
		require.NoError(t, err)
		time.AfterFunc(time.Second, func() { _ = st.Close() })
		_, err = st.Recv()
		assert.Equal(t, messages.ErrorClass_cancelled, providers.Classify(err).Class)
		_, again := st.Recv()
		assert.Equal(t, err, again, "the end is sticky")
	})
}

// TestFaultWindowOnCalls: a fault acts on the calls inside its window only,
// by the registry's clock.
func TestFaultWindowOnCalls(t *testing.T) {
	c := newClock()
	r := NewRegistry(Config{Now: c.Now})
	r.Inject(&messages.FaultSpec{Kind: messages.FaultSpec_error, StartAfterMs: 500, DurationMs: 1000}, c.Now())
	p := wrapped(t, r)
	fails := func() bool { _, err := p.Complete(context.Background(), hello); return err != nil }
	assert.False(t, fails(), "before its start")
	c.Advance(500 * time.Millisecond)
	assert.True(t, fails(), "in its window")
	c.Advance(1000 * time.Millisecond)
	assert.False(t, fails(), "after its end")
}

func TestWrapKeepsWhatTheProviderIs(t *testing.T) {
	r := NewRegistry(Config{})
	var plain providers.Provider = plainOnly{}
	_, streams := Wrap("m", plain, r).(providers.Streamer)
	assert.False(t, streams, "a plain provider stays plain, so the actor calls it plainly")
	assert.Equal(t, plain, Wrap("m", plain, nil), "no registry, no wrapper")
}

type plainOnly struct{}

func (plainOnly) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	return &providers.Result{Content: reply}, nil
}

// TestMalformedChunkIsOneEvent: in a stream, malformed_chunk is one
// Skippable event after after_tokens pieces; read on, the stream gives
// the rest of the answer and ends complete, under its deadlines.
func TestMalformedChunkIsOneEvent(t *testing.T) {
	r := NewRegistry(Config{})
	r.Inject(&messages.FaultSpec{Kind: messages.FaultSpec_malformed_chunk, AfterTokens: 2}, time.Now())
	st, err := providers.WithDeadlines(context.Background(), deadlines, func(ctx context.Context) (providers.Stream, error) {
		return wrapped(t, r).Stream(ctx, hello)
	})
	require.NoError(t, err)
	defer st.Close()
	var text strings.Builder
	skipped := 0
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			require.True(t, pe.Skippable, "only the injected event fails, and it is skippable")
			require.Equal(t, 2, len(sim.Tokens(text.String())), "after after_tokens pieces")
			skipped++
			continue
		}
		text.WriteString(c.Delta)
	}
	assert.Equal(t, 1, skipped)
	assert.Equal(t, reply, text.String(), "the whole answer around the bad event")
}
