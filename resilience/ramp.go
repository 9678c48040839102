package resilience

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrRampConfig is returned (wrapped, naming the field and its bound) by
// RampConfig.Validate and NewRamp.
var ErrRampConfig = errors.New("invalid ramp config")

// Progressive restoration defaults: 10 %, 25 %, 50 %, then full traffic 30 s
// after the breaker closed, each step judged on at least 10 calls against a
// 0.9 floor (the moderate degradation floor: a step that would put the
// model in moderate degradation is not a recovery).
var rampDefaultSteps = []int{10, 25, 50, 100}

const (
	rampDefaultOver         = 30 * time.Second
	rampDefaultSuccessFloor = 0.9
	rampDefaultMinCalls     = 10
	rampDefaultMaxHoldSteps = 3 // MaxHold, in step holds
)

// RampConfig is the progressive restoration of a model whose breaker has
// just closed: instead of full traffic at once, it gets a growing share, and
// each share must prove itself before the next. Its zero value is the
// default ramp: 10 %, 25 %, 50 %, 100 % over 30 s.
type RampConfig struct {
	// Steps are the shares of traffic, in percent, that the model goes
	// through: strictly increasing, each in 1..100, the last 100. nil means
	// 10, 25, 50, 100. A single step, 100, turns the ramp off: Start
	// completes at once.
	Steps []int
	// Over is the time from Start to full traffic when every step is
	// healthy. Each step below 100 is held an equal part of it,
	// Over/(len(Steps)-1): 10 s each by default, so the model is back at
	// 100 % exactly Over after its breaker closed. The last step is not held:
	// at 100 % the breaker's own windows guard the model. 0 means 30 s.
	Over time.Duration
	// SuccessFloor is the success rate a step must keep: a step whose rate
	// is under it (equal is enough) regresses. 0 means 0.9; at most 1.
	SuccessFloor float64
	// MinCalls is the number of counted calls a step needs before its rate
	// is judged and before it may advance at the end of its hold. Fewer
	// calls are "thin" evidence. A step regresses early, on thin evidence,
	// once its failures make a rate under the floor certain by MinCalls
	// calls. 0 means 10 (with the 0.9 floor: one failure in ten holds, two
	// regress).
	MinCalls int
	// MaxHold is how long a step whose evidence stays thin waits before it
	// advances on time alone, so that a model with little traffic is not
	// kept at 10 % for hours while fallbacks serve the rest; any failure
	// among thin evidence that puts its rate under the floor cancels that,
	// and the step waits for MinCalls calls. 0 means three holds (30 s with
	// the defaults); a negative value means never: a step always waits for
	// MinCalls calls. It must not be shorter than a hold.
	MaxHold time.Duration
	// Successes turns on evidence-driven steps: a step passes as soon as it
	// has seen Successes successes in a row, before its hold (the time
	// rules above still pass it if they come first), and a counted failure
	// that does not end the ramp drops the model one step, to the share
	// below, whose evidence then starts with the step it dropped from (so
	// failures on the way down add up to a regression). 0, the zero value,
	// turns both off: steps pass on time and calls alone. Negative is an
	// error.
	Successes int
}

