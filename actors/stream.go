package actors

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// Streaming. A streamed request runs its candidates one at a time (the
// parallel and hedged strategies would interleave two answers), and the
// pieces go from the provider goroutine straight to the caller's emit, not
// through the actors. Before the first piece reaches the caller, a failure
// fails over as usual and the caller notices nothing; after it, the
// request ends with a final chunk whose outcome is incomplete, with the
// error's class: a truncated answer is never a success.

// streamOut is how a provider goroutine hands pieces to the caller. The
// router names the attempt that may send (own) before it launches one, and
// sends the final chunk (final) when the run ends. An attempt its model
// actor gave up on (a crash, a restart) may still be running when the
// router moves on; its pieces are then dropped, so two answers never
// interleave and nothing follows the final chunk.
//
// mu is the one lock in actors/: pieces go from provider goroutines straight
// to the caller, past the actors, by design (see above), so the hand-over
// between an attempt's goroutine and the router needs one.
type streamOut struct {
	emit      func(*messages.InferChunk)
	requestID string

	mu     sync.Mutex // guards seq, owner and closed, and serialises emit
	seq    uint32     // the last sequence number sent: the pieces that reached the caller
	owner  uint64     // the attempt whose pieces go out
	closed bool       // the final chunk went out
}

// own lets attempt send pieces, and no other.
func (s *streamOut) own(attempt uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owner = attempt
}

// piece sends one piece of text for attempt; it reports false, sending
// nothing, when attempt no longer owns the stream.
func (s *streamOut) piece(attempt uint64, model, delta string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.owner != attempt {
		return false
	}
	s.seq++
	s.emit(&messages.InferChunk{RequestId: s.requestID, Seq: s.seq, Delta: delta, ServedBy: model})
	return true
}

// sent is how many pieces reached the caller, from any attempt.
func (s *streamOut) sent() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// final sends the final chunk, numbered after the last piece; nothing is
// sent after it.
func (s *streamOut) final(c *messages.InferChunk) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	c.Seq = s.seq + 1
	s.emit(c)
}

// streamCall runs one streamed attempt: the provider's own stream when it
// has one, under the model's stream deadlines, else a plain call sent as
// one piece. It returns the answer's usage and the time to the first
// piece; the stream itself counts the pieces that went out.
func streamCall(ctx context.Context, p providers.Provider, req *messages.InferRequest, d providers.StreamDeadlines,
	out *streamOut, attempt uint64, model string) (res *providers.Result, firstToken time.Duration, perr *providers.Error, panicked any) {
	defer func() {
		if r := recover(); r != nil {
			perr, panicked = nil, r
		}
	}()
	began := time.Now()
	sp, ok := p.(providers.Streamer)
	if !ok {
		r, err := p.Complete(ctx, req)
		if err != nil {
			return nil, 0, providers.Classify(err), nil
		}
		if r.Content != "" {
			out.piece(attempt, model, r.Content) // dropped when the attempt was handed on: the router no longer waits for it
		}
		return r, time.Since(began), nil, nil
	}
	s, err := providers.WithDeadlines(ctx, d, func(ctx context.Context) (providers.Stream, error) { return sp.Stream(ctx, req) })
	if err != nil {
		return nil, 0, providers.Classify(err), nil
	}
	defer s.Close()
	res = &providers.Result{StatusCode: 200}
	first := true
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return res, firstToken, nil, nil
		}
		if err != nil {
			return nil, firstToken, providers.Classify(err), nil
		}
		if c.Usage != nil {
			res.Usage = c.Usage
		}
		if c.Delta == "" {
			continue
		}
		if first {
			first, firstToken = false, time.Since(began)
		}
		if !out.piece(attempt, model, c.Delta) {
			return nil, firstToken, providers.Errorf(messages.ErrorClass_cancelled, "%s: the stream was handed on", model), nil
		}
	}
}
