package actors

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

// A primary that answers within the hedge delay is never hedged.
func TestHedgeNotLaunchedForFastPrimary(t *testing.T) {
	backup := newSwitchable(answerOK)
	h := startHive(t,
		// The delay is long so that the race detector's slowness cannot make
		// the instant primary look slow: the test is about the decision.
		ModelSpec{Name: "a", Provider: newSwitchable(answerOK), Strategy: Hedged, HedgeDelay: 2 * time.Second, Fallbacks: []string{"b"}, Retry: noRetry},
		ModelSpec{Name: "b", Provider: backup, Retry: noRetry},
	)
	resp := infer(t, h, "a")
	require.Nil(t, resp.GetError(), "reply error")
	assert.Equal(t, "a", resp.GetServedBy(), "served_by")
	assert.Equal(t, []string{"a=ok"}, classes(resp.GetAttempts()), "attempts: one, no hedge")
	assert.Zero(t, backup.calls.Load(), "calls to the hedge candidate")
}

// A primary that does not answer within the delay is hedged by the next
// candidate, whose answer wins; the primary's call is then cancelled.
func TestHedgeLaunchesAfterDelayAndWins(t *testing.T) {
	const delay = 20 * time.Millisecond
	entries := make(chan string, 4)
	primary := newGate()
	h := startHive(t,
		ModelSpec{Name: "a", Provider: entryLog{"a", entries, primary}, Strategy: Hedged, HedgeDelay: delay, Fallbacks: []string{"b"}, Retry: noRetry},
		ModelSpec{Name: "b", Provider: entryLog{"b", entries, newSwitchable(answerOK)}, Retry: noRetry},
	)
	sent := time.Now()
	reply := send(h, request("a"))
	assert.Equal(t, "a", signalled(t, entries, "first call"), "first model called")
	assert.Equal(t, "b", signalled(t, entries, "hedge"), "second model called")
	// A lower bound the hedge timer guarantees (a timer never fires
	// early), not a measurement: the hedge did wait for its delay.
	if waited := time.Since(sent); waited < delay {
		t.Errorf("hedge entered %v after dispatch, want at least the hedge delay %v", waited, delay)
	}

	resp := await(t, reply)
	require.Nil(t, resp.GetError(), "reply error")
	assert.Equal(t, "b", resp.GetServedBy(), "served_by: the hedge answered first")
	assert.Equal(t, []string{"b=ok", "a=cancelled"}, classes(resp.GetAttempts()), "attempts")
	assert.True(t, resp.GetAttempts()[0].GetHedged(), "b's attempt is marked hedged")
	assert.False(t, resp.GetAttempts()[1].GetHedged(), "a's attempt is not")
}

// Hedges spend the group's retry budget: when it is used up, a slow
// primary is not hedged.
func TestHedgeRespectsRetryBudget(t *testing.T) {
	primary, hedge := newGate(), newGate()
	var hedges atomic.Int64
	h := startHiveWith(t, Config{
		// One extra call at a time, whatever the load (0.01 x 2 in flight
		// rounds down to 0, the floor is 1).
		BudgetMin:   1,
		BudgetRatio: 0.01,
		Models: []ModelSpec{
			{Name: "a", Provider: primary, Strategy: Hedged, HedgeDelay: 10 * time.Millisecond, Fallbacks: []string{"b"}, Retry: noRetry},
			{Name: "b", Provider: countCalls{&hedges, hedge}, Retry: noRetry},
		},
	})

	// The first request's hedge takes the only budget slot, and keeps it:
	// both its calls block.
	first := send(h, request("a"))
	signalled(t, primary.entered, "first request's primary call")
	signalled(t, hedge.entered, "first request's hedge")

	// The second request's primary blocks past its hedge delay until its
	// own deadline: the deadline's timeout is the event that says the hedge
	// timer has long fired and been refused.
	req := request("a")
	req.DeadlineMs = 300
	resp := await(t, send(h, req))
	signalled(t, primary.entered, "second request's primary call")
	assert.Equal(t, messages.ErrorClass_timeout, resp.GetError().GetClass(), "second reply: %v", resp.GetError())
	assert.Equal(t, []string{"a=timeout"}, classes(resp.GetAttempts()), "second request's attempts: no hedge")
	assert.Equal(t, int64(1), hedges.Load(), "calls to the hedge model: only the first request's")

	h.Stop()
	assert.Equal(t, messages.ErrorClass_cancelled, await(t, first).GetError().GetClass(), "first request after stop")
}
