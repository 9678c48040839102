package actors

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/sim"
	"github.com/cmmv-hive/resilience/resilience"
)

// waitLimit bounds every wait for a reply; replies normally come in
// milliseconds, so reaching it means a lost request.
const waitLimit = 10 * time.Second

func simModel(t *testing.T, name string, failureRate float64, class messages.ErrorClass, fallbacks ...string) ModelSpec {
	t.Helper()
	p, err := sim.New(sim.Config{Name: name, FailureRate: failureRate, ErrorClass: class, Seed: 1})
	require.NoError(t, err)
	return ModelSpec{Name: name, Kind: "sim", Provider: p, Fallbacks: fallbacks, Retry: noRetry}
}

func startHive(t *testing.T, models ...ModelSpec) *Hive {
	t.Helper()
	h, err := New(Config{Node: "test", Models: models, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	require.NoError(t, err)
	t.Cleanup(h.Stop)
	return h
}

// send dispatches req and returns a channel that receives its reply.
func send(h *Hive, req *messages.InferRequest) <-chan *messages.InferResponse {
	ch := make(replySink, 1)
	h.Dispatch(context.Background(), req, ch)
	return ch
}

// replySink is the Sink of a plain request: the reply goes to the channel.
type replySink chan *messages.InferResponse

func (replySink) Piece(string, string)              {}
func (s replySink) Final(r *messages.InferResponse) { s <- r }

// finalFunc is the Sink of a plain request that hands the reply to a
// function.
type finalFunc func(*messages.InferResponse)

func (finalFunc) Piece(string, string)              {}
func (f finalFunc) Final(r *messages.InferResponse) { f(r) }

// chunkSink is the Sink of a streamed request, turning its calls into the
// chunks a caller reads, as the ingresses do: numbered from 1, the final
// one last, complete or incomplete with its error. A call after Final
// fails the test: the request path must send nothing after it.
type chunkSink struct {
	t         *testing.T
	requestID string
	out       chan *messages.InferChunk

	mu    sync.Mutex // guards seq and ended
	seq   uint32
	ended bool
}

func newChunkSink(t *testing.T, requestID string) *chunkSink {
	return &chunkSink{t: t, requestID: requestID, out: make(chan *messages.InferChunk, 100)}
}

func (s *chunkSink) Piece(model, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		s.t.Errorf("piece %q from %s after the final chunk", text, model)
		return
	}
	s.seq++
	s.out <- &messages.InferChunk{RequestId: s.requestID, Seq: s.seq, Delta: text, ServedBy: model}
}

func (s *chunkSink) Final(r *messages.InferResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		s.t.Errorf("a second final: %v", r)
		return
	}
	s.ended = true
	s.seq++
	c := &messages.InferChunk{RequestId: r.GetRequestId(), Seq: s.seq, Final: true, Outcome: messages.InferChunk_complete,
		Delta: r.GetContent(), ServedBy: r.GetServedBy(), Usage: r.GetUsage(), Attempts: r.GetAttempts(), Error: r.GetError(),
		Continuation: r.GetContinuation()}
	if r.GetError() != nil {
		c.Outcome = messages.InferChunk_incomplete
	}
	s.out <- c
}

func await(t *testing.T, ch <-chan *messages.InferResponse) *messages.InferResponse {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("no reply within %v", waitLimit)
		return nil
	}
}

func infer(t *testing.T, h *Hive, model string) *messages.InferResponse {
	t.Helper()
	return await(t, send(h, request(model)))
}

func request(model string) *messages.InferRequest {
	return &messages.InferRequest{RequestId: "r-" + model, Model: model, Messages: []*messages.ChatMessage{{Role: "user", Content: "hello"}}}
}

// noRetry turns same-model retries off, for tests about fallback order.
var noRetry = resilience.RetryConfig{MaxRetries: -1}

// gate is a provider whose calls block until released or cancelled.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) Complete(ctx context.Context, _ *messages.InferRequest) (*providers.Result, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return &providers.Result{Content: "released"}, nil
	case <-ctx.Done():
		return nil, providers.Classify(ctx.Err())
	}
}

// panicky is a provider with a bug.
type panicky struct{}

func (panicky) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	panic("provider bug")
}

func classes(attempts []*messages.Attempt) []string {
	var out []string
	for _, a := range attempts {
		out = append(out, a.Model+"="+a.ErrorClass.String())
	}
	return out
}

// recorder is a Publisher that keeps every event and lets a test wait for
// one, so tests wait on events, never on sleeps.
type recorder struct {
	mu     sync.Mutex // guards events and notify
	events []any
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (r *recorder) add(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	close(r.notify)
	r.notify = make(chan struct{})
}

func (r *recorder) Breaker(ev *messages.BreakerTransition) { r.add(ev) }
func (r *recorder) Health(ev *messages.HealthChanged)      { r.add(ev) }
func (r *recorder) Recovery(ev *messages.RecoveryEvent)    { r.add(ev) }
func (r *recorder) Alert(ev *messages.Alert)               { r.add(ev) }

// all returns the events so far.
func (r *recorder) all() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.events...)
}

// waitFor returns the first event (from index 0) that match accepts,
// waiting for it up to waitLimit.
func (r *recorder) waitFor(t *testing.T, what string, match func(any) bool) any {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if match(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no event %s within %v; events: %v", what, waitLimit, r.all())
			return nil
		}
	}
}

// breakers returns the breaker transitions of model, in order.
func (r *recorder) breakers(model string) []*messages.BreakerTransition {
	var out []*messages.BreakerTransition
	for _, ev := range r.all() {
		if b, ok := ev.(*messages.BreakerTransition); ok && b.Model == model {
			out = append(out, b)
		}
	}
	return out
}

// breakerTo waits for model's breaker to move to state.
func (r *recorder) breakerTo(t *testing.T, model string, to messages.BreakerState) *messages.BreakerTransition {
	t.Helper()
	return r.waitFor(t, model+" breaker -> "+to.String(), func(ev any) bool {
		b, ok := ev.(*messages.BreakerTransition)
		return ok && b.Model == model && b.To == to && b.From != to
	}).(*messages.BreakerTransition)
}

// startHiveWith starts a Hive with cfg's Node, Logger and Publisher filled
// in when empty.
func startHiveWith(t *testing.T, cfg Config) *Hive {
	t.Helper()
	if cfg.Node == "" {
		cfg.Node = "test"
	}
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	h, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(h.Stop)
	return h
}
