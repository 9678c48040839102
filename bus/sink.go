package bus

import (
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/messages"
)

// sink is the messages.Sink of one dispatched request: the one place the
// rules of a NATS reply are kept, for a plain request and a stream alike.
//
//   - Every message carries Content-Type and its type (TypeHeader).
//   - A plain request gets exactly one InferResponse, its Final's; request_id
//     and node are filled in when empty, and an error reply carries the micro
//     error headers (Nats-Service-Error-Code, the class's Status, and
//     Nats-Service-Error, "<class>: <message>").
//   - A stream gets an InferChunk per piece, numbered from 1, then exactly
//     one final chunk, built from Final's response: outcome complete, or
//     incomplete with the error that cut the answer, whose error headers are
//     those of an error reply; served_by, usage, attempts and replayed; as
//     delta, the response's Content, text not sent as a piece (normally
//     none; a replayed answer's whole text).
//   - A chunk that does not encode (a delta that is not valid UTF-8, say)
//     ends the stream there with a final chunk {incomplete, server_error,
//     "unencodable_chunk"}: a cut answer is never passed off as whole.
//   - Whatever comes after the final reply is dropped: a piece of an attempt
//     being cancelled as the request ended (logged at debug), a second Final
//     (a Dispatcher bug, logged as an error), or anything after Stop gave up
//     on the request and sent node_stopping itself (dropped quietly).
//
// Order: one node publishes all of a stream's chunks on one connection to
// one subject, never two at once (mu is held across each publish, and
// Stop's final reply is sent only after it claimed the request under mu),
// and NATS keeps the order of one publisher's messages to one subscriber.
type sink struct {
	in        *Ingress
	subject   string
	enc       Encoding
	requestID string
	stream    bool

	mu        sync.Mutex  // guards seq and abandoned, serialises publishing, and is taken before ended changes
	seq       uint32      // of the last chunk sent
	ended     atomic.Bool // the final reply went out, or Stop claimed it (read without mu by stats)
	abandoned bool        // Stop claimed the final reply
}

var _ messages.Sink = (*sink)(nil)

// Piece publishes one piece of a streamed answer.
func (s *sink) Piece(model, text string) {
	s.mu.Lock()
	if s.ended.Load() || !s.stream {
		s.mu.Unlock()
		s.dropped("piece")
		return
	}
	s.seq++
	final := s.publishChunk(&messages.InferChunk{RequestId: s.requestID, Seq: s.seq, Delta: text, ServedBy: model})
	if final {
		s.ended.Store(true)
	}
	s.mu.Unlock()
	if final {
		s.in.release(s)
	}
}

// Final publishes the reply, or a stream's final chunk, once.
func (s *sink) Final(resp *messages.InferResponse) {
	s.mu.Lock()
	if s.ended.Load() {
		s.mu.Unlock()
		s.dropped("final reply")
		return
	}
	s.ended.Store(true)
	if resp == nil {
		resp = &messages.InferResponse{Error: messages.Failure(messages.ErrorClass_server_error, "no_reply",
			"the request was served without a reply")}
	}
	if !s.stream && s.in.busy.Load() > 1 {
		// Other requests are in flight, so other replies are coming: the
		// outbox sends this one with them and then releases the request.
		// Queued under mu, so that once Stop has claimed what it could,
		// every other ended request is released or in the outbox.
		s.in.out.put(s.reply(resp))
		s.mu.Unlock()
		return
	}
	s.publish(resp)
	s.mu.Unlock()
	s.in.release(s)
}

// publish sends resp as the final reply: the InferResponse of a plain
// request, a stream's final chunk. The caller holds mu, or owns the
// request (Stop claimed it, or it was never dispatched).
func (s *sink) publish(resp *messages.InferResponse) {
	if s.stream {
		s.seq++
		s.publishChunk(endChunk(s.seq, resp))
		return
	}
	s.send(resp)
}

// dropped logs what came after the final reply: a Dispatcher bug when it
// is a second final, a lost race when it is a piece, nothing to report
// when Stop had given up.
func (s *sink) dropped(what string) {
	s.mu.Lock()
	abandoned := s.abandoned
	s.mu.Unlock()
	log := s.in.log
	switch {
	case abandoned:
		log.Debug().Str("request_id", s.requestID).Str("what", what).Msg("infer reply after stop dropped")
	case what == "piece" && !s.stream:
		log.Error().Str("request_id", s.requestID).Msg("dispatcher sent a piece for a plain request; dropped")
	case what == "piece":
		log.Debug().Str("request_id", s.requestID).Msg("infer piece after the final chunk dropped")
	default:
		log.Error().Str("request_id", s.requestID).Msg("dispatcher sent a second final reply; dropped")
	}
}

