package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// apiKey is the key every test model sends; no error may contain it.
const apiKey = "hive-test-key-3f9c2a7d1e"

var hello = &messages.InferRequest{Messages: []*messages.ChatMessage{
	{Role: "system", Content: "be brief"},
	{Role: "user", Content: "hello there"},
}}

// upstream is a scripted Anthropic server on loopback. release is
// closed at cleanup, before the server shuts down, so that a handler
// scripted to hang returns.
type upstream struct {
	srv     *httptest.Server
	release chan struct{}
	got     chan *http.Request // every request, with its body read into gotBody
	bodies  chan []byte
	conns   atomic.Int32 // connections accepted
}

func serve(t *testing.T, h func(w http.ResponseWriter, r *http.Request, u *upstream)) (*Model, *upstream) {
	t.Helper()
	u := &upstream{release: make(chan struct{}), got: make(chan *http.Request, 16), bodies: make(chan []byte, 16)}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.got <- r
		u.bodies <- body
		h(w, r, u)
	}))
	u.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	t.Cleanup(func() { close(u.release) })
	m, err := New(Config{Name: "claude", BaseURL: u.srv.URL + "/v1", APIKey: apiKey, UpstreamModel: "claude-up", Client: u.srv.Client()})
	require.NoError(t, err)
	return m, u
}

// hang blocks until the client goes away or the test ends.
func (u *upstream) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-u.release:
	}
}

// events writes server-sent event lines, flushing after each, as a real
// upstream does.
func events(w http.ResponseWriter, lines ...string) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	for _, l := range lines {
		fmt.Fprint(w, l)
		w.(http.Flusher).Flush()
	}
}

// ev is one event of the Messages stream.
func ev(typ, data string) string { return "event: " + typ + "\ndata: " + data + "\n\n" }

func delta(text string) string {
	b, _ := json.Marshal(map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": text}})
	return ev("content_block_delta", string(b))
}

var (
	messageStart = ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-up","stop_reason":null,"usage":{"input_tokens":25,"cache_read_input_tokens":5,"output_tokens":1}}}`)
	blockStart   = ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	ping         = ev("ping", `{"type": "ping"}`)
	blockStop    = ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	messageStop  = ev("message_stop", `{"type":"message_stop"}`)
)

func messageDelta(stopReason string) string {
	return ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"`+stopReason+`","stop_sequence":null},"usage":{"output_tokens":15}}`)
}

// cut hijacks the connection and closes it: the client sees a reset,
// before the headers or in the middle of a chunked body.
func cut(t *testing.T, w http.ResponseWriter) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // a reset, not a polite close
	}
	conn.Close()
}

// bounded is a context for one call that cannot hang the test.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// class returns err's class, failing the test when err is not an *Error,
// and checks that the key never leaks.
func class(t *testing.T, err error) messages.ErrorClass {
	t.Helper()
	require.Error(t, err)
	var pe *providers.Error
	require.True(t, errors.As(err, &pe), "error %v (%T) is not a *providers.Error", err, err)
	noKey(t, err)
	return pe.Class
}

func noKey(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			if strings.Contains(s, apiKey) {
				t.Fatalf("the API key leaked into an error: %s", s)
			}
		}
	}
}

// collect reads a stream to its end and returns the text, the usage and
// the final error (io.EOF for a complete answer).
func collect(s providers.Stream) (string, *messages.Usage, error) {
	var text strings.Builder
	var usage *messages.Usage
	for {
		c, err := s.Recv()
		if err != nil {
			return text.String(), usage, err
		}
		text.WriteString(c.Delta)
		if c.Usage != nil {
			usage = c.Usage
		}
	}
}
