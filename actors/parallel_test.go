package actors

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// Parallel races up to MaxParallel candidates: the first success wins, and
// the losers' provider calls are cancelled without counting against them.
func TestParallelFirstSuccessWinsAndLosersAreCancelled(t *testing.T) {
	winner := newGate()
	b, c := newCancelWatch(), newCancelWatch()
	// One counted failure would open a loser's breaker: a cancelled loser
	// must leave it closed.
	touchy := resilience.BreakerConfig{ConsecutiveFailures: 1}
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher: rec,
		Models: []ModelSpec{
			{Name: "a", Provider: winner, Strategy: Parallel, MaxParallel: 3, Fallbacks: []string{"b", "c"}, Retry: noRetry},
			{Name: "b", Provider: b, Breaker: touchy, Retry: noRetry},
			{Name: "c", Provider: c, Breaker: touchy, Retry: noRetry},
		},
	})

	reply := send(h, request("a"))
	signalled(t, winner.entered, "a called")
	signalled(t, b.entered, "b called in parallel")
	signalled(t, c.entered, "c called in parallel")
	winner.release <- struct{}{}

	resp := await(t, reply)
	require.Nil(t, resp.GetError(), "reply error")
	assert.Equal(t, "a", resp.GetServedBy(), "served_by")
	assert.ElementsMatch(t, []string{"a=ok", "b=cancelled", "c=cancelled"}, classes(resp.GetAttempts()), "attempts")

	signalled(t, b.cancelled, "b's provider call cancelled")
	signalled(t, c.cancelled, "c's provider call cancelled")

	for _, name := range []string{"b", "c"} {
		st, err := h.Control(name, OpStatus, 0, "", "")
		require.NoError(t, err)
		assert.Zero(t, st.Failures, "%s failures: got %d, want 0 (a cancelled loser is no evidence)", name, st.Failures)
		assert.Equal(t, messages.BreakerState_closed, st.Breaker, "%s breaker", name)
		assert.Empty(t, rec.breakers(name), "%s breaker transitions", name)
	}
}

// A failed racer does not end the race: the run waits for the one still
// out.
func TestParallelFailureDoesNotEndTheRace(t *testing.T) {
	slow := newGate()
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher: rec,
		Models: []ModelSpec{
			// a's failure opens its breaker: an event to wait on.
			{Name: "a", Provider: newSwitchable(answerFail), Strategy: Parallel, Fallbacks: []string{"b"}, Retry: noRetry,
				Breaker: resilience.BreakerConfig{ConsecutiveFailures: 1}},
			{Name: "b", Provider: slow, Retry: noRetry},
		},
	})
	reply := send(h, request("a"))
	signalled(t, slow.entered, "b called in parallel")
	rec.breakerTo(t, "a", messages.BreakerState_open)
	// a's actor answers a question only after the handler that failed the
	// call, and so sent its result to the router, has returned.
	_, err := h.Control("a", OpStatus, 0, "", "")
	require.NoError(t, err)
	slow.release <- struct{}{}

	resp := await(t, reply)
	require.Nil(t, resp.GetError(), "reply error")
	assert.Equal(t, "b", resp.GetServedBy(), "served_by")
	assert.Equal(t, []string{"a=server_error", "b=ok"}, classes(resp.GetAttempts()), "attempts")
}
