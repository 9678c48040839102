package config

import (
	"hash/fnv"
	"os"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/observe"
)

// GlobalFile and ModelsFile are the names of the two files Load reads.
const (
	GlobalFile = "resilience.yml"
	ModelsFile = "models-resilience.yml"
)

// Provider names accepted by a model's provider key.
const (
	ProviderOpenAI    = "openai"    // any OpenAI-compatible chat API
	ProviderAnthropic = "anthropic" // the Anthropic messages API
	ProviderExec      = "exec"      // a command line, run once per call
	ProviderSim       = "sim"       // a simulated model, for demos and tests
)

// Strategy names accepted by the strategy keys.
const (
	StrategySequential = "sequential"
	StrategyParallel   = "parallel"
	StrategyHedged     = "hedged"
	StrategyWeighted   = "weighted"
	StrategyRandom     = "random"
)

// Breaker preset names accepted by circuitBreaker.preset: those of
// resilience.Preset.
const (
	PresetBIP03        = "bip03"
	PresetGobreaker    = "gobreaker"
	PresetResilience4j = "resilience4j"
	PresetHystrix      = "hystrix"
	PresetEnvoy        = "envoy"
)

// Default endpoints of the HTTP providers, used when a model gives none.
const (
	DefaultOpenAIEndpoint    = "https://api.openai.com/v1"
	DefaultAnthropicEndpoint = "https://api.anthropic.com/v1"
)

var (
	providers  = []string{ProviderOpenAI, ProviderAnthropic, ProviderExec, ProviderSim}
	strategies = []string{StrategySequential, StrategyParallel, StrategyHedged, StrategyWeighted, StrategyRandom}
	presets    = []string{PresetBIP03, PresetGobreaker, PresetResilience4j, PresetHystrix, PresetEnvoy}
)

// Config is a loaded and validated configuration. Models holds every model by
// name; Order lists the names in the order the models file gives them.
type Config struct {
	Global Global
	Models map[string]*Model
	Order  []string
}

// Global holds resilience.yml. Every field has a default, so the file and any
// of its keys may be left out. Its blocks are also each model's defaults.
type Global struct {
	SubjectPrefix   string          // subjectPrefix: first token of every NATS subject, default "hive"; [A-Za-z0-9_-]+
	ReplyPrefixes   []string        // replyPrefixes: the only reply subjects a node answers, default ["_INBOX.", "_INBOX_"]
	Timeout         time.Duration   // timeout: deadline of one attempt, default 30s
	RequestTimeout  time.Duration   // requestTimeout: total deadline of a request that gives none, default 60s
	MaxConcurrent   int             // maxConcurrentPerModel: calls in flight per model, default 10, >= 1
	QueueSize       int             // queueSize: calls waiting for a slot per model, default 100; 0 means no queue
	Strategy        string          // strategy: fallback strategy, default "sequential"
	MaxParallel     int             // maxParallel: models raced at once by the parallel strategy, default 3, >= 1
	ShutdownGrace   time.Duration   // shutdownGrace: how long shutdown waits for requests in flight, default 10s; 0 waits for none
	CircuitBreaker  Breaker         // circuitBreaker: block, the models' default breaker
	Retry           Retry           // retry: block, the models' default retry policy
	HealthCheck     HealthCheck     // healthCheck: block, the models' default probing and health thresholds
	Streaming       Streaming       // streaming: block, the models' default stream deadlines
	Restoration     Restoration     // restoration: block, the models' default progressive restoration
	Degradation     Degradation     // degradation: block, node-wide degradation levels
	GroupProtection GroupProtection // groupProtection: block, protection of each fallback group
	RetryBudget     RetryBudget     // retryBudget: block, retries and hedges per fallback group
	Hedging         Hedging         // hedging: block, the hedged strategy
	WhenAllDown     WhenAllDown     // whenAllDown: block, what a request gets when no model can serve it
	Supervision     Supervision     // supervision: block, restarts of crashed model actors
	Recovery        Recovery        // recovery: block, automatic recovery of failing models
	Alerts          Alerts          // alerts: block, alert rules and webhooks
	Persistence     Persistence     // persistence: block, the JetStream audit trail and breaker states
	Chaos           Chaos           // chaos: block, fault injection for chaos runs (off by default)
	Jobs            Jobs            // jobs: block, durable jobs and idempotency keys (need persistence)
	Events          Events          // events: block, the encoding of published events
	Cluster         Cluster         // cluster: block, acting on the other nodes' breaker events
}

