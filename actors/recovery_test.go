package actors

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/sim"
	"github.com/cmmv-hive/resilience/resilience"
)

// freshAfterFirst returns a NewProvider that builds first the first time
// and fresh every later time, counting the builds.
func freshAfterFirst(built *atomic.Int32, first, fresh providers.Provider) func() (providers.Provider, error) {
	return func() (providers.Provider, error) {
		if built.Add(1) == 1 {
			return first, nil
		}
		return fresh, nil
	}
}

// recoverable is a model whose first client always fails and whose fresh
// one is fresh; its breaker opens on the third failure, when health calls
// it unavailable, for longer than any test, so only recovery brings it
// back.
func recoverable(t *testing.T, name string, built *atomic.Int32, fresh providers.Provider) ModelSpec {
	t.Helper()
	failing, err := sim.New(sim.Config{Name: name, FailureRate: 1})
	require.NoError(t, err)
	return ModelSpec{
		Name: name, Provider: failing, NewProvider: freshAfterFirst(built, failing, fresh), Retry: noRetry,
		Breaker: resilience.BreakerConfig{ConsecutiveFailures: 3, OpenDuration: time.Hour, SuccessThreshold: 2},
		Ramp:    resilience.RampConfig{Steps: []int{100}},
	}
}

func failThrice(t *testing.T, h *Hive, model string) {
	t.Helper()
	for i := range 3 {
		resp := infer(t, h, model)
		require.Equal(t, []string{model + "=server_error"}, classes(resp.GetAttempts()), "failing request %d to %s", i+1, model)
	}
}

// A model that becomes unavailable is recovered without a human: restarted
// with a fresh provider client, probed through half-open, closed.
func TestRecoveryRestartsWithFreshProvider(t *testing.T) {
	var built atomic.Int32
	// The fresh client's latency makes the recovery take at least that long.
	fresh, err := sim.New(sim.Config{Name: "m", Latency: 2 * time.Millisecond})
	require.NoError(t, err)
	rec := newRecorder()
	h := startHiveWith(t, Config{Publisher: rec, Models: []ModelSpec{recoverable(t, "m", &built, fresh)}})
	require.Equal(t, int32(1), built.Load(), "providers built at start")

	failThrice(t, h, "m")
	started := rec.recoveryOf(t, "m", messages.RecoveryEvent_recovery_started)
	assert.Equal(t, "model_unavailable", started.Trigger, "recovery trigger")

	half := rec.waitFor(t, "m open -> half_open", isBreaker("m", messages.BreakerState_open, messages.BreakerState_half_open)).(*messages.BreakerTransition)
	assert.Equal(t, messages.BreakerTransition_probe, half.Reason, "half-open reason")
	closed := rec.breakerTo(t, "m", messages.BreakerState_closed)
	assert.Equal(t, messages.BreakerState_half_open, closed.From, "closed from")
	assert.Equal(t, messages.BreakerTransition_probe, closed.Reason, "close reason")

	done := rec.recoveryOf(t, "m", messages.RecoveryEvent_recovery_succeeded)
	assert.Equal(t, "model_unavailable", done.Trigger, "succeeded trigger")
	assert.Positive(t, done.DurationMs, "recovery duration (at least one 2 ms probe)")
	assert.Empty(t, rec.recoveries("m", messages.RecoveryEvent_recovery_failed), "recovery_failed events")
	assert.Equal(t, int32(2), built.Load(), "providers built: the first, and a fresh one for the restart")

	resp := infer(t, h, "m")
	assert.Equal(t, "m", resp.GetServedBy(), "served_by after recovery: %v", resp.GetError())
}

