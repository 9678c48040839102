package actors

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

func TestMain(m *testing.M) {
	// protoactor's dead-letter throttle runs a one-shot timer goroutine for
	// a second after a dead letter (results that reach a stopped model
	// actor); it ends by itself and is not ours to stop.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

func TestRouterServes(t *testing.T) {
	const (
		ok  = messages.ErrorClass_ok
		se  = messages.ErrorClass_server_error
		bad = messages.ErrorClass_bad_request
	)
	tests := []struct {
		name         string
		primary      ModelSpec
		model        string
		wantServedBy string
		wantError    messages.ErrorClass
		wantCode     string
		wantAttempts []string
	}{
		{
			name:         "primary answers",
			primary:      simModel(t, "primary", 0, ok, "backup"),
			model:        "primary",
			wantServedBy: "primary",
			wantAttempts: []string{"primary=ok"},
		},
		{
			name:         "failing primary falls back",
			primary:      simModel(t, "primary", 1, se, "backup"),
			model:        "primary",
			wantServedBy: "backup",
			wantAttempts: []string{"primary=server_error", "backup=ok"},
		},
		{
			name:         "bad request does not fail over",
			primary:      simModel(t, "primary", 1, bad, "backup"),
			model:        "primary",
			wantError:    bad,
			wantCode:     "bad_request",
			wantAttempts: []string{"primary=bad_request"},
		},
		{
			name:         "single candidate keeps its class",
			primary:      simModel(t, "primary", 1, messages.ErrorClass_overloaded),
			model:        "primary",
			wantError:    messages.ErrorClass_overloaded,
			wantCode:     "overloaded",
			wantAttempts: []string{"primary=overloaded"},
		},
		{
			name:      "unknown model",
			primary:   simModel(t, "primary", 0, ok),
			model:     "gpt-6",
			wantError: bad,
			wantCode:  "unknown_model",
		},
		{
			name:      "no model",
			primary:   simModel(t, "primary", 0, ok),
			model:     "",
			wantError: bad,
			wantCode:  "missing_model",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHive(t, tt.primary, simModel(t, "backup", 0, ok))
			resp := infer(t, h, tt.model)
			assert.Equal(t, tt.wantServedBy, resp.GetServedBy(), "served_by")
			assert.Equal(t, tt.wantError, resp.GetError().GetClass(), "error class (error: %v)", resp.GetError())
			assert.Equal(t, tt.wantCode, resp.GetError().GetCode(), "error code")
			assert.Equal(t, tt.wantAttempts, classes(resp.GetAttempts()), "attempts")
			assert.Equal(t, "test", resp.GetNode())
			assert.Equal(t, "r-"+tt.model, resp.GetRequestId())
			if tt.wantServedBy != "" {
				assert.NotEmpty(t, resp.GetContent())
				assert.Positive(t, resp.GetUsage().GetCompletionTokens())
			}
		})
	}
}

func TestRouterEveryCandidateFails(t *testing.T) {
	h := startHive(t,
		simModel(t, "a", 1, messages.ErrorClass_server_error, "b", "c"),
		simModel(t, "b", 1, messages.ErrorClass_timeout),
		simModel(t, "c", 1, messages.ErrorClass_overloaded),
	)
	resp := infer(t, h, "a")
	require.NotNil(t, resp.GetError())
	assert.Equal(t, messages.ErrorClass_all_failed, resp.GetError().GetClass())
	assert.Equal(t, []string{"a=server_error", "b=timeout", "c=overloaded"}, classes(resp.GetAttempts()))
	assert.Contains(t, resp.GetError().GetMessage(), "a: server_error; b: timeout; c: overloaded")
}

func TestRouterNoMessages(t *testing.T) {
	h := startHive(t, simModel(t, "a", 0, messages.ErrorClass_ok))
	resp := await(t, send(h, &messages.InferRequest{Model: "a"}))
	assert.Equal(t, "missing_messages", resp.GetError().GetCode())
}

func TestModelOverflowIsNoCapacity(t *testing.T) {
	g := newGate()
	spec := ModelSpec{Name: "slow", Provider: g, MaxConcurrent: 1, QueueSize: 1}
	h := startHive(t, spec)

	first := send(h, request("slow"))
	<-g.entered
	queued := send(h, request("slow"))
	overflow := await(t, send(h, request("slow")))
	assert.Equal(t, messages.ErrorClass_no_capacity, overflow.GetError().GetClass(), "third call, with one running and one queued")

	g.release <- struct{}{}
	assert.Equal(t, "slow", await(t, first).GetServedBy())
	<-g.entered // the queued call starts once the first finished
	g.release <- struct{}{}
	assert.Equal(t, "slow", await(t, queued).GetServedBy())
}

