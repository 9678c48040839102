package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

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
// then; X-Hive-Attempts and X-Hive-Continuation, known only at the end, are
// HTTP trailers (headers when the answer arrives whole). Each event's model is the serving
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

// sse writes one answer's events. It is used by the handler goroutine only.
type sse struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	c        *call
	created  int64
	servedBy string // the last model a chunk named
	started  bool   // the 200 went out
	role     bool   // the assistant role went out
	failed   bool   // a write failed: the client is gone
}

// stream serves a streamed request. It returns the serving model and the
// status sent (499 when the client went away first).
func (g *gateway) stream(ctx context.Context, w http.ResponseWriter, c *call) (string, int) {
	a := newInbox()
	defer a.close()
	g.dispatcher.Dispatch(ctx, c.req, a)
	s := &sse{w: w, rc: http.NewResponseController(w), c: c, created: now()}
	for {
		select {
		case <-a.ready:
		case <-ctx.Done():
			return s.servedBy, messages.ErrorClass_cancelled.Status()
		}
		parts, final, ended := a.take()
		for _, p := range parts {
			if s.part(p); s.failed {
				return s.servedBy, http.StatusOK
			}
		}
		if ended {
			return s.servedBy, s.end(final)
		}
	}
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
	s.event(s.chunk(chunkChoice{FinishReason: &stop}))
	if s.c.includeUsage {
		u := s.chunk()
		u.Usage = toUsage(final.GetUsage())
		s.event(u)
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
		h := s.w.Header()
		if s.servedBy != "" {
			h.Set(headerServedBy, s.servedBy)
		}
		setAttempts(h, final.GetAttempts())
		setContinuation(h, final)
		status := errorStatus(e)
		writeError(s.w, status, e)
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

// start sends the 200 and the headers, once. final is the final reply when
// the answer arrived whole, so that every header is known.
func (s *sse) start(final *messages.InferResponse) {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold events back
	if s.servedBy != "" {
		h.Set(headerServedBy, s.servedBy)
	} else {
		h.Add("Trailer", headerServedBy)
	}
	if final != nil {
		setAttempts(h, final.GetAttempts())
		setContinuation(h, final)
	} else {
		h.Add("Trailer", headerAttempts)
		h.Add("Trailer", headerContinuation)
	}
	s.w.WriteHeader(http.StatusOK)
}

// trailers sets what the headers could not say yet. net/http sends only
// the trailers announced in start.
func (s *sse) trailers(final *messages.InferResponse) {
	h := s.w.Header()
	if len(h.Values("Trailer")) == 0 {
		return
	}
	if h.Get(headerServedBy) == "" && s.servedBy != "" {
		h.Set(headerServedBy, s.servedBy)
	}
	if h.Get(headerAttempts) == "" {
		setAttempts(h, final.GetAttempts())
		setContinuation(h, final)
	}
}

// text sends a piece of the answer, with the assistant role on the first.
func (s *sse) text(t string) {
	d := delta{Content: &t}
	if !s.role {
		d.Role, s.role = "assistant", true
	}
	s.event(s.chunk(chunkChoice{Delta: d}))
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

func (s *sse) event(v any) {
	b, err := json.Marshal(v)
	if err != nil { // our own types always marshal
		panic(err)
	}
	s.data(b)
}

// data writes one SSE event and flushes it. JSON escapes newlines, so one
// data line always holds the whole event.
func (s *sse) data(b []byte) {
	if s.failed {
		return
	}
	buf := make([]byte, 0, len(b)+8)
	buf = append(append(append(buf, "data: "...), b...), "\n\n"...)
	// Each event gets WriteTimeout to leave: a client that stopped reading
	// is dropped, and the dispatch cancelled, instead of held forever.
	_ = s.rc.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if _, err := s.w.Write(buf); err != nil {
		s.failed = true
		return
	}
	if err := s.rc.Flush(); err != nil {
		s.failed = true
	}
}
