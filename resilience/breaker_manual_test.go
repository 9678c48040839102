package resilience

import (
	"fmt"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// Manual states, Reset, Snapshot and Restore.

// Case 6: metrics-only never trips and reports a threshold crossing once;
// disabled reports nothing.
func TestBreakerCase6MetricsOnlyAndDisabled(t *testing.T) {
	b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
	now := breakerT0
	ts := b.MetricsOnly(now)
	wantBreakerSummary(t, "MetricsOnly", ts, "closed->metrics_only manual")
	gen := ts[0].Generation
	wantBreakerSummary(t, "MetricsOnly again", b.MetricsOnly(now), "")

	var reports []Transition
	for range 20 {
		reports = append(reports, breakerCall(t, b, now, breakerFail)...)
	}
	wantBreakerSummary(t, "20 failures", reports, "metrics_only->metrics_only consecutive")
	r := reports[0]
	if r.Changed() || r.Generation != gen || r.Evidence.Consecutive != 5 || r.Class != breakerFail.Class {
		t.Fatalf("report %+v, want unchanged state, generation %d, 5 in a row, class server_error", r, gen)
	}
	if b.State() != messages.BreakerState_metrics_only || b.Evidence().Consecutive != 20 {
		t.Fatalf("state %v evidence %+v, want metrics_only with 20 in a row recorded", b.State(), b.Evidence())
	}
	// Back under the threshold re-arms the report.
	breakerCall(t, b, now, breakerOK)
	reports = nil
	for range 5 {
		reports = append(reports, breakerCall(t, b, now, breakerFail)...)
	}
	wantBreakerSummary(t, "a new crossing", reports, "metrics_only->metrics_only consecutive")

	wantBreakerSummary(t, "Disable", b.Disable(now), "metrics_only->disabled manual")
	wantBreakerSummary(t, "Disable again", b.Disable(now), "")
	before := b.Evidence()
	reports = nil
	for _, o := range []Outcome{breakerFail, breakerFail, breakerFail, breakerFail, breakerFail, breakerFail,
		{Class: messages.ErrorClass_auth}, {Class: messages.ErrorClass_rate_limited, RetryAfter: time.Second}} {
		reports = append(reports, breakerCall(t, b, now, o)...)
	}
	wantBreakerSummary(t, "failures while disabled", reports, "")
	if after := b.Evidence(); after != before || b.State() != messages.BreakerState_disabled {
		t.Fatalf("disabled: state %v, evidence %+v -> %+v; want disabled, nothing recorded", b.State(), before, after)
	}
	if _, ok := b.NextDeadline(); ok {
		t.Fatalf("disabled NextDeadline() ok, want nothing to do")
	}
}

func TestBreakerForceOpen(t *testing.T) {
	b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
	now := breakerT0
	wantBreakerSummary(t, "ForceOpen", b.ForceOpen(now, 0, messages.BreakerTransition_unspecified), "closed->forced_open manual")
	if u := breakerRefusedUntil(t, b, now); !u.IsZero() {
		t.Fatalf("forced open until changed: OpenError.Until = %v, want zero", u)
	}
	if _, ok := b.NextDeadline(); ok {
		t.Fatalf("forced open until changed: NextDeadline() ok, want nothing to do")
	}
	wantBreakerSummary(t, "a day later", b.Tick(now.Add(24*time.Hour)), "")
	ts := b.ForceOpen(now, time.Minute, messages.BreakerTransition_manual)
	wantBreakerSummary(t, "ForceOpen for 1 m", ts, "forced_open->forced_open manual")
	if !ts[0].OpenUntil.Equal(now.Add(time.Minute)) || ts[0].Trips != 0 {
		t.Fatalf("re-forced: OpenUntil %v trips %d, want now+1m and no trip", ts[0].OpenUntil, ts[0].Trips)
	}
	wantBreakerSummary(t, "after 1 m", b.Tick(now.Add(time.Minute)), "forced_open->half_open timer")
}

func TestBreakerReset(t *testing.T) {
	b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
	now := breakerT0
	for range 5 {
		breakerCall(t, b, now, breakerFail)
	}
	ts := b.Reset(now)
	wantBreakerSummary(t, "Reset from open", ts, "open->closed manual")
	if ts[0].Trips != 0 || b.Evidence() != (Evidence{}) {
		t.Fatalf("after Reset: trips %d evidence %+v, want both cleared", ts[0].Trips, b.Evidence())
	}
	// Reset of a closed breaker clears the evidence and is no transition;
	// a call admitted before stays valid.
	breakerCall(t, b, now, breakerFail)
	p, _ := b.Allow(now)
	wantBreakerSummary(t, "Reset when closed", b.Reset(now), "")
	if e := b.Evidence(); e != (Evidence{}) {
		t.Fatalf("evidence after Reset %+v, want zero", e)
	}
	b.Done(p, now, breakerFail)
	if e := b.Evidence(); e.Calls != 1 {
		t.Fatalf("evidence %+v, want the earlier call recorded", e)
	}
}

func TestBreakerRestore(t *testing.T) {
	until := breakerT0.Add(time.Minute)
	tests := []struct {
		name      string
		snap      BreakerSnapshot
		now       time.Time
		want      string
		wantUntil time.Time
	}{
		{"open stays open until its time", BreakerSnapshot{State: messages.BreakerState_open, Generation: 40, Trips: 2, OpenUntil: until}, breakerT0, "closed->open restored", until},
		{"open past its time is half-open", BreakerSnapshot{State: messages.BreakerState_open, Generation: 40, Trips: 2, OpenUntil: until}, until, "closed->half_open restored", time.Time{}},
		{"open without a time is half-open", BreakerSnapshot{State: messages.BreakerState_open, Generation: 40, Trips: 2, OpenUntil: time.Time{}}, breakerT0, "closed->half_open restored", time.Time{}},
		{"half-open", BreakerSnapshot{State: messages.BreakerState_half_open, Generation: 40, Trips: 2, OpenUntil: time.Time{}}, breakerT0, "closed->half_open restored", time.Time{}},
		{"forced open until changed", BreakerSnapshot{State: messages.BreakerState_forced_open, Generation: 40, Trips: 0, OpenUntil: time.Time{}}, breakerT0.Add(time.Hour), "closed->forced_open restored", time.Time{}},
		{"forced open past its time", BreakerSnapshot{State: messages.BreakerState_forced_open, Generation: 40, Trips: 0, OpenUntil: until}, until, "closed->half_open restored", time.Time{}},
		{"closed", BreakerSnapshot{State: messages.BreakerState_closed, Generation: 40, Trips: 2, OpenUntil: time.Time{}}, breakerT0, "closed->closed restored", time.Time{}},
		{"disabled", BreakerSnapshot{State: messages.BreakerState_disabled, Generation: 40, Trips: 0, OpenUntil: until}, breakerT0, "closed->disabled restored", time.Time{}},
		{"metrics only", BreakerSnapshot{State: messages.BreakerState_metrics_only, Generation: 40, Trips: 0, OpenUntil: time.Time{}}, breakerT0, "closed->metrics_only restored", time.Time{}},
		{"unknown state", BreakerSnapshot{State: messages.BreakerState(42), Generation: 40, Trips: 0, OpenUntil: time.Time{}}, breakerT0, "closed->half_open restored", time.Time{}},
		{"older generation", BreakerSnapshot{State: messages.BreakerState_open, Generation: 0, Trips: 1, OpenUntil: until}, breakerT0, "closed->open restored", until},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
			for range 3 { // some generations of its own
				b.ForceOpen(tt.now, 0, messages.BreakerTransition_manual)
				b.Reset(tt.now)
			}
			own := b.Snapshot().Generation
			ts := b.Restore(tt.snap, tt.now)
			wantBreakerSummary(t, "Restore", ts, tt.want)
			got := b.Snapshot()
			if want := max(own, tt.snap.Generation) + 1; got.Generation != want || ts[0].Generation != want {
				t.Errorf("generation %d (transition %d), want %d", got.Generation, ts[0].Generation, want)
			}
			if !got.OpenUntil.Equal(tt.wantUntil) || got.Trips != tt.snap.Trips {
				t.Errorf("snapshot %+v, want OpenUntil %v and %d trips", got, tt.wantUntil, tt.snap.Trips)
			}
		})
	}
}

