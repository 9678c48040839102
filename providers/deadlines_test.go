package providers

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cmmv-hive/resilience/messages"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a scripted upstream stream: it sends what the script puts on
// chunks, ends complete when chunks is closed, and fails as a real stream
// does when its context ends.
type fake struct {
	ctx    context.Context
	chunks chan Chunk
	closed bool
}

func (f *fake) Recv() (Chunk, error) {
	select {
	case c, ok := <-f.chunks:
		if !ok {
			return Chunk{}, io.EOF
		}
		return c, nil
	case <-f.ctx.Done():
		return Chunk{}, Classify(f.ctx.Err())
	}
}

func (f *fake) Close() error { f.closed = true; return nil }

// script opens a fake stream under d; feed runs in its own goroutine and
// sends on the fake's channel.
func script(t *testing.T, d StreamDeadlines, feed func(ctx context.Context, ch chan<- Chunk)) (Stream, *fake) {
	t.Helper()
	var f *fake
	s, err := WithDeadlines(t.Context(), d, func(ctx context.Context) (Stream, error) {
		f = &fake{ctx: ctx, chunks: make(chan Chunk)}
		go feed(ctx, f.chunks)
		return f, nil
	})
	require.NoError(t, err)
	return s, f
}

// send delivers c unless the stream was cancelled.
func send(ctx context.Context, ch chan<- Chunk, c Chunk) bool {
	select {
	case ch <- c:
		return true
	case <-ctx.Done():
		return false
	}
}

// pause waits d, or less when the stream was cancelled, so that no
// feeder outlives its test.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

func drain(s Stream) (string, error) {
	text := ""
	for {
		c, err := s.Recv()
		if err != nil {
			return text, err
		}
		text += c.Delta
	}
}

func classOf(t *testing.T, err error) messages.ErrorClass {
	t.Helper()
	var pe *Error
	require.True(t, errors.As(err, &pe), "%v (%T) is not an *Error", err, err)
	return pe.Class
}

func TestDeadlines(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		d        StreamDeadlines
		feed     func(ctx context.Context, ch chan<- Chunk)
		wantText string
		want     messages.ErrorClass // ok: complete
		message  string
	}{
		{"no first token", StreamDeadlines{FirstToken: 100 * ms},
			func(ctx context.Context, ch chan<- Chunk) {},
			"", messages.ErrorClass_stream_stall, "stream_stall: no first token within 100ms"},
		{"usage alone is not a first token", StreamDeadlines{FirstToken: 100 * ms},
			func(ctx context.Context, ch chan<- Chunk) {
				send(ctx, ch, Chunk{Usage: &messages.Usage{PromptTokens: 3}})
			},
			"", messages.ErrorClass_stream_stall, ""},
		{"idle after some chunks", StreamDeadlines{FirstToken: time.Second, Idle: 100 * ms},
			func(ctx context.Context, ch chan<- Chunk) {
				send(ctx, ch, Chunk{Delta: "a"})
				pause(ctx, 90*ms)
				send(ctx, ch, Chunk{Delta: "b"})
			},
			"ab", messages.ErrorClass_stream_stall, "stream_stall: no chunk within the idle deadline of 100ms"},
		{"total", StreamDeadlines{Idle: 100 * ms, Total: 250 * ms},
			func(ctx context.Context, ch chan<- Chunk) {
				for send(ctx, ch, Chunk{Delta: "."}) && pause(ctx, 60*ms) {
				}
			},
			".....", messages.ErrorClass_timeout, "timeout: the stream took longer than its total deadline of 250ms"},
		{"complete within all three", StreamDeadlines{FirstToken: 100 * ms, Idle: 100 * ms, Total: time.Second},
			func(ctx context.Context, ch chan<- Chunk) {
				for _, w := range []string{"x", "y", "z"} {
					pause(ctx, 90*ms)
					send(ctx, ch, Chunk{Delta: w})
				}
				close(ch)
			},
			"xyz", messages.ErrorClass_ok, ""},
		{"all off", StreamDeadlines{},
			func(ctx context.Context, ch chan<- Chunk) {
				pause(ctx, time.Hour)
				send(ctx, ch, Chunk{Delta: "late"})
				close(ch)
			},
			"late", messages.ErrorClass_ok, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, f := script(t, tt.d, tt.feed)
				text, err := drain(s)
				assert.Equal(t, tt.wantText, text)
				if tt.want == messages.ErrorClass_ok {
					assert.ErrorIs(t, err, io.EOF)
				} else {
					assert.Equal(t, tt.want, classOf(t, err), "%v", err)
					if tt.message != "" {
						assert.EqualError(t, err, tt.message)
					}
					assert.Error(t, f.ctx.Err(), "a passed deadline cancels the upstream call")
					_, again := s.Recv()
					assert.Equal(t, err, again, "the end is sticky")
				}
				require.NoError(t, s.Close())
				assert.True(t, f.closed)
				synctest.Wait()
			})
		})
	}
}

