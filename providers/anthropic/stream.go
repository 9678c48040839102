package anthropic

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

// Stream asks for a streamed answer. Errors before the event stream starts
// (refused, 429, 529, 401 ...) are returned here, classified as Complete's;
// a 2xx answer that is not an event stream is malformed unless it holds an
// error object.
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
	prompt   int32           // input tokens from message_start
	text     strings.Builder // what was said, for a refusal's reason (bounded)
	finished bool            // a stop_reason was seen: the answer is complete
	err      error           // the sticky end

	complete  atomic.Bool // the answer ended complete: Close may drain the body
	closeOnce sync.Once
}

// event is the union of the Messages API's stream events.
type event struct {
	Type    string `json:"type"`
	Message struct {
		Usage *usageJSON `json:"usage"`
	} `json:"message"`
	Delta struct {
		Type       string `json:"type"`
		Text       string `json:"text"`
		StopReason string `json:"stop_reason"`
	} `json:"delta"`
	Usage *usageJSON `json:"usage"`
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

// next reads events until one carries text or the final usage, or the
// stream ends.
func (s *stream) next() (providers.Chunk, error) {
	for {
		if s.finished {
			return providers.Chunk{}, io.EOF
		}
		ev, err := s.events.Next()
		if err != nil {
			return providers.Chunk{}, s.ended(err)
		}
		var e event
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return providers.Chunk{}, providers.Errorf(messages.ErrorClass_malformed, "unparsable stream event %q: %v", ev.Type, err)
		}
		if e.Type == "" {
			e.Type = ev.Type
		}
		switch e.Type {
		case "message_start":
			if u := e.Message.Usage; u != nil {
				s.prompt = u.prompt()
			}
		case "content_block_delta":
			if e.Delta.Type == "text_delta" && e.Delta.Text != "" {
				if s.text.Len() < 1024 {
					s.text.WriteString(e.Delta.Text)
				}
				return providers.Chunk{Delta: e.Delta.Text}, nil
			}
		case "message_delta":
			if e.Delta.StopReason == "refusal" {
				return providers.Chunk{}, refusal(s.text.String())
			}
			var c providers.Chunk
			if u := e.Usage; u != nil {
				prompt := s.prompt
				if p := u.prompt(); p > 0 {
					prompt = p // newer API versions repeat the input counts here
				}
				c.Usage = &messages.Usage{PromptTokens: prompt, CompletionTokens: u.OutputTokens}
			}
			if e.Delta.StopReason != "" {
				s.finished = true
			}
			if c.Usage != nil {
				return c, nil
			}
		case "message_stop":
			return providers.Chunk{}, io.EOF
		case "error":
			if e, ok := providers.ClassifyEvent(ev.Data, messages.ErrorClass_server_error); ok {
				return providers.Chunk{}, e.Redact(s.secrets...)
			}
			return providers.Chunk{}, providers.Errorf(messages.ErrorClass_malformed, "error event without an error object")
		}
		// ping, content_block_start, content_block_stop, non-text deltas
		// (thinking, tool input) and event types added later are skipped.
	}
}

// ended turns the end of the body into the end of the stream: the
// caller's context, an over-long line (malformed), or a cut. (Once a
// stop_reason was seen next returns io.EOF before reading again.)
func (s *stream) ended(err error) error {
	switch {
	case s.ctx.Err() != nil:
		return providers.Classify(context.Cause(s.ctx))
	case errors.Is(err, sse.ErrLineTooLong):
		return providers.Errorf(messages.ErrorClass_malformed, "stream event line longer than %d bytes", maxLine)
	case errors.Is(err, io.EOF):
		return &providers.Error{Class: messages.ErrorClass_stream_cut, Message: "the stream ended without message_stop or a stop_reason", Err: err}
	}
	e := providers.ClassifyTransport(err).Redact(s.secrets...)
	return &providers.Error{Class: messages.ErrorClass_stream_cut, Message: "the stream broke off: " + e.Message, Err: err}
}

// Drain bounds on Close after a complete answer: reading the rest of the
// body (message_stop and the end of the chunked body) hands the connection
// back to the pool instead of closing it.
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
