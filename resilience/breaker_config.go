package resilience

import (
	"fmt"
	"time"
)

// WindowKind is how a breaker remembers recent outcomes for its rate
// thresholds. The zero value means unset: NewBreaker uses TimeWindow when
// only WindowDuration is set, else bip03's CountWindow.
type WindowKind int

const (
	// CountWindow keeps the last WindowSize counted calls.
	CountWindow WindowKind = iota + 1
	// TimeWindow keeps the calls of the last WindowDuration, in
	// WindowBuckets buckets that expire one at a time.
	TimeWindow
	// NoWindow keeps totals since the breaker last closed, as gobreaker's
	// Counts do; it suits breakers that trip on consecutive failures only.
	NoWindow
)

// String returns the kind's configuration name.
func (k WindowKind) String() string {
	switch k {
	case CountWindow:
		return "count"
	case TimeWindow:
		return "time"
	case NoWindow:
		return "none"
	}
	return fmt.Sprintf("WindowKind(%d)", int(k))
}

// OpenGrowth is how the open period grows with consecutive trips. The zero
// value means GrowExponential.
type OpenGrowth int

const (
	// GrowExponential opens for OpenDuration x Multiplier^(trips-1).
	GrowExponential OpenGrowth = iota + 1
	// GrowLinear opens for OpenDuration x trips, as Envoy's outlier
	// detection ejects for base_ejection_time x ejections.
	GrowLinear
)

// BreakerConfig configures a Breaker. Its fields are of two kinds, and each
// says which it is:
//
//   - thresholds (MinimumCalls, FailureRate, SlowRate, SlowCall,
//     ConsecutiveFailures) and OpenJitter: zero means off;
//   - everything else: zero means unset, and NewBreaker fills in the
//     bip03 preset's value.
//
// One exception keeps the zero BreakerConfig useful: when no threshold is
// set at all (no FailureRate, SlowRate or ConsecutiveFailures), NewBreaker
// uses bip03's 5 consecutive failures, so BreakerConfig{} behaves as bip03
// without jitter. Presets set every field; see Preset.
type BreakerConfig struct {
	// Window selects the window; zero infers it (see WindowKind).
	Window WindowKind
	// WindowSize is the count window's length in calls (default 100,
	// at most 1,000,000); other windows ignore it.
	WindowSize int
	// WindowDuration is the time window's span (default 60s); other
	// windows ignore it.
	WindowDuration time.Duration
	// WindowBuckets is how many buckets the time window has (default 10,
	// at most 1,000); outcomes expire a bucket at a time.
	WindowBuckets int
	// MinimumCalls is how many calls the window must hold before a rate
	// threshold can trip (0: off, i.e. one call is enough). With a count
	// window it may not exceed WindowSize.
	MinimumCalls int
	// FailureRate trips the breaker when failures/calls >= it, in (0, 1]
	// (0: off).
	FailureRate float64
	// SlowRate trips the breaker when slow calls/calls >= it, in (0, 1]
	// (0: off). A slow call counts whether it succeeded or not.
	SlowRate float64
	// SlowCall is the duration above which a call is slow; a stream's
	// FirstToken is compared when it has one, else Latency (0: no call is
	// slow). Required when SlowRate is set.
	SlowCall time.Duration
	// ConsecutiveFailures trips the breaker when this many counted failures
	// arrive in a row (0: off). Like every threshold it is checked after
	// each recorded outcome, successes included.
	ConsecutiveFailures int
	// OpenDuration is the first open period (default 60s).
	OpenDuration time.Duration
	// MaxOpenDuration caps the grown open period before jitter (default
	// the larger of 10m and OpenDuration). At least OpenDuration.
	MaxOpenDuration time.Duration
	// Multiplier is GrowExponential's factor (default 2; 1 keeps the
	// period constant). At least 1.
	Multiplier float64
	// Growth selects how the open period grows (default GrowExponential).
	Growth OpenGrowth
	// OpenJitter spreads each grown open period by +- this fraction, drawn
	// from NewBreaker's random source (0: off), in [0, 1). Retry-After and
	// auth openings are exact.
	OpenJitter float64
	// TripReset sets the trip count back to 0 once the breaker has stayed
	// closed this long (default 10m).
	TripReset time.Duration
	// HalfOpenPermits is how many trial calls may be in flight at once in
	// half-open (default 3).
	HalfOpenPermits int
	// SuccessThreshold is how many successful trials close a half-open
	// breaker (default 3); any counted failed trial reopens it.
	SuccessThreshold int
	// PermitLease is how long a half-open permit stays held without a
	// Done or Release before it is freed (default 60s, twice the
	// proposal's call timeout).
	PermitLease time.Duration
	// AuthOpen is how long an auth failure (PolicyFor(class).ForcesOpen)
	// opens the breaker (default 10m). Alerting is the owner's job.
	AuthOpen time.Duration
}

