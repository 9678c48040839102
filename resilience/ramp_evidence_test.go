package resilience

import (
	"errors"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// The evidence rules (RampConfig.Successes): a step passes on Successes
// successes in a row, a failure drops a step. The zero value keeps them off
// (the tests in ramp_test.go run with it).

func TestRampEvidencePassesStepOnSuccesses(t *testing.T) {
	r := newTestRamp(t, RampConfig{Successes: 3})
	// A probe a second and no traffic: three successes pass each step.
	evs := rampRun(r, rampSteady(0, 9*time.Second, 9, rampOK))
	rampCheckEvents(t, evs, []RampEvent{
		{Kind: RampStarted, At: rampT0, To: 10},
		{Kind: RampAdvanced, At: rampAt(3 * time.Second), From: 10, To: 25, Calls: 3, Successes: 3, Held: 3 * time.Second, OnEvidence: true},
		{Kind: RampAdvanced, At: rampAt(6 * time.Second), From: 25, To: 50, Calls: 3, Successes: 3, Held: 3 * time.Second, OnEvidence: true},
		{Kind: RampCompleted, At: rampAt(9 * time.Second), From: 50, To: 100, Calls: 3, Successes: 3, Held: 3 * time.Second, OnEvidence: true},
	})
}

// With evidence slower than the hold, the time rules still pass the step
// first: whichever comes first.
func TestRampEvidenceHoldStillPasses(t *testing.T) {
	r := newTestRamp(t, RampConfig{Successes: 50, MinCalls: 10})
	// 20 successes a step, spread over 10 s: MinCalls met, Successes not.
	evs := rampRun(r, rampSteady(0, 30*time.Second, 60, rampOK))
	rampCheckEvents(t, evs, []RampEvent{
		{Kind: RampStarted, At: rampT0, To: 10},
		{Kind: RampAdvanced, At: rampAt(10 * time.Second), From: 10, To: 25, Calls: 20, Successes: 20, Held: 10 * time.Second},
		{Kind: RampAdvanced, At: rampAt(20 * time.Second), From: 25, To: 50, Calls: 20, Successes: 20, Held: 10 * time.Second},
		{Kind: RampCompleted, At: rampAt(30 * time.Second), From: 50, To: 100, Calls: 20, Successes: 20, Held: 10 * time.Second},
	})
}

func TestRampEvidenceFailureDropsAStep(t *testing.T) {
	r := newTestRamp(t, RampConfig{Successes: 3})
	evs := rampRun(r, []rampScript{
		{at: 1 * time.Second, o: rampOK},
		{at: 2 * time.Second, o: rampOK},
		{at: 3 * time.Second, o: rampOK}, // 10 -> 25
		{at: 4 * time.Second, o: rampOK},
		{at: 5 * time.Second, o: rampFail}, // 25 -> 10, carrying 1 failure in 2 calls
		{at: 6 * time.Second, o: rampOK},
		{at: 7 * time.Second, o: rampOK},
		{at: 8 * time.Second, o: rampOK}, // streak of 3 since the failure: 10 -> 25
	})
	rampCheckEvents(t, evs, []RampEvent{
		{Kind: RampStarted, At: rampT0, To: 10},
		{Kind: RampAdvanced, At: rampAt(3 * time.Second), From: 10, To: 25, Calls: 3, Successes: 3, Held: 3 * time.Second, OnEvidence: true},
		{Kind: RampDropped, At: rampAt(5 * time.Second), From: 25, To: 10, Calls: 2, Successes: 1, Held: 2 * time.Second},
		{Kind: RampAdvanced, At: rampAt(8 * time.Second), From: 10, To: 25, Calls: 5, Successes: 4, Held: 3 * time.Second, OnEvidence: true},
	})
	if !r.Ramping() || r.Percent() != 25 {
		t.Errorf("Ramping %v, Percent %d; want true, 25", r.Ramping(), r.Percent())
	}
}

// Failures on the way down add up: the dropped-to step keeps the
// evidence, so a second failure (with the default 0.9 floor over 10 calls)
// regresses and the owner reopens the breaker.
func TestRampEvidenceFailuresAddUpToRegression(t *testing.T) {
	r := newTestRamp(t, RampConfig{Successes: 2})
	evs := rampRun(r, []rampScript{
		{at: 1 * time.Second, o: rampOK},
		{at: 2 * time.Second, o: rampOK}, // 10 -> 25
		{at: 3 * time.Second, o: rampOK},
		{at: 4 * time.Second, o: rampOK},   // 25 -> 50
		{at: 5 * time.Second, o: rampFail}, // 50 -> 25
		{at: 6 * time.Second, o: rampFail}, // 2 failures: under the floor at 10 calls whatever comes
	})
	rampCheckEvents(t, evs, []RampEvent{
		{Kind: RampStarted, At: rampT0, To: 10},
		{Kind: RampAdvanced, At: rampAt(2 * time.Second), From: 10, To: 25, Calls: 2, Successes: 2, Held: 2 * time.Second, OnEvidence: true},
		{Kind: RampAdvanced, At: rampAt(4 * time.Second), From: 25, To: 50, Calls: 2, Successes: 2, Held: 2 * time.Second, OnEvidence: true},
		{Kind: RampDropped, At: rampAt(5 * time.Second), From: 50, To: 25, Calls: 1, Successes: 0, Held: time.Second},
		{Kind: RampRegressed, At: rampAt(6 * time.Second), From: 25, Calls: 2, Successes: 0, Held: time.Second},
	})
	if r.Ramping() {
		t.Error("still ramping after a regression")
	}
}

// At the first step there is nothing to drop to: one failure is held (the
// floor allows one in MinCalls), and the streak starts again.
func TestRampEvidenceFailureAtFirstStep(t *testing.T) {
	r := newTestRamp(t, RampConfig{Successes: 3})
	evs := rampRun(r, []rampScript{
		{at: 1 * time.Second, o: rampOK},
		{at: 2 * time.Second, o: rampOK},
		{at: 3 * time.Second, o: rampFail},
		{at: 4 * time.Second, o: rampOK},
		{at: 5 * time.Second, o: rampOK},
		{at: 6 * time.Second, o: rampOK},
	})
	rampCheckEvents(t, evs, []RampEvent{
		{Kind: RampStarted, At: rampT0, To: 10},
		{Kind: RampAdvanced, At: rampAt(6 * time.Second), From: 10, To: 25, Calls: 6, Successes: 5, Held: 6 * time.Second, OnEvidence: true},
	})
}

// A caller's own mistake is no evidence: it neither breaks the streak nor
// drops a step.
func TestRampEvidenceIgnoresCallerFaults(t *testing.T) {
	r := newTestRamp(t, RampConfig{Successes: 2})
	evs := rampRun(r, []rampScript{
		{at: 1 * time.Second, o: rampOK},
		{at: 2 * time.Second, o: rampOK}, // 10 -> 25
		{at: 3 * time.Second, o: rampOK},
		{at: 4 * time.Second, o: Outcome{Class: messages.ErrorClass_bad_request}},
		{at: 5 * time.Second, o: rampOK}, // 25 -> 50
	})
	if got := evs[len(evs)-1]; got.Kind != RampAdvanced || got.To != 50 || got.Calls != 2 {
		t.Errorf("last event %+v, want an advance to 50 on 2 counted calls", got)
	}
}

// The goals of progressive restoration on the pure rules, with a stepped
// clock: a probe every second and traffic of one request every 4 s at the
// step's share, or 100 requests a second at it.
func TestRampEvidenceRecoveryTimes(t *testing.T) {
	tests := []struct {
		name  string
		every time.Duration // between two real requests, all admitted at the share
		want  time.Duration // at most, from Start to 100 %
	}{
		{"sparse: 1 request every 4 s", 4 * time.Second, 10 * time.Second},
		{"busy: 100 requests a second", 10 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRamp(t, RampConfig{Successes: 3})
			r.Start(rampT0)
			draws := rampDraws(4096)
			const tick = 10 * time.Millisecond
			var at time.Duration
			for i := 0; r.Ramping() && at < time.Minute; i++ {
				at += tick
				if at%time.Second == 0 {
					r.Observe(rampAt(at), rampOK) // the probe
				}
				if at%tt.every == 0 && r.Admit(draws[i%len(draws)]) {
					r.Observe(rampAt(at), rampOK)
				}
				r.Tick(rampAt(at))
			}
			if r.Ramping() || at > tt.want {
				t.Errorf("back at 100%% after %v (ramping %v), want at most %v", at, r.Ramping(), tt.want)
			}
		})
	}
}

func TestRampEvidenceConfig(t *testing.T) {
	err := RampConfig{Successes: -1}.Validate()
	if !errors.Is(err, ErrRampConfig) || err.Error() != "invalid ramp config: Successes -1 < 0" {
		t.Errorf("Successes -1: %v", err)
	}
	ev := RampEvent{Kind: RampDropped, From: 50, To: 25, Calls: 3, Successes: 2, Held: time.Second}
	if got, want := ev.String(), "ramp dropped 50% -> 25% after 1s (2/3 ok): a failure"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	ev = RampEvent{Kind: RampAdvanced, From: 10, To: 25, Calls: 3, Successes: 3, Held: time.Second, OnEvidence: true}
	if got, want := ev.String(), "ramp 10% -> 25% after 1s (3/3 ok), on evidence"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := RampDropped.String(); got != "dropped" {
		t.Errorf("RampDropped.String() = %q", got)
	}
}
