package actors

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
)

// Modes of a callLog beyond answerOK and answerFail.
const answerRateLimited int32 = 10

// callLog answers as its mode says (rate_limited with retryAfter for
// answerRateLimited) and reports the time of every call that enters it on
// calls, probes included.
type callLog struct {
	mode       atomic.Int32
	retryAfter time.Duration
	calls      chan time.Time
}

func newCallLog(mode int32) *callLog {
	c := &callLog{calls: make(chan time.Time, 4096)}
	c.mode.Store(mode)
	return c
}

func (c *callLog) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	select {
	case c.calls <- time.Now():
	default:
	}
	switch c.mode.Load() {
	case answerFail:
		return nil, providers.Errorf(messages.ErrorClass_server_error, "down")
	case answerRateLimited:
		return nil, &providers.Error{Class: messages.ErrorClass_rate_limited, StatusCode: 429, RetryAfter: c.retryAfter, Message: "slow down"}
	}
	return &providers.Result{Content: "ok", StatusCode: 200}, nil
}

// probeHive starts model "m" on p (fallback "backup") whose breaker opens
// after 2 failures for an hour, unless its period is set, with recovery
// probes every 10 ms while open and while ramping, and ramp.
func probeHive(t *testing.T, p providers.Provider, ramp resilience.RampConfig) (*Hive, *recorder) {
	t.Helper()
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher: rec,
		Random:    func() float64 { return 0.5 }, // no jitter: the ramp's draw at 0.5, the breaker's period as set
		Recovery:  Recovery{Disabled: true},
		Models: []ModelSpec{
			{
				Name: "m", Provider: p, Fallbacks: []string{"backup"}, Retry: noRetry,
				Breaker:           resilience.BreakerConfig{ConsecutiveFailures: 2, OpenDuration: time.Hour, SuccessThreshold: 2},
				Ramp:              ramp,
				OpenProbeInterval: 10 * time.Millisecond,
				RampProbeInterval: 10 * time.Millisecond,
			},
			simModel(t, "backup", 0, messages.ErrorClass_ok),
		},
	})
	return h, rec
}

// openWithFailures sends the two failing requests that open m's breaker.
func openWithFailures(t *testing.T, h *Hive, rec *recorder) *messages.BreakerTransition {
	t.Helper()
	for i := range 2 {
		resp := infer(t, h, "m")
		require.Equal(t, []string{"m=server_error", "backup=ok"}, classes(resp.GetAttempts()), "failing request %d", i+1)
	}
	return rec.breakerTo(t, "m", messages.BreakerState_open)
}

// While open for an hour, a model that heals is half-opened by a probe
// (reason probe), its probes' trials close it, and probes carry its ramp
// to full traffic with no request at all: every step on evidence, each
// ramp event saying a probe moved it.
func TestProbeHalfOpensEarlyAndRampsOnProbes(t *testing.T) {
	p := newCallLog(answerFail)
	h, rec := probeHive(t, p, resilience.RampConfig{Over: time.Hour, Successes: 2})
	open := openWithFailures(t, h, rec)
	require.True(t, open.GetOpenUntil().AsTime().After(time.Now().Add(50*time.Minute)), "open for the hour")

	p.mode.Store(answerOK)
	half := rec.breakerTo(t, "m", messages.BreakerState_half_open)
	assert.Equal(t, messages.BreakerTransition_probe, half.Reason, "half-open reason")
	assert.Equal(t, "probe", half.Actor, "half-open actor")
	closed := rec.breakerTo(t, "m", messages.BreakerState_closed)
	assert.Equal(t, "probe", closed.Actor, "the probe's trials close it")

	steps := rec.waitMatches(t, "ramp started, 3 steps on probes", 4, isRecovery("m", messages.RecoveryEvent_ramp_step))
	var percents []int32
	for i, ev := range steps {
		e := ev.(*messages.RecoveryEvent)
		percents = append(percents, e.RampPercent)
		assert.Equal(t, "probe", e.Trigger, "step %d trigger (%s)", i, e.Detail)
		if i > 0 {
			assert.True(t, strings.HasSuffix(e.Detail, ", on evidence"), "step %d passed on evidence: %s", i, e.Detail)
		}
	}
	assert.Equal(t, []int32{10, 25, 50, 100}, percents, "ramp percents")
	st, err := h.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	assert.Equal(t, int32(100), st.RampPercent, "ramp percent")
	assert.Equal(t, messages.BreakerState_closed, st.Breaker, "breaker")
}