// Validate reports the first field out of range, wrapping ErrRampConfig.
func (c RampConfig) Validate() error {
	for i, p := range c.Steps {
		switch {
		case p < 1 || p > 100:
			return fmt.Errorf("%w: Steps[%d] = %d, want 1..100", ErrRampConfig, i, p)
		case i > 0 && p <= c.Steps[i-1]:
			return fmt.Errorf("%w: Steps[%d] = %d after %d, want strictly increasing", ErrRampConfig, i, p, c.Steps[i-1])
		}
	}
	if n := len(c.Steps); c.Steps != nil && n == 0 {
		return fmt.Errorf("%w: Steps is empty, want nil (the default) or steps ending at 100", ErrRampConfig)
	} else if n > 0 && c.Steps[n-1] != 100 {
		return fmt.Errorf("%w: Steps ends at %d, want 100", ErrRampConfig, c.Steps[n-1])
	}
	switch {
	case c.Over < 0:
		return fmt.Errorf("%w: Over %v < 0", ErrRampConfig, c.Over)
	case math.IsNaN(c.SuccessFloor) || c.SuccessFloor < 0 || c.SuccessFloor > 1:
		return fmt.Errorf("%w: SuccessFloor %v, want 0 (default) to 1", ErrRampConfig, c.SuccessFloor)
	case c.MinCalls < 0:
		return fmt.Errorf("%w: MinCalls %d < 0", ErrRampConfig, c.MinCalls)
	case c.Successes < 0:
		return fmt.Errorf("%w: Successes %d < 0", ErrRampConfig, c.Successes)
	}
	d := c.withDefaults()
	if hold := d.hold(); d.MaxHold >= 0 && d.MaxHold < hold {
		return fmt.Errorf("%w: MaxHold %v < step hold %v (Over/(len(Steps)-1))", ErrRampConfig, d.MaxHold, hold)
	}
	return nil
}

// withDefaults replaces zero fields by the defaults.
func (c RampConfig) withDefaults() RampConfig {
	if c.Steps == nil {
		c.Steps = rampDefaultSteps
	}
	if c.Over == 0 {
		c.Over = rampDefaultOver
	}
	if c.SuccessFloor == 0 {
		c.SuccessFloor = rampDefaultSuccessFloor
	}
	if c.MinCalls == 0 {
		c.MinCalls = rampDefaultMinCalls
	}
	if c.MaxHold == 0 {
		c.MaxHold = rampDefaultMaxHoldSteps * c.hold()
	}
	return c
}

// hold is how long each step below 100 % lasts when its evidence is enough.
func (c RampConfig) hold() time.Duration {
	if len(c.Steps) < 2 {
		return 0
	}
	return c.Over / time.Duration(len(c.Steps)-1)
}

// RampEventKind says what a ramp did.
type RampEventKind int

// The kinds of RampEvent.
const (
	// RampStarted: Start put the model on the first step.
	RampStarted RampEventKind = iota + 1
	// RampAdvanced: a step held and the model moved to the next one.
	RampAdvanced
	// RampCompleted: the model is back at 100 %; the ramp is over.
	RampCompleted
	// RampRegressed: a step fell under the success floor; the ramp is over
	// and the owner must reopen the breaker.
	RampRegressed
	// RampDropped: with Successes set, a failure moved the model down one
	// step; the ramp goes on from there.
	RampDropped
)

func (k RampEventKind) String() string {
	switch k {
	case RampStarted:
		return "started"
	case RampAdvanced:
		return "advanced"
	case RampCompleted:
		return "completed"
	case RampRegressed:
		return "regressed"
	case RampDropped:
		return "dropped"
	}
	return fmt.Sprintf("RampEventKind(%d)", int(k))
}

// RampEvent is one change of a ramp, reported once, for the owner to
// publish as a RecoveryEvent of kind ramp_step (RampPercent = To, Detail =
// String()). Calls, Successes and Held are the evidence of the step that
// ended (zero for RampStarted).
type RampEvent struct {
	Kind RampEventKind
	At   time.Time
	// From and To are the shares in percent before and after; To is 0 for a
	// regression (the breaker reopens), From is 0 for Start.
	From, To int
	// Calls and Successes are the counted outcomes observed during the step.
	Calls, Successes int
	// Held is how long the step lasted.
	Held time.Duration
	// OnTimeAlone is true when the step advanced with fewer than MinCalls
	// calls, at MaxHold.
	OnTimeAlone bool
	// OnEvidence is true when the step advanced before its hold, on
	// Successes successes in a row.
	OnEvidence bool
}