// Retry configures retries of the same model: the n-th retry waits
// BaseDelay x Multiplier^(n-1), at most MaxDelay, +- Jitter.
type Retry struct {
	MaxRetries int           // maxRetries: retries after the first attempt, default 3; 0 means none
	BaseDelay  time.Duration // baseDelay: wait before the first retry, default 1s, > 0
	Multiplier float64       // multiplier: growth of the wait, default 2, >= 1
	MaxDelay   time.Duration // maxDelay: cap of the wait, default 30s, >= BaseDelay
	Jitter     float64       // jitter: random fraction added or removed, default 0.1, in [0, 1)
}

// HealthCheck configures the prober of a model (Enabled, Interval, Timeout)
// and the thresholds of its health (the rest, see Model.HealthConfig).
type HealthCheck struct {
	Enabled          bool          // enabled: probe the model, default true
	Interval         time.Duration // interval: time between probes, default 30s, > 0
	Timeout          time.Duration // timeout: deadline of one probe, default 5s, > 0
	Retries          int           // retries: failed probes retried before one counts, default 3, >= 0
	DegradedRatio    float64       // degradedRatio: degraded when latency > ratio x model timeout, default 0.8, in (0, 1]
	SuccessFloor     float64       // successFloor: degraded when the success rate is under it, default 0.9, in [0, 1]; 0 turns the rule off
	MinCalls         int           // minCalls: calls in the window before the success rate is judged, default 10, >= 1
	UnavailableAfter int           // unavailableAfter: consecutive failed calls that make it unavailable, default 3, >= 0; 0 turns the rule off
	Window           time.Duration // window: span of the success rate and latency quantiles, default 5m, > 0
	OpenInterval     time.Duration // openInterval: longest time between two probes while the breaker is open, default 5s, >= 0; 0 turns them off
	RampInterval     time.Duration // rampInterval: time between two probes while the model ramps back, default 1s, >= 0; 0 turns them off
}

// Streaming holds the three deadlines of a streamed answer and what is
// done when a stream breaks.
type Streaming struct {
	FirstTokenTimeout time.Duration // firstTokenTimeout: until the first chunk, default 10s, > 0
	IdleTimeout       time.Duration // idleTimeout: between two chunks, default 10s, > 0
	TotalTimeout      time.Duration // totalTimeout: whole stream, default 120s, > 0
	MaxContinuations  int           // maxContinuations: times a request's stream cut after text went out is continued on a fallback, default 1, >= 0; 0 turns continuation off
	OnMalformed       string        // onMalformed: skip (default) or fail: what an event that does not parse does to an otherwise readable stream
}

// The values of streaming.onMalformed.
const (
	MalformedSkip = "skip"
	MalformedFail = "fail"
)

// Restoration configures the progressive restoration of a model whose
// breaker has just closed (see Model.RampConfig).
type Restoration struct {
	Steps        []int         // steps: shares of traffic in percent, default [10, 25, 50, 100]; strictly increasing, each 1..100, the last 100
	Over         time.Duration // over: time from the breaker closing to full traffic, default 30s, > 0
	SuccessFloor float64       // successFloor: success rate a step must keep, default 0.9, in (0, 1]
	MinCalls     int           // minCalls: calls a step needs before it is judged, default 10, >= 1
	MaxHold      time.Duration // maxHold: how long a step with fewer calls waits before it advances anyway; 0 (default) means three holds, over/(len(steps)-1) each
	Successes    int           // successes: successes in a row (probes count) that pass a step before its hold, and a failure drops a step, default 3, >= 0; 0 turns both off
}

