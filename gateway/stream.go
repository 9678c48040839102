package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cmmv-hive/resilience/messages"
)

// Streaming. Pieces become OpenAI's chat.completion.chunk events over SSE,
// each flushed as it comes. The 200 and its headers wait for the first
// piece of text (or the final reply), so that a request that fails before
// any text gets a plain HTTP error instead of a 200 stream. After text went
// out, a failure cannot change the status any more, so an incomplete
// answer ends with an error event and without "data: [DONE]":
//
//	data: {"error":{"message":"...","type":"stream_cut","code":"stream_incomplete","param":null}}
//
// OpenAI's SDKs raise on an event whose data has an "error" key, and a
// client reading the raw stream notices that [DONE] never came. A
// truncated answer never looks like a complete one.
//
// X-Hive-Served-By goes with the 200 when a piece has named the model by
// then (else it is a trailer); X-Hive-Attempts and X-Hive-Continuation,
// known only at the end, are HTTP trailers (headers when the answer
// arrives whole, which then goes out as one body with a Content-Length).
// Each event's model is the serving
// model once known, the requested one before. A stream has no
// X-Hive-Degradation: its 200 goes out before the level is known.

// chunk is OpenAI's chat.completion.chunk object.
type chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// sse writes one answer's events. The handler's goroutine waits for the
// first piece of text (or the final reply) and decides the status; the
// events then go out from fasthttp's goroutine for the connection, through
// sseBody.WriteTo, each event one chunk and one flush.
type sse struct {
	rc       *fasthttp.RequestCtx
	conn     net.Conn
	out      io.Writer // the chunked body, once streaming
	whole    []byte    // the events of an answer that arrived whole
	c        *call
	created  int64
	servedBy string // the last model a chunk named
	started  bool   // the 200 went out
	role     bool   // the assistant role went out
	failed   bool   // a write failed: the client is gone
	trailer  bool   // trailers were announced
	buf      []byte // the event being written
}

// stream serves a streamed request with ctx, whose cancel it owns. The
// logged status is 499 when the client went away first.
func (g *gateway) stream(rc *fasthttp.RequestCtx, ctx context.Context, cancel context.CancelFunc, c *call) {
	a := newInbox()
	g.dispatcher.Dispatch(ctx, c.req, a)
	w := watch(rc.Conn(), cancel)
	s := &sse{rc: rc, conn: rc.Conn(), c: c, created: now()}
	done := func(status int) {
		w.stop()
		cancel()
		a.close()
		g.logged(c, s.servedBy, status)
	}
	for {
		select {
		case <-a.ready:
		case <-ctx.Done():
			rc.SetConnectionClose()
			done(messages.ErrorClass_cancelled.Status())
			return
		}
		parts, final, ended := a.take()
		for i, p := range parts {
			if p.model != "" {
				s.servedBy = p.model
			}
			if p.text != "" { // the 200 goes out, and the events follow
				s.start(nil)
				rc.Response.SetBodyStream(&sseBody{s: s, a: a, ctx: ctx, pending: parts[i:], done: done}, -1)
				return
			}
		}
		if ended { // the answer arrived whole, or failed before any text
			status := s.end(final)
			if s.whole != nil {
				rc.SetBody(s.whole)
			}
			done(status)
			return
		}
	}
}

// sseBody is a streamed answer's body: fasthttp calls WriteTo with the
// chunked writer once the header is written, then Close.
type sseBody struct {
	s       *sse
	a       *inbox
	ctx     context.Context
	pending []part
	done    func(status int)
	status  int
	closed  bool
}

// SupportsBodyWriteTo tells fasthttp to call WriteTo (fasthttp.BodyWriterTo).
func (b *sseBody) SupportsBodyWriteTo() bool { return true }

// Read is never called: fasthttp uses WriteTo.
func (b *sseBody) Read([]byte) (int, error) { return 0, errNoRead }

var errNoRead = errors.New("gateway: the event stream is written with WriteTo")

// WriteTo writes the events as they come, until the end of the answer,
// the client's going away or a failed write.
func (b *sseBody) WriteTo(w io.Writer) (int64, error) {
	s := b.s
	s.out = w
	b.status = http.StatusOK
	for _, p := range b.pending {
		if s.part(p); s.failed {
			return 0, errClientGone
		}
	}
	b.pending = nil
	for {
		// Take first: the handler's last take may have seen the end too.
		parts, final, ended := b.a.take()
		for _, p := range parts {
			if s.part(p); s.failed {
				return 0, errClientGone
			}
		}
		if ended {
			b.status = s.end(final)
			if s.failed {
				return 0, errClientGone
			}
			return 0, nil
		}
		select {
		case <-b.a.ready:
		case <-b.ctx.Done():
			b.status = messages.ErrorClass_cancelled.Status()
			return 0, errClientGone
		}
	}
}

var errClientGone = errors.New("gateway: the client went away")

// Close ends the dispatch and logs the answer; fasthttp calls it once the
// body is written or abandoned.
func (b *sseBody) Close() error {
	if !b.closed {
		b.closed = true
		if b.status == 0 {
			b.status = messages.ErrorClass_cancelled.Status()
		}
		b.done(b.status)
	}
	return nil
}

