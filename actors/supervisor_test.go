package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// Supervision with jitter off (negative, since 0 means the default 0.2),
// so the delays are exactly base x 2^(n-1), capped.
var exactSupervision = Supervision{MaxRestarts: 4, Within: time.Minute, BaseDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond, Jitter: -1}

// A model whose provider panics is restarted with a growing delay; past
// MaxRestarts within Within the supervisor gives up, alerts, and traffic
// goes to the fallback only.
func TestSupervisorRestartsWithGrowingDelayThenGivesUp(t *testing.T) {
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher:   rec,
		Supervision: exactSupervision,
		Recovery:    Recovery{Disabled: true},
		Models: []ModelSpec{
			{Name: "buggy", Provider: panicky{}, Fallbacks: []string{"good"}, Retry: noRetry},
			simModel(t, "good", 0, messages.ErrorClass_ok),
		},
		Alerts: Alerts{Enabled: true, Rules: AlertRules{SupervisorGaveUp: AlertRule{Enabled: true, Severity: messages.Alert_critical}}},
	})

	crashes := exactSupervision.MaxRestarts + 1
	for n := 1; n <= crashes; n++ {
		// A question to the model is answered by incarnation n once it runs
		// (its mailbox is suspended until the restart).
		_, err := h.Control("buggy", OpStatus, 0, "", "")
		require.NoError(t, err, "status before crash %d", n)
		resp := infer(t, h, "buggy")
		require.Equal(t, []string{"buggy=server_error", "good=ok"}, classes(resp.GetAttempts()), "crash %d: the panicking attempt is answered with an error", n)
		if n <= exactSupervision.MaxRestarts {
			rec.waitFor(t, "restart", func(ev any) bool {
				e, ok := ev.(*messages.RecoveryEvent)
				return ok && e.Model == "buggy" && e.Kind == messages.RecoveryEvent_restart && int(e.Attempt) == n
			})
		}
	}

	gaveUp := rec.recoveryOf(t, "buggy", messages.RecoveryEvent_gave_up)
	assert.Equal(t, int32(crashes), gaveUp.Attempt, "gave_up attempt (crashes within the window)")
	alert := rec.waitFor(t, "supervisor_gave_up alert", func(ev any) bool {
		a, ok := ev.(*messages.Alert)
		return ok && a.Rule == "supervisor_gave_up" && a.Model == "buggy"
	}).(*messages.Alert)
	assert.Equal(t, messages.Alert_critical, alert.Severity, "alert severity")

	var attempts, delays []int32
	for _, ev := range rec.recoveries("buggy", messages.RecoveryEvent_restart) {
		attempts = append(attempts, ev.Attempt)
		delays = append(delays, ev.DurationMs)
	}
	assert.Equal(t, []int32{1, 2, 3, 4}, attempts, "restart attempts")
	assert.Equal(t, []int32{1, 2, 4, 4}, delays, "restart delays in ms: base x 2^(n-1), capped at MaxDelay")

	for i := range 3 {
		resp := infer(t, h, "buggy")
		assert.Equal(t, []string{"good=ok"}, classes(resp.GetAttempts()), "request %d after giving up: the model is not tried", i+1)
	}
	for _, st := range h.Status() {
		if st.Name == "buggy" {
			assert.Equal(t, messages.HealthStatus_unavailable, st.Health, "status of the given-up model")
			assert.True(t, st.GaveUp, "gave_up in the status of the given-up model")
		} else {
			assert.False(t, st.GaveUp, "gave_up in the status of %s", st.Name)
		}
	}
}

// Without a fallback, the caller of a panicking request gets the model's
// error, never a hang; once the supervisor gave up, circuit_open.
func TestPanicWithoutFallbackAnswersTheCaller(t *testing.T) {
	rec := newRecorder()
	sup := exactSupervision
	sup.MaxRestarts = 1
	h := startHiveWith(t, Config{
		Publisher:   rec,
		Supervision: sup,
		Recovery:    Recovery{Disabled: true},
		Models:      []ModelSpec{{Name: "solo", Provider: panicky{}, Retry: noRetry}},
	})

	resp := infer(t, h, "solo")
	assert.Equal(t, messages.ErrorClass_server_error, resp.GetError().GetClass(), "first crash: %v", resp.GetError())
	rec.recoveryOf(t, "solo", messages.RecoveryEvent_restart)

	_, err := h.Control("solo", OpStatus, 0, "", "")
	require.NoError(t, err, "status after the restart")
	resp = infer(t, h, "solo")
	assert.Equal(t, messages.ErrorClass_server_error, resp.GetError().GetClass(), "second crash: %v", resp.GetError())
	rec.recoveryOf(t, "solo", messages.RecoveryEvent_gave_up)

	resp = infer(t, h, "solo")
	assert.Equal(t, messages.ErrorClass_circuit_open, resp.GetError().GetClass(), "after giving up: %v", resp.GetError())
	assert.Equal(t, "all_unavailable", resp.GetError().GetCode(), "code after giving up")
	assert.Empty(t, resp.GetAttempts(), "attempts after giving up")
}

