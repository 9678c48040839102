package actors

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
	"github.com/cmmv-hive/resilience/route"
)

// Strategy names how a request moves through a model and its fallbacks;
// the route package decides what each one does.
type Strategy = route.Strategy

// Fallback strategies (see route).
const (
	Sequential = route.Sequential
	Parallel   = route.Parallel
	Hedged     = route.Hedged
	Weighted   = route.Weighted
	Random     = route.Random
)

// ModelSpec describes one model actor. Zero values take the defaults named
// on each field.
type ModelSpec struct {
	Name string
	Kind string // provider kind, for status and logs
	// Identity names the upstream the model calls (provider, endpoint,
	// upstream model): nodes share breaker state only between models of
	// one identity. Kind + " " + Name when empty.
	Identity string
	Provider providers.Provider
	// NewProvider builds a fresh client when recovery restarts the model;
	// nil reuses Provider.
	NewProvider func() (providers.Provider, error)

	Timeout       time.Duration // one attempt's deadline; 30s
	MaxConcurrent int           // calls at once; 10
	QueueSize     int           // calls waiting for a slot; overflow is no_capacity
	Fallbacks     []string      // tried after the model itself
	Strategy      Strategy      // sequential
	Weight        float64       // static weight for Weighted; 1
	MaxParallel   int           // width of Parallel; 3
	HedgeDelay    time.Duration // Hedged: 0 means the model's observed p95

	// Limits are the model's known context window and output, and the
	// fallbacks of its too-long and refused requests (zero: none known, no
	// such fallbacks).
	Limits Limits

	// Streaming bounds a streamed answer: time to first token, idle time
	// between pieces, total time (zero: no bound beyond Timeout).
	Streaming providers.StreamDeadlines
	// Prefill says the model takes an assistant prefill (Anthropic's do,
	// OpenAI-compatible ones when configured supportsPrefill): a cut stream
	// it continues gets the text sent as the start of its answer, else as
	// an instruction.
	Prefill bool
	// FailOnMalformed ends a stream at an event that does not parse; by
	// default (false) such an event is skipped when the events around it
	// parse, and counted (Attempt.malformed_skipped).
	FailOnMalformed bool
	// MaxContinuations bounds the continuations of a streamed request for
	// this model after a cut (route.GroupConfig); 0 means 1, below 0 none.
	MaxContinuations int

	Breaker resilience.BreakerConfig // zero: bip03
	Retry   resilience.RetryConfig   // zero: 3 retries, 1 s x2, cap 30 s, 10 % jitter
	Health  resilience.HealthConfig  // Timeout is set to the model's Timeout when zero
	Ramp    resilience.RampConfig    // zero: 10/25/50/100 % over 30 s

	// ProbeInterval is the active health probe's period (jittered by
	// +-10 %); 0 turns probing off. ProbeTimeout bounds one probe; 5s.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// OpenProbeInterval is the probe's period while the breaker is open
	// (each gap 80 to 100 % of it, at random, so it bounds the wait for a
	// probe): a success half-opens it before its open period
	// ends, a failure changes nothing. With Peers.Leases only the node
	// holding the upstream's trial lease probes. No probe is sent before a
	// Retry-After ends. 0 turns it off.
	OpenProbeInterval time.Duration
	// RampProbeInterval is the probe's period while the model ramps back
	// (jittered as OpenProbeInterval): each probe's outcome is evidence of the step,
	// as a call's is. 0 turns it off.
	RampProbeInterval time.Duration
}

// Limits are a model's token limits and the fallbacks they bring
// (docs/context-windows.md).
type Limits struct {
	ContextWindow    int      // tokens of prompt plus answer; 0: unknown
	MaxOutputTokens  int      // longest answer; 0: unknown
	ContextFallbacks []string // tried for a prompt too long for the model's candidates
	PolicyFallbacks  []string // the only models tried after a content_policy refusal
}

// AllDown says what a request gets when no candidate can serve it: wait
// for a model to come back, or a degraded reply (see route.AllDown).
type AllDown = route.AllDown

// DegradedReply is the served_by of a configured degraded answer.
const DegradedReply = route.DegradedReply

// Supervision bounds restarts of a model actor that crashed.
type Supervision struct {
	MaxRestarts int           // within Within, then give up; 5
	Within      time.Duration // 1m
	BaseDelay   time.Duration // first restart delay; 100ms
	MaxDelay    time.Duration // cap of the growing delay; 10s
	Jitter      float64       // +- fraction of each delay; 0.2, negative for none
}

// Recovery configures automatic recovery (the proposal's triggers,
// docs/policy.md "The proposal's defaults").
type Recovery struct {
	Disabled      bool
	MaxConcurrent int           // recoveries at once; 3
	ErrorRate     float64       // trigger above this failure rate; 0.5
	MinCalls      int           // calls needed before the rate counts; 10
	ResponseTime  time.Duration // trigger above this average latency; 30s
	Failures      int           // trigger above this many failures in the window; 10
	Timeout       time.Duration // a recovery not confirmed by then failed; 2m
	Cooldown      time.Duration // no new recovery of the same model before; 30s, negative for none
}

// Config configures a Hive.
type Config struct {
	Node           string
	Models         []ModelSpec
	RequestTimeout time.Duration // a request's total deadline when it gives none; 60s
	Logger         zerolog.Logger
	Now            func() time.Time // time.Now when nil
	Random         func() float64   // in [0, 1); math/rand/v2 when nil

	Publisher Publisher  // events; dropped when nil
	Store     StateStore // breaker snapshots; a MemoryStore when nil

	Degradation resilience.DegradationConfig
	Group       resilience.GroupConfig
	BudgetRatio float64 // retries and hedges per in-flight request of a group; 0.2
	BudgetMin   int     // retries and hedges always allowed; 3
	AllDown     AllDown
	Supervision Supervision
	Recovery    Recovery
	Alerts      Alerts // off when zero
	Peers       Peers  // sharing breaker state with other nodes; on when zero
}

