package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// rampHive starts a model "m" on p, with fallback "backup", whose breaker
// opens after 2 failures for 50 ms and closes after 2 trial successes, and
// whose ramp is ramp. Random always draws 0, so a ramping model gets every
// request: the steps decide, not chance.
func rampHive(t *testing.T, p *switchable, ramp resilience.RampConfig) (*Hive, *recorder) {
	t.Helper()
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher: rec,
		Random:    func() float64 { return 0 },
		Recovery:  Recovery{Disabled: true},
		Models: []ModelSpec{
			{
				Name: "m", Provider: p, Fallbacks: []string{"backup"}, Retry: noRetry,
				Breaker: resilience.BreakerConfig{ConsecutiveFailures: 2, OpenDuration: 50 * time.Millisecond, SuccessThreshold: 2},
				Ramp:    ramp,
			},
			simModel(t, "backup", 0, messages.ErrorClass_ok),
		},
	})
	return h, rec
}

// breakAndHeal opens m's breaker with failures, heals the provider, waits
// for half-open and sends the trials that close it. It returns the closing
// transition.
func breakAndHeal(t *testing.T, h *Hive, rec *recorder, p *switchable) *messages.BreakerTransition {
	t.Helper()
	p.mode.Store(answerFail)
	for i := range 2 {
		resp := infer(t, h, "m")
		require.Equal(t, []string{"m=server_error", "backup=ok"}, classes(resp.GetAttempts()), "failing request %d", i+1)
	}
	rec.breakerTo(t, "m", messages.BreakerState_open)

	p.mode.Store(answerOK)
	half := rec.breakerTo(t, "m", messages.BreakerState_half_open)
	assert.Equal(t, messages.BreakerTransition_timer, half.Reason, "half-open reason")
	for i := range 2 { // SuccessThreshold trials
		resp := infer(t, h, "m")
		require.Equal(t, []string{"m=ok"}, classes(resp.GetAttempts()), "trial %d", i+1)
	}
	closed := rec.breakerTo(t, "m", messages.BreakerState_closed)
	assert.Equal(t, messages.BreakerState_half_open, closed.From, "closed from")
	assert.Equal(t, int32(2), closed.GetEvidence().GetCalls(), "trials behind the close: got %d, want SuccessThreshold 2", closed.GetEvidence().GetCalls())
	return closed
}

// After its breaker closes, a model gets its traffic back step by step:
// one ramp_step RecoveryEvent per configured step.
func TestRampClimbsAfterBreakerCloses(t *testing.T) {
	p := newSwitchable(answerOK)
	h, rec := rampHive(t, p, resilience.RampConfig{Steps: []int{50, 100}, Over: 100 * time.Millisecond, MinCalls: 2})
	breakAndHeal(t, h, rec, p)

	steps := rec.waitMatches(t, "m ramp steps", 2, isRecovery("m", messages.RecoveryEvent_ramp_step))
	var got []int32
	for _, ev := range steps {
		got = append(got, ev.(*messages.RecoveryEvent).RampPercent)
	}
	assert.Equal(t, []int32{50, 100}, got, "ramp percents")

	st, err := h.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	assert.Equal(t, int32(100), st.RampPercent, "ramp percent after the climb")
	assert.Equal(t, "m", infer(t, h, "m").GetServedBy(), "served_by at full traffic")
}

// A step whose calls fail regresses the ramp and reopens the breaker.
func TestRampRegressionReopensBreaker(t *testing.T) {
	p := newSwitchable(answerOK)
	// A long hold keeps the model on the 50 % step while the test fails it.
	h, rec := rampHive(t, p, resilience.RampConfig{Steps: []int{50, 100}, Over: time.Minute, MinCalls: 2})
	breakAndHeal(t, h, rec, p)
	started := rec.recoveryOf(t, "m", messages.RecoveryEvent_ramp_step)
	require.Equal(t, int32(50), started.RampPercent, "first step")

	// One failure in a step judged on 2 calls against the 0.9 floor
	// already makes the step fail, whatever comes next.
	p.mode.Store(answerFail)
	resp := infer(t, h, "m")
	assert.Equal(t, []string{"m=server_error", "backup=ok"}, classes(resp.GetAttempts()), "failing request during the step")

	reopened := rec.waitFor(t, "m closed -> open after the regression", func(ev any) bool {
		b, ok := ev.(*messages.BreakerTransition)
		return ok && b.Model == "m" && b.From == messages.BreakerState_closed && b.To == messages.BreakerState_open &&
			b.Reason == messages.BreakerTransition_threshold
	}).(*messages.BreakerTransition)
	assert.Equal(t, int32(2), reopened.Trips, "trips: the regression is the second trip")
	steps := rec.recoveries("m", messages.RecoveryEvent_ramp_step)
	require.Len(t, steps, 2, "ramp steps: started, then regressed")
	assert.Equal(t, int32(0), steps[1].RampPercent, "regressed step's percent: %s", steps[1].Detail)

	resp = infer(t, h, "m")
	assert.Equal(t, []string{"backup=ok"}, classes(resp.GetAttempts()), "attempts once reopened: m is skipped")
}
