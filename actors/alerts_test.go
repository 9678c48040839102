package actors

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/observe"
	"github.com/cmmv-hive/resilience/providers/sim"
	"github.com/cmmv-hive/resilience/resilience"
)

// The alert tests run in a synctest bubble: the clock is fake, time.Sleep
// steps it (every timer due meanwhile fires, the alerts actor's ticks
// included), and synctest.Wait returns once every goroutine of the Hive is
// idle again, so what the ticks did is in the recorder.

// step moves the fake clock by d and waits for the Hive to settle.
func step(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// alertsOf returns the Alerts of rule and model published so far.
func (r *recorder) alertsOf(rule, model string) []*messages.Alert {
	var out []*messages.Alert
	for _, ev := range r.all() {
		if a, ok := ev.(*messages.Alert); ok && a.Rule == rule && a.Model == model {
			out = append(out, a)
		}
	}
	return out
}

// alertStates renders alerts as their states, in order.
func alertStates(as []*messages.Alert) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.State.String())
	}
	return out
}

// isAlert matches an Alert of rule and model in state.
func isAlert(rule, model string, state messages.Alert_State) func(any) bool {
	return func(ev any) bool {
		a, ok := ev.(*messages.Alert)
		return ok && a.Rule == rule && a.Model == model && a.State == state
	}
}

// only enables one rule, with a one-second interval.
func only(set func(*AlertRules)) Alerts {
	a := Alerts{Enabled: true, Interval: time.Second}
	set(&a.Rules)
	return a
}

// A model that flaps between three failures in a row and an answer fires
// model_unavailable once and resolves it once: after the resolve, the
// cooldown keeps the next flaps quiet.
func TestAlertFiresOnceAndResolvesOnceAcrossFlappingModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSwitchable(answerOK)
		rec := newRecorder()
		h := startHiveWith(t, Config{
			Publisher: rec,
			Recovery:  Recovery{Disabled: true},
			Models:    []ModelSpec{{Name: "flappy", Provider: p, Retry: noRetry}},
			Alerts: only(func(r *AlertRules) {
				r.ModelUnavailable = AlertRule{Enabled: true, Severity: messages.Alert_warning, Cooldown: 10 * time.Minute}
			}),
		})
		for cycle := range 20 {
			p.mode.Store(answerFail)
			failThrice(t, h, "flappy")
			step(time.Second)
			p.mode.Store(answerOK)
			require.Equal(t, "flappy", infer(t, h, "flappy").GetServedBy(), "cycle %d: the answer between the flaps", cycle)
			step(3 * time.Second)
		}
		got := rec.alertsOf(observe.RuleModelUnavailable, "flappy")
		require.Equal(t, []string{"fired", "resolved"}, alertStates(got), "model_unavailable states across 20 flaps")
		assert.Equal(t, got[0].Id, got[1].Id, "the resolve names the firing")
		assert.Equal(t, "model_unavailable.test.flappy.1", got[0].Id, "id")
		assert.Equal(t, 3.0, got[0].Value, "fired value")
		assert.Equal(t, "flappy answers again", got[1].Message, "resolve message")
		assert.Empty(t, h.Alerts(), "firing alerts after the resolve")
	})
}

