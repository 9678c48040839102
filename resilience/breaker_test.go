package resilience

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// The numbered cases of docs/policy.md's "Breaker cases kept green", through
// the presets, with a stepped clock. Case 7 (concurrency) belongs to the
// owning actor.

var breakerT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	breakerOK   = Outcome{Class: messages.ErrorClass_ok, Latency: 100 * time.Millisecond}
	breakerFail = Outcome{Class: messages.ErrorClass_server_error, Latency: 100 * time.Millisecond}
)

// presetBreaker builds a breaker from a preset with overrides.
func presetBreaker(t testing.TB, preset string, over BreakerConfig, random func() float64) *Breaker {
	t.Helper()
	c, err := Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBreaker(c.Merge(over), random)
	if err != nil {
		t.Fatalf("NewBreaker(%s): %v", preset, err)
	}
	return b
}

// breakerCall admits one call at now and records o; the call must be admitted.
func breakerCall(t testing.TB, b *Breaker, now time.Time, o Outcome) []Transition {
	t.Helper()
	p, err := b.Allow(now)
	if err != nil {
		t.Fatalf("Allow at %v in %v: %v, want a permit", now.Sub(breakerT0), b.State(), err)
	}
	return b.Done(p, now, o)
}

// breakerSummary renders transitions as "from->to reason" lines, so a table can
// say which transitions it wants in a few words.
func breakerSummary(ts []Transition) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = fmt.Sprintf("%v->%v %v", t.From, t.To, t.Reason)
	}
	return strings.Join(s, "; ")
}

func wantBreakerSummary(t testing.TB, what string, got []Transition, want string) {
	t.Helper()
	if s := breakerSummary(got); s != want {
		t.Fatalf("%s: transitions %q, want %q", what, s, want)
	}
}

// breakerRefusedUntil returns the *OpenError's Until of Allow at now, which must
// refuse.
func breakerRefusedUntil(t testing.TB, b *Breaker, now time.Time) time.Time {
	t.Helper()
	_, err := b.Allow(now)
	var oe *OpenError
	if !errors.Is(err, ErrOpen) || !errors.As(err, &oe) {
		t.Fatalf("Allow at %v in %v = %v, want an *OpenError wrapping ErrOpen", now.Sub(breakerT0), b.State(), err)
	}
	return oe.Until
}

// halfOpenBreaker builds a breaker from a preset, trips it with failures
// and ticks it half-open at its deadline, which it returns.
func halfOpenBreaker(t testing.TB, preset string, over BreakerConfig) (*Breaker, time.Time) {
	t.Helper()
	b := presetBreaker(t, preset, over, nil)
	for b.State() == messages.BreakerState_closed {
		breakerCall(t, b, breakerT0, breakerFail)
	}
	now, _ := b.NextDeadline()
	wantBreakerSummary(t, "timer", b.Tick(now), "open->half_open timer")
	return b, now
}

// Case 1: gobreaker's defaults.
func TestBreakerCase1Gobreaker(t *testing.T) {
	b := presetBreaker(t, "gobreaker", BreakerConfig{}, nil)
	now := breakerT0
	for i := range 5 {
		wantBreakerSummary(t, fmt.Sprintf("failure %d", i+1), breakerCall(t, b, now, breakerFail), "")
	}
	ts := breakerCall(t, b, now, breakerFail)
	wantBreakerSummary(t, "failure 6", ts, "closed->open consecutive")
	if got, want := ts[0].OpenUntil, now.Add(60*time.Second); !got.Equal(want) {
		t.Fatalf("OpenUntil = %v, want %v", got, want)
	}
	if ts[0].Evidence.Consecutive != 6 || ts[0].Trips != 1 {
		t.Fatalf("evidence %+v trips %d, want 6 consecutive and trip 1", ts[0].Evidence, ts[0].Trips)
	}
	if d, ok := b.NextDeadline(); !ok || !d.Equal(now.Add(60*time.Second)) {
		t.Fatalf("NextDeadline() = %v, %v; want 60 s", d, ok)
	}
	wantBreakerSummary(t, "tick at 60 s - 1 ms", b.Tick(now.Add(60*time.Second-time.Millisecond)), "")
	if u := breakerRefusedUntil(t, b, now.Add(60*time.Second-time.Millisecond)); !u.Equal(now.Add(60 * time.Second)) {
		t.Fatalf("OpenError.Until = %v, want 60 s", u)
	}
	now = now.Add(60 * time.Second)
	wantBreakerSummary(t, "tick at 60 s", b.Tick(now), "open->half_open timer")
	p, err := b.Allow(now)
	if err != nil {
		t.Fatalf("first half-open Allow: %v", err)
	}
	breakerRefusedUntil(t, b, now) // gobreaker's MaxRequests 1
	wantBreakerSummary(t, "half-open success", b.Done(p, now, breakerOK), "half_open->closed probe")

	// Any half-open failure reopens, for the same 60 s.
	for range 6 {
		breakerCall(t, b, now, breakerFail)
	}
	now = now.Add(60 * time.Second)
	b.Tick(now)
	ts = breakerCall(t, b, now, breakerFail)
	wantBreakerSummary(t, "half-open failure", ts, "half_open->open probe")
	if got := ts[0].OpenUntil.Sub(now); got != 60*time.Second || ts[0].Trips != 3 {
		t.Fatalf("reopened for %v with %d trips, want 60 s and 3 trips", got, ts[0].Trips)
	}
}

