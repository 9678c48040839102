package route

import (
	"errors"
	"fmt"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// ErrGroupConfig is returned (wrapped, naming the field) by NewGroup.
var ErrGroupConfig = errors.New("invalid group")

// DegradedReply is the served_by of a configured degraded answer
// (AllDown.Reply).
const DegradedReply = "hive-degraded"

// AllDown says what a request gets when no candidate can serve it.
type AllDown struct {
	// Wait holds the request up to this long for a model to come back
	// (its breaker half-opening or a restart finishing); 0 fails fast
	// with retry_after_ms set to the earliest half-open time.
	Wait time.Duration
	// Reply, when set, answers with this text as a degraded success
	// (degradation critical, served_by DegradedReply) instead of an error.
	Reply string
}

// GroupConfig describes one fallback group: the requests for one
// configured model, served by it and its fallbacks. Zero values take the
// defaults named on each field.
type GroupConfig struct {
	// Node names this node in every attempt and reply; required.
	Node string
	// Members are the model, then its fallbacks, in order; required, no
	// nil and no name twice. They may be shared with other groups.
	Members []*Member
	// Strategy is the model's; Sequential when empty.
	Strategy Strategy
	// MaxParallel is the width of Parallel; 3.
	MaxParallel int
	// HedgeDelay is how long Hedged waits before it starts the next
	// candidate; 0 means the model's observed p95, and a quarter of Timeout
	// until one is known.
	HedgeDelay time.Duration
	// Timeout is one attempt's deadline on the model; 30s.
	Timeout time.Duration
	// RequestTimeout is a request's whole budget when it gives none; 60s.
	RequestTimeout time.Duration
	// BudgetRatio and BudgetMin bound the group's retries and hedges in
	// flight (see resilience.Budget); 0.2 and 3.
	BudgetRatio float64
	BudgetMin   int
	// Protection caps the share of members open at once and meters the
	// panic trickle.
	Protection resilience.GroupConfig
	// Degradation turns the group's service level into its degradation
	// level, and may shed requests below critical priority.
	Degradation resilience.DegradationConfig
	// AllDown is what a request gets when no member can serve it.
	AllDown AllDown
	// ContextFallbacks are tried, in order, after a candidate answered
	// context_length or was skipped for its limits, beside the members
	// whose known window is larger (see limits.go); none by default. They
	// need not be Members; no nil and no name twice.
	ContextFallbacks []*Member
	// PolicyFallbacks are the only models tried, in order, after a
	// candidate answered content_policy; with none (the default) the
	// provider's reason is returned at once. No nil and no name twice.
	PolicyFallbacks []*Member
	// MaxContinuations bounds how many times one streamed request is
	// continued on another model after a cut (see continue.go); 0 means 1,
	// a negative value none.
	MaxContinuations int
	// Random returns values in [0, 1): ramp shares, the random order,
	// retry jitter. Required.
	Random func() float64
}

// Group is the state the requests of one fallback group share. It is
// owned by the router, as are its Requests.
type Group struct {
	name           string // the model requested
	node           string
	members        []*Member
	plain          []candidate // every member, in order: the common order, shared
	strategy       Strategy
	maxParallel    int
	hedgeDelay     time.Duration
	timeout        time.Duration
	requestTimeout time.Duration
	allDown        AllDown
	random         func() float64
	continuations  int // MaxContinuations, 0 for none

	contextFallbacks []*Member
	policyFallbacks  []*Member
	limits           bool // some member or context fallback has a known limit

	budget      *resilience.Budget
	protect     *resilience.Group
	degradation *resilience.DegradationTracker
	latency     time.Duration // moving average of served requests
	success     float64       // moving average of request success
	swrr        []float64     // Weighted's running scores, by member index

	fx []Effect // the effects of the Step under way, reused by every request
}

// NewGroup validates c and returns its group, or an error wrapping
// ErrGroupConfig (or the resilience package's config errors).
func NewGroup(c GroupConfig) (*Group, error) {
	switch {
	case c.Node == "":
		return nil, fmt.Errorf("%w: Node is empty", ErrGroupConfig)
	case len(c.Members) == 0:
		return nil, fmt.Errorf("%w: no Members", ErrGroupConfig)
	case c.Random == nil:
		return nil, fmt.Errorf("%w: Random is nil", ErrGroupConfig)
	}
	if c.Strategy == "" {
		c.Strategy = Sequential
	}
	if !c.Strategy.Valid() {
		return nil, fmt.Errorf("%w: unknown strategy %q", ErrGroupConfig, c.Strategy)
	}
	seen := make(map[string]bool, len(c.Members))
	plain := make([]candidate, len(c.Members))
	for i, m := range c.Members {
		if m == nil || seen[m.Name] {
			return nil, fmt.Errorf("%w: member %d is nil or named twice", ErrGroupConfig, i)
		}
		seen[m.Name] = true
		plain[i] = candidate{member: m, index: i}
	}
	g := &Group{
		name: c.Members[0].Name, node: c.Node, members: c.Members, plain: plain,
		strategy: c.Strategy, maxParallel: c.MaxParallel, hedgeDelay: c.HedgeDelay,
		timeout: c.Timeout, requestTimeout: c.RequestTimeout, allDown: c.AllDown, random: c.Random,
		success: 1, swrr: make([]float64, len(c.Members)),
	}
	for _, list := range []struct {
		name string
		ms   []*Member
	}{{"ContextFallbacks", c.ContextFallbacks}, {"PolicyFallbacks", c.PolicyFallbacks}} {
		named := make(map[string]bool, len(list.ms))
		for i, m := range list.ms {
			if m == nil || named[m.Name] {
				return nil, fmt.Errorf("%w: %s %d is nil or named twice", ErrGroupConfig, list.name, i)
			}
			named[m.Name] = true
		}
	}
	g.contextFallbacks, g.policyFallbacks = c.ContextFallbacks, c.PolicyFallbacks
	for _, ms := range [2][]*Member{c.Members, c.ContextFallbacks} {
		for _, m := range ms {
			g.limits = g.limits || m.ContextWindow > 0 || m.MaxOutput > 0
		}
	}
	switch {
	case c.MaxContinuations == 0:
		g.continuations = 1
	case c.MaxContinuations > 0:
		g.continuations = c.MaxContinuations
	}
	if g.maxParallel <= 0 {
		g.maxParallel = 3
	}
	if g.timeout <= 0 {
		g.timeout = 30 * time.Second
	}
	if g.requestTimeout <= 0 {
		g.requestTimeout = 60 * time.Second
	}
	var err error
	if g.budget, err = resilience.NewBudget(c.BudgetRatio, c.BudgetMin); err != nil {
		return nil, err
	}
	if g.protect, err = resilience.NewGroup(c.Protection); err != nil {
		return nil, err
	}
	if g.degradation, err = resilience.NewDegradationTracker(c.Degradation); err != nil {
		return nil, err
	}
	return g, nil
}

// Limits reports whether a member or context fallback of the group has a
// known limit: only then does a request's estimate matter (Started.Prompt).
// Limits are read when the group is made.
func (g *Group) Limits() bool { return g.limits }

// Name is the model the group's requests ask for.
func (g *Group) Name() string { return g.name }

// Level is the group's degradation level.
func (g *Group) Level() messages.Degradation { return g.degradation.Level() }

// Latency and Success are the moving averages the degradation level is
// read from: the response time of served requests and the share served.
func (g *Group) Latency() time.Duration { return g.latency }

// Success is the moving average of the share of requests served.
func (g *Group) Success() float64 { return g.success }

// member returns the group's member named name, or nil.
func (g *Group) member(name string) *Member {
	for _, m := range g.members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// observe feeds a finished request into the group's service level, and
// returns the degradation change it caused, if any.
func (g *Group) observe(now time.Time, took time.Duration, ok bool) (resilience.DegradationChange, bool) {
	const alpha = 0.1
	s := 0.0
	if ok {
		s = 1
		if g.latency == 0 {
			g.latency = took
		}
		g.latency += time.Duration(alpha * float64(took-g.latency))
	}
	g.success += alpha * (s - g.success)
	return g.degradation.Update(now, g.latency, g.success)
}