// model_unavailable fires after 3 failed calls in a row, escalates once
// EscalateAfter later (critical), and resolves when the model answers.
func TestModelUnavailableFiresThenEscalates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSwitchable(answerFail)
		rec := newRecorder()
		h := startHiveWith(t, Config{
			Publisher: rec,
			Recovery:  Recovery{Disabled: true},
			Models:    []ModelSpec{{Name: "gpt-5", Provider: p, Retry: noRetry}},
			Alerts: only(func(r *AlertRules) {
				r.ModelUnavailable = AlertRule{Enabled: true, Severity: messages.Alert_warning, Cooldown: 5 * time.Minute, EscalateAfter: 5 * time.Minute}
			}),
		})
		infer(t, h, "gpt-5")
		infer(t, h, "gpt-5")
		step(2 * time.Second)
		assert.Empty(t, rec.alertsOf(observe.RuleModelUnavailable, "gpt-5"), "alerts after 2 failures")

		infer(t, h, "gpt-5")
		fired := rec.waitFor(t, "model_unavailable fired", isAlert(observe.RuleModelUnavailable, "gpt-5", messages.Alert_fired)).(*messages.Alert)
		assert.Equal(t, "model_unavailable.test.gpt-5.1", fired.Id, "id")
		assert.Equal(t, messages.Alert_warning, fired.Severity, "severity")
		assert.Equal(t, "test", fired.Node, "node")
		assert.Equal(t, "gpt-5 failed 3 calls in a row", fired.Message, "message")
		assert.Equal(t, 3.0, fired.Value, "value")
		assert.Equal(t, 3.0, fired.Threshold, "threshold")

		step(5*time.Minute - 2*time.Second)
		assert.Equal(t, []string{"fired"}, alertStates(rec.alertsOf(observe.RuleModelUnavailable, "gpt-5")), "states before EscalateAfter")
		step(3 * time.Second)
		got := rec.alertsOf(observe.RuleModelUnavailable, "gpt-5")
		require.Equal(t, []string{"fired", "escalated"}, alertStates(got), "states after EscalateAfter")
		esc := got[1]
		assert.Equal(t, fired.Id, esc.Id, "escalation id")
		assert.Equal(t, messages.Alert_critical, esc.Severity, "escalation severity")
		held := esc.Time.AsTime().Sub(fired.Time.AsTime())
		assert.True(t, held >= 5*time.Minute && held <= 5*time.Minute+time.Second, "escalated %v after firing, want 5m to 5m1s", held)
		assert.Contains(t, esc.Message, "firing for 5m", "escalation message")

		firing := h.Alerts()
		require.Len(t, firing, 1, "firing alerts")
		assert.Equal(t, messages.Alert_escalated, firing[0].State, "listed state")

		step(10 * time.Minute)
		assert.Len(t, rec.alertsOf(observe.RuleModelUnavailable, "gpt-5"), 2, "events 10 minutes later: one escalation only")

		p.mode.Store(answerOK)
		infer(t, h, "gpt-5")
		step(3 * time.Second)
		got = rec.alertsOf(observe.RuleModelUnavailable, "gpt-5")
		require.Equal(t, []string{"fired", "escalated", "resolved"}, alertStates(got), "states after the model answers")
		assert.Equal(t, messages.Alert_critical, got[2].Severity, "an escalated alert resolves as critical")
	})
}

// Acknowledging a firing alert publishes it again with who did it, and it
// no longer escalates; it stays listed until it resolves.
func TestAckAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSwitchable(answerFail)
		rec := newRecorder()
		h := startHiveWith(t, Config{
			Publisher: rec,
			Recovery:  Recovery{Disabled: true},
			Models:    []ModelSpec{{Name: "m", Provider: p, Retry: noRetry}},
			Alerts: only(func(r *AlertRules) {
				r.ModelUnavailable = AlertRule{Enabled: true, Severity: messages.Alert_warning, EscalateAfter: time.Minute}
			}),
		})
		failThrice(t, h, "m")
		fired := rec.waitFor(t, "fired", isAlert(observe.RuleModelUnavailable, "m", messages.Alert_fired)).(*messages.Alert)

		_, err := h.AckAlert("no-such-alert", "alice")
		assert.True(t, errors.Is(err, ErrUnknownAlert), "ack of an unknown id: %v, want ErrUnknownAlert", err)

		acked, err := h.AckAlert(fired.Id, "alice")
		require.NoError(t, err, "ack")
		assert.Equal(t, messages.Alert_acknowledged, acked.State, "returned state")
		assert.Equal(t, "alice", acked.Actor, "returned actor")
		again, err := h.AckAlert(fired.Id, "bob")
		require.NoError(t, err, "second ack")
		assert.Equal(t, "alice", again.Actor, "the first acknowledgement stands")

		step(5 * time.Minute)
		got := rec.alertsOf(observe.RuleModelUnavailable, "m")
		require.Equal(t, []string{"fired", "acknowledged"}, alertStates(got), "states: published once per ack, no escalation")
		assert.Equal(t, "alice", got[1].Actor, "published actor")
		firing := h.Alerts()
		require.Len(t, firing, 1, "an acknowledged alert is still firing")
		assert.Equal(t, messages.Alert_acknowledged, firing[0].State, "listed state")

		p.mode.Store(answerOK)
		infer(t, h, "m")
		rec.waitFor(t, "resolved", isAlert(observe.RuleModelUnavailable, "m", messages.Alert_resolved))
		_, err = h.AckAlert(fired.Id, "alice")
		assert.True(t, errors.Is(err, ErrUnknownAlert), "ack of a resolved alert: %v, want ErrUnknownAlert", err)
	})
}

