package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
)

// wait bounds every wait for an event in these tests. It is a deadline for
// a failure, never a sleep.
const wait = 10 * time.Second

var subjects = bus.NewSubjects("")

// logSink is a zerolog writer that keeps every line and lets a test wait
// for one.
type logSink struct {
	mu     sync.Mutex // guards lines
	lines  []string
	notify chan struct{} // signalled after each line
}

func newLogSink() *logSink { return &logSink{notify: make(chan struct{}, 1)} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, string(p))
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *logSink) logger() zerolog.Logger {
	return zerolog.New(l).Level(zerolog.DebugLevel)
}

func (l *logSink) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

// waitFor waits until a line containing every one of parts is logged and
// returns it.
func (l *logSink) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if containsAll(line, parts) {
				l.mu.Unlock()
				return line
			}
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline:
			t.Fatalf("no log line with %q after %s; got:\n%s", parts, wait, l.all())
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// echoDispatcher answers at once, inside Dispatch: content "echo: <last
// message>", or a server_error for model "fail". A stream it answers by
// script: a piece per word of the last message ("hello", " big",
// " world"), then the final reply, with usage {1, words}, or for model
// "cut" a stream_cut error.
type echoDispatcher struct{}

func (echoDispatcher) Dispatch(_ context.Context, req *messages.InferRequest, sink messages.Sink) {
	var last string
	if n := len(req.GetMessages()); n > 0 {
		last = req.GetMessages()[n-1].GetContent()
	}
	if !req.GetStream() {
		if req.GetModel() == "fail" {
			sink.Final(&messages.InferResponse{Error: messages.Failure(messages.ErrorClass_server_error, "upstream", "upstream failed")})
			return
		}
		sink.Final(&messages.InferResponse{Content: "echo: " + last, ServedBy: req.GetModel()})
		return
	}
	words := strings.Fields(last)
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		sink.Piece(req.GetModel(), w) // request_id and seq left to the ingress
	}
	if req.GetModel() == "cut" {
		sink.Final(&messages.InferResponse{ServedBy: req.GetModel(),
			Error: messages.Failure(messages.ErrorClass_stream_cut, "upstream_closed", "upstream closed mid-answer")})
		return
	}
	sink.Final(&messages.InferResponse{ServedBy: req.GetModel(),
		Usage: &messages.Usage{PromptTokens: 1, CompletionTokens: int32(len(words))}})
}

// heldCall is a request a queueDispatcher holds until the test answers it
// with done, its sink's Final.
type heldCall struct {
	ctx  context.Context
	req  *messages.InferRequest
	done func(*messages.InferResponse)
}

// heldStream is a stream request a queueDispatcher holds; the test sends
// its pieces and final reply to sink.
type heldStream struct {
	ctx  context.Context
	req  *messages.InferRequest
	sink messages.Sink
}

// queueDispatcher hands every request and stream to the test, which answers
// when and in whatever order it likes.
type queueDispatcher struct {
	calls   chan heldCall
	streams chan heldStream
}

func newQueueDispatcher() *queueDispatcher {
	return &queueDispatcher{calls: make(chan heldCall, 1024), streams: make(chan heldStream, 1024)}
}

// Dispatch holds req: buffered beyond any test's load, it never blocks.
func (d *queueDispatcher) Dispatch(ctx context.Context, req *messages.InferRequest, sink messages.Sink) {
	if req.GetStream() {
		d.streams <- heldStream{ctx: ctx, req: req, sink: sink}
		return
	}
	d.calls <- heldCall{ctx: ctx, req: req, done: sink.Final}
}

// nextStream waits for the next dispatched stream request.
func (d *queueDispatcher) nextStream(t *testing.T) heldStream {
	t.Helper()
	select {
	case s := <-d.streams:
		return s
	case <-time.After(wait):
		t.Fatalf("no stream dispatched after %s", wait)
		return heldStream{}
	}
}

// next waits for the next dispatched request.
func (d *queueDispatcher) next(t *testing.T) heldCall {
	t.Helper()
	select {
	case c := <-d.calls:
		return c
	case <-time.After(wait):
		t.Fatalf("no request dispatched after %s", wait)
		return heldCall{}
	}
}

// node is one hive node's NATS side: its connection and ingress.
type node struct {
	nc *nats.Conn
	in *bus.Ingress
}

// startNode connects to s with bus.Connect and starts an ingress named name;
// cleanup stops the ingress, then closes the connection.
func startNode(t *testing.T, s *server.Server, name string, d bus.Dispatcher) node {
	t.Helper()
	nc, err := bus.Connect(bus.ConnectOptions{URLs: s.ClientURL(), Name: "hive-node " + name})
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	in, err := bus.StartIngress(bus.IngressConfig{Conn: nc, Node: name, Version: "1.2.3", Dispatcher: d})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := in.Stop(ctx); err != nil {
			t.Errorf("stop ingress %s: %v", name, err)
		}
	})
	return node{nc: nc, in: in}
}

