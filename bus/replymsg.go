package bus

import (
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/messages"
)

// The messages an ingress answers with are made from pooled parts: the
// body is encoded into a buffer taken from a pool, and the headers of a
// reply that is not an error are maps built once per encoding and type
// (nats.go's PublishMsg only reads a message's header, and copies header
// and body into the connection's buffer before it returns, so both may be
// reused as soon as it has returned; that is when a buffer goes back to
// its pool, never earlier).

// Types of the ingress's replies, for replyHeader.
const (
	responseType = iota // messages.InferResponse
	chunkType           // messages.InferChunk
)

// maxPooledBuffer is the capacity above which a reply's buffer is left to
// the garbage collector instead of going back to the pool, so that one
// long answer does not keep its memory for good.
const maxPooledBuffer = 64 << 10

// okHeaders are the headers of replies without error, by encoding and type.
var okHeaders = func() (h [2][2]nats.Header) {
	for _, enc := range []Encoding{Protobuf, JSON} {
		for kind, m := range []proto.Message{responseType: (*messages.InferResponse)(nil), chunkType: (*messages.InferChunk)(nil)} {
			h[enc][kind] = nats.Header{ContentTypeHeader: []string{enc.ContentType()}, TypeHeader: []string{TypeName(m)}}
		}
	}
	return h
}()

// replyHeader returns the headers of a reply of the given type in enc:
// Content-Type and the type, plus the micro error headers when e is set.
// Without e the map is shared and must not be changed.
func replyHeader(enc Encoding, kind int, e *messages.Error) nats.Header {
	ok := okHeaders[enc][kind]
	if e == nil {
		return ok
	}
	code, desc := errorHeaders(e)
	return nats.Header{ContentTypeHeader: ok[ContentTypeHeader], TypeHeader: ok[TypeHeader],
		micro.ErrorCodeHeader: []string{code}, micro.ErrorHeader: []string{desc}}
}

// queued is one reply on its way: the message, with its Data in buf, and,
// for the reply of a plain request, the request it answers (released once
// the reply is sent) and whether it is an error reply (for the counters).
type queued struct {
	msg    nats.Msg
	buf    []byte
	sink   *sink
	failed int64
}

var queuedPool = sync.Pool{New: func() any { return &queued{buf: make([]byte, 0, 512)} }}

func getQueued() *queued { return queuedPool.Get().(*queued) }

// putQueued returns q to the pool once its message has been published (or
// has failed to be): nothing may use q, its message or its buffer after.
func putQueued(q *queued) {
	buf := q.buf
	*q = queued{}
	if cap(buf) > maxPooledBuffer {
		return
	}
	q.buf = buf[:0]
	queuedPool.Put(q)
}

// publishReply publishes the reply q; when it cannot be sent, the counters
// that reply already advanced are set back and the failure logged.
func (in *Ingress) publishReply(q *queued) {
	if err := in.nc.PublishMsg(&q.msg); err != nil {
		in.replied.Add(-1)
		in.failed.Add(-q.failed)
		in.log.Warn().Err(err).Str("request_id", q.sink.requestID).Msg("infer reply not sent")
	}
}

// sendQueued publishes a reply from the outbox, releases its request and
// returns q to the pool.
func (in *Ingress) sendQueued(q *queued) {
	in.publishReply(q)
	in.release(q.sink)
	putQueued(q)
}
