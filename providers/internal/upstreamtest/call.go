package upstreamtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// APIKey is the key every test model sends; no error may contain it.
const APIKey = "hive-test-key-3f9c2a7d1e"

// Hello is a request of a system and a user message.
var Hello = &messages.InferRequest{Messages: []*messages.ChatMessage{
	{Role: "system", Content: "be brief"},
	{Role: "user", Content: "hello there"},
}}

// Bounded is a context for one call that cannot hang the test (10 s).
func Bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Class returns err's class, failing the test when err is not a
// *providers.Error or when APIKey appears anywhere in its chain.
func Class(t *testing.T, err error) messages.ErrorClass {
	t.Helper()
	require.Error(t, err)
	var pe *providers.Error
	require.True(t, errors.As(err, &pe), "error %v (%T) is not a *providers.Error", err, err)
	noKey(t, err)
	return pe.Class
}

func noKey(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			if strings.Contains(s, APIKey) {
				t.Fatalf("the API key leaked into an error: %s", s)
			}
		}
	}
}

// Open opens a stream of Hello on m within Bounded, failing the test when
// it does not open; the stream is closed at the test's cleanup.
func Open(t *testing.T, m providers.Streamer) providers.Stream {
	t.Helper()
	s, err := m.Stream(Bounded(t), Hello)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// Collect reads a stream to its end and returns the text, the usage and
// the final error (io.EOF for a complete answer).
func Collect(s providers.Stream) (string, *messages.Usage, error) {
	var text strings.Builder
	var usage *messages.Usage
	for {
		c, err := s.Recv()
		if err != nil {
			return text.String(), usage, err
		}
		text.WriteString(c.Delta)
		if c.Usage != nil {
			usage = c.Usage
		}
	}
}