// A restarted model is back in rotation as soon as its new incarnation
// runs. The supervisor tells the router a crashed model is down; that
// notice must never arrive after the new incarnation said it is up. A
// restart delay of 1 ns makes the restart race the notice on every crash.
func TestRestartedModelReturnsToRotation(t *testing.T) {
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher:   rec,
		Supervision: Supervision{MaxRestarts: 5000, Within: time.Minute, BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond, Jitter: -1},
		Recovery:    Recovery{Disabled: true},
		Models: []ModelSpec{
			// The breaker outlives restarts, so it would rightly open on the
			// fifth crash in a row; this test is about rotation after a
			// restart, so it stays closed.
			{Name: "buggy", Provider: panicky{}, Fallbacks: []string{"good"}, Retry: noRetry,
				Breaker: resilience.BreakerConfig{ConsecutiveFailures: 1 << 20}},
			simModel(t, "good", 0, messages.ErrorClass_ok),
		},
	})
	for n := 1; n <= 1000; n++ {
		// Answered by the incarnation that runs after restart n-1, which has
		// told the router it is up before answering.
		_, err := h.Control("buggy", OpStatus, 0, "", "")
		require.NoError(t, err, "status before crash %d", n)
		resp := infer(t, h, "buggy")
		if got := classes(resp.GetAttempts()); len(got) != 2 {
			later := classes(infer(t, h, "buggy").GetAttempts())
			t.Fatalf("request after restart %d: attempts %v, want buggy tried first (buggy=server_error, good=ok); "+
				"the next request: %v: the running model is out of rotation", n-1, got, later)
		}
		rec.waitFor(t, "restart", func(ev any) bool {
			e, ok := ev.(*messages.RecoveryEvent)
			return ok && e.Model == "buggy" && e.Kind == messages.RecoveryEvent_restart && int(e.Attempt) == n
		})
	}
}

// A model the supervisor gave up on stays out until an operator enables
// it; the enable starts it again, and it serves.
func TestGivenUpModelComesBackOnEnable(t *testing.T) {
	rec := newRecorder()
	sup := exactSupervision
	sup.MaxRestarts = 1
	p := newSwitchable(answerPanic)
	h := startHiveWith(t, Config{
		Publisher:   rec,
		Supervision: sup,
		Recovery:    Recovery{Disabled: true},
		Models: []ModelSpec{{Name: "solo", Provider: p, Retry: noRetry,
			Breaker: resilience.BreakerConfig{ConsecutiveFailures: 1 << 20}}},
	})
	infer(t, h, "solo")
	rec.recoveryOf(t, "solo", messages.RecoveryEvent_restart)
	_, err := h.Control("solo", OpStatus, 0, "", "") // the restarted incarnation is up
	require.NoError(t, err)
	infer(t, h, "solo")
	rec.recoveryOf(t, "solo", messages.RecoveryEvent_gave_up)

	_, err = h.Control("solo", OpForceOpen, 0, "alice", "")
	assert.ErrorIs(t, err, ErrGaveUp, "a given-up model takes no action but enable")
	assert.Equal(t, "all_unavailable", infer(t, h, "solo").GetError().GetCode(), "no traffic while given up")

	p.mode.Store(answerOK) // the operator fixed what made it crash
	st, err := h.Control("solo", OpEnable, 0, "alice", "fixed")
	require.NoError(t, err)
	assert.True(t, st.GetEnabled())
	back := rec.waitFor(t, "the operator's restart", func(ev any) bool {
		e, ok := ev.(*messages.RecoveryEvent)
		return ok && e.Model == "solo" && e.Kind == messages.RecoveryEvent_restart && e.Trigger == "operator"
	}).(*messages.RecoveryEvent)
	assert.Equal(t, "alice", back.GetActor())
	resp := infer(t, h, "solo")
	require.Nil(t, resp.GetError(), "served again after the enable")
	assert.Equal(t, "solo", resp.GetServedBy())
}