func (e RampEvent) String() string {
	switch e.Kind {
	case RampStarted:
		return fmt.Sprintf("ramp started at %d%%", e.To)
	case RampRegressed:
		return fmt.Sprintf("ramp regressed at %d%% after %v (%d/%d ok): reopen", e.From, e.Held, e.Successes, e.Calls)
	case RampDropped:
		return fmt.Sprintf("ramp dropped %d%% -> %d%% after %v (%d/%d ok): a failure", e.From, e.To, e.Held, e.Successes, e.Calls)
	}
	s := fmt.Sprintf("ramp %d%% -> %d%% after %v (%d/%d ok)", e.From, e.To, e.Held, e.Successes, e.Calls)
	switch {
	case e.OnTimeAlone:
		s += ", on time alone"
	case e.OnEvidence:
		s += ", on evidence"
	}
	return s
}

// Ramp is the progressive restoration of one model, driven by its owner:
// Start when the breaker closes, Observe every counted outcome, Tick at
// NextDeadline, and Admit each request with a uniform draw. Each call
// returns at most one event: a call changes at most one step, since a new
// step starts empty at the time of the change.
//
// A Ramp is owned by one actor: it is not safe for concurrent use.
type Ramp struct {
	cfg  RampConfig // with defaults
	hold time.Duration

	ramping   bool
	step      int       // index into cfg.Steps
	share     float64   // cfg.Steps[step]/100, for Admit
	since     time.Time // start of the current step
	calls     int       // counted outcomes in the current step
	successes int
	streak    int // successes in a row in the current step, for Successes
}

// NewRamp returns an idle ramp (Percent 100) with cfg, or an error wrapping
// ErrRampConfig.
func NewRamp(cfg RampConfig) (*Ramp, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Ramp{cfg: cfg, hold: cfg.hold()}, nil
}

// Start begins the ramp at the first step, at now; call it when the breaker
// closes. It restarts a ramp already running. With the single step 100 the
// ramp completes at once and Start returns RampCompleted.
func (r *Ramp) Start(now time.Time) RampEvent {
	r.ramping = true
	r.enter(0, now)
	to := r.cfg.Steps[0]
	if to == 100 {
		r.ramping = false
		return RampEvent{Kind: RampCompleted, At: now, To: to}
	}
	return RampEvent{Kind: RampStarted, At: now, To: to}
}

// Stop ends the ramp without an event: call it when the breaker opens for
// its own reasons (the owner already reports that transition).
func (r *Ramp) Stop() { r.ramping = false }

// Observe records the outcome of a call the ramp admitted (or of a probe),
// finished at now, and judges the step. An outcome that does not count
// (the caller's own mistake, see Outcome.Counts) is no evidence, but the
// step is still judged against now, as Tick does. With Successes set, a
// success that makes the streak reach it passes the step, and a counted
// failure that does not regress drops a step. Observe does nothing when
// not ramping.
func (r *Ramp) Observe(now time.Time, o Outcome) (RampEvent, bool) {
	if !r.ramping {
		return RampEvent{}, false
	}
	failed := false
	if o.Counts() {
		r.calls++
		if o.Success() {
			r.successes++
			r.streak++
		} else {
			r.streak = 0
			failed = true
		}
	}
	if r.cfg.Successes > 0 && !r.underFloor() {
		switch {
		case failed && r.step > 0:
			return r.drop(now), true
		case !failed && r.streak >= r.cfg.Successes:
			ev := r.event(now)
			ev.OnEvidence = true
			return r.advance(ev, now), true
		}
	}
	return r.judge(now)
}

// Tick judges the step against now: it advances a step whose hold (or
// MaxHold, on thin evidence) has passed.
func (r *Ramp) Tick(now time.Time) (RampEvent, bool) {
	if !r.ramping {
		return RampEvent{}, false
	}
	return r.judge(now)
}

// NextDeadline returns when Tick would advance the step with the evidence
// seen so far; false when not ramping, or when only more outcomes can move
// the step (thin evidence under the floor, or MaxHold negative).
func (r *Ramp) NextDeadline() (time.Time, bool) {
	if !r.ramping {
		return time.Time{}, false
	}
	return r.due()
}

