package resilience

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// retryFixedRandom returns a random source that always yields r.
func retryFixedRandom(r float64) func() float64 { return func() float64 { return r } }

func TestRetryConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     RetryConfig
		wantErr string // a substring naming the field; "" for valid
	}{
		{"zero value is the proposal", RetryConfig{}, ""},
		{"no retries", RetryConfig{MaxRetries: -1}, ""},
		{"no jitter", RetryConfig{Jitter: -1}, ""},
		{"full jitter", RetryConfig{Jitter: 1}, ""},
		{"constant delay", RetryConfig{Multiplier: 1}, ""},
		{"negative base", RetryConfig{BaseDelay: -time.Second}, "BaseDelay"},
		{"negative cap", RetryConfig{MaxDelay: -time.Second}, "MaxDelay"},
		{"shrinking multiplier", RetryConfig{Multiplier: 0.5}, "Multiplier"},
		{"NaN multiplier", RetryConfig{Multiplier: math.NaN()}, "Multiplier"},
		{"infinite multiplier", RetryConfig{Multiplier: math.Inf(1)}, "Multiplier"},
		{"jitter over 1", RetryConfig{Jitter: 1.5}, "Jitter"},
		{"NaN jitter", RetryConfig{Jitter: math.NaN()}, "Jitter"},
		{"cap under base", RetryConfig{BaseDelay: time.Minute}, "MaxDelay 30s < BaseDelay 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrRetryConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want ErrRetryConfig naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		name       string
		cfg        RetryConfig
		n          int
		retryAfter time.Duration
		random     func() float64
		want       time.Duration
	}{
		{"first retry 1s", RetryConfig{}, 1, 0, nil, time.Second},
		{"second retry 2s", RetryConfig{}, 2, 0, nil, 2 * time.Second},
		{"third retry 4s", RetryConfig{}, 3, 0, nil, 4 * time.Second},
		{"n below 1 counts as 1", RetryConfig{}, 0, 0, nil, time.Second},
		{"jitter disabled by config", RetryConfig{Jitter: -1}, 2, 0, retryFixedRandom(0), 2 * time.Second},
		{"lowest jitter -10%", RetryConfig{}, 3, 0, retryFixedRandom(0), 3600 * time.Millisecond},
		{"middle jitter is none", RetryConfig{}, 3, 0, retryFixedRandom(0.5), 4 * time.Second},
		{"out-of-range random is clamped", RetryConfig{}, 1, 0, retryFixedRandom(7), 1100 * time.Millisecond},
		{"capped at 30s", RetryConfig{}, 6, 0, nil, 30 * time.Second},
		{"cap holds after many retries", RetryConfig{}, 5000, 0, nil, 30 * time.Second},
		{"cap includes jitter", RetryConfig{}, 6, 0, retryFixedRandom(0.999), 30 * time.Second},
		{"jitter spreads under the cap", RetryConfig{}, 6, 0, retryFixedRandom(0), 27 * time.Second},
		{"jitter spreads far past the cap", RetryConfig{}, 5000, 0, retryFixedRandom(0), 27 * time.Second},
		{"Retry-After floors the wait", RetryConfig{}, 1, 7 * time.Second, nil, 7 * time.Second},
		{"Retry-After may exceed the cap", RetryConfig{}, 1, time.Minute, nil, time.Minute},
		{"short Retry-After does not shorten", RetryConfig{}, 3, time.Second, nil, 4 * time.Second},
		{"custom", RetryConfig{BaseDelay: 100 * time.Millisecond, Multiplier: 3, MaxDelay: time.Second}, 3, 0, nil, 900 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Delay(tt.n, tt.retryAfter, tt.random); got != tt.want {
				t.Errorf("Delay(%d, %v) = %v, want %v", tt.n, tt.retryAfter, got, tt.want)
			}
		})
	}
}

func TestRetryDelayJitterBounds(t *testing.T) {
	cfg := RetryConfig{}
	for n := 1; n <= 8; n++ {
		base := cfg.Delay(n, 0, nil)
		lo := time.Duration(float64(base) * 0.9)
		hi := min(time.Duration(float64(base)*1.1), 30*time.Second+1)
		for i := range 1000 {
			r := float64(i) / 1000
			got := cfg.Delay(n, 0, retryFixedRandom(r))
			if got < lo || got >= hi {
				t.Fatalf("Delay(%d) with random %v = %v, want in [%v, %v)", n, r, got, lo, hi)
			}
		}
	}
}