// A call that waited in the queue has spent its attempt timeout there: it
// does not start with a fresh one behind a hanging model, it fails over
// (found by the network-timeout chaos scenario).
func TestQueueWaitSpendsTheAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := newGate()
		h := startHive(t,
			ModelSpec{Name: "hung", Provider: hang, MaxConcurrent: 1, QueueSize: 1, Timeout: time.Second, Fallbacks: []string{"good"}, Retry: noRetry},
			simModel(t, "good", 0, messages.ErrorClass_ok),
		)
		first := send(h, request("hung"))
		<-hang.entered
		queued := send(h, request("hung"))
		synctest.Wait()

		resp := await(t, first) // the hung call times out after 1 s, then fails over
		assert.Equal(t, []string{"hung=timeout", "good=ok"}, classes(resp.GetAttempts()))
		resp = await(t, queued)
		assert.Equal(t, "good", resp.GetServedBy())
		assert.Equal(t, []string{"hung=no_capacity", "good=ok"}, classes(resp.GetAttempts()),
			"the queued call waited its whole timeout: it fails over instead of starting on hung")
		assert.Len(t, hang.entered, 0, "hung saw one call only")
	})
}

func TestProviderPanicCostsOneRequest(t *testing.T) {
	h := startHive(t,
		ModelSpec{Name: "buggy", Provider: panicky{}, Fallbacks: []string{"good"}, Retry: noRetry},
		simModel(t, "good", 0, messages.ErrorClass_ok),
	)
	resp := infer(t, h, "buggy")
	assert.Equal(t, "good", resp.GetServedBy())
	assert.Equal(t, []string{"buggy=server_error", "good=ok"}, classes(resp.GetAttempts()))
	assert.Equal(t, "good", infer(t, h, "good").GetServedBy(), "the node still serves")
}

func TestStopAnswersEveryOpenRequest(t *testing.T) {
	g := newGate()
	h := startHive(t, ModelSpec{Name: "slow", Provider: g, MaxConcurrent: 1, QueueSize: 5})
	running := send(h, request("slow"))
	<-g.entered
	queued := send(h, request("slow"))

	h.Stop()
	for _, ch := range []<-chan *messages.InferResponse{running, queued} {
		resp := await(t, ch)
		assert.Equal(t, messages.ErrorClass_cancelled, resp.GetError().GetClass(), "reply after stop: %v", resp)
	}
	after := await(t, send(h, request("slow")))
	assert.Equal(t, "shutting_down", after.GetError().GetCode())
}

func TestCallerCancelIsNotFailedOver(t *testing.T) {
	g := newGate()
	h := startHive(t,
		ModelSpec{Name: "slow", Provider: g, Fallbacks: []string{"good"}},
		simModel(t, "good", 0, messages.ErrorClass_ok),
	)
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *messages.InferResponse, 1)
	h.Dispatch(ctx, request("slow"), finalFunc(func(r *messages.InferResponse) { ch <- r }))
	<-g.entered
	cancel()
	resp := await(t, ch)
	assert.Equal(t, messages.ErrorClass_cancelled, resp.GetError().GetClass())
	assert.Equal(t, []string{"slow=cancelled"}, classes(resp.GetAttempts()))
}

func TestRequestDeadline(t *testing.T) {
	g := newGate()
	h := startHive(t,
		ModelSpec{Name: "slow", Provider: g, Fallbacks: []string{"good"}},
		simModel(t, "good", 0, messages.ErrorClass_ok),
	)
	req := request("slow")
	req.DeadlineMs = 1
	resp := await(t, send(h, req))
	// The deadline covers the whole request: the slow model times out and
	// no time is left for the fallback.
	assert.Equal(t, messages.ErrorClass_timeout, resp.GetError().GetClass(), "reply: %v", resp)
	assert.Equal(t, "deadline_exceeded", resp.GetError().GetCode(), "code of a request whose deadline passed: %v", resp)
	assert.Equal(t, "slow=timeout", classes(resp.GetAttempts())[0])
}

// A model's own timeout, well within the request's deadline, keeps its
// code: it is the model that was slow, not the request that ran out.
func TestModelTimeoutIsNotDeadlineExceeded(t *testing.T) {
	h := startHive(t, ModelSpec{Name: "slow", Provider: newGate(), Timeout: 20 * time.Millisecond, Retry: noRetry})
	req := request("slow")
	req.DeadlineMs = 60_000
	resp := await(t, send(h, req))
	assert.Equal(t, messages.ErrorClass_timeout, resp.GetError().GetClass(), "reply: %v", resp)
	assert.Equal(t, "timeout", resp.GetError().GetCode(), "code of a model's own timeout: %v", resp)
}

// deaf ignores its context: its calls end only when released.
type deaf struct {
	entered chan struct{}
	release chan struct{}
}

func (d deaf) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	d.entered <- struct{}{}
	<-d.release
	return &providers.Result{Content: "too late"}, nil
}

// A call that never answers, not even to its deadline, does not leave the
// caller waiting: the router's deadline sweep ends the request.
func TestDeadlineEndsARequestWhoseCallNeverAnswers(t *testing.T) {
	d := deaf{entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := startHive(t, ModelSpec{Name: "deaf", Provider: d, Retry: noRetry})
	t.Cleanup(func() { close(d.release) }) // before Stop waits for the call
	req := request("deaf")
	req.DeadlineMs = 50
	reply := send(h, req)
	signalled(t, d.entered, "the call")
	resp := await(t, reply)
	assert.Equal(t, messages.ErrorClass_timeout, resp.GetError().GetClass(), "reply: %v", resp)
	assert.Equal(t, "deadline_exceeded", resp.GetError().GetCode())
	assert.Equal(t, []string{"deaf=cancelled"}, classes(resp.GetAttempts()), "the call still out is cancelled")
}
