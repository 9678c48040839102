package actors

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"
	"unicode"

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
//
// The model actor keeps the text of each attempt's pieces and returns it
// with the result; the router adds it to the request's, so that when the
// route machine continues a cut stream on another model (route/continue.go)
// the launch carries the text sent so far, as a prefill or an instruction
// (providers.Continuation).

// streamCall runs one streamed attempt: the provider's own stream when it
// has one, under the model's stream deadlines, else a plain call sent as
// one piece. send hands a piece to the model actor. It returns the
// answer's usage, the time to the first piece and the unparsable events
// skipped.
//
// With skip, an event that does not parse (a Skippable malformed error) is
// skipped when the stream reads on past it: one such event alone, between
// events that parse, costs the caller nothing, where failing the stream
// would cost a continuation on another model, or the answer. Two in a row
// mean the stream cannot be read on: the attempt fails malformed. Without
// skip, the first fails it.
func streamCall(ctx context.Context, p providers.Provider, req *messages.InferRequest, d providers.StreamDeadlines, skip bool,
	send func(text string)) (res *providers.Result, firstToken time.Duration, skipped int32, perr *providers.Error, panicked any) {
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
			send(r.Content)
		}
		return r, time.Since(began), 0, nil, nil
	}
	s, err := providers.WithDeadlines(ctx, d, func(ctx context.Context) (providers.Stream, error) { return sp.Stream(ctx, req) })
	if err != nil {
		return nil, 0, 0, providers.Classify(err), nil
	}
	defer s.Close()
	res = &providers.Result{StatusCode: 200}
	first, bad := true, false // bad: the last event did not parse
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return res, firstToken, skipped, nil, nil
		}
		if err != nil {
			pe := providers.Classify(err)
			if skip && pe.Skippable && !bad {
				bad = true
				skipped++
				continue
			}
			return nil, firstToken, skipped, pe, nil
		}
		bad = false
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
//
// The pieces of a continuation whose text so far ends with white space
// lose the white space they begin with (the prefill it was given had its
// trimmed, and models begin the rest with it), so the spliced answer has
// it once.
func (m *model) piece(p *piece) {
	r, ok := m.inFlight[p.id]
	if !ok {
		return
	}
	text := p.text
	if r.trimLead {
		text = strings.TrimLeftFunc(text, unicode.IsSpace)
		if text == "" {
			return
		}
		r.trimLead = false
	}
	r.text.WriteString(text)
	r.call.sink.Piece(m.spec.Name, text)
}
