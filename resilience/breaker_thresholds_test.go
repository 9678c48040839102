package resilience

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// Thresholds, windows and the error classes that open the breaker at once.

// resilience4j's documented case: window 5, minimum 5, 50 %: F F F S gives
// no trip, the next S trips at 60 % (a success can trip it).
func TestBreakerResilience4jSuccessTrips(t *testing.T) {
	b := presetBreaker(t, "resilience4j", BreakerConfig{WindowSize: 5, MinimumCalls: 5}, nil)
	for i, o := range []Outcome{breakerFail, breakerFail, breakerFail, breakerOK} {
		wantBreakerSummary(t, fmt.Sprintf("call %d", i+1), breakerCall(t, b, breakerT0, o), "")
	}
	ts := breakerCall(t, b, breakerT0, breakerOK)
	wantBreakerSummary(t, "call 5, a success", ts, "closed->open threshold")
	if e := ts[0].Evidence; e.Calls != 5 || e.Failures != 3 || e.FailureRate != 0.6 {
		t.Fatalf("evidence %+v, want 3 failures of 5 calls, rate 0.6", e)
	}
	// Exactly at the rate trips too (>=).
	b = presetBreaker(t, "resilience4j", BreakerConfig{WindowSize: 4, MinimumCalls: 4}, nil)
	for _, o := range []Outcome{breakerFail, breakerOK, breakerFail} {
		breakerCall(t, b, breakerT0, o)
	}
	wantBreakerSummary(t, "2 failures of 4", breakerCall(t, b, breakerT0, breakerOK), "closed->open threshold")
}

func TestBreakerSlowCalls(t *testing.T) {
	slow := Outcome{Class: messages.ErrorClass_ok, Latency: 61 * time.Second}
	stream := Outcome{Class: messages.ErrorClass_ok, Latency: 5 * time.Minute, FirstToken: time.Second}
	slowStream := Outcome{Class: messages.ErrorClass_ok, Latency: 62 * time.Second, FirstToken: 61 * time.Second}
	tests := []struct {
		name  string
		calls []Outcome
		want  string
	}{
		{"five slow successes trip at 100 %", []Outcome{slow, slow, slow, slow, slow}, "closed->open slow"},
		{"one fast call keeps it under 100 %", []Outcome{slow, slow, breakerOK, slow, slow}, ""},
		{"a long stream with a quick first token is not slow", []Outcome{slow, slow, slow, slow, stream}, ""},
		{"a slow first token is", []Outcome{slow, slow, slow, slow, slowStream}, "closed->open slow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := presetBreaker(t, "resilience4j", BreakerConfig{WindowSize: 5, MinimumCalls: 5}, nil)
			var got []Transition
			for _, o := range tt.calls {
				got = append(got, breakerCall(t, b, breakerT0, o)...)
			}
			wantBreakerSummary(t, "calls", got, tt.want)
		})
	}

	// In half-open, a slow trial fails when slow calls can trip it.
	b := presetBreaker(t, "resilience4j", BreakerConfig{WindowSize: 5, MinimumCalls: 5}, nil)
	for range 5 {
		breakerCall(t, b, breakerT0, slow)
	}
	now := breakerT0.Add(60 * time.Second)
	b.Tick(now)
	wantBreakerSummary(t, "slow trial", breakerCall(t, b, now, slow), "half_open->open slow")
}

// Hystrix: >= 50 % errors with >= 20 requests in a rolling 10 s window.
func TestBreakerHystrixTimeWindow(t *testing.T) {
	b := presetBreaker(t, "hystrix", BreakerConfig{}, nil)
	now := breakerT0
	// 19 failures over 9.5 s: under the volume threshold.
	for i := range 19 {
		wantBreakerSummary(t, fmt.Sprintf("failure %d", i+1), breakerCall(t, b, now.Add(time.Duration(i)*500*time.Millisecond), breakerFail), "")
	}
	// At 10 s the first two (0 s and 0.5 s) have left the window: 17 + 3
	// successes is 20 calls at 85 %.
	now = now.Add(10 * time.Second)
	for range 2 {
		wantBreakerSummary(t, "success at 10 s", breakerCall(t, b, now, breakerOK), "")
	}
	if e := b.Evidence(); e.Calls != 19 || e.Failures != 17 {
		t.Fatalf("evidence at 10 s: %+v, want 19 calls with 17 failures", e)
	}
	ts := breakerCall(t, b, now, breakerOK)
	wantBreakerSummary(t, "20th request", ts, "closed->open threshold")
	if got := ts[0].OpenUntil.Sub(now); got != 5*time.Second {
		t.Fatalf("open for %v, want hystrix's 5 s sleep window", got)
	}
	now = now.Add(5 * time.Second)
	wantBreakerSummary(t, "sleep window over", b.Tick(now), "open->half_open timer")
	wantBreakerSummary(t, "single trial", breakerCall(t, b, now, breakerOK), "half_open->closed probe")
	// The window restarted on closing; 20 failures 11 s apart never share
	// it.
	for i := range 20 {
		wantBreakerSummary(t, "sparse failure", breakerCall(t, b, now.Add(time.Duration(i)*11*time.Second), breakerFail), "")
	}
}