// Degradation sets the node's degradation levels, indexed minimal, moderate,
// severe, critical: the most severe level whose threshold is crossed applies.
type Degradation struct {
	ResponseTime     [4]time.Duration     // responseTime: default [5s, 8s, 15s, 30s], strictly increasing
	SuccessRate      [4]float64           // successRate: default [0.95, 0.90, 0.80, 0.60], strictly decreasing, each in (0, 1]
	CriticalOnly     bool                 // criticalOnly: when degraded, admit only critical requests; default false
	CriticalOnlyFrom messages.Degradation // criticalOnlyFrom: lowest level that counts as degraded for CriticalOnly, default minimal
	LowerAfter       time.Duration        // lowerAfter: calm needed before the level is lowered, default 30s, >= 0; 0 lowers at once
}

// GroupProtection protects each fallback group (see Global.GroupConfig).
type GroupProtection struct {
	MaxOpenShare float64 // maxOpenShare: largest share of a group whose breakers may be open at once, default 0.5, in (0, 1]; 1 turns the cap off
	PanicRate    float64 // panicRate: requests a second let through while no member admits, default 1; 0 means none, else at least 1/3600
}

// RetryBudget caps the retries and hedges of each fallback group (see
// Global.BudgetConfig).
type RetryBudget struct {
	Ratio   float64 // ratio: share of the requests in flight, default 0.2, in (0, 1]
	Minimum int     // minimum: allowed whatever the traffic, default 3, >= 0
}

// WhenAllDown says what a request gets when no model of its group can take
// traffic.
type WhenAllDown struct {
	Wait  time.Duration // wait: hold the request up to this long for a model to come back, default 0 (fail fast with retryAfterMs)
	Reply string        // reply: answer with this text as a degraded success instead of an error, default "" (none)
}

// Supervision bounds restarts of a model actor that crashed.
type Supervision struct {
	MaxRestarts int           // maxRestarts: restarts within the window before giving up, default 5, >= 1
	Within      time.Duration // within: the window, default 1m, > 0
	BaseDelay   time.Duration // baseDelay: first restart delay, doubled each time, default 100ms, > 0
	MaxDelay    time.Duration // maxDelay: cap of the delay, default 10s, > 0
	Jitter      float64       // jitter: +- share of each delay, default 0.2, in [0, 1)
}

// Recovery configures automatic recovery.
type Recovery struct {
	Enabled       bool          // enabled: default true
	MaxConcurrent int           // maxConcurrent: recoveries at once, default 3, >= 1
	ErrorRate     float64       // errorRate: trigger above this failure rate, default 0.5, in (0, 1]
	MinCalls      int           // minCalls: calls before the rate counts, default 10, >= 1
	ResponseTime  time.Duration // responseTime: trigger above this average response time, default 30s, > 0
	Failures      int           // failures: trigger above this many failures in the health window, default 10, >= 1
	Timeout       time.Duration // timeout: a recovery not confirmed by then has failed, default 2m, > 0
	Cooldown      time.Duration // cooldown: no new recovery of the same model before, default 30s, >= 0
}

// Hedging configures the hedged strategy.
type Hedging struct {
	Delay time.Duration // delay: wait before the next model starts, default 0, >= 0; 0 means the primary's observed p95 latency
}

