package bus

import (
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cmmv-hive/resilience/messages"
)

// Streaming over NATS: the rules the Ingress doc promises, in detail.
//
//   - request_id is filled in when empty, and seq too, counting from 1;
//   - the final chunk comes last and exactly once. A final chunk with
//     outcome pending gets incomplete when it carries an error and complete
//     otherwise; one with outcome incomplete and no error gets
//     {server_error, "incomplete_without_error"}, so that an incomplete
//     stream always says why;
//   - the error headers of an incomplete final chunk are those of an error
//     reply: Nats-Service-Error-Code is the class's Status,
//     Nats-Service-Error "<class>: <message>";
//   - a chunk that does not encode (a delta that is not valid UTF-8, say)
//     ends the stream there with a final chunk {incomplete, server_error,
//     "unencodable_chunk"}: a cut answer is never passed off as whole;
//   - emits after the final chunk are dropped and logged (a Dispatcher bug),
//     emits after Stop gave up on the stream are dropped quietly.
//
// Order: one node publishes all of a stream's chunks on one connection to
// one subject, never two at once (stream.mu is held across the publish,
// and Stop's final chunk is sent only after it claimed the stream under
// that lock), and NATS keeps the order of one publisher's messages to one
// subscriber.

// stream is the state of one streamed request. Its chunks are published
// with mu held, so that they leave in emit order and none follows the final
// chunk, even when Stop gives up on the stream at the same moment.
type stream struct {
	mu        sync.Mutex // guards seq, ended and abandoned
	seq       uint32     // seq of the last chunk sent, or of Stop's final chunk
	ended     bool       // the final chunk is sent, or Stop claimed it
	abandoned bool       // Stop claimed the final chunk
}

// abandon claims the final chunk for Stop; it returns false when the stream
// has already ended. Stop then sends stopChunk.
func (s *stream) abandon() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.ended, s.abandoned = true, true
	s.seq++
	return true
}

// stopChunk is the final chunk of a stream Stop gave up on.
func (s *stream) stopChunk() *messages.InferChunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &messages.InferChunk{Seq: s.seq, Final: true, Outcome: messages.InferChunk_incomplete, Error: nodeStopping()}
}

// emit is the emit function a Dispatcher calls for c: it publishes ch unless
// the stream has ended, and releases c after the final chunk.
func (in *Ingress) emit(c *call, ch *messages.InferChunk) {
	if ch == nil {
		in.log.Error().Str("request_id", c.requestID).Msg("dispatcher emitted a nil chunk; dropped")
		return
	}
	s := c.stream
	s.mu.Lock()
	if s.ended {
		abandoned := s.abandoned
		s.mu.Unlock()
		if abandoned {
			in.log.Debug().Str("request_id", c.requestID).Msg("infer chunk after stop dropped")
		} else {
			in.log.Error().Str("request_id", c.requestID).Msg("dispatcher emitted after the final chunk; dropped")
		}
		return
	}
	if ch.Seq == 0 {
		ch.Seq = s.seq + 1
	}
	s.seq = ch.Seq
	s.ended = in.publishChunk(c, ch)
	ended := s.ended
	s.mu.Unlock()
	if ended {
		in.release(c)
	}
}

// publishChunk completes ch (request_id; outcome and error of a final
// chunk) and publishes it to c's reply subject in c's encoding, with the
// error headers on an incomplete final chunk. It reports whether the chunk
// it sent ended the stream: ch was final, or did not encode and was replaced
// by a final error chunk. The caller holds c.stream.mu, or owns the stream
// because Stop claimed it.
func (in *Ingress) publishChunk(c *call, ch *messages.InferChunk) (final bool) {
	if ch.RequestId == "" {
		ch.RequestId = c.requestID
	}
	if ch.Final {
		completeFinal(ch)
	}
	body, err := Encode(c.enc, ch)
	if err != nil {
		in.log.Error().Err(err).Str("request_id", c.requestID).Uint32("seq", ch.Seq).Msg("infer chunk not encoded; stream ended")
		ch = &messages.InferChunk{RequestId: c.requestID, Seq: ch.Seq, Final: true, Outcome: messages.InferChunk_incomplete,
			Error: messages.Failure(messages.ErrorClass_server_error, "unencodable_chunk", "%v", err)}
		body, _ = Encode(c.enc, ch) // a chunk of plain strings always encodes
	}
	failed := ch.Final && ch.Outcome == messages.InferChunk_incomplete
	h := nats.Header{ContentTypeHeader: []string{c.enc.ContentType()}, TypeHeader: []string{TypeName(ch)}}
	if failed {
		code, desc := errorHeaders(ch.GetError())
		h[micro.ErrorCodeHeader] = []string{code}
		h[micro.ErrorHeader] = []string{desc}
	}
	if err := in.nc.PublishMsg(&nats.Msg{Subject: c.reply, Header: h, Data: body}); err != nil {
		in.log.Warn().Err(err).Str("request_id", c.requestID).Uint32("seq", ch.Seq).Msg("infer chunk not sent")
		return ch.Final
	}
	in.chunks.Add(1)
	if ch.Final {
		in.replied.Add(1)
		if failed {
			in.failed.Add(1)
		}
	}
	return ch.Final
}

// completeFinal gives a final chunk an outcome, and an incomplete one an
// error, when the Dispatcher left them out.
func completeFinal(ch *messages.InferChunk) {
	if ch.Outcome == messages.InferChunk_pending {
		ch.Outcome = messages.InferChunk_complete
		if ch.Error != nil {
			ch.Outcome = messages.InferChunk_incomplete
		}
	}
	if ch.Outcome == messages.InferChunk_incomplete && ch.Error == nil {
		ch.Error = messages.Failure(messages.ErrorClass_server_error, "incomplete_without_error",
			"the stream ended incomplete without an error")
	}
}
