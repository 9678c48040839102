package messages

// Sink is where one request's reply goes: the NATS or HTTP caller that
// sent it. The request path calls Piece zero or more times, a piece of a
// streamed answer's text each (a plain request has none), then Final once
// with the reply. The sink owns what the caller sees: a stream's chunks
// are numbered from 1, the final one last; exactly one Final reaches the
// caller, and whatever comes after it is dropped.
//
// Piece and Final never block, and may be called from any goroutine: the
// request path sends the pieces of the attempt that owns the stream and
// calls Final when the request ends, in that order, but a piece of an
// attempt being cancelled may race the Final; the sink keeps the order in
// which the calls reach it.
//
// Final's response is the whole reply of a plain request. For a streamed
// one it is everything the final chunk says (served_by, usage, attempts,
// the error that cut the answer); its Content, normally empty, is text not
// sent as a piece, which the sink sends last.
type Sink interface {
	Piece(model, text string)
	Final(resp *InferResponse)
}
