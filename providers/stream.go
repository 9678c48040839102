package providers

import (
	"context"

	"github.com/cmmv-hive/resilience/messages"
)

// Streamer is a Provider that can also answer in pieces.
type Streamer interface {
	Provider
	// Stream starts a streamed answer. An error before the stream opens
	// (refused, 429, 401 ...) is returned here, classified like Complete's.
	Stream(ctx context.Context, req *messages.InferRequest) (Stream, error)
}

// Stream is an answer arriving in pieces. It is used by one goroutine.
type Stream interface {
	// Recv returns the next piece. After the last piece of a complete
	// answer (the upstream's terminal event was seen) it returns io.EOF.
	// A stream that fails returns an *Error: stream_cut when the upstream
	// ended without its terminal event, stream_stall when a deadline
	// between pieces passed, malformed for an unparsable event, timeout,
	// cancelled, and so on. A malformed error marked Skippable is one event
	// that did not parse in a stream that can be read on: Recv may be
	// called again. Every other error is the end of the stream.
	Recv() (Chunk, error)
	// Close releases the stream; it is safe to call at any time and more
	// than once, and ends a Recv in progress.
	Close() error
}

// Chunk is one piece of a streamed answer.
type Chunk struct {
	Delta string
	// Usage is set on the piece that carries the upstream's token counts,
	// usually the last one.
	Usage *messages.Usage
}
