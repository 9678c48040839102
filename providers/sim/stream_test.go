package sim

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// drain reads a stream to its end: the tokens, the usage, and the end.
func drain(s providers.Stream) ([]string, *messages.Usage, error) {
	var tokens []string
	var usage *messages.Usage
	for {
		c, err := s.Recv()
		if err != nil {
			return tokens, usage, err
		}
		tokens = append(tokens, c.Delta)
		if c.Usage != nil {
			usage = c.Usage
		}
	}
}

func TestTokens(t *testing.T) {
	assert.Equal(t, []string{"a ", "b  ", "c"}, Tokens("a b  c"))
	assert.Equal(t, []string{"  lead ", "trail\n"}, Tokens("  lead trail\n"))
	assert.Empty(t, Tokens(""))
}

func TestStreamTokensInOrder(t *testing.T) {
	m, err := New(Config{Name: "s"})
	require.NoError(t, err)
	s, err := m.Stream(context.Background(), hello)
	require.NoError(t, err)
	defer s.Close()
	tokens, usage, err := drain(s)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []string{"s ", "(simulated) ", "received: ", "hello ", "there"}, tokens)
	assert.Equal(t, &messages.Usage{PromptTokens: 2, CompletionTokens: 5}, usage)
	_, err = s.Recv()
	assert.ErrorIs(t, err, io.EOF, "the end is sticky")

	res, err := m.Complete(context.Background(), hello)
	require.NoError(t, err)
	assert.Equal(t, res.Content, strings.Join(tokens, ""), "streamed and plain answers agree")
}

func TestStreamDeterministic(t *testing.T) {
	cfg := Config{Name: "s", FailureRate: 0.5, Seed: 42, Reply: "one two three four"}
	run := func() []string {
		m, err := New(cfg)
		require.NoError(t, err)
		var out []string
		for range 100 {
			s, err := m.Stream(context.Background(), hello)
			if err != nil {
				out = append(out, "fail:"+providers.Classify(err).Class.String())
				continue
			}
			tokens, _, err := drain(s)
			require.ErrorIs(t, err, io.EOF)
			out = append(out, strings.Join(tokens, "|"))
			s.Close()
		}
		return out
	}
	a, b := run(), run()
	assert.Equal(t, a, b, "the same seed gives the same streams")
	assert.Contains(t, a, "one |two |three |four")
	assert.Contains(t, a, "fail:server_error")
}

// TestStreamSameDrawsAsComplete: a stream consumes the same draw as a
// plain call, so mixing the two keeps a seed's outcomes.
func TestStreamSameDrawsAsComplete(t *testing.T) {
	cfg := Config{Name: "s", FailureRate: 0.5, Seed: 9}
	plain, err := New(cfg)
	require.NoError(t, err)
	mixed, err := New(cfg)
	require.NoError(t, err)
	for i := range 50 {
		_, perr := plain.Complete(context.Background(), hello)
		var merr error
		if i%2 == 0 {
			_, merr = mixed.Complete(context.Background(), hello)
		} else {
			var s providers.Stream
			if s, merr = mixed.Stream(context.Background(), hello); merr == nil {
				s.Close()
			}
		}
		assert.Equal(t, perr != nil, merr != nil, "call %d", i)
	}
}

func TestStreamFailsBeforeTheFirstToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := New(Config{Name: "s", FailureRate: 1, ErrorClass: messages.ErrorClass_overloaded, Latency: 50 * time.Millisecond})
		require.NoError(t, err)
		began := time.Now()
		_, err = m.Stream(context.Background(), hello)
		pe := providers.Classify(err)
		assert.Equal(t, messages.ErrorClass_overloaded, pe.Class)
		assert.Equal(t, 503, pe.StatusCode)
		assert.Equal(t, 50*time.Millisecond, time.Since(began), "the failure comes after the latency")
	})
}

func TestStreamPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := New(Config{Name: "s", Latency: 100 * time.Millisecond, TokenDelay: 10 * time.Millisecond, Reply: "a b c d"})
		require.NoError(t, err)
		began := time.Now()
		s, err := m.Stream(context.Background(), hello)
		require.NoError(t, err)
		defer s.Close()
		var at []time.Duration
		for {
			_, err := s.Recv()
			if err != nil {
				require.ErrorIs(t, err, io.EOF)
				break
			}
			at = append(at, time.Since(began))
		}
		ms := time.Millisecond
		assert.Equal(t, []time.Duration{100 * ms, 110 * ms, 120 * ms, 130 * ms}, at, "first token after the latency, then one per TokenDelay")
	})
}

func TestStreamHonoursContextAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := New(Config{Name: "s", TokenDelay: time.Second, Reply: "a b c"})
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		s, err := m.Stream(ctx, hello)
		require.NoError(t, err)
		tokens, _, err := drain(s)
		assert.Equal(t, []string{"a ", "b "}, tokens)
		assert.Equal(t, messages.ErrorClass_timeout, providers.Classify(err).Class)

		s, err = m.Stream(context.Background(), hello)
		require.NoError(t, err)
		_, err = s.Recv()
		require.NoError(t, err)
		got := make(chan error)
		go func() {
			_, err := s.Recv()
			got <- err
		}()
		synctest.Wait()
		require.NoError(t, s.Close())
		assert.Equal(t, messages.ErrorClass_cancelled, providers.Classify(<-got).Class)
		require.NoError(t, s.Close(), "Close twice")

		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		_, err = m.Stream(ctx, hello)
		assert.Equal(t, messages.ErrorClass_cancelled, providers.Classify(err).Class)
	})
}

// TestStreamUnderDeadlines: a sim slower to its first token than the
// first-token deadline is a stream_stall, with no network involved.
func TestStreamUnderDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := New(Config{Name: "s", Latency: time.Second})
		require.NoError(t, err)
		_, err = providers.WithDeadlines(context.Background(), providers.StreamDeadlines{FirstToken: 200 * time.Millisecond},
			func(ctx context.Context) (providers.Stream, error) { return m.Stream(ctx, hello) })
		assert.Equal(t, messages.ErrorClass_stream_stall, providers.Classify(err).Class)

		slow, err := New(Config{Name: "s", TokenDelay: time.Second, Reply: "a b c"})
		require.NoError(t, err)
		s, err := providers.WithDeadlines(context.Background(), providers.StreamDeadlines{Idle: 500 * time.Millisecond},
			func(ctx context.Context) (providers.Stream, error) { return slow.Stream(ctx, hello) })
		require.NoError(t, err)
		defer s.Close()
		tokens, _, err := drain(s)
		assert.Equal(t, []string{"a "}, tokens)
		assert.Equal(t, messages.ErrorClass_stream_stall, providers.Classify(err).Class)
	})
}

func TestEmptyReplyStreamsOneChunk(t *testing.T) {
	m, err := New(Config{Name: "s", Reply: " "})
	require.NoError(t, err)
	s, err := m.Stream(context.Background(), hello)
	require.NoError(t, err)
	tokens, usage, err := drain(s)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []string{" "}, tokens)
	assert.NotNil(t, usage)
}