// setup starts a server, one node named "n1" with d, and a client.
func setup(t *testing.T, d bus.Dispatcher) (node, *nats.Conn) {
	t.Helper()
	s := bustest.NewServer(t)
	n := startNode(t, s, "n1", d)
	return n, bustest.Connect(t, s)
}

// infer sends body with the header (nil for none) to hive.v1.infer and
// returns the reply.
func infer(t *testing.T, nc *nats.Conn, body []byte, h nats.Header) *nats.Msg {
	t.Helper()
	reply, err := nc.RequestMsg(&nats.Msg{Subject: subjects.Infer(), Data: body, Header: h}, wait)
	require.NoError(t, err)
	return reply
}

// decodeReply decodes an InferResponse in enc, failing the test otherwise.
func decodeReply(t *testing.T, enc bus.Encoding, m *nats.Msg) *messages.InferResponse {
	t.Helper()
	resp := new(messages.InferResponse)
	require.NoError(t, bus.Decode(enc, m.Data, resp), "reply body %q", m.Data)
	return resp
}

// encode encodes m in enc, failing the test otherwise.
func encode(t *testing.T, enc bus.Encoding, m *messages.InferRequest) []byte {
	t.Helper()
	b, err := bus.Encode(enc, m)
	require.NoError(t, err)
	return b
}

func hello(model string) *messages.InferRequest {
	return &messages.InferRequest{Model: model, Messages: []*messages.ChatMessage{{Role: "user", Content: "hello"}}}
}

// maxChunks bounds readStream, so that a stream that never ends fails the
// test instead of hanging it.
const maxChunks = 1000

// openStream starts a stream request the way a client should (see the
// Ingress doc): subscribe to a new inbox first, so that no chunk can come
// before the subscription exists, then publish the request with the inbox as
// its reply subject. The caller reads the chunks with nextChunk.
func openStream(nc *nats.Conn, body []byte, h nats.Header) (*nats.Subscription, error) {
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", inbox, err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subjects.Infer(), Reply: inbox, Header: h, Data: body}); err != nil {
		return nil, errors.Join(fmt.Errorf("publish: %w", err), sub.Unsubscribe())
	}
	return sub, nil
}

// nextChunk reads the next chunk of a stream in enc. NextMsg reports
// nats.ErrNoResponders when no node serves the subject, as nc.Request would.
func nextChunk(sub *nats.Subscription, enc bus.Encoding) (*nats.Msg, *messages.InferChunk, error) {
	m, err := sub.NextMsg(wait)
	if err != nil {
		return nil, nil, fmt.Errorf("next chunk: %w", err)
	}
	ch := new(messages.InferChunk)
	if err := bus.Decode(enc, m.Data, ch); err != nil {
		return m, nil, fmt.Errorf("chunk %q: %w", m.Data, err)
	}
	return m, ch, nil
}

// collectStream sends a stream request and reads its chunks up to and
// including the final one. It is safe to call from any goroutine: it
// returns an error rather than failing the test.
func collectStream(nc *nats.Conn, enc bus.Encoding, body []byte, h nats.Header) ([]*nats.Msg, []*messages.InferChunk, error) {
	sub, err := openStream(nc, body, h)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = sub.Unsubscribe() }() // only ours; the connection's close would end it too
	return readChunks(sub, enc)
}

// readChunks reads chunks in enc from sub up to and including the final
// one, or until an error.
func readChunks(sub *nats.Subscription, enc bus.Encoding) ([]*nats.Msg, []*messages.InferChunk, error) {
	var (
		msgs   []*nats.Msg
		chunks []*messages.InferChunk
	)
	for range maxChunks {
		m, ch, err := nextChunk(sub, enc)
		if err != nil {
			return msgs, chunks, fmt.Errorf("after %d chunks: %w", len(chunks), err)
		}
		msgs, chunks = append(msgs, m), append(chunks, ch)
		if ch.GetFinal() {
			return msgs, chunks, nil
		}
	}
	return msgs, chunks, fmt.Errorf("no final chunk after %d chunks", maxChunks)
}

// readStream sends req with stream true in enc and returns every message
// and chunk, the final one last.
func readStream(t *testing.T, nc *nats.Conn, enc bus.Encoding, req *messages.InferRequest, h nats.Header) ([]*nats.Msg, []*messages.InferChunk) {
	t.Helper()
	req.Stream = true
	msgs, chunks, err := collectStream(nc, enc, encode(t, enc, req), h)
	require.NoError(t, err)
	return msgs, chunks
}

// statsData returns the ingress counters that `nats micro stats hive`
// shows for the infer endpoint.
func statsData(t *testing.T, nc *nats.Conn) string {
	t.Helper()
	subject, err := micro.ControlSubject(micro.StatsVerb, bus.ServiceName, "")
	require.NoError(t, err)
	m, err := nc.Request(subject, nil, wait)
	require.NoError(t, err)
	var stats micro.Stats
	require.NoError(t, json.Unmarshal(m.Data, &stats), "stats %s", m.Data)
	require.Len(t, stats.Endpoints, 1)
	return string(stats.Endpoints[0].Data)
}