// open_breakers fires, once, when a second breaker opens.
func TestOpenBreakersAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		trip := resilience.BreakerConfig{ConsecutiveFailures: 3, OpenDuration: time.Hour}
		h := startHiveWith(t, Config{
			Publisher: rec,
			Recovery:  Recovery{Disabled: true},
			Models: []ModelSpec{
				{Name: "a", Provider: newSwitchable(answerFail), Retry: noRetry, Breaker: trip},
				{Name: "b", Provider: newSwitchable(answerFail), Retry: noRetry, Breaker: trip},
				simModel(t, "c", 0, messages.ErrorClass_ok),
			},
			Alerts: only(func(r *AlertRules) {
				r.OpenBreakers = AlertRule{Enabled: true, Severity: messages.Alert_critical, Cooldown: 5 * time.Minute}
			}),
		})
		failThrice(t, h, "a")
		rec.breakerTo(t, "a", messages.BreakerState_open)
		step(3 * time.Second)
		assert.Empty(t, rec.alertsOf(observe.RuleOpenBreakers, ""), "alerts with one breaker open")

		failThrice(t, h, "b")
		rec.breakerTo(t, "b", messages.BreakerState_open)
		fired := rec.waitFor(t, "open_breakers fired", isAlert(observe.RuleOpenBreakers, "", messages.Alert_fired)).(*messages.Alert)
		assert.Equal(t, "open_breakers.test.1", fired.Id, "id")
		assert.Equal(t, messages.Alert_critical, fired.Severity, "severity")
		assert.Equal(t, 2.0, fired.Value, "value")
		assert.Equal(t, 2.0, fired.Threshold, "threshold")
		assert.Equal(t, "2 breakers open: a, b", fired.Message, "message")

		step(time.Minute)
		assert.Len(t, rec.alertsOf(observe.RuleOpenBreakers, ""), 1, "open_breakers events a minute later")

		_, err := h.Control("a", OpReset, 0, "alice", "fixed")
		require.NoError(t, err, "reset a")
		resolved := rec.waitFor(t, "open_breakers resolved", isAlert(observe.RuleOpenBreakers, "", messages.Alert_resolved)).(*messages.Alert)
		assert.Equal(t, "1 breaker open: b", resolved.Message, "resolve message")
	})
}

// open_breakers counts every breaker that refuses traffic: breakers an
// operator forced open fire it as soon as there are enough of them, not
// when they go half-open at the end of the outage.
func TestOpenBreakersAlertCountsForcedOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := startHiveWith(t, Config{
			Publisher: rec,
			Recovery:  Recovery{Disabled: true},
			Models: []ModelSpec{
				simModel(t, "a", 0, messages.ErrorClass_ok),
				simModel(t, "b", 0, messages.ErrorClass_ok),
				simModel(t, "c", 0, messages.ErrorClass_ok),
			},
			Alerts: only(func(r *AlertRules) {
				r.OpenBreakers = AlertRule{Enabled: true, Severity: messages.Alert_critical}
			}),
		})
		for _, m := range []string{"a", "b"} {
			_, err := h.Control(m, OpForceOpen, time.Hour, "alice", "provider incident")
			require.NoError(t, err, "force %s open", m)
		}
		step(3 * time.Second)
		fired := rec.alertsOf(observe.RuleOpenBreakers, "")
		require.Equal(t, []string{"fired"}, alertStates(fired), "open_breakers with two breakers forced open for an hour, 3 s later")
		assert.Equal(t, 2.0, fired[0].Value, "value")
		assert.Equal(t, "2 breakers open: a (forced_open), b (forced_open)", fired[0].Message, "message")

		_, err := h.Control("a", OpClose, 0, "alice", "over")
		require.NoError(t, err, "close a")
		resolved := rec.waitFor(t, "open_breakers resolved", isAlert(observe.RuleOpenBreakers, "", messages.Alert_resolved)).(*messages.Alert)
		assert.Equal(t, "1 breaker open: b (forced_open)", resolved.Message, "resolve message")
	})
}

