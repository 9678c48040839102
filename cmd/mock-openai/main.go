// Command mock-openai is a tiny OpenAI-compatible upstream for benchmarks and
// manual tests: POST /v1/chat/completions answers a fixed completion with
// usage, or, when the body asks for "stream": true, the same answer as
// server-sent events in a few chunks ending with data: [DONE]. --status makes
// it a failing upstream (every call gets that status and an OpenAI-shaped
// error), --latency delays every answer, and --context-window makes it a
// model with a small window: a request whose prompt plus max_tokens is more
// gets 400 context_length_exceeded, as OpenAI answers. The mock counts a
// prompt as one token per 4 bytes of content (rounded up), plus 3 per
// message and 3 for the reply: its own rule, not a tokenizer.
//
// It prints the address it listens on as its first line of standard output,
// so a script can start it on port 0 and read where it is. The replies are
// rendered once at start, so that a benchmark measures what stands in front
// of the mock, not the mock.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// maxBody bounds a request body; a larger one gets 413.
const maxBody = 1 << 20

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mock-openai:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mock-openai", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on; port 0 picks a free one")
	status := fs.Int("status", http.StatusOK, "HTTP status of every chat completion; not 200 makes a failing upstream")
	latency := fs.Duration("latency", 0, "delay before every answer")
	model := fs.String("model", "mock-1", "model name in the replies")
	window := fs.Int("context-window", 0, "tokens of prompt plus max_tokens the mock accepts; 0 accepts any")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *status < 200 || *status > 599 {
		return fmt.Errorf("--status %d: must be an HTTP status, 200 to 599", *status)
	}
	if *latency < 0 {
		return fmt.Errorf("--latency %s: must not be negative", *latency)
	}
	if *window < 0 {
		return fmt.Errorf("--context-window %d: must not be negative", *window)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintln(stdout, ln.Addr().String())

	srv := &http.Server{Handler: newHandler(*model, *status, *latency, *window), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler answers with bytes rendered once by newHandler.
type handler struct {
	status   int
	latency  time.Duration
	window   int      // tokens a request may need; 0: any
	reply    []byte   // the plain answer, or the error body when status is not 2xx
	chunks   [][]byte // the streamed answer, each a whole "data: ...\n\n" event
	bufs     sync.Pool
	replyLen string
}

func newHandler(model string, status int, latency time.Duration, window int) http.Handler {
	h := &handler{status: status, latency: latency, window: window}
	h.bufs.New = func() any { return new(bytes.Buffer) }
	if status/100 != 2 {
		h.reply = mustJSON(map[string]any{"error": map[string]any{
			"message": fmt.Sprintf("mock upstream answers %d", status),
			"type":    "server_error",
			"code":    nil,
			"param":   nil,
		}})
	} else {
		h.reply, h.chunks = render(model)
	}
	h.replyLen = strconv.Itoa(len(h.reply))

	mux := http.NewServeMux()
	mux.Handle("POST /v1/chat/completions", h)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(mustJSON(map[string]any{"object": "list", "data": []any{
			map[string]any{"id": model, "object": "model", "created": 0, "owned_by": "mock"},
		}}))
	})
	return mux
}

// render returns the plain answer and the stream's events.
func render(model string) ([]byte, [][]byte) {
	const id, created = "chatcmpl-mock", 1700000000
	words := []string{"Hello", " from", " the", " mock."}
	text := ""
	for _, w := range words {
		text += w
	}
	usage := map[string]any{"prompt_tokens": 8, "completion_tokens": len(words), "total_tokens": 8 + len(words)}
	reply := mustJSON(map[string]any{
		"id": id, "object": "chat.completion", "created": created, "model": model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": text},
			"finish_reason": "stop",
		}},
		"usage": usage,
	})

	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		}
	}
	events := []map[string]any{chunk(map[string]any{"role": "assistant", "content": ""}, nil)}
	for _, w := range words {
		events = append(events, chunk(map[string]any{"content": w}, nil))
	}
	events = append(events, chunk(map[string]any{}, "stop"))
	events = append(events, map[string]any{
		"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
		"choices": []any{}, "usage": usage,
	})
	var chunks [][]byte
	for _, e := range events {
		chunks = append(chunks, append(append([]byte("data: "), mustJSON(e)...), '\n', '\n'))
	}
	chunks = append(chunks, []byte("data: [DONE]\n\n"))
	return reply, chunks
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	buf := h.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer h.bufs.Put(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody)); err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if h.latency > 0 {
		t := time.NewTimer(h.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	hdr := w.Header()
	if h.window > 0 {
		if need := tokens(buf.Bytes()); need > h.window {
			hdr["Content-Type"] = []string{"application/json"}
			w.WriteHeader(http.StatusBadRequest)
			w.Write(mustJSON(map[string]any{"error": map[string]any{
				"message": fmt.Sprintf("This model's maximum context length is %d tokens. However, you requested %d tokens.", h.window, need),
				"type":    "invalid_request_error",
				"param":   "messages",
				"code":    "context_length_exceeded",
			}}))
			return
		}
	}
	if h.status/100 == 2 && wantsStream(buf.Bytes()) {
		hdr["Content-Type"] = []string{"text/event-stream"}
		hdr["Cache-Control"] = []string{"no-cache"}
		w.WriteHeader(h.status)
		f, _ := w.(http.Flusher)
		for _, c := range h.chunks {
			if _, err := w.Write(c); err != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
		}
		return
	}
	hdr["Content-Type"] = []string{"application/json"}
	hdr["Content-Length"] = []string{h.replyLen}
	w.WriteHeader(h.status)
	w.Write(h.reply)
}

// tokens is what a request needs by the mock's rule: a token per 4 bytes
// of each message's content, rounded up, 3 per message, 3 for the reply,
// and max_tokens. A body that does not decode needs nothing.
func tokens(body []byte) int {
	var req struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
		MaxTokens int `json:"max_tokens"`
	}
	if json.Unmarshal(body, &req) != nil {
		return 0
	}
	n := 3 + req.MaxTokens
	for _, m := range req.Messages {
		n += 3 + (len(m.Content)+3)/4
	}
	return n
}

// wantsStream reports whether the body sets "stream": true. The body is only
// decoded when it mentions "stream", so the plain path stays cheap.
func wantsStream(body []byte) bool {
	if !bytes.Contains(body, []byte(`"stream"`)) {
		return false
	}
	var req struct {
		Stream bool `json:"stream"`
	}
	return json.Unmarshal(body, &req) == nil && req.Stream
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