// Bounds that keep a misconfiguration from allocating without limit.
const (
	breakerMaxWindowSize    = 1_000_000
	breakerMaxWindowBuckets = 1_000
	breakerMaxPermits       = 1_000
)

// Validate reports the first field out of its bounds, naming the field and
// the bound. Zero fields are valid: they are off or unset (see
// BreakerConfig).
func (c BreakerConfig) Validate() error {
	type intField struct {
		name     string
		v, limit int
	}
	for _, f := range []intField{
		{"WindowSize", c.WindowSize, breakerMaxWindowSize},
		{"WindowBuckets", c.WindowBuckets, breakerMaxWindowBuckets},
		{"MinimumCalls", c.MinimumCalls, -1},
		{"ConsecutiveFailures", c.ConsecutiveFailures, -1},
		{"HalfOpenPermits", c.HalfOpenPermits, breakerMaxPermits},
		{"SuccessThreshold", c.SuccessThreshold, -1},
	} {
		if f.v < 0 {
			return fmt.Errorf("breaker config: %s is %d, want >= 0", f.name, f.v)
		}
		if f.limit >= 0 && f.v > f.limit {
			return fmt.Errorf("breaker config: %s is %d, want <= %d", f.name, f.v, f.limit)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"WindowDuration", c.WindowDuration},
		{"SlowCall", c.SlowCall},
		{"OpenDuration", c.OpenDuration},
		{"MaxOpenDuration", c.MaxOpenDuration},
		{"TripReset", c.TripReset},
		{"PermitLease", c.PermitLease},
		{"AuthOpen", c.AuthOpen},
	} {
		if f.v < 0 {
			return fmt.Errorf("breaker config: %s is %v, want >= 0", f.name, f.v)
		}
	}
	if c.Window < 0 || c.Window > NoWindow {
		return fmt.Errorf("breaker config: Window is %v, want count, time or none", c.Window)
	}
	if c.Growth < 0 || c.Growth > GrowLinear {
		return fmt.Errorf("breaker config: Growth is %d, want GrowExponential or GrowLinear", c.Growth)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"FailureRate", c.FailureRate}, {"SlowRate", c.SlowRate}} {
		if !(f.v >= 0 && f.v <= 1) {
			return fmt.Errorf("breaker config: %s is %v, want in (0, 1], or 0 for off", f.name, f.v)
		}
	}
	if c.SlowRate > 0 && c.SlowCall == 0 {
		return fmt.Errorf("breaker config: SlowRate is %v but SlowCall is 0, want SlowCall > 0", c.SlowRate)
	}
	if !(c.Multiplier == 0 || c.Multiplier >= 1) || c.Multiplier > 1e6 {
		return fmt.Errorf("breaker config: Multiplier is %v, want in [1, 1e6], or 0 for 2", c.Multiplier)
	}
	if !(c.OpenJitter >= 0 && c.OpenJitter < 1) {
		return fmt.Errorf("breaker config: OpenJitter is %v, want in [0, 1)", c.OpenJitter)
	}
	if c.MaxOpenDuration > 0 && c.OpenDuration > c.MaxOpenDuration {
		return fmt.Errorf("breaker config: MaxOpenDuration is %v, want >= OpenDuration (%v)", c.MaxOpenDuration, c.OpenDuration)
	}
	d := c.withDefaults()
	if d.Window == TimeWindow && d.WindowDuration/time.Duration(d.WindowBuckets) < time.Millisecond {
		return fmt.Errorf("breaker config: WindowDuration is %v, want >= WindowBuckets (%d) x 1ms", d.WindowDuration, d.WindowBuckets)
	}
	if d.Window == CountWindow && d.MinimumCalls > d.WindowSize {
		return fmt.Errorf("breaker config: MinimumCalls is %d, want <= WindowSize (%d)", d.MinimumCalls, d.WindowSize)
	}
	return nil
}

