package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// Scripted providers and event waits shared by the behaviour tests.

// Modes of a switchable provider.
const (
	answerOK int32 = iota
	answerFail
	answerPanic
)

// switchable answers, fails with server_error or panics, as the test sets
// mode, and counts every call (probes included).
type switchable struct {
	mode  atomic.Int32
	calls atomic.Int64
}

func newSwitchable(mode int32) *switchable {
	s := &switchable{}
	s.mode.Store(mode)
	return s
}

func (s *switchable) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	s.calls.Add(1)
	switch s.mode.Load() {
	case answerFail:
		return nil, providers.Errorf(messages.ErrorClass_server_error, "switched to fail")
	case answerPanic:
		panic("switched to panic")
	}
	return &providers.Result{Content: "ok", StatusCode: 200}, nil
}

// cancelWatch blocks every call until its context ends, and signals both
// the entry and the cancellation.
type cancelWatch struct {
	entered, cancelled chan struct{}
}

func newCancelWatch() *cancelWatch {
	return &cancelWatch{entered: make(chan struct{}, 16), cancelled: make(chan struct{}, 16)}
}

func (c *cancelWatch) Complete(ctx context.Context, _ *messages.InferRequest) (*providers.Result, error) {
	c.entered <- struct{}{}
	<-ctx.Done()
	c.cancelled <- struct{}{}
	return nil, providers.Classify(ctx.Err())
}

// latch blocks calls until opened; once open it answers every call at
// once (a gate releases one call at a time).
type latch struct {
	entered chan struct{}
	open    chan struct{}
}

func newLatch() *latch { return &latch{entered: make(chan struct{}, 64), open: make(chan struct{})} }

func (l *latch) Complete(ctx context.Context, _ *messages.InferRequest) (*providers.Result, error) {
	select {
	case l.entered <- struct{}{}:
	default:
	}
	select {
	case <-l.open:
		return &providers.Result{Content: "latched", StatusCode: 200}, nil
	case <-ctx.Done():
		return nil, providers.Classify(ctx.Err())
	}
}

// entryLog wraps a provider and reports its name on log when a call
// enters it, so a test sees the order in which models were called.
type entryLog struct {
	name string
	log  chan<- string
	next providers.Provider
}

func (e entryLog) Complete(ctx context.Context, req *messages.InferRequest) (*providers.Result, error) {
	e.log <- e.name
	return e.next.Complete(ctx, req)
}

// signalled waits for ch up to waitLimit.
func signalled[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("%s: nothing within %v", what, waitLimit)
		var zero T
		return zero
	}
}

// waitMatches waits until n events match, and returns them in order.
func (r *recorder) waitMatches(t *testing.T, what string, n int, match func(any) bool) []any {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		r.mu.Lock()
		var got []any
		for _, ev := range r.events {
			if match(ev) {
				got = append(got, ev)
			}
		}
		ch := r.notify
		r.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: got %d matching events, want %d within %v; events: %v", what, len(got), n, waitLimit, r.all())
			return nil
		}
	}
}

// isRecovery matches a RecoveryEvent of model and kind.
func isRecovery(model string, kind messages.RecoveryEvent_Kind) func(any) bool {
	return func(ev any) bool {
		e, ok := ev.(*messages.RecoveryEvent)
		return ok && e.Model == model && e.Kind == kind
	}
}

// recoveryOf waits for the first RecoveryEvent of model and kind.
func (r *recorder) recoveryOf(t *testing.T, model string, kind messages.RecoveryEvent_Kind) *messages.RecoveryEvent {
	t.Helper()
	return r.waitFor(t, model+" "+kind.String(), isRecovery(model, kind)).(*messages.RecoveryEvent)
}

// recoveries returns the RecoveryEvents of model and kind so far.
func (r *recorder) recoveries(model string, kind messages.RecoveryEvent_Kind) []*messages.RecoveryEvent {
	var out []*messages.RecoveryEvent
	match := isRecovery(model, kind)
	for _, ev := range r.all() {
		if match(ev) {
			out = append(out, ev.(*messages.RecoveryEvent))
		}
	}
	return out
}

// indexOf returns the position of the first event match accepts, or -1.
func (r *recorder) indexOf(match func(any) bool) int {
	for i, ev := range r.all() {
		if match(ev) {
			return i
		}
	}
	return -1
}

// isBreaker matches a BreakerTransition of model from -> to; a negative
// state matches any.
func isBreaker(model string, from, to messages.BreakerState) func(any) bool {
	return func(ev any) bool {
		b, ok := ev.(*messages.BreakerTransition)
		return ok && b.Model == model && (from < 0 || b.From == from) && (to < 0 || b.To == to)
	}
}

const anyState messages.BreakerState = -1

// countCalls wraps a provider and counts the calls that enter it.
type countCalls struct {
	n    *atomic.Int64
	next providers.Provider
}

func (c countCalls) Complete(ctx context.Context, req *messages.InferRequest) (*providers.Result, error) {
	c.n.Add(1)
	return c.next.Complete(ctx, req)
}
