package resilience

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/cmmv-hive/resilience/messages"
)

// TestBreakerProperties drives breakers built from every preset, with
// small drawn overrides, through random sequences of calls, cancellations,
// ticks, forward clock jumps, manual states, resets and restores, and
// checks after every step that:
//   - no count is negative and no rate leaves [0, 1];
//   - transitions chain (each From is the previous To, the last To is the
//     state), and generations strictly increase on every transition but a
//     metrics-only report, which keeps its generation;
//   - a call that returns no transition changes neither state nor
//     generation;
//   - a stale permit changes nothing at all;
//   - a half-open breaker is never stuck: once the permits out are
//     returned, or their leases expire, a trial is admitted, k successes
//     close it and a failure reopens it; an open breaker with a deadline
//     turns half-open at it.
func TestBreakerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newBreakerModel(t)
		t.Repeat(map[string]func(*rapid.T){
			"allow": func(t *rapid.T) {
				p, err := m.b.Allow(m.now)
				if err == nil {
					m.held = append(m.held, p)
				}
				m.followTransitions(t, "Allow", nil)
			},
			"burst": func(t *rapid.T) {
				o := drawBreakerOutcome(t)
				for range rapid.IntRange(1, 8).Draw(t, "calls") {
					p, err := m.b.Allow(m.now)
					if err != nil {
						break
					}
					m.step(t, "Done", p, func() []Transition { return m.b.Done(p, m.now, o) })
				}
			},
			"done": func(t *rapid.T) {
				p := m.takePermit(t)
				o := drawBreakerOutcome(t)
				m.step(t, "Done", p, func() []Transition { return m.b.Done(p, m.now, o) })
			},
			"release": func(t *rapid.T) {
				p := m.takePermit(t)
				m.step(t, "Release", p, func() []Transition { return m.b.Release(p, m.now) })
			},
			"advance": func(t *rapid.T) {
				d := rapid.SampledFrom([]time.Duration{time.Millisecond, time.Second, 5 * time.Second, 30 * time.Second, time.Hour}).Draw(t, "step")
				m.now = m.now.Add(time.Duration(rapid.IntRange(1, 3).Draw(t, "times")) * d)
			},
			"tick": func(t *rapid.T) {
				m.step(t, "Tick", Permit{}, func() []Transition { return m.b.Tick(m.now) })
			},
			"tickAtDeadline": func(t *rapid.T) {
				d, ok := m.b.NextDeadline()
				if !ok {
					t.Skip("no deadline")
				}
				if d.After(m.now) {
					m.now = d
				}
				m.step(t, "Tick at deadline", Permit{}, func() []Transition { return m.b.Tick(m.now) })
				if d2, ok := m.b.NextDeadline(); ok && !d2.After(m.now) {
					t.Fatalf("after Tick at its deadline %v, NextDeadline() = %v: the owner's timer would spin", d, d2)
				}
			},
			"manual": func(t *rapid.T) {
				switch rapid.IntRange(0, 5).Draw(t, "manual") {
				case 0:
					d := rapid.SampledFrom([]time.Duration{0, time.Second, time.Minute}).Draw(t, "for")
					m.step(t, "ForceOpen", Permit{}, func() []Transition { return m.b.ForceOpen(m.now, d, messages.BreakerTransition_manual) })
				case 1:
					m.step(t, "Disable", Permit{}, func() []Transition { return m.b.Disable(m.now) })
				case 2:
					m.step(t, "MetricsOnly", Permit{}, func() []Transition { return m.b.MetricsOnly(m.now) })
				case 3:
					m.step(t, "Reset", Permit{}, func() []Transition { return m.b.Reset(m.now) })
				case 4:
					m.saved = append(m.saved, m.b.Snapshot())
				case 5:
					if len(m.saved) == 0 {
						return
					}
					s := rapid.SampledFrom(m.saved).Draw(t, "snapshot")
					m.step(t, "Restore", Permit{}, func() []Transition { return m.b.Restore(s, m.now) })
				}
			},
			"": func(t *rapid.T) { m.checkInvariants(t) },
		})
	})
}

// breakerModel is what the property test knows of one breaker: the
// permits out, the clock, the state and generation it last saw.
type breakerModel struct {
	b     *Breaker
	now   time.Time
	held  []Permit
	saved []BreakerSnapshot
	state messages.BreakerState
	gen   uint64
}