// Merge returns c with every non-zero field of over in its place, so a
// config file can name a preset and override single fields. A negative
// threshold or OpenJitter in over turns that setting off (sets it to 0),
// since a zero in over means "keep c's value".
func (c BreakerConfig) Merge(over BreakerConfig) BreakerConfig {
	mergeBreakerField(&c.MinimumCalls, over.MinimumCalls, true)
	mergeBreakerField(&c.ConsecutiveFailures, over.ConsecutiveFailures, true)
	mergeBreakerField(&c.WindowSize, over.WindowSize, false)
	mergeBreakerField(&c.WindowBuckets, over.WindowBuckets, false)
	mergeBreakerField(&c.HalfOpenPermits, over.HalfOpenPermits, false)
	mergeBreakerField(&c.SuccessThreshold, over.SuccessThreshold, false)
	mergeBreakerField(&c.FailureRate, over.FailureRate, true)
	mergeBreakerField(&c.SlowRate, over.SlowRate, true)
	mergeBreakerField(&c.OpenJitter, over.OpenJitter, true)
	mergeBreakerField(&c.Multiplier, over.Multiplier, false)
	mergeBreakerField(&c.SlowCall, over.SlowCall, true)
	mergeBreakerField(&c.WindowDuration, over.WindowDuration, false)
	mergeBreakerField(&c.OpenDuration, over.OpenDuration, false)
	mergeBreakerField(&c.MaxOpenDuration, over.MaxOpenDuration, false)
	mergeBreakerField(&c.TripReset, over.TripReset, false)
	mergeBreakerField(&c.PermitLease, over.PermitLease, false)
	mergeBreakerField(&c.AuthOpen, over.AuthOpen, false)
	mergeBreakerField(&c.Window, over.Window, false)
	mergeBreakerField(&c.Growth, over.Growth, false)
	return c
}

// mergeBreakerField applies Merge's rule to one field: a non-zero over
// wins, and a negative one turns an offable field off.
func mergeBreakerField[T ~int | ~int64 | ~float64](dst *T, over T, offable bool) {
	switch {
	case over < 0 && offable:
		*dst = 0
	case over != 0:
		*dst = over
	}
}

// withDefaults fills the unset fields with bip03's values (see
// BreakerConfig); thresholds and jitter are left as given.
func (c BreakerConfig) withDefaults() BreakerConfig {
	def := breakerPresets["bip03"]
	if c.Window == 0 {
		c.Window = def.Window
		if c.WindowDuration > 0 && c.WindowSize == 0 {
			c.Window = TimeWindow
		}
	}
	switch c.Window {
	case CountWindow:
		setBreakerDefault(&c.WindowSize, def.WindowSize)
	case TimeWindow:
		setBreakerDefault(&c.WindowDuration, time.Minute)
		setBreakerDefault(&c.WindowBuckets, 10)
	}
	if c.FailureRate == 0 && c.SlowRate == 0 && c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = def.ConsecutiveFailures
	}
	setBreakerDefault(&c.OpenDuration, def.OpenDuration)
	setBreakerDefault(&c.MaxOpenDuration, max(def.MaxOpenDuration, c.OpenDuration))
	setBreakerDefault(&c.Multiplier, def.Multiplier)
	setBreakerDefault(&c.Growth, GrowExponential)
	setBreakerDefault(&c.TripReset, def.TripReset)
	setBreakerDefault(&c.HalfOpenPermits, def.HalfOpenPermits)
	setBreakerDefault(&c.SuccessThreshold, def.SuccessThreshold)
	setBreakerDefault(&c.PermitLease, def.PermitLease)
	setBreakerDefault(&c.AuthOpen, def.AuthOpen)
	return c
}

func setBreakerDefault[T comparable](dst *T, def T) {
	var zero T
	if *dst == zero {
		*dst = def
	}
}