func TestRetryNext(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	noDeadline := time.Time{}
	fail := func(c messages.ErrorClass) Outcome { return Outcome{Class: c, Latency: 100 * time.Millisecond} }
	tests := []struct {
		name       string
		cfg        RetryConfig
		n          int
		o          Outcome
		deadline   time.Time
		wantRetry  bool
		wantWait   time.Duration
		wantReason string
	}{
		{"success is not retried", RetryConfig{}, 1, Outcome{}, noDeadline, false, 0, "succeeded"},
		{"timeout is not retried", RetryConfig{}, 1, fail(messages.ErrorClass_timeout), noDeadline, false, 0, "not retried"},
		{"server_error once", RetryConfig{}, 1, fail(messages.ErrorClass_server_error), noDeadline, true, time.Second, "retry 1 after 1s"},
		{"server_error not twice", RetryConfig{}, 2, fail(messages.ErrorClass_server_error), noDeadline, false, 0, "1 allowed"},
		{"connection once", RetryConfig{}, 1, fail(messages.ErrorClass_connection), noDeadline, true, time.Second, "retry 1"},
		{"malformed once", RetryConfig{}, 1, fail(messages.ErrorClass_malformed), noDeadline, true, time.Second, "retry 1"},
		{"overloaded is not retried", RetryConfig{}, 1, fail(messages.ErrorClass_overloaded), noDeadline, false, 0, "not retried"},
		{"bad_request never", RetryConfig{}, 1, fail(messages.ErrorClass_bad_request), noDeadline, false, 0, "not retried"},
		{"auth never", RetryConfig{}, 1, fail(messages.ErrorClass_auth), noDeadline, false, 0, "not retried"},
		{"cancelled never", RetryConfig{}, 1, fail(messages.ErrorClass_cancelled), noDeadline, false, 0, "not retried"},
		{"stream_cut never on the same model", RetryConfig{}, 1, fail(messages.ErrorClass_stream_cut), noDeadline, false, 0, "not retried"},
		{"rate_limited without Retry-After", RetryConfig{}, 1, fail(messages.ErrorClass_rate_limited), noDeadline, false, 0, "without Retry-After"},
		{"rate_limited with Retry-After waits it", RetryConfig{}, 1,
			Outcome{Class: messages.ErrorClass_rate_limited, RetryAfter: 7 * time.Second}, noDeadline, true, 7 * time.Second, "retry 1 after 7s"},
		{"rate_limited whose Retry-After ends past the deadline", RetryConfig{}, 1,
			Outcome{Class: messages.ErrorClass_rate_limited, RetryAfter: 7 * time.Second}, now.Add(5 * time.Second), false, 0, "ends past the deadline (5s left)"},
		{"wait ending exactly at the deadline is refused", RetryConfig{}, 1,
			fail(messages.ErrorClass_server_error), now.Add(time.Second), false, 0, "past the deadline"},
		{"wait ending before the deadline", RetryConfig{}, 1,
			fail(messages.ErrorClass_server_error), now.Add(time.Second + time.Millisecond), true, time.Second, "retry 1"},
		{"deadline already passed", RetryConfig{}, 1,
			fail(messages.ErrorClass_server_error), now.Add(-time.Second), false, 0, "(0s left)"},
		{"retries disabled", RetryConfig{MaxRetries: -1}, 1, fail(messages.ErrorClass_server_error), noDeadline, false, 0, "0 allowed"},
		{"unknown class is not retried", RetryConfig{}, 1, fail(messages.ErrorClass(99)), noDeadline, false, 0, "not retried"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Next(tt.n, tt.o, now, tt.deadline, nil)
			if got.Retry != tt.wantRetry || got.Wait != tt.wantWait || !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Next(%d, %v) = %+v, want Retry %v, Wait %v, Reason containing %q",
					tt.n, tt.o.Class, got, tt.wantRetry, tt.wantWait, tt.wantReason)
			}
		})
	}
}

// A stepped clock drives a request through its retries as an owner would:
// the wait always ends before the deadline.
func TestRetryNextNeverPastDeadline(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := RetryConfig{}
	for _, budget := range []time.Duration{0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 10 * time.Second} {
		deadline := start.Add(budget)
		for _, r := range []float64{0, 0.5, 0.999} {
			now := start
			o := Outcome{Class: messages.ErrorClass_rate_limited, RetryAfter: 1200 * time.Millisecond}
			for n := 1; n <= 5; n++ {
				d := cfg.Next(n, o, now, deadline, retryFixedRandom(r))
				if !d.Retry {
					break
				}
				if end := now.Add(d.Wait); !end.Before(deadline) {
					t.Fatalf("budget %v, random %v, attempt %d: wait %v ends at %v, past deadline %v", budget, r, n, d.Wait, end.Sub(start), budget)
				}
				now = now.Add(d.Wait + 100*time.Millisecond) // the retried attempt fails too
			}
		}
	}
}