// Peers configures what a node does with other nodes' breaker events
// (docs/policy.md, "Sharing breaker state between nodes"). The zero value
// shares openings, with a DefaultWitnessWindow, and leaves half-open
// trials to every node (no Leases).
type Peers struct {
	// Off makes the node ignore other nodes' breaker events.
	Off bool
	// WitnessWindow is how close together two nodes' node-local openings
	// (connection, timeout) must be to be adopted;
	// resilience.DefaultWitnessWindow when zero.
	WitnessWindow time.Duration
	// Leases grants one node at a time an upstream's half-open trials;
	// nil: every node takes its own.
	Leases Leases
	// LeaseTTL is how long a lease lives (the Leases' TTL): a node that
	// lost the lease asks again after it, in case the holder died; 30s.
	LeaseTTL time.Duration
}

func (c *Config) validate() error {
	if c.Node == "" {
		return fmt.Errorf("node name is empty")
	}
	if len(c.Models) == 0 {
		return fmt.Errorf("no models configured")
	}
	known := make(map[string]bool, len(c.Models))
	for i := range c.Models {
		m := &c.Models[i]
		if m.Name == "" || m.Provider == nil {
			return fmt.Errorf("model %d: name and provider are required", i)
		}
		if known[m.Name] {
			return fmt.Errorf("model %q configured twice", m.Name)
		}
		known[m.Name] = true
		if err := m.applyDefaults(); err != nil {
			return fmt.Errorf("model %q: %w", m.Name, err)
		}
	}
	for _, m := range c.Models {
		for _, list := range [][]string{m.Fallbacks, m.Limits.ContextFallbacks, m.Limits.PolicyFallbacks} {
			for _, f := range list {
				if !known[f] || f == m.Name {
					return fmt.Errorf("model %q: fallback %q is not another configured model", m.Name, f)
				}
			}
		}
		if m.Limits.ContextWindow < 0 || m.Limits.MaxOutputTokens < 0 {
			return fmt.Errorf("model %q: negative limits", m.Name)
		}
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 60 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Random == nil {
		c.Random = rand.Float64
	}
	if c.Publisher == nil {
		c.Publisher = nopPublisher{}
	}
	if c.Store == nil {
		c.Store = NewMemoryStore()
	}
	if c.BudgetRatio == 0 {
		c.BudgetRatio = 0.2
	}
	if c.BudgetMin == 0 {
		c.BudgetMin = 3
	}
	if err := c.Degradation.Validate(); err != nil {
		return err
	}
	if err := c.Group.Validate(); err != nil {
		return err
	}
	c.Supervision.applyDefaults()
	c.Recovery.applyDefaults()
	if c.Peers.LeaseTTL <= 0 {
		c.Peers.LeaseTTL = 30 * time.Second
	}
	return c.Alerts.Validate()
}

func (m *ModelSpec) applyDefaults() error {
	if m.Identity == "" {
		m.Identity = m.Kind + " " + m.Name
	}
	if m.Timeout <= 0 {
		m.Timeout = 30 * time.Second
	}
	if m.MaxConcurrent <= 0 {
		m.MaxConcurrent = 10
	}
	if m.QueueSize < 0 {
		return fmt.Errorf("queue size %d is negative", m.QueueSize)
	}
	if m.Strategy == "" {
		m.Strategy = Sequential
	}
	if !m.Strategy.Valid() {
		return fmt.Errorf("unknown strategy %q", m.Strategy)
	}
	if m.Weight <= 0 {
		m.Weight = 1
	}
	if m.MaxParallel <= 0 {
		m.MaxParallel = 3
	}
	if m.ProbeTimeout <= 0 {
		m.ProbeTimeout = 5 * time.Second
	}
	if m.Health.Timeout <= 0 {
		m.Health.Timeout = m.Timeout
	}
	if err := m.Breaker.Validate(); err != nil {
		return err
	}
	if err := m.Retry.Validate(); err != nil {
		return err
	}
	if err := m.Health.Validate(); err != nil {
		return err
	}
	return m.Ramp.Validate()
}

func (s *Supervision) applyDefaults() {
	if s.MaxRestarts <= 0 {
		s.MaxRestarts = 5
	}
	if s.Within <= 0 {
		s.Within = time.Minute
	}
	if s.BaseDelay <= 0 {
		s.BaseDelay = 100 * time.Millisecond
	}
	if s.MaxDelay <= 0 {
		s.MaxDelay = 10 * time.Second
	}
	if s.Jitter == 0 {
		s.Jitter = 0.2
	}
}

func (r *Recovery) applyDefaults() {
	if r.MaxConcurrent <= 0 {
		r.MaxConcurrent = 3
	}
	if r.ErrorRate <= 0 {
		r.ErrorRate = 0.5
	}
	if r.MinCalls <= 0 {
		r.MinCalls = 10
	}
	if r.ResponseTime <= 0 {
		r.ResponseTime = 30 * time.Second
	}
	if r.Failures <= 0 {
		r.Failures = 10
	}
	if r.Timeout <= 0 {
		r.Timeout = 2 * time.Minute
	}
	if r.Cooldown == 0 {
		r.Cooldown = 30 * time.Second
	}
}
