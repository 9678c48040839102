package bus_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
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
// message>", or a server_error for model "fail".
type echoDispatcher struct{}

func (echoDispatcher) Dispatch(_ context.Context, req *messages.InferRequest, done func(*messages.InferResponse)) {
	if req.GetModel() == "fail" {
		done(&messages.InferResponse{Error: messages.Failure(messages.ErrorClass_server_error, "upstream", "upstream failed")})
		return
	}
	var last string
	if n := len(req.GetMessages()); n > 0 {
		last = req.GetMessages()[n-1].GetContent()
	}
	done(&messages.InferResponse{Content: "echo: " + last, ServedBy: req.GetModel()})
}

// heldCall is a request a queueDispatcher holds until the test answers it.
type heldCall struct {
	ctx  context.Context
	req  *messages.InferRequest
	done func(*messages.InferResponse)
}

// queueDispatcher hands every request to the test, which answers when and
// in whatever order it likes.
type queueDispatcher struct {
	calls chan heldCall
}

func newQueueDispatcher() *queueDispatcher {
	return &queueDispatcher{calls: make(chan heldCall, 1024)}
}

func (d *queueDispatcher) Dispatch(ctx context.Context, req *messages.InferRequest, done func(*messages.InferResponse)) {
	d.calls <- heldCall{ctx: ctx, req: req, done: done} // buffered beyond any test's load: never blocks
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
