package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
	"github.com/cmmv-hive/resilience/route"
)

// When every candidate's breaker is open, a request fails at once with
// circuit_open and a Retry-After of the earliest reopening, and no
// provider is called.
func TestAllDownFailsFastWithRetryAfter(t *testing.T) {
	a, b := newSwitchable(answerFail), newSwitchable(answerFail)
	h := startHiveWith(t, Config{
		// The panic trickle would send one request to the least-bad model;
		// this test is about the answer when nothing may be called.
		Group: resilience.GroupConfig{PanicRate: -1},
		Models: []ModelSpec{
			{Name: "a", Provider: a, Fallbacks: []string{"b"}, Retry: noRetry,
				Breaker: resilience.BreakerConfig{ConsecutiveFailures: 1, OpenDuration: time.Hour}},
			{Name: "b", Provider: b, Retry: noRetry,
				Breaker: resilience.BreakerConfig{ConsecutiveFailures: 1, OpenDuration: 2 * time.Hour}},
		},
	})
	first := infer(t, h, "a")
	require.Equal(t, []string{"a=server_error", "b=server_error"}, classes(first.GetAttempts()), "the request that opens both")

	resp := infer(t, h, "a")
	e := resp.GetError()
	require.NotNil(t, e, "reply with every breaker open")
	assert.Equal(t, messages.ErrorClass_circuit_open, e.GetClass(), "class")
	assert.Equal(t, "all_unavailable", e.GetCode(), "code")
	assert.Positive(t, e.GetRetryAfterMs(), "retry_after_ms")
	assert.LessOrEqual(t, e.GetRetryAfterMs(), int32(time.Hour/time.Millisecond), "retry_after_ms: the earliest reopening (a's hour), not b's two")
	assert.Empty(t, resp.GetAttempts(), "attempts")
	assert.Equal(t, int64(1), a.calls.Load(), "calls to a")
	assert.Equal(t, int64(1), b.calls.Load(), "calls to b")
}

// Every candidate forced open by an operator still gets a retry time: the
// end of the earliest forced-open period, or route.UnknownRetryAfter when every
// one is held open until closed.
func TestAllDownForcedOpenHasRetryAfter(t *testing.T) {
	a, b := newSwitchable(answerOK), newSwitchable(answerOK)
	h := startHiveWith(t, Config{
		Group: resilience.GroupConfig{PanicRate: -1},
		Models: []ModelSpec{
			{Name: "a", Provider: a, Fallbacks: []string{"b"}, Retry: noRetry},
			{Name: "b", Provider: b, Retry: noRetry},
		},
	})
	force := func(model string, d time.Duration) {
		t.Helper()
		_, err := h.Control(model, OpForceOpen, d, "alice", "incident")
		require.NoError(t, err, "force %s open for %v", model, d)
	}
	tests := []struct {
		name     string
		a, b     time.Duration // forced-open periods; 0 until closed
		min, max int32         // bounds of retry_after_ms
	}{
		{"both until closed", 0, 0, int32(route.UnknownRetryAfter / time.Millisecond), int32(route.UnknownRetryAfter / time.Millisecond)},
		{"one for ten minutes", 0, 10 * time.Minute, int32((10*time.Minute - time.Minute) / time.Millisecond), int32(10 * time.Minute / time.Millisecond)},
		{"the earliest of two", time.Hour, 10 * time.Minute, int32((10*time.Minute - time.Minute) / time.Millisecond), int32(10 * time.Minute / time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			force("a", tt.a)
			force("b", tt.b)
			resp := infer(t, h, "a")
			e := resp.GetError()
			require.NotNil(t, e, "reply with every breaker forced open: %v", resp)
			assert.Equal(t, messages.ErrorClass_circuit_open, e.GetClass(), "class")
			assert.Equal(t, "all_unavailable", e.GetCode(), "code")
			assert.GreaterOrEqual(t, e.GetRetryAfterMs(), tt.min, "retry_after_ms")
			assert.LessOrEqual(t, e.GetRetryAfterMs(), tt.max, "retry_after_ms")
		})
	}
	assert.Zero(t, a.calls.Load()+b.calls.Load(), "calls to forced-open models")
}

// A group may have MaxOpenShare of its members open (and always one): an
// open member within that share gets no traffic, even when the others
// fail. Here one of two members is open, which the default share (0.5)
// allows, so its breaker must be respected.
func TestOpenMemberWithinGroupShareIsNotCalled(t *testing.T) {
	a, b := newSwitchable(answerFail), newSwitchable(answerFail)
	h := startHive(t,
		ModelSpec{Name: "a", Provider: a, Fallbacks: []string{"b"}, Retry: noRetry,
			Breaker: resilience.BreakerConfig{ConsecutiveFailures: 1, OpenDuration: time.Hour}},
		// b keeps failing but stays closed (5 failures in a row to trip).
		ModelSpec{Name: "b", Provider: b, Retry: noRetry},
	)
	first := infer(t, h, "a")
	require.Equal(t, []string{"a=server_error", "b=server_error"}, classes(first.GetAttempts()), "the request that opens a")

	resp := infer(t, h, "a")
	assert.Equal(t, []string{"b=server_error"}, classes(resp.GetAttempts()), "attempts: a's breaker is open and within the group's share")
	assert.Equal(t, int64(1), a.calls.Load(), "calls to a past its open breaker")
}

// With whenAllDown.reply, a request no model can take gets the configured
// text as a degraded success instead of an error.
func TestAllDownDegradedReply(t *testing.T) {
	a := newSwitchable(answerFail)
	h := startHiveWith(t, Config{
		Group:   resilience.GroupConfig{PanicRate: -1},
		AllDown: AllDown{Reply: "We are busy; please try again shortly."},
		Models: []ModelSpec{{Name: "a", Provider: a, Retry: noRetry,
			Breaker: resilience.BreakerConfig{ConsecutiveFailures: 1, OpenDuration: time.Hour}}},
	})
	infer(t, h, "a") // opens the breaker
	resp := infer(t, h, "a")
	assert.Nil(t, resp.GetError())
	assert.Equal(t, "We are busy; please try again shortly.", resp.GetContent())
	assert.Equal(t, DegradedReply, resp.GetServedBy())
	assert.Equal(t, messages.Degradation_critical, resp.GetDegradation())
	assert.Equal(t, int64(1), a.calls.Load(), "the open model is not called")
}

// With whenAllDown.wait, a request no model can take waits for one to
// come back: here the model's breaker half-opens and the request is served.
func TestAllDownWaitsForRecovery(t *testing.T) {
	a := newSwitchable(answerFail)
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher: rec,
		Group:     resilience.GroupConfig{PanicRate: -1},
		AllDown:   AllDown{Wait: waitLimit},
		Recovery:  Recovery{Disabled: true},
		Models: []ModelSpec{{Name: "a", Provider: a, Retry: noRetry,
			Breaker: resilience.BreakerConfig{ConsecutiveFailures: 1, OpenDuration: 50 * time.Millisecond, MaxOpenDuration: 50 * time.Millisecond}}},
	})
	infer(t, h, "a") // opens the breaker
	rec.breakerTo(t, "a", messages.BreakerState_open)
	a.mode.Store(answerOK)
	resp := infer(t, h, "a") // waits until the breaker half-opens
	assert.Nil(t, resp.GetError(), "reply: %v", resp)
	assert.Equal(t, "a", resp.GetServedBy())
}
