package resilience

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrRetryConfig is returned (wrapped, naming the field and its bound) by
// RetryConfig.Validate.
var ErrRetryConfig = errors.New("invalid retry config")

// The proposal's retry numbers: 3 retries, 1 s, x2, capped at 30 s, +-10 %
// (so 1 s, 2 s, 4 s).
const (
	retryDefaultMaxRetries = 3
	retryDefaultBaseDelay  = time.Second
	retryDefaultMultiplier = 2.0
	retryDefaultMaxDelay   = 30 * time.Second
	retryDefaultJitter     = 0.1
)

// RetryConfig is the backoff of retries against the same model. Its zero
// value is the proposal's policy. It holds no state: one value may be shared
// by every request.
type RetryConfig struct {
	// MaxRetries is how many times one request may retry the same model,
	// whatever the classes; the class policy may allow fewer. 0 means 3; a
	// negative value means never.
	MaxRetries int
	// BaseDelay is the wait before the first retry. 0 means 1 s.
	BaseDelay time.Duration
	// Multiplier grows the wait for each further retry. 0 means 2; it must
	// be at least 1 otherwise.
	Multiplier float64
	// MaxDelay is a hard ceiling on the backoff, jitter included; only the
	// model's own Retry-After can make a wait longer. 0 means 30 s.
	MaxDelay time.Duration
	// Jitter spreads each wait uniformly over +-Jitter of it, so that callers
	// failed by the same fault do not come back in step. 0 means 0.1; a
	// negative value means none; at most 1.
	Jitter float64
}

// RetryDecision is the answer of RetryConfig.Next.
type RetryDecision struct {
	// Retry is true when the same model should be called again after Wait.
	Retry bool
	// Wait is the time to wait before the retry; 0 when Retry is false.
	Wait time.Duration
	// Reason says why, for logs and the attempt record.
	Reason string
}

// Validate reports the first field out of range, wrapping ErrRetryConfig.
func (c RetryConfig) Validate() error {
	switch {
	case c.BaseDelay < 0:
		return fmt.Errorf("%w: BaseDelay %v < 0", ErrRetryConfig, c.BaseDelay)
	case c.MaxDelay < 0:
		return fmt.Errorf("%w: MaxDelay %v < 0", ErrRetryConfig, c.MaxDelay)
	case math.IsNaN(c.Multiplier) || math.IsInf(c.Multiplier, 0) || (c.Multiplier != 0 && c.Multiplier < 1):
		return fmt.Errorf("%w: Multiplier %v, want 0 (default) or a finite value >= 1", ErrRetryConfig, c.Multiplier)
	case math.IsNaN(c.Jitter) || c.Jitter > 1:
		return fmt.Errorf("%w: Jitter %v > 1", ErrRetryConfig, c.Jitter)
	}
	d := c.withDefaults()
	if d.MaxDelay < d.BaseDelay {
		return fmt.Errorf("%w: MaxDelay %v < BaseDelay %v", ErrRetryConfig, d.MaxDelay, d.BaseDelay)
	}
	return nil
}

// withDefaults replaces zero fields by the proposal's values and a negative
// MaxRetries or Jitter by 0.
func (c RetryConfig) withDefaults() RetryConfig {
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = retryDefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = retryDefaultBaseDelay
	}
	if c.Multiplier == 0 {
		c.Multiplier = retryDefaultMultiplier
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = retryDefaultMaxDelay
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = retryDefaultJitter
	case c.Jitter < 0:
		c.Jitter = 0
	}
	return c
}

// Delay returns the wait before retry number n (1-based; below 1 counts as
// 1): BaseDelay x Multiplier^(n-1) capped at MaxDelay, spread by +-Jitter
// using random (values in [0, 1); nil means no jitter) without passing
// MaxDelay, and never shorter than
// retryAfter, the model's Retry-After (0 when it gave none). Call Validate
// first: Delay does not check the config.
func (c RetryConfig) Delay(n int, retryAfter time.Duration, random func() float64) time.Duration {
	c = c.withDefaults()
	if n < 1 {
		n = 1
	}
	// Cap before the jitter, so that waits past the cap still spread (27 s
	// to 30 s by default) instead of all landing on it, and after, so the cap
	// holds.
	f := min(float64(c.BaseDelay)*math.Pow(c.Multiplier, float64(n-1)), float64(c.MaxDelay))
	if random != nil && c.Jitter > 0 {
		r := min(max(random(), 0), 1)
		f *= 1 + c.Jitter*(2*r-1)
	}
	d := min(time.Duration(f), c.MaxDelay)
	return max(d, retryAfter, 0)
}

// Next decides whether to call the same model again after attempt n (1-based)
// failed with outcome o, at now, for a request that must end by deadline (the
// zero time means no deadline). The class policy decides first (PolicyFor:
// timeout, overloaded, auth, the caller's own mistakes ... are never retried;
// rate_limited only when a Retry-After was given), then MaxRetries; n counts
// every failed attempt on this model, so a class allowed one retry is not
// retried after a second failure of any class. A retry whose wait would end
// at or past the deadline is refused, since it could not finish.
func (c RetryConfig) Next(n int, o Outcome, now, deadline time.Time, random func() float64) RetryDecision {
	c = c.withDefaults()
	if o.Success() {
		return RetryDecision{Reason: "succeeded"}
	}
	p := PolicyFor(o.Class)
	if p.RetrySame == 0 {
		return RetryDecision{Reason: fmt.Sprintf("%v is not retried on the same model", o.Class)}
	}
	if n < 1 {
		n = 1
	}
	if limit := min(p.RetrySame, c.MaxRetries); n > limit {
		return RetryDecision{Reason: fmt.Sprintf("%v: %d retries used, %d allowed", o.Class, n-1, limit)}
	}
	if p.RetryAfterOnly && o.RetryAfter <= 0 {
		return RetryDecision{Reason: fmt.Sprintf("%v without Retry-After is not retried on the same model", o.Class)}
	}
	wait := c.Delay(n, o.RetryAfter, random)
	if !deadline.IsZero() && !now.Add(wait).Before(deadline) {
		return RetryDecision{Reason: fmt.Sprintf("%v: wait %v ends past the deadline (%v left)", o.Class, wait, max(deadline.Sub(now), 0))}
	}
	return RetryDecision{Retry: true, Wait: wait, Reason: fmt.Sprintf("%v: retry %d after %v", o.Class, n, wait)}
}
