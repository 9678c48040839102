package gateway

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/route"
)

// continuationOutcomes are the values of InferResponse.continuation, and
// other.
var continuationOutcomes = []string{route.ContinuationComplete, route.ContinuationFailed, route.ContinuationRefusedTools,
	route.ContinuationLimit, route.ContinuationDeadline, route.ContinuationNoCandidate, other}

// Histogram buckets, in seconds.
var (
	// durationBuckets spans a cached answer (1 ms) to a long generation (60 s).
	durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60}
	// overheadBuckets spans the router's own time, 10 µs to 100 ms.
	overheadBuckets = []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3}
)

const (
	// maxNames bounds the distinct values of each free-form label kind.
	maxNames = 512
	// other replaces a name past maxNames.
	other = "_other"
	// numLevels is how many Degradation levels this build knows.
	numLevels = int(messages.Degradation_critical) + 1
	// maxCached bounds each hot-path cache; past it, a lookup resolves the
	// series through the vector every time, correct but slower.
	maxCached = 4096
)

// Metrics collects a node's metrics. It is safe for concurrent use. The
// recording methods only do atomic updates and short map lookups (a
// mutex held for a map operation at most): they never wait on I/O or a
// channel, so an actor may call them.
//
// Its metrics, all named hive_*, with their labels:
//
//	hive_node_info{node}                                        1, names the node
//	hive_requests_total{ingress, served_by, outcome, error_class}
//	hive_request_duration_seconds{ingress}                      histogram
//	hive_attempts_total{model, error_class}                     one per attempt
//	hive_attempt_duration_seconds{model}                        histogram of Attempt.latency_ms
//	hive_fallbacks_total{from, to}                              served by another model than the one requested
//	hive_retries_total{model}                                   attempts with retried set
//	hive_hedges_total{model}                                    attempts with hedged set
//	hive_degradation_level                                      gauge, the last response's level, 0 none .. 4 critical
//	hive_responses_by_degradation_total{level}
//	hive_overhead_seconds                                       histogram of InferResponse.overhead_us
//	hive_breaker_state{node, model}                             gauge, the BreakerState enum number (every configured model from the start)
//	hive_breaker_transitions_total{node, model, to}
//	hive_breaker_peer_opens_total{node, model, origin}          openings adopted from another node (reason peer)
//	hive_model_health{node, model}                              gauge, the HealthStatus enum number (every configured model from the start)
//	hive_health_changes_total{node, model, to}
//	hive_restarts_total{node, model}                            RecoveryEvents of kind restart
//	hive_recovery_events_total{node, model, kind}
//	hive_alerts_total{rule, severity, state}
//	hive_alerts_firing{rule}                                    gauge, alerts fired or escalated and not resolved
//	hive_stream_continuations_total{outcome}                   streams cut after text went out, by InferResponse.continuation
//	hive_stream_malformed_events_total{model}                   unparsable stream events skipped (Attempt.malformed_skipped)
//
// plus the Go runtime's go_* and the process's process_* metrics.
//
// outcome is ok or error; error_class is the ErrorClass name, "ok" for a
// success (a reply with an error of class ok is outcome error, class ok).
// served_by is the model the response names ("" when none served). The
// gauges use the enum numbers of messages/hive.proto: breaker 0 closed,
// 1 open, 2 half_open, 3 forced_open, 4 disabled, 5 metrics_only; health
// 0 unknown, 1 available, 2 degraded, 3 unavailable, 4 maintenance.
//
// Cardinality: ingress is the caller's constant, classes, states and
// levels are enums, and model, node and rule names come from
// configuration. So that a bug or a stranger on the bus cannot grow the
// series without bound, each of those three kinds of name keeps at most
// 512 (maxNames) distinct values; later ones are counted as "_other".
type Metrics struct {
	node    string
	reg     *prometheus.Registry
	handler http.Handler

	models, nodes, rules *names

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	attempts        *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec
	fallbacks       *prometheus.CounterVec
	retries         *prometheus.CounterVec
	hedges          *prometheus.CounterVec
	degradation     prometheus.Gauge
	byDegradation   *prometheus.CounterVec
	overhead        prometheus.Histogram

	breakerState       *prometheus.GaugeVec
	breakerTransitions *prometheus.CounterVec
	breakerPeerOpens   *prometheus.CounterVec
	health             *prometheus.GaugeVec
	healthChanges      *prometheus.CounterVec
	restarts           *prometheus.CounterVec
	recoveries         *prometheus.CounterVec
	alerts             *prometheus.CounterVec
	alertsFiring       *prometheus.GaugeVec
	refusedReplies     *prometheus.CounterVec
	replays            *prometheus.CounterVec
	continuations      map[string]prometheus.Counter // by outcome, every one from the start; read-only after NewMetrics
	malformed          *prometheus.CounterVec

	// Hot-path caches of resolved series.
	requestSeries  cache[requestKey, requestSeries]
	attemptSeries  cache[attemptKey, attemptSeries]
	fallbackSeries cache[[2]string, prometheus.Counter]
	hedgeSeries    cache[string, prometheus.Counter]
	levels         [numLevels]prometheus.Counter

	mu     sync.Mutex             // guards firing
	firing map[string]firingAlert // alerts fired or escalated and not resolved, by id
}

