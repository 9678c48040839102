package actors

import (
	"context"
	"errors"
	"io"
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

// streamOut is how a provider goroutine hands pieces to the caller. It is
// used by one goroutine at a time: the attempt's, then the router's.
type streamOut struct {
	emit      func(*messages.InferChunk)
	requestID string
	seq       uint32 // the last sequence number sent
}

// piece sends one piece of text.
func (s *streamOut) piece(model, delta string) {
	s.seq++
	s.emit(&messages.InferChunk{RequestId: s.requestID, Seq: s.seq, Delta: delta, ServedBy: model})
}

// streamCall runs one streamed attempt: the provider's own stream when it
// has one, under the model's stream deadlines, else a plain call sent as
// one piece. It returns the answer's usage, how many pieces it sent and
// the time to the first one.
func streamCall(ctx context.Context, p providers.Provider, req *messages.InferRequest, d providers.StreamDeadlines,
	out *streamOut, model string) (res *providers.Result, sent int, firstToken time.Duration, perr *providers.Error, panicked any) {
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
			return nil, 0, 0, providers.Classify(err), nil
		}
		if r.Content != "" {
			out.piece(model, r.Content)
			sent = 1
		}
		return r, sent, time.Since(began), nil, nil
	}
	s, err := providers.WithDeadlines(ctx, d, func(ctx context.Context) (providers.Stream, error) { return sp.Stream(ctx, req) })
	if err != nil {
		return nil, 0, 0, providers.Classify(err), nil
	}
	defer s.Close()
	res = &providers.Result{StatusCode: 200}
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return res, sent, firstToken, nil, nil
		}
		if err != nil {
			return nil, sent, firstToken, providers.Classify(err), nil
		}
		if c.Usage != nil {
			res.Usage = c.Usage
		}
		if c.Delta == "" {
			continue
		}
		if sent == 0 {
			firstToken = time.Since(began)
		}
		out.piece(model, c.Delta)
		sent++
	}
}