// A failed probe while open changes nothing: no transition, the same open
// period, no trip; the model keeps being probed.
func TestProbeFailureKeepsItOpen(t *testing.T) {
	p := newCallLog(answerFail)
	h, rec := probeHive(t, p, resilience.RampConfig{})
	open := openWithFailures(t, h, rec)
	for range 2 {
		<-p.calls // the two requests
	}
	for range 5 {
		signalled(t, p.calls, "a probe while open")
	}
	st, err := h.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	assert.Equal(t, messages.BreakerState_open, st.Breaker, "breaker after 5 failed probes")
	assert.GreaterOrEqual(t, st.Probes, int64(4), "probes counted in the status (the fifth may be in flight)")
	bs := rec.breakers("m")
	require.Len(t, bs, 1, "breaker transitions: only the opening (%v)", bs)
	assert.Equal(t, open.Trips, bs[0].Trips, "trips")
	resp := infer(t, h, "m")
	assert.Equal(t, []string{"backup=ok"}, classes(resp.GetAttempts()), "still open: m is skipped")
}

// An opening for a Retry-After is not probed before the pause ends: the
// breaker half-opens by its timer at the end of the pause, and no call
// reached the model in between.
func TestProbeWaitsForRetryAfter(t *testing.T) {
	p := newCallLog(answerRateLimited)
	p.retryAfter = 300 * time.Millisecond
	h, rec := probeHive(t, p, resilience.RampConfig{})
	resp := infer(t, h, "m")
	require.Equal(t, []string{"m=rate_limited", "backup=ok"}, classes(resp.GetAttempts()), "rate-limited request")
	open := rec.breakerTo(t, "m", messages.BreakerState_open)
	require.Equal(t, messages.BreakerTransition_retry_after, open.Reason, "opening reason")
	<-p.calls // the request
	p.mode.Store(answerOK)
	half := rec.breakerTo(t, "m", messages.BreakerState_half_open)
	assert.Equal(t, messages.BreakerTransition_timer, half.Reason, "half-open at the end of the pause, by the timer, not by a probe")
	until := open.GetOpenUntil().AsTime()
	for {
		select {
		case at := <-p.calls:
			assert.False(t, at.Before(until), "a call at %v, before the Retry-After ends at %v", at, until)
			continue
		default:
		}
		break
	}
}

// While ramping, a probe's failure drops a step (a ramp_step event, share
// down) and the ramp goes on.
func TestProbeFailureDropsARampStep(t *testing.T) {
	p := newCallLog(answerFail)
	h, rec := probeHive(t, p, resilience.RampConfig{Steps: []int{10, 50, 100}, Over: time.Hour, Successes: 3, MinCalls: 100})
	openWithFailures(t, h, rec)
	p.mode.Store(answerOK)
	rec.waitFor(t, "m ramp at 50 %", func(ev any) bool {
		e, ok := ev.(*messages.RecoveryEvent)
		return ok && e.Model == "m" && e.Kind == messages.RecoveryEvent_ramp_step && e.RampPercent == 50
	})
	p.mode.Store(answerFail)
	drop := rec.waitFor(t, "m ramp dropped to 10 %", func(ev any) bool {
		e, ok := ev.(*messages.RecoveryEvent)
		return ok && e.Model == "m" && e.Kind == messages.RecoveryEvent_ramp_step && strings.HasPrefix(e.Detail, "ramp dropped")
	}).(*messages.RecoveryEvent)
	assert.Equal(t, int32(10), drop.RampPercent, "share after the drop: %s", drop.Detail)
	assert.Equal(t, "probe", drop.Trigger, "drop trigger")
}