func newBreakerModel(t *rapid.T) *breakerModel {
	c, err := Preset(rapid.SampledFrom(PresetNames()).Draw(t, "preset"))
	if err != nil {
		t.Fatal(err)
	}
	open := time.Duration(rapid.IntRange(1, 10).Draw(t, "open s")) * time.Second
	over := BreakerConfig{
		ConsecutiveFailures: rapid.IntRange(-1, 4).Draw(t, "consecutive"),
		OpenDuration:        open,
		MaxOpenDuration:     open * time.Duration(rapid.IntRange(1, 8).Draw(t, "max x")),
		TripReset:           time.Duration(rapid.IntRange(1, 60).Draw(t, "trip reset s")) * time.Second,
		HalfOpenPermits:     rapid.IntRange(1, 3).Draw(t, "permits"),
		SuccessThreshold:    rapid.IntRange(1, 3).Draw(t, "successes"),
		PermitLease:         time.Duration(rapid.IntRange(1, 20).Draw(t, "lease s")) * time.Second,
		AuthOpen:            time.Minute,
		WindowDuration:      time.Duration(rapid.IntRange(1, 10).Draw(t, "window s")) * time.Second,
	}
	if c.Window == CountWindow {
		over.WindowSize = rapid.IntRange(2, 6).Draw(t, "window size")
		over.MinimumCalls = rapid.IntRange(1, over.WindowSize).Draw(t, "minimum")
	}
	seed := rapid.Uint64().Draw(t, "seed")
	b, err := NewBreaker(c.Merge(over), rand.New(rand.NewPCG(seed, 1)).Float64)
	if err != nil {
		t.Fatalf("NewBreaker: %v", err)
	}
	return &breakerModel{b: b, now: breakerT0, state: b.State(), gen: b.Snapshot().Generation}
}

// takePermit hands back one of the permits out, skipping the step when
// there is none.
func (m *breakerModel) takePermit(t *rapid.T) Permit {
	if len(m.held) == 0 {
		t.Skip("no permit out")
	}
	i := rapid.IntRange(0, len(m.held)-1).Draw(t, "permit")
	p := m.held[i]
	m.held = slices.Delete(m.held, i, i+1)
	return p
}

// drawBreakerOutcome draws any class, including the ones that do not count and
// the ones that open at once.
func drawBreakerOutcome(t *rapid.T) Outcome {
	class := messages.ErrorClass(rapid.IntRange(0, len(messages.ErrorClass_name)-1).Draw(t, "class"))
	if rapid.IntRange(0, 2).Draw(t, "ok bias") == 0 {
		class = messages.ErrorClass_ok
	}
	o := Outcome{Class: class, Latency: time.Duration(rapid.IntRange(0, 120).Draw(t, "latency s")) * time.Second}
	if rapid.Bool().Draw(t, "stream") {
		o.FirstToken = time.Duration(rapid.IntRange(1, 90).Draw(t, "first token s")) * time.Second
	}
	if class == messages.ErrorClass_rate_limited {
		o.RetryAfter = time.Duration(rapid.IntRange(0, 10).Draw(t, "retry after s")) * time.Second
	}
	return o
}

// step runs one call that may return transitions and checks them; p is
// the permit it hands back, if any. A stale permit must change nothing.
func (m *breakerModel) step(t *rapid.T, what string, p Permit, run func() []Transition) {
	before := cloneBreakerForTest(m.b)
	stale := p != (Permit{}) && p.generation != m.gen
	ts := run()
	if stale {
		if len(ts) != 0 || !sameBreakerForTest(before, m.b) {
			t.Fatalf("%s with a stale permit (generation %d, now %d) returned %v and changed the breaker", what, p.generation, m.gen, breakerSummary(ts))
		}
		return
	}
	m.followTransitions(t, what, ts)
}

// followTransitions checks transitions against the state and generation the
// model last saw, and moves the model on.
func (m *breakerModel) followTransitions(t *rapid.T, what string, ts []Transition) {
	for _, tr := range ts {
		if tr.From != m.state {
			t.Fatalf("%s: transition %v->%v, but the state was %v", what, tr.From, tr.To, m.state)
		}
		report := tr.From == messages.BreakerState_metrics_only && tr.To == tr.From && tr.Reason != messages.BreakerTransition_restored
		switch {
		case report && tr.Generation != m.gen:
			t.Fatalf("%s: metrics-only report has generation %d, want %d unchanged", what, tr.Generation, m.gen)
		case !report && tr.Generation <= m.gen:
			t.Fatalf("%s: transition %v->%v has generation %d after %d, want it increasing", what, tr.From, tr.To, tr.Generation, m.gen)
		}
		if !tr.At.Equal(m.now) {
			t.Fatalf("%s: transition At %v, want now %v", what, tr.At, m.now)
		}
		m.state, m.gen = tr.To, tr.Generation
	}
	if got := m.b.State(); got != m.state {
		t.Fatalf("%s: state %v after transitions %q, want %v", what, got, breakerSummary(ts), m.state)
	}
	if got := m.b.Snapshot().Generation; got != m.gen {
		t.Fatalf("%s: generation %d after transitions %q, want %d", what, got, breakerSummary(ts), m.gen)
	}
}

