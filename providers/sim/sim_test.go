package sim

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

var hello = &messages.InferRequest{Messages: []*messages.ChatMessage{{Role: "user", Content: "hello there"}}}

// outcomes runs n calls and returns which failed.
func outcomes(t *testing.T, m *Model, n int) []bool {
	t.Helper()
	out := make([]bool, n)
	for i := range out {
		_, err := m.Complete(context.Background(), hello)
		out[i] = err != nil
	}
	return out
}

func TestSameSeedSameOutcomes(t *testing.T) {
	cfg := Config{Name: "s", FailureRate: 0.5, Seed: 42}
	a, err := New(cfg)
	require.NoError(t, err)
	b, err := New(cfg)
	require.NoError(t, err)
	oa, ob := outcomes(t, a, 200), outcomes(t, b, 200)
	assert.Equal(t, oa, ob, "two models with seed 42 must fail on the same calls")

	failures := 0
	for _, f := range oa {
		if f {
			failures++
		}
	}
	assert.InDelta(t, 100, failures, 30, "failure rate 0.5 over 200 calls gave %d failures", failures)
}

func TestFailureCarriesClass(t *testing.T) {
	tests := []struct {
		class      messages.ErrorClass
		wantClass  messages.ErrorClass
		wantStatus int
	}{
		{messages.ErrorClass_ok, messages.ErrorClass_server_error, 500},
		{messages.ErrorClass_rate_limited, messages.ErrorClass_rate_limited, 429},
		{messages.ErrorClass_timeout, messages.ErrorClass_timeout, 0},
	}
	for _, tt := range tests {
		t.Run(tt.class.String(), func(t *testing.T) {
			m, err := New(Config{Name: "s", FailureRate: 1, ErrorClass: tt.class})
			require.NoError(t, err)
			_, err = m.Complete(context.Background(), hello)
			pe := providers.Classify(err)
			assert.Equal(t, tt.wantClass, pe.Class)
			assert.Equal(t, tt.wantStatus, pe.StatusCode)
		})
	}
}

func TestAnswer(t *testing.T) {
	m, err := New(Config{Name: "s"})
	require.NoError(t, err)
	res, err := m.Complete(context.Background(), hello)
	require.NoError(t, err)
	assert.Equal(t, "s (simulated) received: hello there", res.Content)
	assert.Equal(t, int32(2), res.Usage.PromptTokens)

	fixed, err := New(Config{Name: "s", Reply: "fixed answer"})
	require.NoError(t, err)
	res, err = fixed.Complete(context.Background(), hello)
	require.NoError(t, err)
	assert.Equal(t, "fixed answer", res.Content)
}

func TestLatencyWithinJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := New(Config{Name: "s", Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Seed: 7})
		require.NoError(t, err)
		for range 50 {
			began := time.Now()
			_, err := m.Complete(context.Background(), hello)
			require.NoError(t, err)
			took := time.Since(began)
			if took < 15*time.Millisecond || took > 25*time.Millisecond {
				t.Fatalf("simulated latency %v outside 20ms +- 5ms", took)
			}
		}
	})
}

func TestContextEndsTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := New(Config{Name: "s", Latency: time.Hour})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = m.Complete(ctx, hello)
		assert.Equal(t, messages.ErrorClass_timeout, providers.Classify(err).Class)

		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		_, err = m.Complete(ctx, hello)
		assert.Equal(t, messages.ErrorClass_cancelled, providers.Classify(err).Class)
	})
}

func TestBadConfig(t *testing.T) {
	_, err := New(Config{Name: "s", FailureRate: 1.5})
	assert.EqualError(t, err, "sim s: failure rate 1.5 outside [0, 1]")
	_, err = New(Config{Name: "s", Latency: -time.Second})
	assert.EqualError(t, err, "sim s: negative latency or jitter")
}

func TestBadTokenDelay(t *testing.T) {
	_, err := New(Config{Name: "s", TokenDelay: -time.Millisecond})
	assert.EqualError(t, err, "sim s: negative token delay")
}

// TestContinuation: a sim model continues a cut answer from a prefill or
// an instruction with what follows the partial answer, and one set to
// refuse prefills answers prefill_unsupported.
func TestContinuation(t *testing.T) {
	m, err := New(Config{Name: "s", Reply: "one two three four"})
	require.NoError(t, err)
	for _, prefill := range []bool{true, false} {
		res, err := m.Complete(context.Background(), providers.Continuation(hello, "one two ", prefill))
		require.NoError(t, err)
		want := "three four"
		if prefill {
			want = " three four" // the prefill lost its trailing space
		}
		assert.Equal(t, want, res.Content, "prefill %v", prefill)
	}
	st, err := m.Stream(context.Background(), providers.Continuation(hello, "one two ", false))
	require.NoError(t, err)
	c, err := st.Recv()
	require.NoError(t, err)
	assert.Equal(t, "three ", c.Delta)
	st.Close()

	r, err := New(Config{Name: "r", Reply: "one two three four", RejectPrefill: true})
	require.NoError(t, err)
	_, err = r.Stream(context.Background(), providers.Continuation(hello, "one two ", true))
	pe := providers.Classify(err)
	assert.Equal(t, messages.ErrorClass_bad_request, pe.Class)
	assert.Equal(t, providers.CodePrefillUnsupported, pe.Code)
	assert.Equal(t, 400, pe.StatusCode)
	res, err := r.Complete(context.Background(), providers.Continuation(hello, "one two ", false))
	require.NoError(t, err, "an instruction is fine")
	assert.Equal(t, "three four", res.Content)
}