// Percent returns the model's share of traffic: the current step, or 100
// when not ramping (before Start, after completion, after a regression: an
// open breaker, not the ramp, keeps traffic away then).
func (r *Ramp) Percent() int {
	if !r.ramping {
		return 100
	}
	return r.cfg.Steps[r.step]
}

// Ramping reports whether a ramp is in progress.
func (r *Ramp) Ramping() bool { return r.ramping }

// Admit reports whether a request with the uniform draw x in [0, 1) goes to
// the model (x < Percent/100); the router sends the others to fallbacks.
// It always admits when not ramping.
func (r *Ramp) Admit(x float64) bool { return !r.ramping || x < r.share }

// enter makes step i current from now, with no evidence.
func (r *Ramp) enter(i int, now time.Time) {
	r.step = i
	r.share = float64(r.cfg.Steps[i]) / 100
	r.since = now
	r.calls, r.successes, r.streak = 0, 0, 0
}

// event describes the current step as it ends at now.
func (r *Ramp) event(now time.Time) RampEvent {
	return RampEvent{
		At:        now,
		From:      r.cfg.Steps[r.step],
		Calls:     r.calls,
		Successes: r.successes,
		Held:      now.Sub(r.since),
	}
}

// judge regresses or advances the step at now; regression wins.
func (r *Ramp) judge(now time.Time) (RampEvent, bool) {
	ev := r.event(now)
	if r.underFloor() {
		r.ramping = false
		ev.Kind = RampRegressed
		return ev, true
	}
	due, ok := r.due()
	if !ok || now.Before(due) {
		return RampEvent{}, false
	}
	ev.OnTimeAlone = r.calls < r.cfg.MinCalls
	return r.advance(ev, now), true
}

// advance moves to the next step at now and completes ev, the end of the
// step left.
func (r *Ramp) advance(ev RampEvent, now time.Time) RampEvent {
	r.enter(r.step+1, now)
	ev.To = r.cfg.Steps[r.step]
	ev.Kind = RampAdvanced
	if ev.To == 100 {
		ev.Kind = RampCompleted
		r.ramping = false
	}
	return ev
}

// drop moves one step down at now after a failure. The lower step starts
// with the evidence of the one left, so that failures on the way down add
// up under the floor, and with no streak and a fresh hold.
func (r *Ramp) drop(now time.Time) RampEvent {
	ev := r.event(now)
	calls, successes := r.calls, r.successes
	r.enter(r.step-1, now)
	r.calls, r.successes = calls, successes
	ev.To = r.cfg.Steps[r.step]
	ev.Kind = RampDropped
	return ev
}

// underFloor reports whether the step has failed: its rate is under the
// floor with at least MinCalls calls, or its failures already make the rate
// at MinCalls calls fall under it whatever comes next.
func (r *Ramp) underFloor() bool {
	if r.calls >= r.cfg.MinCalls {
		return rampRate(r.successes, r.calls) < r.cfg.SuccessFloor
	}
	best := r.cfg.MinCalls - (r.calls - r.successes)
	return rampRate(best, r.cfg.MinCalls) < r.cfg.SuccessFloor
}

// due returns when the step may advance on time with its evidence so far.
func (r *Ramp) due() (time.Time, bool) {
	switch {
	case r.calls >= r.cfg.MinCalls: // judged, and not under the floor
		return r.since.Add(r.hold), true
	case r.cfg.MaxHold < 0:
		return time.Time{}, false
	case r.calls > 0 && rampRate(r.successes, r.calls) < r.cfg.SuccessFloor:
		return time.Time{}, false // thin and failing: wait for evidence
	}
	return r.since.Add(r.cfg.MaxHold), true
}

// rampRate is ok/n; dividing (rather than multiplying the floor) keeps a
// rate that equals the floor exactly equal to it.
func rampRate(ok, n int) float64 { return float64(ok) / float64(n) }