// low_success_rate judges the node's requests (as the router answered them), once
// MinCalls requests are in the window, and resolves past the hysteresis.
func TestLowSuccessRateNodeWide(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		flaky := newSwitchable(answerOK)
		h := startHiveWith(t, Config{
			Publisher: rec,
			Recovery:  Recovery{Disabled: true},
			Models: []ModelSpec{
				simModel(t, "steady", 0, messages.ErrorClass_ok),
				{Name: "flaky", Provider: flaky, Retry: noRetry},
			},
			Alerts: only(func(r *AlertRules) {
				r.LowSuccessRate = AlertRule{Enabled: true, Severity: messages.Alert_critical, Threshold: 0.9, Hysteresis: 0.05,
					Window: time.Minute, MinCalls: 20, Cooldown: 5 * time.Minute}
			}),
		})
		// A call to each model per round; with failEveryOther, flaky fails
		// every other of its calls, so no model fails twice in a row and no
		// breaker opens.
		sent := 0
		calls := func(n int, failEveryOther bool) {
			for range n {
				infer(t, h, "steady")
				mode := answerOK
				if failEveryOther && sent%2 == 0 {
					mode = answerFail
				}
				sent++
				flaky.mode.Store(mode)
				infer(t, h, "flaky")
			}
		}
		calls(5, true)
		step(2 * time.Second)
		assert.Empty(t, rec.alertsOf(observe.RuleLowSuccessRate, ""), "alerts with 10 calls, under MinCalls")
		calls(5, true)
		fired := rec.waitFor(t, "low_success_rate fired", isAlert(observe.RuleLowSuccessRate, "", messages.Alert_fired)).(*messages.Alert)
		assert.Equal(t, 0.75, fired.Value, "value: 15 of 20 calls")
		assert.Equal(t, 0.9, fired.Threshold, "threshold")
		assert.Equal(t, messages.Alert_critical, fired.Severity, "severity")
		assert.Equal(t, "test answered 75.0% of 20 requests over 1m0s", fired.Message, "message")

		step(2 * time.Minute) // the window empties: too few calls to judge, still firing
		require.Len(t, h.Alerts(), 1, "firing alerts with an empty window")
		calls(10, false)
		resolved := rec.waitFor(t, "low_success_rate resolved", isAlert(observe.RuleLowSuccessRate, "", messages.Alert_resolved)).(*messages.Alert)
		assert.Equal(t, 1.0, resolved.Value, "resolve value")
		assert.Equal(t, []string{"fired", "resolved"}, alertStates(rec.alertsOf(observe.RuleLowSuccessRate, "")), "states")
	})
}

// high_failure_rate and slow_responses judge a model over the window.
func TestModelRateAlerts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		flaky := newSwitchable(answerOK)
		slowSim, err := sim.New(sim.Config{Name: "slow", Latency: 6 * time.Second})
		require.NoError(t, err)
		slow := ModelSpec{Name: "slow", Provider: slowSim, Retry: noRetry}
		h := startHiveWith(t, Config{
			Publisher: rec,
			Recovery:  Recovery{Disabled: true},
			Models:    []ModelSpec{{Name: "flaky", Provider: flaky, Retry: noRetry}, slow},
			Alerts: only(func(r *AlertRules) {
				r.HighFailureRate = AlertRule{Enabled: true, Severity: messages.Alert_warning, Threshold: 0.2, Hysteresis: 0.05, Window: 5 * time.Minute, MinCalls: 10}
				r.SlowResponses = AlertRule{Enabled: true, Severity: messages.Alert_warning, Threshold: 5, Window: 5 * time.Minute, MinCalls: 3}
			}),
		})
		for i := range 10 { // calls 0, 3, 6 and 9 fail
			mode := answerOK
			if i%3 == 0 {
				mode = answerFail
			}
			flaky.mode.Store(mode)
			infer(t, h, "flaky")
		}
		hfr := rec.waitFor(t, "high_failure_rate fired", isAlert(observe.RuleHighFailureRate, "flaky", messages.Alert_fired)).(*messages.Alert)
		assert.InDelta(t, 0.4, hfr.Value, 1e-9, "failure rate: 4 of 10")
		assert.Equal(t, "flaky failed 40.0% of 10 calls over 5m0s", hfr.Message, "message")
		assert.Empty(t, rec.alertsOf(observe.RuleSlowResponses, "flaky"), "slow_responses of a fast model")

		for range 3 {
			infer(t, h, "slow")
		}
		sr := rec.waitFor(t, "slow_responses fired", isAlert(observe.RuleSlowResponses, "slow", messages.Alert_fired)).(*messages.Alert)
		assert.Equal(t, 6.0, sr.Value, "average seconds")
		assert.Equal(t, 5.0, sr.Threshold, "threshold seconds")
		assert.Equal(t, "slow answered in 6s on average over 3 calls in 5m0s", sr.Message, "message")
		assert.Empty(t, rec.alertsOf(observe.RuleHighFailureRate, "slow"), "high_failure_rate of a model that never fails")
	})
}