// Model is one entry of models-resilience.yml. Fields it does not give take
// the Global value: Timeout, MaxConcurrent, QueueSize, Strategy, and each key
// of the CircuitBreaker, Retry, HealthCheck, Streaming and Restoration blocks
// separately.
// The proposal's flat keys are aliases: maxRetries is retry.maxRetries and
// circuitBreakerThreshold is circuitBreaker.failureThreshold.
type Model struct {
	Name string // its key under models:, [A-Za-z0-9_-]+ (it is a NATS subject token)
	File string // file it was defined in
	Line int    // line of its key

	Provider          string        // provider: openai | anthropic | exec | sim; "sim" when omitted
	ProviderDefaulted bool          // true when provider was omitted
	Endpoint          string        // endpoint: http(s) base URL of openai and anthropic; defaults DefaultOpenAIEndpoint, DefaultAnthropicEndpoint
	APIKeyEnv         string        // apiKeyEnv: NAME of the environment variable holding the key; "" sends none
	UpstreamModel     string        // upstreamModel: model name sent upstream, default the model's Name
	Command           []string      // command: argv of the exec provider, required for it; "{prompt}" is replaced per call
	Timeout           time.Duration // timeout: deadline of one attempt, default Global.Timeout
	MaxConcurrent     int           // maxConcurrent: calls in flight, default Global.MaxConcurrent, >= 1
	QueueSize         int           // queueSize: calls waiting for a slot, default Global.QueueSize, >= 0
	Fallbacks         []string      // fallbacks: other models tried in this order
	Strategy          string        // strategy: sequential | parallel | hedged | weighted | random; default Global.Strategy
	Weight            float64       // weight: static weight for weighted routing, default 1, > 0
	SupportsPrefill   bool          // supportsPrefill: the model takes an assistant prefill (a cut stream it continues gets the text sent as the start of its answer); default true for anthropic, false otherwise; not for exec

	// Limits and the fallbacks they bring (docs/context-windows.md).
	ContextWindow          int      // contextWindow: tokens of prompt plus output, >= 0; default the known value of the upstream model (openai and anthropic at their own endpoints), else 0: unknown
	MaxOutputTokens        int      // maxOutputTokens: most tokens one answer may have, >= 0, at most contextWindow; default as contextWindow
	ContextWindowFallbacks []string // contextWindowFallbacks: models tried, in order, when a prompt is too long for the candidates (off by default)
	ContentPolicyFallbacks []string // contentPolicyFallbacks: the only models tried, in order, after a content_policy refusal (off by default: the provider's reason is returned)

	CircuitBreaker Breaker     // circuitBreaker: block; circuitBreakerThreshold is its failureThreshold
	Retry          Retry       // retry: block; maxRetries is its maxRetries
	HealthCheck    HealthCheck // healthCheck: block
	Streaming      Streaming   // streaming: block
	Restoration    Restoration // restoration: block
	Sim            Sim         // sim: block, for provider sim only (zero for other providers)
}

// Sim configures a simulated model (provider sim).
type Sim struct {
	Latency     time.Duration // latency: mean latency, default 20ms, >= 0
	Jitter      time.Duration // jitter: uniform +- around Latency, default 0, at most Latency
	FailureRate float64       // failureRate: share of calls that fail, default 0, in [0, 1]
	ErrorClass  string        // errorClass: class of those failures, default "server_error"; any messages.ErrorClass but "ok"
	Seed        int64         // seed: random seed, default derived from the model name so runs repeat
	Reply       string        // reply: text of every answer; "" lets the provider build one
	TokenDelay  time.Duration // tokenDelay: pause between streamed tokens, default 5ms, >= 0
	// RejectPrefill: rejectPrefill, default false: refuse an assistant
	// prefill with a 400, as models that take none do (for chaos).
	RejectPrefill bool
}

// APIKey returns the value of the environment variable APIKeyEnv names, or ""
// when it is unset or the model names none. The key is read on every call and
// never stored in the Config, so it cannot be logged with it.
func (m *Model) APIKey() string {
	if m.APIKeyEnv == "" {
		return ""
	}
	return os.Getenv(m.APIKeyEnv)
}

