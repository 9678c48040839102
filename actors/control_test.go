package actors

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers/sim"
	"github.com/cmmv-hive/resilience/resilience"
)

// controlHive starts "m" with fallback "backup". Random draws 0, so a
// ramping m still gets every request.
func controlHive(t *testing.T) (*Hive, *recorder) {
	t.Helper()
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher: rec,
		Random:    func() float64 { return 0 },
		Models: []ModelSpec{
			simModel(t, "m", 0, messages.ErrorClass_ok, "backup"),
			simModel(t, "backup", 0, messages.ErrorClass_ok),
		},
	})
	return h, rec
}

// An operator forces a breaker open, then closes it; both are published
// with who asked, and traffic follows.
func TestControlForceOpenAndClose(t *testing.T) {
	h, rec := controlHive(t)
	require.Equal(t, "m", infer(t, h, "m").GetServedBy(), "served_by before any action")

	st, err := h.Control("m", OpForceOpen, 0, "alice", "maintenance window")
	require.NoError(t, err)
	assert.Equal(t, messages.BreakerState_forced_open, st.Breaker, "breaker after force open")
	forced := rec.breakerTo(t, "m", messages.BreakerState_forced_open)
	assert.Equal(t, "alice", forced.Actor, "transition actor")
	assert.Equal(t, messages.BreakerTransition_manual, forced.Reason, "transition reason")
	audit := rec.recoveryOf(t, "m", messages.RecoveryEvent_manual_action)
	assert.Equal(t, "alice", audit.Actor, "audit actor")

	resp := infer(t, h, "m")
	assert.Equal(t, "backup", resp.GetServedBy(), "served_by while forced open")
	assert.Equal(t, []string{"backup=ok"}, classes(resp.GetAttempts()), "attempts while forced open: m is skipped")

	st, err = h.Control("m", OpClose, 0, "alice", "done")
	require.NoError(t, err)
	assert.Equal(t, messages.BreakerState_closed, st.Breaker, "breaker after close")
	closed := rec.breakerTo(t, "m", messages.BreakerState_closed)
	assert.Equal(t, messages.BreakerState_forced_open, closed.From, "closed from")
	assert.Equal(t, "alice", closed.Actor, "close actor")
	ramp := rec.recoveryOf(t, "m", messages.RecoveryEvent_ramp_step)
	assert.Equal(t, int32(10), ramp.RampPercent, "traffic ramps back from the first default step")

	resp = infer(t, h, "m")
	assert.Equal(t, "m", resp.GetServedBy(), "served_by after close")
	assert.Equal(t, []string{"m=ok"}, classes(resp.GetAttempts()), "attempts after close")
}

// Disabling takes a model out of rotation (health maintenance); enabling
// brings it back.
func TestControlDisableEnable(t *testing.T) {
	h, rec := controlHive(t)
	require.Equal(t, "m", infer(t, h, "m").GetServedBy(), "served_by before any action")

	st, err := h.Control("m", OpDisable, 0, "bob", "")
	require.NoError(t, err)
	assert.False(t, st.Enabled, "enabled after disable")
	assert.Equal(t, messages.HealthStatus_maintenance, st.Health, "health after disable")
	rec.waitFor(t, "m health -> maintenance", func(ev any) bool {
		e, ok := ev.(*messages.HealthChanged)
		return ok && e.Model == "m" && e.To == messages.HealthStatus_maintenance
	})
	resp := infer(t, h, "m")
	assert.Equal(t, []string{"backup=ok"}, classes(resp.GetAttempts()), "attempts while disabled")

	st, err = h.Control("m", OpEnable, 0, "bob", "")
	require.NoError(t, err)
	assert.True(t, st.Enabled, "enabled after enable")
	assert.NotEqual(t, messages.HealthStatus_maintenance, st.Health, "health after enable")
	resp = infer(t, h, "m")
	assert.Equal(t, []string{"m=ok"}, classes(resp.GetAttempts()), "attempts after enable")
}

func TestControlUnknownModelAndAction(t *testing.T) {
	h, _ := controlHive(t)
	_, err := h.Control("gpt-6", OpForceOpen, 0, "alice", "")
	assert.True(t, errors.Is(err, ErrUnknownModel), "error %v, want ErrUnknownModel", err)
	_, err = h.Control("m", ControlOp("explode"), 0, "alice", "")
	assert.Error(t, err, "unknown action")
}

// In degraded mode with CriticalOnly, normal requests are shed and
// critical ones served.
func TestDegradedModeAdmitsOnlyCritical(t *testing.T) {
	slow, err := sim.New(sim.Config{Name: "slow", Latency: 10 * time.Millisecond})
	require.NoError(t, err)
	h := startHiveWith(t, Config{
		// Any served request slower than 4 ms puts the group at critical:
		// the sim's 10 ms latency always does.
		Degradation: resilience.DegradationConfig{
			CriticalOnly: true,
			ResponseTime: [4]time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond},
		},
		Models: []ModelSpec{{Name: "slow", Provider: slow, Retry: noRetry}},
	})

	first := infer(t, h, "slow")
	require.Nil(t, first.GetError(), "first request, before any evidence: %v", first.GetError())
	assert.Equal(t, messages.Degradation_critical, first.GetDegradation(), "degradation after a slow answer")

	shed := infer(t, h, "slow")
	assert.Equal(t, "shed_degraded", shed.GetError().GetCode(), "normal request in degraded mode: %v", shed.GetError())
	assert.Equal(t, messages.ErrorClass_no_capacity, shed.GetError().GetClass(), "class of a shed request")
	assert.Empty(t, shed.GetAttempts(), "attempts of a shed request")

	req := request("slow")
	req.Priority = messages.InferRequest_critical
	critical := await(t, send(h, req))
	assert.Nil(t, critical.GetError(), "critical request in degraded mode")
	assert.Equal(t, "slow", critical.GetServedBy(), "served_by of the critical request")

	req = request("slow")
	req.Priority = messages.InferRequest_high
	high := await(t, send(h, req))
	assert.Equal(t, "shed_degraded", high.GetError().GetCode(), "high is not critical: it is shed too")
}