// A restored breaker carries its trips: the next opening is longer.
func TestBreakerRestoreKeepsTrips(t *testing.T) {
	a := presetBreaker(t, "bip03", BreakerConfig{}, nil)
	now := breakerT0
	for range 5 {
		breakerCall(t, a, now, breakerFail)
	}
	snap := a.Snapshot()
	b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
	now = now.Add(30 * time.Second)
	b.Restore(snap, now)
	if u := breakerRefusedUntil(t, b, now); !u.Equal(snap.OpenUntil) {
		t.Fatalf("restored breaker refuses until %v, want the original %v", u, snap.OpenUntil)
	}
	now = snap.OpenUntil
	b.Tick(now)
	ts := breakerCall(t, b, now, breakerFail)
	if got := fmt.Sprint(ts[0].OpenUntil.Sub(now), ts[0].Trips); got != "2m0s 2" {
		t.Fatalf("after restore, failed trial opens %s (period, trips), want 2m0s 2", got)
	}
}

func TestBreakerTrip(t *testing.T) {
	b := presetBreaker(t, "bip03", BreakerConfig{OpenJitter: -1}, nil)
	now := breakerT0
	ts := b.Trip(now, messages.BreakerTransition_unspecified)
	wantBreakerSummary(t, "Trip when closed", ts, "closed->open threshold")
	if ts[0].Trips != 1 || !ts[0].OpenUntil.Equal(now.Add(60*time.Second)) {
		t.Fatalf("Trip: trips %d until %v, want 1 trip for the base 60 s", ts[0].Trips, ts[0].OpenUntil.Sub(now))
	}
	wantBreakerSummary(t, "Trip when open", b.Trip(now, messages.BreakerTransition_threshold), "")
	now = now.Add(60 * time.Second)
	wantBreakerSummary(t, "open period over", b.Tick(now), "open->half_open timer")
	ts = b.Trip(now, messages.BreakerTransition_probe)
	wantBreakerSummary(t, "Trip when half-open", ts, "half_open->open probe")
	if ts[0].Trips != 2 || !ts[0].OpenUntil.Equal(now.Add(120*time.Second)) {
		t.Fatalf("second Trip: trips %d for %v, want 2 trips for 120 s", ts[0].Trips, ts[0].OpenUntil.Sub(now))
	}
}

func TestBreakerHalfOpen(t *testing.T) {
	b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
	now := breakerT0
	wantBreakerSummary(t, "HalfOpen when closed", b.HalfOpen(now), "")
	b.Trip(now, messages.BreakerTransition_threshold)
	wantBreakerSummary(t, "HalfOpen when open", b.HalfOpen(now), "open->half_open probe")
	for range 3 {
		breakerCall(t, b, now, breakerOK)
	}
	if b.State() != messages.BreakerState_closed {
		t.Fatalf("after 3 trial successes: %v, want closed", b.State())
	}
	b.ForceOpen(now, 0, messages.BreakerTransition_manual)
	wantBreakerSummary(t, "HalfOpen when forced open", b.HalfOpen(now), "")
}