// breakerTripAgain moves an open breaker to half-open and fails the trial,
// returning the new open period.
func breakerTripAgain(t *testing.T, b *Breaker, now *time.Time) time.Duration {
	t.Helper()
	until, _ := b.NextDeadline()
	*now = until
	wantBreakerSummary(t, "timer", b.Tick(*now), "open->half_open timer")
	ts := breakerCall(t, b, *now, breakerFail)
	wantBreakerSummary(t, "failed trial", ts, "half_open->open probe")
	return ts[0].OpenUntil.Sub(*now)
}

// Case 2: exponential open periods 30 s, 60 s, 120 s ... capped at 300 s,
// reset after staying closed; and Envoy's own linear growth.
func TestBreakerCase2OpenGrowth(t *testing.T) {
	tests := []struct {
		name string
		over BreakerConfig
		want []time.Duration
	}{
		{"exponential", BreakerConfig{Growth: GrowExponential}, []time.Duration{30, 60, 120, 240, 300, 300}},
		{"envoy linear", BreakerConfig{}, []time.Duration{30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := presetBreaker(t, "envoy", tt.over, nil)
			now := breakerT0
			var ts []Transition
			for range 5 {
				ts = breakerCall(t, b, now, breakerFail)
			}
			got := []time.Duration{ts[0].OpenUntil.Sub(now) / time.Second}
			for len(got) < len(tt.want) {
				got = append(got, breakerTripAgain(t, b, &now)/time.Second)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("open periods %v s, want %v s", got, tt.want)
			}
			longest := tt.want[len(tt.want)-1] * time.Second

			// Closed for less than TripReset (60 s): the trips stand.
			closeAgain := func() {
				until, _ := b.NextDeadline()
				now = until
				b.Tick(now)
				wantBreakerSummary(t, "close", breakerCall(t, b, now, breakerOK), "half_open->closed probe")
			}
			closeAgain()
			if d, ok := b.NextDeadline(); !ok || d.Sub(now) != 60*time.Second {
				t.Fatalf("closed NextDeadline() = %v, %v; want the trip reset 60 s on", d.Sub(now), ok)
			}
			now = now.Add(60*time.Second - time.Millisecond)
			for range 5 {
				ts = breakerCall(t, b, now, breakerFail)
			}
			if got := ts[0].OpenUntil.Sub(now); got != longest {
				t.Fatalf("trip after 60 s - 1 ms closed: open %v, want %v", got, longest)
			}
			// Closed for TripReset: back to the base, through Tick.
			closeAgain()
			now = now.Add(60 * time.Second)
			b.Tick(now)
			if got := b.Snapshot().Trips; got != 0 {
				t.Fatalf("trips after 60 s closed and a Tick = %d, want 0", got)
			}
			if _, ok := b.NextDeadline(); ok {
				t.Fatalf("NextDeadline() ok after the trip reset, want nothing to do")
			}
			for range 5 {
				ts = breakerCall(t, b, now, breakerFail)
			}
			if got := ts[0].OpenUntil.Sub(now); got != 30*time.Second || ts[0].Trips != 1 {
				t.Fatalf("trip after the reset: open %v trips %d, want 30 s and 1", got, ts[0].Trips)
			}
		})
	}
}

func TestBreakerOpenJitter(t *testing.T) {
	tests := []struct {
		r    float64
		want time.Duration
	}{
		{0, 54 * time.Second}, {0.5, 60 * time.Second}, {0.75, 63 * time.Second},
		{1.5, 60 * time.Second}, // a broken source is ignored
	}
	for _, tt := range tests {
		b := presetBreaker(t, "bip03", BreakerConfig{}, func() float64 { return tt.r })
		var ts []Transition
		for range 5 {
			ts = breakerCall(t, b, breakerT0, breakerFail)
		}
		if got := ts[0].OpenUntil.Sub(breakerT0); got != tt.want {
			t.Errorf("bip03 with random %v: open %v, want %v", tt.r, got, tt.want)
		}
	}
}