type requestKey struct {
	ingress, servedBy string
	class             messages.ErrorClass
	failed            bool
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

type attemptKey struct {
	model string
	class messages.ErrorClass
}

type attemptSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
	retries  prometheus.Counter
}

type firingAlert struct {
	rule  string
	state messages.Alert_State
}

// NewMetrics returns metrics for node, in a registry of their own that
// also holds the Go runtime and process collectors. node is
// hive_node_info's label and the node of an event that names none. Each of
// models, the node's configured models, has hive_breaker_state 0 (closed)
// and hive_model_health 0 (unknown) from the start, as a new breaker and
// health are, so that every series exists before its first transition;
// the model actors' events then move them (a breaker state restored at
// start is published as one).
func NewMetrics(node string, models ...string) *Metrics {
	m := &Metrics{
		node:   node,
		reg:    prometheus.NewRegistry(),
		models: newNames(maxNames),
		nodes:  newNames(maxNames),
		rules:  newNames(maxNames),
		firing: make(map[string]firingAlert),
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(v)
		return v
	}
	gauge("hive_node_info", "Always 1; names the node that serves these metrics.", "node").WithLabelValues(node).Set(1)
	m.requests = counter("hive_requests_total", "Finished inference requests by ingress, serving model, outcome and error class.", "ingress", "served_by", "outcome", "error_class")
	m.requestDuration = histogram("hive_request_duration_seconds", "Time from dispatch to answer of an inference request.", durationBuckets, "ingress")
	m.attempts = counter("hive_attempts_total", "Model calls made while serving requests, by model and error class (ok for a success).", "model", "error_class")
	m.attemptDuration = histogram("hive_attempt_duration_seconds", "Latency of one model call.", durationBuckets, "model")
	m.fallbacks = counter("hive_fallbacks_total", "Requests served by another model than the first one tried.", "from", "to")
	m.retries = counter("hive_retries_total", "Model calls that retried the same model.", "model")
	m.hedges = counter("hive_hedges_total", "Hedged model calls: a second call started while the first was still running.", "model")
	m.degradation = prometheus.NewGauge(prometheus.GaugeOpts{Name: "hive_degradation_level", Help: "Degradation level of the last response: 0 none, 1 minimal, 2 moderate, 3 severe, 4 critical."})
	m.byDegradation = counter("hive_responses_by_degradation_total", "Responses by the degradation level they were produced at.", "level")
	m.overhead = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hive_overhead_seconds", Help: "Time a node spent on a request outside model calls.", Buckets: overheadBuckets})
	m.breakerState = gauge("hive_breaker_state", "Circuit breaker state as the BreakerState enum number: 0 closed, 1 open, 2 half_open, 3 forced_open, 4 disabled, 5 metrics_only.", "node", "model")
	m.breakerTransitions = counter("hive_breaker_transitions_total", "Circuit breaker transitions by the state entered.", "node", "model", "to")
	m.breakerPeerOpens = counter("hive_breaker_peer_opens_total", "Circuit breaker openings adopted from another node serving the same upstream, by that node.", "node", "model", "origin")
	m.health = gauge("hive_model_health", "Model health as the HealthStatus enum number: 0 unknown, 1 available, 2 degraded, 3 unavailable, 4 maintenance.", "node", "model")
	m.healthChanges = counter("hive_health_changes_total", "Model health changes by the status entered.", "node", "model", "to")
	m.restarts = counter("hive_restarts_total", "Model actor restarts.", "node", "model")
	m.recoveries = counter("hive_recovery_events_total", "Recovery events by kind.", "node", "model", "kind")
	m.alerts = counter("hive_alerts_total", "Alert events by rule, severity and state.", "rule", "severity", "state")
	m.alertsFiring = gauge("hive_alerts_firing", "Alerts fired or escalated and not yet resolved.", "rule")
	m.replays = counter("hive_idempotent_replays_total", "Answers to a repeated idempotency key: the first answer given again, no model called.", "ingress")
	m.refusedReplies = counter("hive_refused_replies_total", "Requests dropped unserved because their reply subject is not under the configured reply prefixes, by endpoint.", "endpoint")
	for _, e := range []string{"infer", "admin", "chaos", "jobs"} {
		m.refusedReplies.WithLabelValues(e) // every series from the start, at 0
	}
	conts := counter("hive_stream_continuations_total", "Streams cut after some of their text reached the caller, by what became of them: complete, failed (continued, still incomplete), refused_tools, limit, deadline, no_candidate; _other for a value this build does not know.", "outcome")
	m.continuations = map[string]prometheus.Counter{}
	for _, o := range continuationOutcomes {
		m.continuations[o] = conts.WithLabelValues(o)
	}
	m.malformed = counter("hive_stream_malformed_events_total", "Events of streams that did not parse and were skipped (streaming.onMalformed: skip).", "model")
	m.reg.MustRegister(m.degradation, m.overhead,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	for v := range numLevels {
		m.levels[v] = m.byDegradation.WithLabelValues(messages.Degradation(v).String())
	}
	m.requestSeries.resolve = func(k requestKey) requestSeries {
		outcome := "ok"
		if k.failed {
			outcome = "error"
		}
		return requestSeries{
			count:    m.requests.WithLabelValues(k.ingress, m.models.value(k.servedBy), outcome, k.class.String()),
			duration: m.requestDuration.WithLabelValues(k.ingress),
		}
	}
	m.attemptSeries.resolve = func(k attemptKey) attemptSeries {
		model := m.models.value(k.model)
		return attemptSeries{
			count:    m.attempts.WithLabelValues(model, k.class.String()),
			duration: m.attemptDuration.WithLabelValues(model),
			retries:  m.retries.WithLabelValues(model),
		}
	}
	m.fallbackSeries.resolve = func(k [2]string) prometheus.Counter {
		return m.fallbacks.WithLabelValues(m.models.value(k[0]), m.models.value(k[1]))
	}
	m.hedgeSeries.resolve = func(model string) prometheus.Counter {
		return m.hedges.WithLabelValues(m.models.value(model))
	}
	for _, name := range models {
		n, model := m.where(node, name)
		m.breakerState.WithLabelValues(n, model).Set(float64(messages.BreakerState_closed))
		m.health.WithLabelValues(n, model).Set(float64(messages.HealthStatus_unknown))
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// RefusedReply counts a request dropped because its reply subject is not
// an inbox (see bus.ReplyGuard); endpoint is "infer", "admin", "chaos" or
// "jobs".
func (m *Metrics) RefusedReply(endpoint string) {
	m.refusedReplies.WithLabelValues(endpoint).Inc()
}

// Handler serves the metrics in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Response records one finished request: ingress is "nats" or "http",
// model the model the request asked for, d the time from dispatch to
// answer. A success served by another model than model counts in
// hive_fallbacks_total (from model; with model "", from the first model
// tried). A nil resp counts as a server_error, as the gateway answers it.
// It does not allocate once the request's series exist.
func (m *Metrics) Response(ingress, model string, resp *messages.InferResponse, d time.Duration) {
	m.record(ingress, model, resp, d, true)
}

// Stream records one finished streamed request from its final reply: who
// served it, its attempts and its error; no reply at all counts as
// stream_cut, as the gateway answers it. A stream's degradation level and
// overhead are not recorded, so it moves neither those metrics nor
// hive_degradation_level: its callers never see them (the chunks carry
// none, and an SSE stream's headers go out before the level is known).
// model is the model asked for, as for Response.
func (m *Metrics) Stream(ingress, model string, final *messages.InferResponse, d time.Duration) {
	if final == nil {
		final = &messages.InferResponse{Error: &messages.Error{Class: messages.ErrorClass_stream_cut}}
	}
	m.record(ingress, model, final, d, false)
}

// record is Response; whole says resp has a degradation level and an
// overhead to record.
func (m *Metrics) record(ingress, requested string, resp *messages.InferResponse, d time.Duration, whole bool) {
	k := requestKey{ingress: ingress, servedBy: resp.GetServedBy()}
	switch {
	case resp == nil:
		k.class, k.failed = messages.ErrorClass_server_error, true
	case resp.GetError() != nil:
		k.class, k.failed = resp.GetError().GetClass(), true
	}
	rs := m.requestSeries.get(k)
	rs.count.Inc()
	rs.duration.Observe(d.Seconds())
	if resp == nil {
		return
	}
	if resp.GetReplayed() { // no model was called: its attempts were counted the first time
		m.replays.WithLabelValues(ingress).Inc()
		return
	}
	if c := resp.GetContinuation(); c != "" {
		if cs, ok := m.continuations[c]; ok {
			cs.Inc()
		} else {
			m.continuations[other].Inc()
		}
	}
	attempts := resp.GetAttempts()
	for _, a := range attempts {
		if a.GetSkipped() != messages.Attempt_called {
			continue // not a call: the router skipped it for its limits
		}
		if n := a.GetMalformedSkipped(); n > 0 {
			m.malformed.WithLabelValues(m.models.value(a.GetModel())).Add(float64(n))
		}
		as := m.attemptSeries.get(attemptKey{model: a.GetModel(), class: a.GetErrorClass()})
		as.count.Inc()
		as.duration.Observe(a.GetLatencyMs() / 1e3)
		if a.GetRetried() {
			as.retries.Inc()
		}
		if a.GetHedged() {
			m.hedgeSeries.get(a.GetModel()).Inc()
		}
	}
	// A fallback served it: another model than the one asked for, which
	// may not have been called at all (its breaker open, or its context
	// window too small for the prompt). A reply with no
	// attempt (the configured degraded answer) was served by no model.
	if len(attempts) > 0 && requested == "" {
		requested = attempts[0].GetModel()
	}
	if !k.failed && len(attempts) > 0 && k.servedBy != "" && requested != k.servedBy {
		m.fallbackSeries.get([2]string{requested, k.servedBy}).Inc()
	}
	if !whole {
		return
	}
	level := resp.GetDegradation()
	m.degradation.Set(float64(level))
	if int(level) < numLevels {
		m.levels[level].Inc()
	} else { // a level newer than this build
		m.byDegradation.WithLabelValues(level.String()).Inc()
	}
	m.overhead.Observe(float64(resp.GetOverheadUs()) / 1e6)
}

// Breaker records a circuit breaker transition; nil is ignored.
func (m *Metrics) Breaker(ev *messages.BreakerTransition) {
	if ev == nil {
		return
	}
	node, model := m.where(ev.GetNode(), ev.GetModel())
	m.breakerState.WithLabelValues(node, model).Set(float64(ev.GetTo()))
	m.breakerTransitions.WithLabelValues(node, model, ev.GetTo().String()).Inc()
	if ev.GetReason() == messages.BreakerTransition_peer && ev.GetTo() == messages.BreakerState_open {
		m.breakerPeerOpens.WithLabelValues(node, model, ev.GetOrigin()).Inc()
	}
}

// Health records a model health change; nil is ignored.
func (m *Metrics) Health(ev *messages.HealthChanged) {
	if ev == nil {
		return
	}
	node, model := m.where(ev.GetNode(), ev.GetModel())
	m.health.WithLabelValues(node, model).Set(float64(ev.GetTo()))
	m.healthChanges.WithLabelValues(node, model, ev.GetTo().String()).Inc()
}

// Recovery records a recovery event, and a restart when it is one; nil is
// ignored.
func (m *Metrics) Recovery(ev *messages.RecoveryEvent) {
	if ev == nil {
		return
	}
	node, model := m.where(ev.GetNode(), ev.GetModel())
	m.recoveries.WithLabelValues(node, model, ev.GetKind().String()).Inc()
	if ev.GetKind() == messages.RecoveryEvent_restart {
		m.restarts.WithLabelValues(node, model).Inc()
	}
}

// Alert records an alert event; nil is ignored. An alert is identified by
// its id (rule, node and model when the id is empty). hive_alerts_firing
// goes up when an alert not yet firing fires or escalates, and down when
// a firing one resolves; an acknowledgement leaves it alone. An event that
// repeats the alert's current state (a redelivery) is not counted at all,
// and a resolve of an alert never seen firing only counts in
// hive_alerts_total.
func (m *Metrics) Alert(ev *messages.Alert) {
	if ev == nil {
		return
	}
	id := ev.GetId()
	if id == "" {
		id = ev.GetRule() + "\x00" + ev.GetNode() + "\x00" + ev.GetModel()
	}
	state := ev.GetState()
	rule := m.rules.value(ev.GetRule())
	m.mu.Lock()
	prev, firing := m.firing[id]
	if firing && prev.state == state {
		m.mu.Unlock()
		return
	}
	var delta float64
	switch state {
	case messages.Alert_fired, messages.Alert_escalated:
		if !firing {
			delta = 1
			prev.rule = rule
		}
		m.firing[id] = firingAlert{rule: prev.rule, state: state}
	case messages.Alert_acknowledged:
		if firing {
			m.firing[id] = firingAlert{rule: prev.rule, state: state}
		}
	case messages.Alert_resolved:
		if firing {
			delete(m.firing, id)
			delta = -1
		}
	}
	if delta != 0 {
		// Under mu, so that the gauge moves in the order the map did.
		m.alertsFiring.WithLabelValues(prev.rule).Add(delta)
	}
	m.mu.Unlock()
	m.alerts.WithLabelValues(rule, ev.GetSeverity().String(), state.String()).Inc()
}

// where is an event's node and model as label values; an event without a
// node is this node's.
func (m *Metrics) where(node, model string) (string, string) {
	if node == "" {
		node = m.node
	}
	return m.nodes.value(node), m.models.value(model)
}

// names bounds the distinct values of one kind of label.
type names struct {
	mu   sync.Mutex // guards seen
	seen map[string]struct{}
	max  int
}

func newNames(max int) *names { return &names{seen: make(map[string]struct{}), max: max} }

// value is v while fewer than max distinct values were seen, else other.
func (n *names) value(v string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.seen[v]; ok {
		return v
	}
	if len(n.seen) >= n.max {
		return other
	}
	n.seen[v] = struct{}{}
	return v
}

// cache maps label values to resolved series. Reads load an immutable map
// without locking or allocating; a miss copies it under mu, which is rare
// because the keys are few.
type cache[K comparable, V any] struct {
	m       atomic.Pointer[map[K]V]
	mu      sync.Mutex // serializes misses
	resolve func(K) V
}

func (c *cache[K, V]) get(k K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	return c.miss(k)
}

func (c *cache[K, V]) miss(k K) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var n int
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		n = len(*old)
	}
	v := c.resolve(k)
	if n >= maxCached {
		return v
	}
	next := make(map[K]V, n+1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[k] = v
	c.m.Store(&next)
	return v
}

// Wrap returns d with every answer it passes on recorded as a response of
// ingress ("http", "nats"): a plain answer with Response, a stream with
// Stream, once, when its final reply passes.
func (m *Metrics) Wrap(ingress string, d Dispatcher) Dispatcher {
	return metered{Dispatcher: d, m: m, ingress: ingress}
}

type metered struct {
	Dispatcher
	m       *Metrics
	ingress string
}

func (d metered) Dispatch(ctx context.Context, req *messages.InferRequest, sink messages.Sink) {
	d.Dispatcher.Dispatch(ctx, req, &meteredSink{Sink: sink, m: d.m, ingress: d.ingress, model: req.GetModel(),
		stream: req.GetStream(), start: time.Now()})
}

// meteredSink records the final reply that passes through it.
type meteredSink struct {
	messages.Sink
	m       *Metrics
	ingress string
	model   string // asked for
	stream  bool
	once    atomic.Bool // a dispatcher that answers twice is recorded once
	start   time.Time
}

func (s *meteredSink) Final(resp *messages.InferResponse) {
	if s.once.CompareAndSwap(false, true) {
		if s.stream {
			s.m.Stream(s.ingress, s.model, resp, time.Since(s.start))
		} else {
			s.m.Response(s.ingress, s.model, resp, time.Since(s.start))
		}
	}
	s.Sink.Final(resp)
}
