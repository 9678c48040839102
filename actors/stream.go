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
// route machine never races two streams, which would interleave their
// answers). The provider goroutine sends each piece to its model actor,
// which passes it to the caller's sink while the attempt is still its own
// and counts it; the attempt's result then tells the router whether text
// reached the caller. So the order is causal, with no lock: every piece of
// an attempt reaches the sink before its result reaches the router, and a
// later attempt starts only after that. An attempt its actor has let go
// (cancelled, abandoned at a crash or restart) may still be running; its
// pieces reach an actor that no longer knows it and are dropped. Numbering
// and the one final chunk are the sink's (messages.Sink).

// streamCall runs one streamed attempt: the provider's own stream when it
// has one, under the model's stream deadlines, else a plain call sent as
// one piece. send hands a piece to the model actor. It returns the
// answer's usage and the time to the first piece.
func streamCall(ctx context.Context, p providers.Provider, req *messages.InferRequest, d providers.StreamDeadlines,
	send func(text string)) (res *providers.Result, firstToken time.Duration, perr *providers.Error, panicked any) {
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
			send(r.Content)
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
		send(c.Delta)
	}
}

// piece passes a piece of a streamed answer to the caller's sink, if its
// attempt is still this actor's: a piece of one it has let go is dropped.
func (m *model) piece(p *piece) {
	r, ok := m.inFlight[p.id]
	if !ok {
		return
	}
	r.sent++
	r.call.sink.Piece(m.spec.Name, p.text)
}