func TestBreakerBip03Consecutive(t *testing.T) {
	b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
	// A success breaks the run; a caller's mistake neither counts nor
	// breaks it.
	pattern := []Outcome{breakerFail, breakerFail, breakerFail, breakerFail, breakerOK, breakerFail, breakerFail,
		{Class: messages.ErrorClass_bad_request}, breakerFail, breakerFail}
	var got []Transition
	for _, o := range pattern {
		got = append(got, breakerCall(t, b, breakerT0, o)...)
	}
	wantBreakerSummary(t, "pattern", got, "")
	ts := breakerCall(t, b, breakerT0, breakerFail)
	wantBreakerSummary(t, "5th failure in a row", ts, "closed->open consecutive")
	if e := ts[0].Evidence; e.Calls != 10 || e.Failures != 9 || e.Consecutive != 5 {
		t.Fatalf("evidence %+v, want 10 counted calls, 9 failures, 5 in a row", e)
	}
	// bip03's three trials must all succeed; the second's failure reopens.
	now := breakerT0.Add(60 * time.Second)
	b.Tick(now)
	wantBreakerSummary(t, "trial 1", breakerCall(t, b, now, breakerOK), "")
	ts = breakerCall(t, b, now, breakerFail)
	wantBreakerSummary(t, "trial 2", ts, "half_open->open probe")
	if got := ts[0].OpenUntil.Sub(now); got != 120*time.Second {
		t.Fatalf("second open period %v, want 120 s", got)
	}
}

// Case 5: a 429 with Retry-After 7 s opens for exactly 7 s, without
// jitter; an auth failure opens at once for AuthOpen.
func TestBreakerCase5OpensAtOnce(t *testing.T) {
	limited := Outcome{Class: messages.ErrorClass_rate_limited, RetryAfter: 7 * time.Second}
	auth := Outcome{Class: messages.ErrorClass_auth}
	tests := []struct {
		name      string
		o         Outcome
		want      string
		wantHalf  string
		wantClass messages.ErrorClass
		wantOpen  time.Duration
	}{
		{"429 with Retry-After", limited, "closed->open retry_after", "half_open->open retry_after", messages.ErrorClass_rate_limited, 7 * time.Second},
		{"auth failure", auth, "closed->open threshold", "half_open->open threshold", messages.ErrorClass_auth, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A random source that would stretch a grown period by 9.8 %.
			b := presetBreaker(t, "bip03", BreakerConfig{}, func() float64 { return 0.99 })
			now := breakerT0
			ts := breakerCall(t, b, now, tt.o)
			wantBreakerSummary(t, "first call", ts, tt.want)
			if got := ts[0].OpenUntil.Sub(now); got != tt.wantOpen || ts[0].Class != tt.wantClass {
				t.Fatalf("open %v class %v, want %v and %v", got, ts[0].Class, tt.wantOpen, tt.wantClass)
			}
			wantBreakerSummary(t, "tick 1 ns early", b.Tick(now.Add(tt.wantOpen-1)), "")
			now = now.Add(tt.wantOpen)
			wantBreakerSummary(t, "tick on time", b.Tick(now), "open->half_open timer")
			// The same failure in half-open reopens for the same period.
			ts = breakerCall(t, b, now, tt.o)
			wantBreakerSummary(t, "half-open", ts, tt.wantHalf)
			if got := ts[0].OpenUntil.Sub(now); got != tt.wantOpen {
				t.Fatalf("half-open: open %v, want %v", got, tt.wantOpen)
			}
		})
	}
	// A 429 without Retry-After is an ordinary counted failure.
	b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
	wantBreakerSummary(t, "429 without Retry-After", breakerCall(t, b, breakerT0, Outcome{Class: messages.ErrorClass_rate_limited}), "")
	if e := b.Evidence(); e.Failures != 1 {
		t.Fatalf("evidence %+v, want one failure", e)
	}
}

// Case 8: a retry of 7 attempts over a breaker with a consecutive
// threshold of 3: the model sees 3 calls and the final error is
// circuit_open. The loop is the retry policy's shape (docs/policy.md: base 1 s,
// x2, cap 30 s), with the owner's Tick before each attempt.
func TestBreakerCase8RetryOverBreaker(t *testing.T) {
	b := presetBreaker(t, "bip03", BreakerConfig{ConsecutiveFailures: 3}, nil)
	now := breakerT0
	modelCalls := 0
	var final messages.ErrorClass
	backoff := time.Second
	for attempt := range 7 {
		if attempt > 0 {
			now = now.Add(backoff)
			backoff = min(2*backoff, 30*time.Second)
		}
		b.Tick(now)
		p, err := b.Allow(now)
		if errors.Is(err, ErrOpen) {
			final = messages.ErrorClass_circuit_open
			continue
		}
		modelCalls++
		final = breakerFail.Class
		b.Done(p, now, breakerFail)
	}
	if modelCalls != 3 || final != messages.ErrorClass_circuit_open {
		t.Fatalf("model saw %d calls, final error %v; want 3 and circuit_open", modelCalls, final)
	}
	if got := now.Sub(breakerT0); got >= 63*time.Second {
		t.Fatalf("the loop ran %v, past the open period: the case no longer tests what it says", got)
	}
}
