package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/cmmv-hive/resilience/messages"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's own: the clock of its Date header, which runs for the
		// process, and a server's idle-worker cleaner, which sleeps up to
		// 10 s before it sees its server stopped.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

// wait bounds every wait in these tests; nothing sleeps.
const wait = 5 * time.Second

// fake is a scripted Dispatcher. It answers from its own goroutines, as
// the actors do, and the test's cleanup waits for them: a plain request
// with respond, a streamed one with script.
type fake struct {
	respond func(ctx context.Context, req *messages.InferRequest) *messages.InferResponse
	script  func(ctx context.Context, req *messages.InferRequest, sink messages.Sink)
	wg      sync.WaitGroup
	mu      sync.Mutex // guards got
	got     []*messages.InferRequest
}

func newFake(t *testing.T) *fake {
	f := &fake{}
	t.Cleanup(f.wg.Wait)
	return f
}

func (f *fake) record(req *messages.InferRequest) {
	f.mu.Lock()
	f.got = append(f.got, req)
	f.mu.Unlock()
}

// last returns the last request dispatched, or nil.
func (f *fake) last() *messages.InferRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		return nil
	}
	return f.got[len(f.got)-1]
}

func (f *fake) Dispatch(ctx context.Context, req *messages.InferRequest, sink messages.Sink) {
	f.record(req)
	if req.GetStream() {
		f.wg.Go(func() { f.script(ctx, req, sink) })
		return
	}
	f.wg.Go(func() { sink.Final(f.respond(ctx, req)) })
}

// answer makes a respond func that returns resp.
func answer(resp *messages.InferResponse) func(context.Context, *messages.InferRequest) *messages.InferResponse {
	return func(context.Context, *messages.InferRequest) *messages.InferResponse { return resp }
}

// step is one call a scripted dispatcher makes on its sink.
type step func(messages.Sink)

// piece sends text from model.
func piece(model, text string) step { return func(s messages.Sink) { s.Piece(model, text) } }

// final ends the reply with resp.
func final(resp *messages.InferResponse) step { return func(s messages.Sink) { s.Final(resp) } }

// emits makes a script that takes its steps in order.
func emits(steps ...step) func(context.Context, *messages.InferRequest, messages.Sink) {
	return func(_ context.Context, _ *messages.InferRequest, sink messages.Sink) {
		for _, st := range steps {
			st(sink)
		}
	}
}

type ready struct{}

func (ready) Ready() error { return nil }

// syncBuffer is a log sink that the handler and the test may share.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// handler builds the gateway over f, logging at debug level into log when
// it is not nil, and serves it on loopback (see wire).
func handler(t *testing.T, f *fake, log *syncBuffer) *wire {
	t.Helper()
	return serveWire(t, build(t, f, log))
}

// build builds the gateway over f, as handler, without serving it.
func build(t *testing.T, f *fake, log *syncBuffer) *Handler {
	t.Helper()
	c := Config{
		Node:       "n1",
		Dispatcher: f,
		Models:     func() []string { return []string{"gpt-5", "claude-4-sonnet"} },
		Readiness:  ready{},
		MaxBody:    4096,
	}
	if log != nil {
		c.Logger = zerolog.New(log).Level(zerolog.DebugLevel)
	}
	h, err := New(c)
	require.NoError(t, err)
	return h
}

// wire is a Handler served by Server on a loopback listener, as the node
// serves it: the tests speak to the gateway over a real connection. As an
// http.Handler it sends each request (an httptest.NewRequest) there and
// copies the answer, trailers included, into the ResponseWriter (an
// httptest.ResponseRecorder), so a recorder sees what a client saw.
type wire struct {
	*Handler
	URL    string
	client *http.Client
}

// serveWire serves h until the test's cleanup, which closes h (ending the
// dashboard's streams) and shuts the server down.
func serveWire(t *testing.T, h *Handler) *wire {
	return serveWireWith(t, h, Server(h))
}

func serveWireWith(t *testing.T, h *Handler, srv *fasthttp.Server) *wire {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{}
	w := &wire{Handler: h, URL: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		require.NoError(t, srv.ShutdownWithContext(ctx))
		// A shutdown before Serve took ln closes nothing (fasthttp closes
		// the listeners it serves): close it, so that Serve ends either way.
		_ = ln.Close()
		if err := <-served; !errors.Is(err, net.ErrClosed) {
			require.NoError(t, err)
		}
	})
	return w
}

// Client is a client for w.URL whose connections the cleanup closes.
func (w *wire) Client() *http.Client { return w.client }

func (w *wire) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	req := r.Clone(r.Context())
	req.RequestURI = ""
	u, err := url.Parse(w.URL + r.URL.RequestURI())
	if err != nil {
		panic(err)
	}
	req.URL, req.Host = u, u.Host
	resp, err := w.client.Do(req)
	if err != nil {
		http.Error(rw, "wire: "+err.Error(), 599)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		rw.Header()[k] = v
	}
	for k := range resp.Trailer {
		rw.Header().Add("Trailer", k)
	}
	rw.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(rw, resp.Body)
	for k, v := range resp.Trailer {
		rw.Header()[k] = v
	}
}

// post runs one request through h and returns the recorded response.
func post(h http.Handler, body string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// events splits an SSE body into its data payloads.
func events(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for _, ev := range strings.Split(body, "\n\n") {
		if ev == "" {
			continue
		}
		data, ok := strings.CutPrefix(ev, "data: ")
		require.Truef(t, ok, "event %q is not a data line", ev)
		out = append(out, data)
	}
	return out
}

const simple = `{"model":"gpt-5","messages":[{"role":"user","content":"hi"}]}`
const streamed = `{"model":"gpt-5","stream":true,"messages":[{"role":"user","content":"hi"}]}`

func timeout() <-chan time.Time { return time.After(wait) }

// waitFor waits for ch to be closed, at most wait.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-timeout():
		t.Fatalf("%s did not happen within %v", what, wait)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
