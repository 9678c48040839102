package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/internal/sse"
)

// Stream POSTs payload for a streamed answer (Accept: text/event-stream)
// and returns the open stream. Errors before the event stream starts are
// returned here, classified as Answer's; a 2xx answer that is not an event
// stream is malformed unless it holds an error object (some servers answer
// an error that way). cut is the message of the stream_cut error for a
// body that ends cleanly before the backend saw the end of the answer.
func (e *Endpoint) Stream(ctx context.Context, payload any, cut string) (*Stream, *providers.Error) {
	ctx, cancel := context.WithCancel(ctx)
	resp, perr := e.post(ctx, payload, true)
	if perr != nil {
		cancel()
		return nil, perr
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		defer cancel()
		defer resp.Body.Close()
		return nil, notStream(resp, e.Secrets)
	}
	return &Stream{
		ctx:     ctx,
		cancel:  cancel,
		body:    resp.Body,
		events:  sse.NewReader(resp.Body, maxLine),
		secrets: e.Secrets,
		cut:     cut,
	}, nil
}

// notStream reads a 2xx answer to a stream request that is not an event
// stream: some servers answer an error that way.
func notStream(resp *http.Response, secrets []string) *providers.Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if e, ok := providers.ClassifyEvent(body, messages.ErrorClass_server_error); ok {
		e.StatusCode = resp.StatusCode
		return e.Redact(secrets...)
	}
	e := providers.Errorf(messages.ErrorClass_malformed, "expected an event stream, got Content-Type %q", resp.Header.Get("Content-Type"))
	e.StatusCode = resp.StatusCode
	return e
}

// Stream is the API-independent part of a streamed answer: the response
// body and its event reader, the call's cancel func, the sticky end of the
// stream and whether the answer ended complete. A backend's stream embeds
// it, defines Recv as Stream.Recv over its own event parser, and reads the
// events with Event; Close is Stream's.
//
// Like providers.Stream, it is used by one goroutine, and Close may be
// called from another.
type Stream struct {
	ctx     context.Context
	cancel  context.CancelFunc
	body    io.ReadCloser
	events  *sse.Reader
	secrets []string
	cut     string // the message of a clean end before the answer's end

	err error // the sticky end, owned by Recv

	complete  atomic.Bool // the answer ended complete: Close may drain the body
	closeOnce sync.Once
}

// Recv is providers.Stream's Recv over next, a backend's parser, which
// returns the next chunk, io.EOF at the end of a complete answer, or an
// error. The first error is sticky: every later Recv returns it without
// calling next again, but for an event that did not parse (Skippable),
// after which the stream may be read on. After io.EOF, Close drains the
// rest of the body.
func (s *Stream) Recv(next func() (providers.Chunk, error)) (providers.Chunk, error) {
	if s.err != nil {
		return providers.Chunk{}, s.err
	}
	c, err := next()
	if err != nil {
		if pe, ok := err.(*providers.Error); ok && pe.Skippable {
			return providers.Chunk{}, err
		}
		if err == io.EOF {
			s.complete.Store(true)
		}
		s.err = err
		return providers.Chunk{}, err
	}
	return c, nil
}

// Event returns the next event of the body. When the body ends, the error
// says why, classified: the caller's context (providers.Classify of its
// cause), an over-long line (malformed), a clean end (stream_cut, with the
// cut message given to Endpoint.Stream) or a break (stream_cut, "the stream
// broke off: ..."). A backend that already saw the end of its answer
// returns io.EOF instead.
func (s *Stream) Event() (sse.Event, error) {
	ev, err := s.events.Next()
	if err != nil {
		return sse.Event{}, s.ended(err)
	}
	return ev, nil
}

func (s *Stream) ended(err error) error {
	switch {
	case s.ctx.Err() != nil:
		return providers.Classify(context.Cause(s.ctx))
	case errors.Is(err, sse.ErrLineTooLong):
		return providers.Errorf(messages.ErrorClass_malformed, "stream event line longer than %d bytes", maxLine)
	case errors.Is(err, io.EOF):
		return &providers.Error{Class: messages.ErrorClass_stream_cut, Message: s.cut, Err: err}
	}
	e := providers.ClassifyTransport(err).Redact(s.secrets...)
	return &providers.Error{Class: messages.ErrorClass_stream_cut, Message: "the stream broke off: " + e.Message, Err: err}
}

// Unparsable is the error of an event whose data does not parse: malformed,
// and Skippable, since the events after it may.
func Unparsable(event string, err error) *providers.Error {
	e := providers.Errorf(messages.ErrorClass_malformed, "unparsable stream event %q: %v", event, err)
	e.Skippable = true
	return e
}

// ErrorEvent classifies the data of an error event
// (providers.ClassifyEvent, server_error when its type is unknown); data
// without a recognisable error object is malformed.
func (s *Stream) ErrorEvent(data []byte) error {
	if e, ok := providers.ClassifyEvent(data, messages.ErrorClass_server_error); ok {
		return e.Redact(s.secrets...)
	}
	return providers.Errorf(messages.ErrorClass_malformed, "error event without an error object")
}

// Drain bounds on Close after a complete answer: reading the rest of the
// body (the API's last event and the end of the chunked body) hands the
// connection back to the pool instead of closing it.
const (
	drainWithin = 100 * time.Millisecond
	maxDrain    = 64 << 10
)

// Close ends the upstream call; it is safe at any time and more than once,
// and ends a Recv in progress. After a complete answer it first reads what
// is left of the body, for at most 100 ms, so that the connection can be
// reused.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		if s.complete.Load() {
			t := time.AfterFunc(drainWithin, s.cancel)
			_, _ = io.Copy(io.Discard, io.LimitReader(s.body, maxDrain))
			t.Stop()
		}
		s.cancel()
		s.body.Close()
	})
	return nil
}