// Case 3: half-open with 3 permits and 3 slow calls in flight.
func TestBreakerCase3HalfOpenPermits(t *testing.T) {
	b, h := halfOpenBreaker(t, "bip03", BreakerConfig{}) // 3 permits, 3 successes, 60 s lease
	allow := func(at time.Time) Permit {
		t.Helper()
		p, err := b.Allow(at)
		if err != nil {
			t.Fatalf("Allow at h+%v: %v, want a permit", at.Sub(h), err)
		}
		return p
	}
	p1, p2, p3 := allow(h), allow(h), allow(h)
	if u := breakerRefusedUntil(t, b, h); !u.Equal(h.Add(60 * time.Second)) {
		t.Fatalf("4th call refused until h+%v, want the first lease's expiry h+60s", u.Sub(h))
	}

	// An ignored result frees a permit.
	wantBreakerSummary(t, "release", b.Release(p1, h.Add(time.Second)), "")
	p4 := allow(h.Add(time.Second))
	breakerRefusedUntil(t, b, h.Add(time.Second))

	// A cancelled caller frees a permit, and records nothing.
	wantBreakerSummary(t, "cancelled", b.Done(p2, h.Add(2*time.Second), Outcome{Class: messages.ErrorClass_cancelled}), "")
	p5 := allow(h.Add(2 * time.Second))
	breakerRefusedUntil(t, b, h.Add(2*time.Second))
	if e := b.Evidence(); e.Calls != 0 {
		t.Fatalf("evidence after a release and a cancellation: %+v, want no calls", e)
	}

	// An expired lease frees a permit at Tick, without a transition.
	if d, _ := b.NextDeadline(); !d.Equal(h.Add(60 * time.Second)) {
		t.Fatalf("NextDeadline() = h+%v, want p3's lease expiry h+60s", d.Sub(h))
	}
	wantBreakerSummary(t, "tick before expiry", b.Tick(h.Add(60*time.Second-time.Nanosecond)), "")
	breakerRefusedUntil(t, b, h.Add(60*time.Second-time.Nanosecond))
	wantBreakerSummary(t, "tick at expiry", b.Tick(h.Add(60*time.Second)), "")
	if d, _ := b.NextDeadline(); !d.Equal(h.Add(61 * time.Second)) {
		t.Fatalf("NextDeadline() after the expiry = h+%v, want p4's lease expiry h+61s", d.Sub(h))
	}
	p6 := allow(h.Add(60 * time.Second))
	breakerRefusedUntil(t, b, h.Add(60*time.Second))

	// p3's late success is dropped: its lease went to p6. So it takes
	// three more successes, not two, to close.
	end := h.Add(61 * time.Second)
	wantBreakerSummary(t, "late p3", b.Done(p3, end, breakerOK), "")
	wantBreakerSummary(t, "p4", b.Done(p4, end, breakerOK), "")
	wantBreakerSummary(t, "p5", b.Done(p5, end, breakerOK), "")
	wantBreakerSummary(t, "p6", b.Done(p6, end, breakerOK), "half_open->closed probe")
}

// Allow reclaims an expired lease itself, so a late Tick cannot leave the
// breaker stuck.
func TestBreakerAllowReclaimsExpiredLease(t *testing.T) {
	b, now := halfOpenBreaker(t, "gobreaker", BreakerConfig{PermitLease: 10 * time.Second})
	lost, _ := b.Allow(now)
	breakerRefusedUntil(t, b, now.Add(10*time.Second-1))
	wantBreakerSummary(t, "trial after the lease", breakerCall(t, b, now.Add(10*time.Second), breakerOK), "half_open->closed probe")
	wantBreakerSummary(t, "lost call's result", b.Done(lost, now.Add(11*time.Second), breakerFail), "")
}

// Case 4: a late success from before a forced open does not close it.
func TestBreakerCase4LateSuccess(t *testing.T) {
	b, now := halfOpenBreaker(t, "gobreaker", BreakerConfig{})
	p, _ := b.Allow(now)
	wantBreakerSummary(t, "force open", b.ForceOpen(now, 10*time.Second, messages.BreakerTransition_manual), "half_open->forced_open manual")
	wantBreakerSummary(t, "late success while forced open", b.Done(p, now, breakerOK), "")
	if b.State() != messages.BreakerState_forced_open {
		t.Fatalf("state %v, want forced_open", b.State())
	}
	now = now.Add(10 * time.Second)
	wantBreakerSummary(t, "forced period over", b.Tick(now), "forced_open->half_open timer")
	wantBreakerSummary(t, "late success in the next half-open", b.Done(p, now, breakerOK), "")
	if b.State() != messages.BreakerState_half_open {
		t.Fatalf("state %v, want half_open", b.State())
	}
	wantBreakerSummary(t, "a fresh trial", breakerCall(t, b, now, breakerOK), "half_open->closed probe")

	// A closed-state permit from before a trip records nothing either.
	old, _ := b.Allow(now)
	for range 6 {
		breakerCall(t, b, now, breakerFail)
	}
	before := b.Evidence()
	wantBreakerSummary(t, "stale failure", b.Done(old, now, breakerFail), "")
	if after := b.Evidence(); after != before {
		t.Fatalf("evidence moved from %+v to %+v on a stale permit", before, after)
	}
	wantBreakerSummary(t, "zero permit", b.Done(Permit{}, now, breakerOK), "")
}
