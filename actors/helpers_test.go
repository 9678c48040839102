package actors

import (
	"context"
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
	ch := make(chan *messages.InferResponse, 1)
	h.Dispatch(context.Background(), req, func(r *messages.InferResponse) { ch <- r })
	return ch
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
