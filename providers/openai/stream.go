package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/internal/sse"
)

// Stream asks for a streamed answer (stream: true, with usage). Errors
// before the first byte of the stream (refused, 429, 401 ...) are returned
// here, classified as Complete's; a 2xx answer that is not an event stream
// is malformed unless it holds an error object.
func (m *Model) Stream(ctx context.Context, req *messages.InferRequest) (providers.Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	resp, perr := m.post(ctx, req, true)
	if perr != nil {
		cancel()
		return nil, perr
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		defer cancel()
		defer resp.Body.Close()
		return nil, notStream(resp, m.secrets)
	}
	return &stream{
		ctx:     ctx,
		cancel:  cancel,
		body:    resp.Body,
		events:  sse.NewReader(resp.Body, maxLine),
		secrets: m.secrets,
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

type stream struct {
	ctx     context.Context
	cancel  context.CancelFunc
	body    io.ReadCloser
	events  *sse.Reader
	secrets []string

	// Owned by Recv.
	finished bool            // a finish_reason was seen: the answer is complete
	usage    bool            // the usage chunk was seen
	refusal  strings.Builder // refusal deltas, reported at the finish
	err      error           // the sticky end

	complete  atomic.Bool // the answer ended complete: Close may drain the body
	closeOnce sync.Once
}

type chunkJSON struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content string `json:"content"`
			Refusal string `json:"refusal"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageJSON      `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (s *stream) Recv() (providers.Chunk, error) {
	if s.err != nil {
		return providers.Chunk{}, s.err
	}
	c, err := s.next()
	if err != nil {
		if err == io.EOF {
			s.complete.Store(true)
		}
		s.err = err
		return providers.Chunk{}, err
	}
	return c, nil
}

// next reads events until one carries text or usage, or the stream ends.
func (s *stream) next() (providers.Chunk, error) {
	for {
		if s.finished && s.usage {
			return providers.Chunk{}, io.EOF
		}
		ev, err := s.events.Next()
		if err != nil {
			return providers.Chunk{}, s.ended(err)
		}
		switch ev.Type {
		case "", "message":
		case "error":
			return providers.Chunk{}, s.failed(ev.Data)
		default:
			continue // an event type this API does not define
		}
		if string(ev.Data) == "[DONE]" {
			return providers.Chunk{}, io.EOF
		}
		var cj chunkJSON
		if err := json.Unmarshal(ev.Data, &cj); err != nil {
			if s.finished {
				return providers.Chunk{}, io.EOF
			}
			return providers.Chunk{}, providers.Errorf(messages.ErrorClass_malformed, "unparsable stream event: %v", err)
		}
		if len(cj.Error) > 0 && string(cj.Error) != "null" {
			return providers.Chunk{}, s.failed(ev.Data)
		}
		var c providers.Chunk
		for _, ch := range cj.Choices {
			if ch.Index != 0 {
				continue
			}
			c.Delta += ch.Delta.Content
			s.refusal.WriteString(ch.Delta.Refusal)
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				if e := refused(*ch.FinishReason, s.refusal.String()); e != nil {
					return providers.Chunk{}, e
				}
				s.finished = true
			}
		}
		if cj.Usage != nil {
			c.Usage = cj.Usage.usage()
			s.usage = true
		}
		if c.Delta != "" || c.Usage != nil {
			return c, nil
		}
	}
}

// ended turns the end of the body into the end of the stream: complete
// once a finish_reason was seen, whatever the way the body ended; otherwise
// the caller's context, an over-long line (malformed), or a cut.
func (s *stream) ended(err error) error {
	switch {
	case s.finished:
		return io.EOF
	case s.ctx.Err() != nil:
		return providers.Classify(context.Cause(s.ctx))
	case errors.Is(err, sse.ErrLineTooLong):
		return providers.Errorf(messages.ErrorClass_malformed, "stream event line longer than %d bytes", maxLine)
	case errors.Is(err, io.EOF):
		return &providers.Error{Class: messages.ErrorClass_stream_cut, Message: "the stream ended without [DONE] or a finish_reason", Err: err}
	}
	e := providers.ClassifyTransport(err).Redact(s.secrets...)
	return &providers.Error{Class: messages.ErrorClass_stream_cut, Message: "the stream broke off: " + e.Message, Err: err}
}

// failed classifies an error event; one without a recognisable error
// object is malformed. After a finish_reason the answer is already
// complete, and stays so.
func (s *stream) failed(data []byte) error {
	if s.finished {
		return io.EOF
	}
	if e, ok := providers.ClassifyEvent(data, messages.ErrorClass_server_error); ok {
		return e.Redact(s.secrets...)
	}
	return providers.Errorf(messages.ErrorClass_malformed, "error event without an error object")
}

// Drain bounds on Close after a complete answer: reading the rest of the
// body ([DONE] and the end of the chunked body) hands the connection back
// to the pool instead of closing it.
const (
	drainWithin = 100 * time.Millisecond
	maxDrain    = 64 << 10
)

// Close ends the upstream call; it is safe at any time and more than once.
// After a complete answer it first reads what is left of the body, for at
// most 100 ms, so that the connection can be reused.
func (s *stream) Close() error {
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
