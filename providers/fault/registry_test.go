package fault

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

// clock is a settable clock for window tests.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func errorFault(id, model string) *messages.FaultSpec {
	return &messages.FaultSpec{Id: id, Model: model, Kind: messages.FaultSpec_error, ErrorClass: messages.ErrorClass_server_error}
}

func TestRegistryIDs(t *testing.T) {
	r := NewRegistry(Config{})
	now := time.Now()
	assert.Equal(t, "f1", r.Inject(errorFault("", "a"), now), "an id is assigned when the spec has none")
	assert.Equal(t, "mine", r.Inject(errorFault("mine", "a"), now))
	assert.Equal(t, "f2", r.Inject(errorFault("", "a"), now))
	assert.Equal(t, []string{"f1", "mine", "f2"}, r.Active())

	replaced := errorFault("mine", "b")
	r.Inject(replaced, now)
	assert.Equal(t, []string{"f1", "f2", "mine"}, r.Active(), "the same id replaces the earlier fault")
	got, ok := r.Get("mine")
	require.True(t, ok)
	assert.Equal(t, "b", got.GetModel())

	assert.True(t, r.Clear("f1"))
	assert.False(t, r.Clear("f1"), "a cleared fault is gone")
	assert.Equal(t, 2, r.ClearAll())
	assert.Empty(t, r.Active())
}

func TestRegistryDoesNotKeepTheCallersSpec(t *testing.T) {
	r := NewRegistry(Config{})
	spec := errorFault("x", "a")
	r.Inject(spec, time.Now())
	spec.Model = "changed"
	got, _ := r.Get("x")
	assert.Equal(t, "a", got.GetModel())
}

// TestRegistryWindow: a fault acts from start_after_ms after injection for
// duration_ms, and is listed from injection until its end.
func TestRegistryWindow(t *testing.T) {
	c := newClock()
	r := NewRegistry(Config{Now: c.Now})
	spec := errorFault("w", "a")
	spec.StartAfterMs, spec.DurationMs = 1000, 2000
	r.Inject(spec, c.Now())

	steps := []struct {
		advance  time.Duration
		acts     bool
		listed   bool
		describe string
	}{
		{0, false, true, "at injection: waiting for its start"},
		{999 * time.Millisecond, false, true, "just before its start"},
		{time.Millisecond, true, true, "at its start"},
		{1999 * time.Millisecond, true, true, "just before its end"},
		{time.Millisecond, false, false, "at its end: gone"},
	}
	for _, s := range steps {
		c.Advance(s.advance)
		p := r.plan("a", c.Now())
		assert.Equal(t, s.acts, p.fail != nil, "%s: acts", s.describe)
		assert.Equal(t, s.listed, len(r.Active()) == 1, "%s: listed", s.describe)
	}
}

func TestRegistryUntilCleared(t *testing.T) {
	c := newClock()
	r := NewRegistry(Config{Now: c.Now})
	r.Inject(errorFault("forever", ""), c.Now())
	c.Advance(1000 * time.Hour)
	assert.NotNil(t, r.plan("a", c.Now()).fail, "duration 0 lasts until cleared")
	r.Clear("forever")
	assert.Nil(t, r.plan("a", c.Now()).fail)
}

func TestRegistryTargets(t *testing.T) {
	r := NewRegistry(Config{})
	now := time.Now()
	r.Inject(errorFault("one", "a"), now)
	assert.NotNil(t, r.plan("a", now).fail)
	assert.Nil(t, r.plan("b", now).fail, "a fault on a leaves b alone")
	r.ClearAll()
	r.Inject(errorFault("star", "*"), now)
	assert.NotNil(t, r.plan("b", now).fail, "* is every model")
}

// TestRegistryProbability: the draw is per call, repeatable with a seed,
// and close to the probability.
func TestRegistryProbability(t *testing.T) {
	hits := func(seed uint64) []bool {
		rng := rand.New(rand.NewPCG(seed, seed))
		r := NewRegistry(Config{Random: rng.Float64})
		spec := errorFault("p", "a")
		spec.Probability = 0.3
		now := time.Now()
		r.Inject(spec, now)
		out := make([]bool, 1000)
		for i := range out {
			out[i] = r.plan("a", now).fail != nil
		}
		return out
	}
	a, b := hits(7), hits(7)
	assert.Equal(t, a, b, "the same seed affects the same calls")
	n := 0
	for _, h := range a {
		if h {
			n++
		}
	}
	assert.InDelta(t, 300, n, 60, "probability 0.3 over 1000 calls affected %d", n)
	assert.NotEqual(t, a, hits(8), "another seed, other calls")
}

// TestRegistryPlanCombines: latencies add up, the first failing fault and
// the first stream fault win, node-level kinds do nothing to calls.
func TestRegistryPlanCombines(t *testing.T) {
	r := NewRegistry(Config{})
	now := time.Now()
	for _, s := range []*messages.FaultSpec{
		{Id: "l1", Kind: messages.FaultSpec_latency, LatencyMs: 100},
		{Id: "l2", Kind: messages.FaultSpec_latency, LatencyMs: 50},
		{Id: "s1", Kind: messages.FaultSpec_slow_first_token, LatencyMs: 30},
		{Id: "p", Kind: messages.FaultSpec_partition, DurationMs: 1000},
		{Id: "k", Kind: messages.FaultSpec_kill},
		{Id: "rl", Kind: messages.FaultSpec_rate_limit},
		{Id: "e", Kind: messages.FaultSpec_error},
		{Id: "cut", Kind: messages.FaultSpec_cut_stream, AfterTokens: 1},
		{Id: "stall", Kind: messages.FaultSpec_stall_stream},
	} {
		r.Inject(s, now)
	}
	p := r.plan("a", now)
	assert.Equal(t, 150*time.Millisecond, p.delay)
	assert.Equal(t, 30*time.Millisecond, p.firstToken)
	assert.Equal(t, "rl", p.fail.GetId())
	assert.Equal(t, "cut", p.stream.GetId())

	r.ClearAll()
	r.Inject(&messages.FaultSpec{Kind: messages.FaultSpec_partition, DurationMs: 1000}, now)
	r.Inject(&messages.FaultSpec{Kind: messages.FaultSpec_kill}, now)
	assert.True(t, r.plan("a", now).none(), "partition and kill are the node's business")
}

func TestRegistryJitter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := NewRegistry(Config{Random: rng.Float64})
	now := time.Now()
	r.Inject(&messages.FaultSpec{Kind: messages.FaultSpec_latency, LatencyMs: 100, JitterMs: 50}, now)
	lo, hi := time.Hour, time.Duration(0)
	for range 500 {
		d := r.plan("a", now).delay
		lo, hi = min(lo, d), max(hi, d)
	}
	assert.GreaterOrEqual(t, lo, 50*time.Millisecond)
	assert.LessOrEqual(t, hi, 150*time.Millisecond)
	assert.Less(t, lo, 60*time.Millisecond, "the jitter spreads below the latency")
	assert.Greater(t, hi, 140*time.Millisecond, "and above it")
}