func (m *breakerModel) checkInvariants(t *rapid.T) {
	b := m.b
	e := b.Evidence()
	if e.Calls < 0 || e.Failures < 0 || e.Slow < 0 || e.Consecutive < 0 ||
		e.Failures > e.Calls || e.Slow > e.Calls ||
		e.FailureRate < 0 || e.FailureRate > 1 || e.SlowRate < 0 || e.SlowRate > 1 {
		t.Fatalf("evidence out of bounds: %+v", e)
	}
	if b.trips < 0 || b.successes < 0 {
		t.Fatalf("trips %d successes %d, want >= 0", b.trips, b.successes)
	}
	switch b.State() {
	case messages.BreakerState_half_open:
		m.checkHalfOpenLive(t)
	case messages.BreakerState_open:
		d, ok := b.NextDeadline()
		c := cloneBreakerForTest(b)
		if !ok || len(c.Tick(d)) != 1 || c.State() != messages.BreakerState_half_open {
			t.Fatalf("open breaker: NextDeadline() = %v, %v, and Tick there leaves it %v; want half_open", d, ok, c.State())
		}
	}
}

// checkHalfOpenLive checks, on copies, that a half-open breaker moves once
// its permits are back: by Release, or by their leases expiring.
func (m *breakerModel) checkHalfOpenLive(t *rapid.T) {
	k := m.b.cfg.SuccessThreshold
	for _, how := range []string{"released", "expired"} {
		for _, final := range []Outcome{breakerOK, breakerFail} {
			c := cloneBreakerForTest(m.b)
			now := m.now
			if how == "released" {
				for _, p := range m.held {
					c.Release(p, now)
				}
			} else {
				now = now.Add(c.cfg.PermitLease)
			}
			n := 1
			if final.Success() {
				n = k
			}
			var ts []Transition
			for i := range n {
				p, err := c.Allow(now)
				if err != nil {
					t.Fatalf("half-open with permits %s: trial %d refused: %v", how, i+1, err)
				}
				ts = append(ts, c.Done(p, now, final)...)
			}
			want := messages.BreakerState_closed
			if !final.Success() {
				want = messages.BreakerState_open
			}
			if c.State() != want || len(ts) != 1 {
				t.Fatalf("half-open with permits %s: %d trials ending %v gave %q, want one move to %v", how, n, final.Class, breakerSummary(ts), want)
			}
		}
	}
}

// cloneBreakerForTest copies b deeply, to try things on the copy.
func cloneBreakerForTest(b *Breaker) *Breaker {
	c := *b
	c.leases = slices.Clone(b.leases)
	c.window.ring = slices.Clone(b.window.ring)
	c.window.buckets = slices.Clone(b.window.buckets)
	return &c
}

// sameBreakerForTest reports whether a and b are in the same state, down
// to their windows and leases.
func sameBreakerForTest(a, b *Breaker) bool {
	x, y := *a, *b
	if !slices.Equal(x.leases, y.leases) || !slices.Equal(x.window.ring, y.window.ring) || !slices.Equal(x.window.buckets, y.window.buckets) {
		return false
	}
	x.leases, y.leases = nil, nil
	x.window.ring, y.window.ring = nil, nil
	x.window.buckets, y.window.buckets = nil, nil
	x.random, y.random = nil, nil
	return x.cfg == y.cfg && x.state == y.state && x.generation == y.generation &&
		x.trips == y.trips && x.openUntil.Equal(y.openUntil) && x.closedSince.Equal(y.closedSince) &&
		x.window.calls == y.window.calls && x.window.failures == y.window.failures && x.window.slow == y.window.slow &&
		x.window.next == y.window.next && x.window.head == y.window.head && x.consecutive == y.consecutive &&
		x.successes == y.successes && x.crossed == y.crossed && x.leaseSeq == y.leaseSeq
}
