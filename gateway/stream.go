package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// Streaming. Chunks become OpenAI's chat.completion.chunk events over SSE,
// each flushed as it comes. The 200 and its headers wait for the first
// piece of text (or the final chunk), so that a request that fails before
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
// X-Hive-Served-By goes with the 200 when a chunk has named the model by
// then; X-Hive-Attempts, known only at the end, is an HTTP trailer (a
// header when the answer arrives whole). Each chunk's model is the serving
// model once known, the requested one before. Chunks carry no degradation
// level, so a stream has no X-Hive-Degradation.

// queue hands chunks from the dispatcher's goroutine to the handler's
// without ever blocking the dispatcher, which may be an actor: a chunk
// waits in memory until written, and one answer bounds how many wait.
type queue struct {
	mu     sync.Mutex // guards chunks and closed
	chunks []*messages.InferChunk
	closed bool
	ready  chan struct{} // capacity 1: chunks were pushed since the last take
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

// push is the dispatcher's emit. After close it drops the chunk: the
// handler has returned.
func (q *queue) push(c *messages.InferChunk) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.chunks = append(q.chunks, c)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) take() []*messages.InferChunk {
	q.mu.Lock()
	defer q.mu.Unlock()
	cs := q.chunks
	q.chunks = nil
	return cs
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed, q.chunks = true, nil
	q.mu.Unlock()
}

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
	q := newQueue()
	defer q.close()
	g.dispatcher.DispatchStream(ctx, c.req, q.push)
	s := &sse{w: w, rc: http.NewResponseController(w), c: c, created: now()}
	for {
		select {
		case <-q.ready:
		case <-ctx.Done():
			return s.servedBy, messages.ErrorClass_cancelled.Status()
		}
		for _, ch := range q.take() {
			if status, done := s.handle(ch); done {
				return s.servedBy, status
			}
		}
	}
}

// handle writes one chunk; done is true when the answer is over for the
// client, with the status it got.
func (s *sse) handle(ch *messages.InferChunk) (status int, done bool) {
	if ch.GetServedBy() != "" {
		s.servedBy = ch.GetServedBy()
	}
	if !ch.GetFinal() {
		if ch.GetDelta() == "" {
			return 0, false
		}
		s.start(nil)
		s.text(ch.GetDelta())
		return http.StatusOK, s.failed
	}
	if ch.GetOutcome() != messages.InferChunk_complete || ch.GetError() != nil {
		return s.incomplete(ch), true
	}
	s.start(ch)
	if ch.GetDelta() != "" || !s.role {
		s.text(ch.GetDelta())
	}
	stop := "stop"
	s.event(s.chunk(chunkChoice{FinishReason: &stop}))
	if s.c.includeUsage {
		u := s.chunk()
		u.Usage = toUsage(ch.GetUsage())
		s.event(u)
	}
	s.trailers(ch)
	s.data([]byte("[DONE]"))
	return http.StatusOK, true
}

// incomplete ends an answer that failed: with an HTTP error when no text
// went out, else with an error event and no [DONE].
func (s *sse) incomplete(ch *messages.InferChunk) int {
	e := ch.GetError()
	if e == nil { // a final chunk that is not complete is a cut stream
		e = messages.Failure(messages.ErrorClass_stream_cut, "stream_incomplete", "the answer ended before it was complete")
	}
	if !s.started {
		h := s.w.Header()
		if s.servedBy != "" {
			h.Set(headerServedBy, s.servedBy)
		}
		setAttempts(h, ch.GetAttempts())
		status := errorStatus(e)
		writeError(s.w, status, e)
		return status
	}
	if ch.GetDelta() != "" {
		s.text(ch.GetDelta())
	}
	body := toErrorBody(&messages.Error{Class: e.GetClass(), Code: "stream_incomplete", Message: e.GetMessage()}, "")
	s.trailers(ch)
	s.event(body)
	return http.StatusOK
}

// start sends the 200 and the headers, once. final is the final chunk when
// the answer arrived whole, so that every header is known.
func (s *sse) start(final *messages.InferChunk) {
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
	} else {
		h.Add("Trailer", headerAttempts)
	}
	s.w.WriteHeader(http.StatusOK)
}

// trailers sets what the headers could not say yet. net/http sends only
// the trailers announced in start.
func (s *sse) trailers(final *messages.InferChunk) {
	h := s.w.Header()
	if len(h.Values("Trailer")) == 0 {
		return
	}
	if h.Get(headerServedBy) == "" && s.servedBy != "" {
		h.Set(headerServedBy, s.servedBy)
	}
	if h.Get(headerAttempts) == "" {
		setAttempts(h, final.GetAttempts())
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