// part writes one piece of text; an empty one only names the model.
func (s *sse) part(p part) {
	if p.model != "" {
		s.servedBy = p.model
	}
	if p.text == "" {
		return
	}
	s.start(nil)
	s.text(p.text)
}

// end writes the end of the answer, from the final reply, and returns the
// status the client got.
func (s *sse) end(final *messages.InferResponse) int {
	if final.GetServedBy() != "" {
		s.servedBy = final.GetServedBy()
	}
	if final.GetError() != nil || final == nil {
		return s.incomplete(final)
	}
	s.start(final)
	if final.GetContent() != "" || !s.role {
		s.text(final.GetContent())
	}
	stop := "stop"
	s.chunkEvent(s.chunk(chunkChoice{FinishReason: &stop}))
	if s.c.includeUsage {
		u := s.chunk()
		u.Usage = toUsage(final.GetUsage())
		s.chunkEvent(u)
	}
	s.trailers(final)
	s.data([]byte("[DONE]"))
	return http.StatusOK
}

// incomplete ends an answer that failed (or that no reply ended): with an
// HTTP error when no text went out, else with an error event and no
// [DONE].
func (s *sse) incomplete(final *messages.InferResponse) int {
	e := final.GetError()
	if e == nil { // no reply at all: the answer was cut
		e = messages.Failure(messages.ErrorClass_stream_cut, "stream_incomplete", "the answer ended before it was complete")
	}
	if !s.started {
		h := &s.rc.Response.Header
		if s.servedBy != "" {
			h.Set(headerServedBy, s.servedBy)
		}
		setAttempts(h, final.GetAttempts())
		setContinuation(h, final)
		status := errorStatus(e)
		fastError(s.rc, status, e, "")
		return status
	}
	if final.GetContent() != "" {
		s.text(final.GetContent())
	}
	body := toErrorBody(&messages.Error{Class: e.GetClass(), Code: "stream_incomplete", Message: e.GetMessage()}, "")
	s.trailers(final)
	s.event(body)
	return http.StatusOK
}

// start sets the 200 and the headers, once. final is the final reply when
// the answer arrived whole, so that every header is known and the events
// go out as one body; else X-Hive-Attempts, and X-Hive-Served-By when no
// piece named the model yet, are announced as trailers.
func (s *sse) start(final *messages.InferResponse) {
	if s.started {
		return
	}
	s.started = true
	h := &s.rc.Response.Header
	h.SetContentType("text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold events back
	if s.servedBy != "" {
		h.Set(headerServedBy, s.servedBy)
	} else if final == nil {
		_ = h.AddTrailer(headerServedBy)
		s.trailer = true
	}
	if final != nil {
		setAttempts(h, final.GetAttempts())
		setContinuation(h, final)
		s.whole = []byte{}
	} else {
		_ = h.AddTrailer(headerAttempts)
		_ = h.AddTrailer(headerContinuation)
		s.trailer = true
	}
	s.rc.SetStatusCode(http.StatusOK)
}

// trailers sets what the headers could not say yet; fasthttp sends them
// after the last chunk.
func (s *sse) trailers(final *messages.InferResponse) {
	if !s.trailer {
		return
	}
	h := &s.rc.Response.Header
	if len(h.Peek(headerServedBy)) == 0 && s.servedBy != "" {
		h.Set(headerServedBy, s.servedBy)
	}
	if v := attemptsValue(final.GetAttempts()); v != "" {
		h.Set(headerAttempts, v)
	}
	setContinuation(h, final)
}

// text sends a piece of the answer, with the assistant role on the first.
func (s *sse) text(t string) {
	d := delta{Content: &t}
	if !s.role {
		d.Role, s.role = "assistant", true
	}
	s.chunkEvent(s.chunk(chunkChoice{Delta: d}))
}

// chunk builds an event; no choice makes the usage chunk's empty choices.
func (s *sse) chunk(choices ...chunkChoice) chunk {
	model := s.servedBy
	if model == "" {
		model = s.c.req.GetModel()
	}
	if choices == nil {
		choices = []chunkChoice{}
	}
	return chunk{ID: completionID(s.c), Object: "chat.completion.chunk", Created: s.created, Model: model, Choices: choices}
}

// chunkEvent writes a chunk, encoded by hand (encode.go).
func (s *sse) chunkEvent(c chunk) {
	if s.failed {
		return
	}
	s.buf = append(appendChunk(append(s.buf[:0], "data: "...), &c), "\n\n"...)
	s.write()
}

func (s *sse) event(v any) {
	b, err := json.Marshal(v)
	if err != nil { // our own types always marshal
		panic(err)
	}
	s.data(b)
}

// data writes one SSE event: into the body of an answer that arrived
// whole, else as one chunk, flushed. JSON escapes newlines, so one data
// line always holds the whole event.
func (s *sse) data(b []byte) {
	if s.failed {
		return
	}
	s.buf = append(append(append(s.buf[:0], "data: "...), b...), "\n\n"...)
	s.write()
}

// write sends the event in s.buf.
func (s *sse) write() {
	if s.whole != nil {
		s.whole = append(s.whole, s.buf...)
		return
	}
	// Each event gets WriteTimeout to leave: a client that stopped reading
	// is dropped, and the dispatch cancelled, instead of held forever.
	_ = s.conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if _, err := s.out.Write(s.buf); err != nil {
		s.failed = true
	}
}