// supervisor_gave_up goes through its rule: it fires once when the
// supervisor gives a model up, and stays firing without repeating.
func TestSupervisorGaveUpAlertsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := startHiveWith(t, Config{
			Publisher:   rec,
			Supervision: exactSupervision,
			Recovery:    Recovery{Disabled: true},
			Models: []ModelSpec{
				{Name: "buggy", Provider: panicky{}, Fallbacks: []string{"good"}, Retry: noRetry},
				simModel(t, "good", 0, messages.ErrorClass_ok),
			},
			Alerts: only(func(r *AlertRules) {
				r.SupervisorGaveUp = AlertRule{Enabled: true, Severity: messages.Alert_critical, Cooldown: 5 * time.Minute}
			}),
		})
		for n := 1; n <= exactSupervision.MaxRestarts+1; n++ {
			_, err := h.Control("buggy", OpStatus, 0, "", "")
			require.NoError(t, err, "status before crash %d", n)
			infer(t, h, "buggy")
			if n <= exactSupervision.MaxRestarts {
				rec.waitFor(t, "restart", func(ev any) bool {
					e, ok := ev.(*messages.RecoveryEvent)
					return ok && e.Model == "buggy" && e.Kind == messages.RecoveryEvent_restart && int(e.Attempt) == n
				})
			}
		}
		fired := rec.waitFor(t, "supervisor_gave_up fired", isAlert(observe.RuleSupervisorGaveUp, "buggy", messages.Alert_fired)).(*messages.Alert)
		assert.Equal(t, messages.Alert_critical, fired.Severity, "severity")
		assert.Equal(t, float64(exactSupervision.MaxRestarts+1), fired.Value, "value: crashes")
		assert.Equal(t, float64(exactSupervision.MaxRestarts), fired.Threshold, "threshold: MaxRestarts")
		assert.Contains(t, fired.Message, "model buggy is unavailable: supervisor gave up after 5 crashes", "message")

		step(10 * time.Minute)
		assert.Equal(t, []string{"fired"}, alertStates(rec.alertsOf(observe.RuleSupervisorGaveUp, "buggy")), "states 10 minutes later")
		require.Len(t, h.Alerts(), 1, "firing alerts")
	})
}

// A given-up model whose actor answers again resolves supervisor_gave_up;
// here the supervisor's notice is sent for a model that keeps running.
func TestSupervisorGaveUpResolvesWhenTheModelRunsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		h := startHiveWith(t, Config{
			Publisher: rec,
			Models:    []ModelSpec{simModel(t, "m", 0, messages.ErrorClass_ok)},
			Alerts: only(func(r *AlertRules) {
				r.SupervisorGaveUp = AlertRule{Enabled: true, Severity: messages.Alert_critical}
			}),
		})
		h.system.Root.Send(h.alerts, &modelGaveUp{model: "m", crashes: 6, detail: "6 crashes"})
		rec.waitFor(t, "fired", isAlert(observe.RuleSupervisorGaveUp, "m", messages.Alert_fired))
		resolved := rec.waitFor(t, "resolved", isAlert(observe.RuleSupervisorGaveUp, "m", messages.Alert_resolved)).(*messages.Alert)
		assert.Equal(t, "model m runs again", resolved.Message, "resolve message")
		assert.Equal(t, 0.0, resolved.Value, "resolve value")
	})
}

// With alerts off there is no alerts actor: nothing is listed, nothing can
// be acknowledged.
func TestAlertsOff(t *testing.T) {
	h := startHive(t, simModel(t, "m", 0, messages.ErrorClass_ok))
	assert.Nil(t, h.Alerts(), "alerts when off")
	_, err := h.AckAlert("any", "alice")
	assert.True(t, errors.Is(err, ErrUnknownAlert), "ack when off: %v, want ErrUnknownAlert", err)
}

// A Hive refuses alerts out of range (observe.Alerts.Validate has the
// rules).
func TestAlertsConfig(t *testing.T) {
	_, err := New(Config{Node: "n", Models: []ModelSpec{simModel(t, "m", 0, messages.ErrorClass_ok)}, Alerts: Alerts{Enabled: true, Interval: -1}})
	assert.Error(t, err, "New with a bad alerts config")
}