// defaultGlobal returns Global with every default. The embedded resilience.yml
// writes the same values out, and a test keeps the two equal.
func defaultGlobal() Global {
	return Global{
		SubjectPrefix:  "hive",
		ReplyPrefixes:  []string{"_INBOX.", "_INBOX_"},
		Timeout:        30 * time.Second,
		RequestTimeout: 60 * time.Second,
		MaxConcurrent:  10,
		QueueSize:      100,
		Strategy:       StrategySequential,
		MaxParallel:    3,
		ShutdownGrace:  10 * time.Second,
		CircuitBreaker: Breaker{Preset: PresetBIP03}, // every other key is the preset's
		Retry: Retry{
			MaxRetries: 3,
			BaseDelay:  time.Second,
			Multiplier: 2,
			MaxDelay:   30 * time.Second,
			Jitter:     0.1,
		},
		HealthCheck: HealthCheck{
			Enabled:          true,
			Interval:         30 * time.Second,
			Timeout:          5 * time.Second,
			Retries:          3,
			DegradedRatio:    0.8,
			SuccessFloor:     0.9,
			MinCalls:         10,
			UnavailableAfter: 3,
			Window:           5 * time.Minute,
			OpenInterval:     5 * time.Second,
			RampInterval:     time.Second,
		},
		Streaming: Streaming{
			FirstTokenTimeout: 10 * time.Second,
			IdleTimeout:       10 * time.Second,
			TotalTimeout:      120 * time.Second,
			MaxContinuations:  1,
			OnMalformed:       MalformedSkip,
		},
		Restoration: Restoration{
			Steps:        []int{10, 25, 50, 100},
			Over:         30 * time.Second,
			SuccessFloor: 0.9,
			MinCalls:     10,
			Successes:    3,
		},
		Degradation: Degradation{
			ResponseTime:     [4]time.Duration{5 * time.Second, 8 * time.Second, 15 * time.Second, 30 * time.Second},
			SuccessRate:      [4]float64{0.95, 0.90, 0.80, 0.60},
			CriticalOnlyFrom: messages.Degradation_minimal,
			LowerAfter:       30 * time.Second,
		},
		GroupProtection: GroupProtection{MaxOpenShare: 0.5, PanicRate: 1},
		RetryBudget:     RetryBudget{Ratio: 0.2, Minimum: 3},
		Supervision:     Supervision{MaxRestarts: 5, Within: time.Minute, BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second, Jitter: 0.2},
		Recovery: Recovery{Enabled: true, MaxConcurrent: 3, ErrorRate: 0.5, MinCalls: 10, ResponseTime: 30 * time.Second,
			Failures: 10, Timeout: 2 * time.Minute, Cooldown: 30 * time.Second},
		Alerts:      observe.Defaults(),
		Persistence: defaultPersistence(),
		Jobs:        defaultJobs(),
		Events:      Events{Encoding: "json"},
		Cluster:     defaultCluster(),
	}
}

// newModel returns the model called name with every value it inherits from g
// and the sim defaults; decoding its block then overrides what the file gives.
func newModel(name, file string, line int, g *Global) *Model {
	return &Model{
		Name:           name,
		File:           file,
		Line:           line,
		Timeout:        g.Timeout,
		MaxConcurrent:  g.MaxConcurrent,
		QueueSize:      g.QueueSize,
		Strategy:       g.Strategy,
		Weight:         1,
		CircuitBreaker: g.CircuitBreaker,
		Retry:          g.Retry,
		HealthCheck:    g.HealthCheck,
		Streaming:      g.Streaming,
		Restoration:    g.Restoration,
		Sim: Sim{
			Latency:    20 * time.Millisecond,
			ErrorClass: "server_error",
			Seed:       seedOf(name),
			TokenDelay: 5 * time.Millisecond,
		},
	}
}

// seedOf derives a stable seed from a model name (FNV-1a), so two runs of the
// same configuration simulate the same outcomes.
func seedOf(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}