// abandon claims the final reply for Stop; it returns false when the
// request has already ended. Stop then sends stopped.
func (s *sink) abandon() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended.Load() {
		return false
	}
	s.ended.Store(true)
	s.abandoned = true
	return true
}

// stopped sends the node_stopping reply of a request Stop gave up on, after
// abandon claimed it: no one else publishes for it any more.
func (s *sink) stopped() { s.publish(&messages.InferResponse{Error: nodeStopping()}) }

// endChunk is a stream's final chunk, number seq, saying what resp says.
func endChunk(seq uint32, resp *messages.InferResponse) *messages.InferChunk {
	ch := &messages.InferChunk{RequestId: resp.GetRequestId(), Seq: seq, Final: true, Outcome: messages.InferChunk_complete,
		Delta: resp.GetContent(), ServedBy: resp.GetServedBy(), Usage: resp.GetUsage(), Attempts: resp.GetAttempts(), Error: resp.GetError(),
		Replayed: resp.GetReplayed(), Continuation: resp.GetContinuation()}
	if ch.Error != nil {
		ch.Outcome = messages.InferChunk_incomplete
	}
	return ch
}

// publishChunk publishes ch to the reply subject in the request's
// encoding, with the error headers on an incomplete final chunk. It
// reports whether the chunk it sent ended the stream: ch was final, or did
// not encode and was replaced by a final error chunk. The caller holds
// mu, or owns the request because Stop claimed it.
func (s *sink) publishChunk(ch *messages.InferChunk) (final bool) {
	in := s.in
	if ch.RequestId == "" {
		ch.RequestId = s.requestID
	}
	q := getQueued()
	defer putQueued(q)
	body, err := appendEncode(s.enc, q.buf[:0], ch)
	if err != nil {
		in.log.Error().Err(err).Str("request_id", s.requestID).Uint32("seq", ch.Seq).Msg("infer chunk not encoded; stream ended")
		ch = &messages.InferChunk{RequestId: s.requestID, Seq: ch.Seq, Final: true, Outcome: messages.InferChunk_incomplete,
			Error: messages.Failure(messages.ErrorClass_server_error, "unencodable_chunk", "%v", err)}
		body, _ = appendEncode(s.enc, q.buf[:0], ch) // a chunk of plain strings always encodes
	}
	q.buf = body
	failed := ch.Final && ch.Outcome == messages.InferChunk_incomplete
	var e *messages.Error
	if failed {
		e = ch.GetError()
	}
	q.msg = nats.Msg{Subject: s.subject, Header: replyHeader(s.enc, chunkType, e), Data: body}
	if err := in.nc.PublishMsg(&q.msg); err != nil {
		in.log.Warn().Err(err).Str("request_id", s.requestID).Uint32("seq", ch.Seq).Msg("infer chunk not sent")
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

// send publishes resp to the reply subject at once: the reply of a plain
// request that nothing else is waiting with, or one sent by Stop or after
// a failed forward.
func (s *sink) send(resp *messages.InferResponse) {
	q := s.reply(resp)
	s.in.publishReply(q)
	putQueued(q)
}

// reply makes the message that answers resp, counted as sent: the body in
// the request's encoding (in a pooled buffer), the Content-Type and type
// headers and, for an error reply, the micro error headers. request_id and
// node are filled in when empty. A reply that does not encode is replaced
// by an unencodable_reply error.
func (s *sink) reply(resp *messages.InferResponse) *queued {
	in := s.in
	if resp.RequestId == "" {
		resp.RequestId = s.requestID
	}
	if resp.Node == "" {
		resp.Node = in.node
	}
	q := getQueued()
	body, err := appendEncode(s.enc, q.buf[:0], resp)
	if err != nil {
		in.log.Error().Err(err).Str("request_id", s.requestID).Msg("infer reply not encoded")
		resp = &messages.InferResponse{RequestId: s.requestID, Node: in.node,
			Error: messages.Failure(messages.ErrorClass_server_error, "unencodable_reply", "%v", err)}
		body, _ = appendEncode(s.enc, q.buf[:0], resp) // a reply of plain strings always encodes
	}
	q.buf = body
	q.msg = nats.Msg{Subject: s.subject, Header: replyHeader(s.enc, responseType, resp.GetError()), Data: body}
	q.sink = s
	if resp.GetError() != nil {
		q.failed = 1
	}
	// Counted before the reply goes out, so that a client holding its reply
	// never reads stats that miss it.
	in.replied.Add(1)
	in.failed.Add(q.failed)
	return q
}