// TestIdleIgnoresTheConsumer: the idle deadline runs only while Recv
// waits on the upstream.
func TestIdleIgnoresTheConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := script(t, StreamDeadlines{Idle: 100 * time.Millisecond}, func(ctx context.Context, ch chan<- Chunk) {
			send(ctx, ch, Chunk{Delta: "a"})
			send(ctx, ch, Chunk{Delta: "b"})
			close(ch)
		})
		defer s.Close()
		c, err := s.Recv()
		require.NoError(t, err)
		assert.Equal(t, "a", c.Delta)
		time.Sleep(time.Hour) // a slow consumer
		text, err := drain(s)
		assert.Equal(t, "b", text)
		assert.ErrorIs(t, err, io.EOF)
	})
}

func TestCompleteStaysComplete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := script(t, StreamDeadlines{Total: 100 * time.Millisecond}, func(ctx context.Context, ch chan<- Chunk) {
			send(ctx, ch, Chunk{Delta: "a"})
			close(ch)
		})
		defer s.Close()
		_, err := drain(s)
		assert.ErrorIs(t, err, io.EOF)
		time.Sleep(time.Second)
		_, err = s.Recv()
		assert.ErrorIs(t, err, io.EOF, "a deadline after the end changes nothing")
	})
}

func TestDeadlineWhileOpening(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tt := range []struct {
			d    StreamDeadlines
			want messages.ErrorClass
		}{
			{StreamDeadlines{FirstToken: time.Second}, messages.ErrorClass_stream_stall},
			{StreamDeadlines{Total: time.Second}, messages.ErrorClass_timeout},
		} {
			_, err := WithDeadlines(t.Context(), tt.d, func(ctx context.Context) (Stream, error) {
				<-ctx.Done() // an upstream that never sends its headers
				return nil, Classify(ctx.Err())
			})
			assert.Equal(t, tt.want, classOf(t, err), "%v", err)
		}
		openErr := Errorf(messages.ErrorClass_rate_limited, "429")
		_, err := WithDeadlines(t.Context(), StreamDeadlines{FirstToken: time.Second}, func(ctx context.Context) (Stream, error) {
			return nil, openErr
		})
		assert.Equal(t, openErr, err, "an open error is returned as it is")
	})
}

func TestCloseEndsRecv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := script(t, StreamDeadlines{FirstToken: time.Hour}, func(ctx context.Context, ch chan<- Chunk) {})
		got := make(chan error)
		go func() {
			_, err := s.Recv()
			got <- err
		}()
		synctest.Wait()
		require.NoError(t, s.Close())
		assert.Equal(t, messages.ErrorClass_cancelled, classOf(t, <-got))
		require.NoError(t, s.Close(), "Close twice")
	})
}

func TestCallerDeadlinePassesThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		s, err := WithDeadlines(ctx, StreamDeadlines{FirstToken: time.Hour}, func(ctx context.Context) (Stream, error) {
			return &fake{ctx: ctx, chunks: make(chan Chunk)}, nil
		})
		require.NoError(t, err)
		defer s.Close()
		_, err = s.Recv()
		assert.Equal(t, messages.ErrorClass_timeout, classOf(t, err), "the caller's own deadline is its timeout")
	})
}