// At most Recovery.MaxConcurrent recoveries run at once; a model that
// needs one meanwhile waits its turn.
func TestRecoveryConcurrencyLimit(t *testing.T) {
	var builtA, builtB atomic.Int32
	slowFresh := newLatch() // a's recovery lasts until the test opens it
	fresh, err := sim.New(sim.Config{Name: "b"})
	require.NoError(t, err)
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher: rec,
		Recovery:  Recovery{MaxConcurrent: 1},
		Models:    []ModelSpec{recoverable(t, "a", &builtA, slowFresh), recoverable(t, "b", &builtB, fresh)},
	})

	failThrice(t, h, "a")
	rec.recoveryOf(t, "a", messages.RecoveryEvent_recovery_started)
	signalled(t, slowFresh.entered, "a's first probe") // a is mid-recovery

	// b's third failure is reported to recovery before its reply comes
	// back, so recovery has b's trigger before a's recovery can end.
	failThrice(t, h, "b")
	close(slowFresh.open)

	aDone := rec.recoveryOf(t, "a", messages.RecoveryEvent_recovery_succeeded)
	rec.recoveryOf(t, "b", messages.RecoveryEvent_recovery_started)
	rec.recoveryOf(t, "b", messages.RecoveryEvent_recovery_succeeded)
	assert.Equal(t, "model_unavailable", aDone.Trigger, "a's trigger")

	// Replay the record: never more than one recovery active.
	active, most := 0, 0
	var order []string
	for _, ev := range rec.all() {
		e, ok := ev.(*messages.RecoveryEvent)
		if !ok {
			continue
		}
		switch e.Kind {
		case messages.RecoveryEvent_recovery_started:
			active++
		case messages.RecoveryEvent_recovery_succeeded, messages.RecoveryEvent_recovery_failed:
			active--
		default:
			continue
		}
		most = max(most, active)
		order = append(order, e.Model+" "+e.Kind.String())
	}
	assert.Equal(t, 1, most, "most recoveries at once: got %d, want 1 (order %v)", most, order)
	assert.Equal(t, []string{"a recovery_started", "a recovery_succeeded", "b recovery_started", "b recovery_succeeded"}, order, "recovery order")
	assert.Equal(t, int32(2), builtA.Load(), "a's providers built")
	assert.Equal(t, int32(2), builtB.Load(), "b's providers built")
}

// A model's counters describe the model, not one incarnation of its
// actor: a recovery restart must not zero them, or Status under-reports
// exactly the models that had trouble.
func TestStatusCountersSurviveRestart(t *testing.T) {
	var built atomic.Int32
	fresh, err := sim.New(sim.Config{Name: "m"})
	require.NoError(t, err)
	rec := newRecorder()
	h := startHiveWith(t, Config{Publisher: rec, Models: []ModelSpec{recoverable(t, "m", &built, fresh)}})

	failThrice(t, h, "m")
	rec.recoveryOf(t, "m", messages.RecoveryEvent_recovery_succeeded)
	rec.breakerTo(t, "m", messages.BreakerState_closed)

	st, err := h.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	assert.Equal(t, int64(3), st.Requests, "requests after the recovery restart: got %d, want the 3 served before it", st.Requests)
	assert.Equal(t, int64(3), st.Failures, "failures after the recovery restart: got %d, want 3", st.Failures)
}

// A recovery that restarts a model whose breaker was still closed (health
// found it unavailable first) succeeds only when the breaker closes again
// after its trial, not on the restarted actor's report of the closed
// breaker: with a fresh client that fails too, it fails.
func TestRecoveryOfAClosedBreakerWaitsForTheTrial(t *testing.T) {
	var built atomic.Int32
	failingToo, err := sim.New(sim.Config{Name: "m", FailureRate: 1})
	require.NoError(t, err)
	rec := newRecorder()
	spec := recoverable(t, "m", &built, failingToo)
	spec.Breaker.ConsecutiveFailures = 10 // health calls it unavailable after 3; the breaker stays closed
	h := startHiveWith(t, Config{Publisher: rec, Models: []ModelSpec{spec}})

	failThrice(t, h, "m")
	rec.recoveryOf(t, "m", messages.RecoveryEvent_recovery_started)
	failed := rec.recoveryOf(t, "m", messages.RecoveryEvent_recovery_failed)
	assert.Contains(t, failed.Detail, "trial failed", "why the recovery failed")
	assert.Empty(t, rec.recoveries("m", messages.RecoveryEvent_recovery_succeeded), "a recovery whose trial failed succeeded")
}
