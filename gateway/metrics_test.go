package gateway

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

// scrape GETs /metrics from h and parses the text exposition.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	require.NoError(t, err)
	return fams
}

// family is every series of the family name, keyed by its labels as
// "k=v,k=v" in label-name order, valued by the counter or gauge value or
// the histogram's sample count. A family with no series is empty.
func family(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fams[name].GetMetric() {
		v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		out[labels(m)] = v
	}
	return out
}

func labels(m *dto.Metric) string {
	pairs := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		pairs = append(pairs, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// histogram is the histogram series of name with exactly these labels.
func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name, want string) *dto.Histogram {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		if labels(m) == want {
			return m.GetHistogram()
		}
	}
	t.Fatalf("%s{%s} not found", name, want)
	return nil
}

// buckets is h's cumulative counts by upper bound.
func buckets(h *dto.Histogram) map[float64]uint64 {
	out := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		out[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	return out
}

func attempt(model string, class messages.ErrorClass, ms float64, retried bool) *messages.Attempt {
	return &messages.Attempt{Model: model, ErrorClass: class, LatencyMs: ms, Retried: retried}
}

func TestMetricsResponses(t *testing.T) {
	m := NewMetrics("n1")
	m.Response("http", "", &messages.InferResponse{
		ServedBy: "gpt-5", OverheadUs: 40,
		Attempts: []*messages.Attempt{attempt("gpt-5", messages.ErrorClass_ok, 120, false)},
	}, 130*time.Millisecond)
	m.Response("nats", "", &messages.InferResponse{
		ServedBy: "claude-4-sonnet", Degradation: messages.Degradation_minimal, OverheadUs: 300,
		Attempts: []*messages.Attempt{
			attempt("gpt-5", messages.ErrorClass_server_error, 30, false),
			attempt("gpt-5", messages.ErrorClass_server_error, 25, true),
			attempt("claude-4-sonnet", messages.ErrorClass_ok, 200, false),
		},
	}, 260*time.Millisecond)
	m.Response("nats", "", &messages.InferResponse{
		Degradation: messages.Degradation_severe, OverheadUs: 50,
		Error: &messages.Error{Class: messages.ErrorClass_all_failed},
		Attempts: []*messages.Attempt{
			attempt("gpt-5", messages.ErrorClass_timeout, 1000, false),
			attempt("claude-4-sonnet", messages.ErrorClass_overloaded, 5, false),
		},
	}, 1100*time.Millisecond)
	m.Response("http", "", nil, 2*time.Millisecond)

	fams := scrape(t, m.Handler())
	assert.Equal(t, map[string]float64{
		"error_class=ok,ingress=http,outcome=ok,served_by=gpt-5":           1,
		"error_class=ok,ingress=nats,outcome=ok,served_by=claude-4-sonnet": 1,
		"error_class=all_failed,ingress=nats,outcome=error,served_by=":     1,
		"error_class=server_error,ingress=http,outcome=error,served_by=":   1,
	}, family(fams, "hive_requests_total"))
	assert.Equal(t, map[string]float64{"ingress=http": 2, "ingress=nats": 2}, family(fams, "hive_request_duration_seconds"))
	assert.InDelta(t, 0.132, histogram(t, fams, "hive_request_duration_seconds", "ingress=http").GetSampleSum(), 1e-9)
	assert.InDelta(t, 1.36, histogram(t, fams, "hive_request_duration_seconds", "ingress=nats").GetSampleSum(), 1e-9)

	assert.Equal(t, map[string]float64{
		"error_class=ok,model=gpt-5":                   1,
		"error_class=server_error,model=gpt-5":         2,
		"error_class=timeout,model=gpt-5":              1,
		"error_class=ok,model=claude-4-sonnet":         1,
		"error_class=overloaded,model=claude-4-sonnet": 1,
	}, family(fams, "hive_attempts_total"))
	assert.Equal(t, map[string]float64{"model=gpt-5": 4, "model=claude-4-sonnet": 2}, family(fams, "hive_attempt_duration_seconds"))
	assert.InDelta(t, 1.175, histogram(t, fams, "hive_attempt_duration_seconds", "model=gpt-5").GetSampleSum(), 1e-9)
	assert.InDelta(t, 0.205, histogram(t, fams, "hive_attempt_duration_seconds", "model=claude-4-sonnet").GetSampleSum(), 1e-9)

	assert.Equal(t, map[string]float64{"from=gpt-5,to=claude-4-sonnet": 1}, family(fams, "hive_fallbacks_total"))
	assert.Equal(t, map[string]float64{"model=gpt-5": 1, "model=claude-4-sonnet": 0}, family(fams, "hive_retries_total"),
		"retries are resolved with the attempt's series, so a model without one shows 0")
	assert.Empty(t, family(fams, "hive_hedges_total"))

	assert.Equal(t, map[string]float64{"": 3}, family(fams, "hive_degradation_level"), "the last response with a level was severe")
	assert.Equal(t, map[string]float64{"level=none": 1, "level=minimal": 1, "level=moderate": 0, "level=severe": 1, "level=critical": 0},
		family(fams, "hive_responses_by_degradation_total"))

	overhead := histogram(t, fams, "hive_overhead_seconds", "")
	assert.Equal(t, uint64(3), overhead.GetSampleCount())
	assert.InDelta(t, 390e-6, overhead.GetSampleSum(), 1e-12)
	assert.Equal(t, map[float64]uint64{
		10e-6: 0, 25e-6: 0, 50e-6: 2, 100e-6: 2, 250e-6: 2, 500e-6: 3, 1e-3: 3, 2.5e-3: 3, 5e-3: 3, 10e-3: 3, 25e-3: 3, 50e-3: 3, 100e-3: 3, math.Inf(1): 3,
	}, buckets(overhead))

	assert.Equal(t, map[string]float64{"node=n1": 1}, family(fams, "hive_node_info"))
	assert.NotEmpty(t, family(fams, "go_goroutines"), "the Go collector is registered")
	assert.NotEmpty(t, family(fams, "process_start_time_seconds"), "the process collector is registered")
}

// Every configured model has its breaker and health gauges from the start,
// before any transition; a transition then moves its own.
func TestMetricsConfiguredModelsFromTheStart(t *testing.T) {
	m := NewMetrics("n1", "gpt-5", "claude-4-sonnet")
	fams := scrape(t, m.Handler())
	want := map[string]float64{"model=claude-4-sonnet,node=n1": 0, "model=gpt-5,node=n1": 0}
	assert.Equal(t, want, family(fams, "hive_breaker_state"), "breaker states before any transition")
	assert.Equal(t, want, family(fams, "hive_model_health"), "health before any change")

	m.Breaker(&messages.BreakerTransition{Model: "gpt-5", From: messages.BreakerState_closed, To: messages.BreakerState_forced_open})
	fams = scrape(t, m.Handler())
	assert.Equal(t, map[string]float64{"model=claude-4-sonnet,node=n1": 0, "model=gpt-5,node=n1": 3}, family(fams, "hive_breaker_state"))
}

// A fallback is a success served by another model than the one asked for,
// whether or not that model was called.
func TestMetricsFallbackFromTheRequestedModel(t *testing.T) {
	m := NewMetrics("n1")
	ok := func(model string) *messages.Attempt { return attempt(model, messages.ErrorClass_ok, 1, false) }
	// gpt-5's breaker is open: the router went straight to its fallback.
	m.Response("nats", "gpt-5", &messages.InferResponse{ServedBy: "claude-4-sonnet", Attempts: []*messages.Attempt{ok("claude-4-sonnet")}}, time.Millisecond)
	m.Stream("http", "gpt-5", &messages.InferResponse{ServedBy: "claude-4-sonnet",
		Attempts: []*messages.Attempt{ok("claude-4-sonnet")}}, time.Millisecond)
	m.Response("nats", "claude-4-sonnet", &messages.InferResponse{ServedBy: "claude-4-sonnet", Attempts: []*messages.Attempt{ok("claude-4-sonnet")}}, time.Millisecond)
	// The configured degraded answer: no model served it.
	m.Response("nats", "gpt-5", &messages.InferResponse{ServedBy: "hive-degraded"}, time.Millisecond)
	fams := scrape(t, m.Handler())
	assert.Equal(t, map[string]float64{"from=gpt-5,to=claude-4-sonnet": 2}, family(fams, "hive_fallbacks_total"))
}

// A stream is recorded from its final reply; its degradation level and
// overhead are not recorded.
func TestMetricsStream(t *testing.T) {
	m := NewMetrics("n1")
	two := []*messages.Attempt{
		attempt("gpt-5", messages.ErrorClass_rate_limited, 3, false),
		attempt("claude-4-sonnet", messages.ErrorClass_ok, 40, false),
	}
	m.Stream("http", "", &messages.InferResponse{ServedBy: "claude-4-sonnet", Attempts: two, Degradation: messages.Degradation_severe, OverheadUs: 50}, 50*time.Millisecond)
	m.Stream("nats", "", &messages.InferResponse{ServedBy: "gpt-5", Error: &messages.Error{Class: messages.ErrorClass_stream_cut},
		Attempts: []*messages.Attempt{attempt("gpt-5", messages.ErrorClass_stream_cut, 9, false)}}, 10*time.Millisecond)
	m.Stream("nats", "", &messages.InferResponse{Error: &messages.Error{Class: messages.ErrorClass_stream_stall}}, 10*time.Millisecond)
	m.Stream("http", "", nil, time.Millisecond) // no reply at all: a cut stream

	fams := scrape(t, m.Handler())
	assert.Equal(t, map[string]float64{
		"error_class=ok,ingress=http,outcome=ok,served_by=claude-4-sonnet":  1,
		"error_class=stream_cut,ingress=nats,outcome=error,served_by=gpt-5": 1,
		"error_class=stream_stall,ingress=nats,outcome=error,served_by=":    1,
		"error_class=stream_cut,ingress=http,outcome=error,served_by=":      1,
	}, family(fams, "hive_requests_total"))
	assert.Equal(t, map[string]float64{"from=gpt-5,to=claude-4-sonnet": 1}, family(fams, "hive_fallbacks_total"))
	assert.Equal(t, map[string]float64{
		"error_class=rate_limited,model=gpt-5": 1,
		"error_class=ok,model=claude-4-sonnet": 1,
		"error_class=stream_cut,model=gpt-5":   1,
	}, family(fams, "hive_attempts_total"))
	assert.Equal(t, map[string]float64{"": 0}, family(fams, "hive_degradation_level"))
	assert.Equal(t, map[string]float64{"level=none": 0, "level=minimal": 0, "level=moderate": 0, "level=severe": 0, "level=critical": 0},
		family(fams, "hive_responses_by_degradation_total"))
	assert.Equal(t, map[string]float64{"": 0}, family(fams, "hive_overhead_seconds"))
}

func TestMetricsHedge(t *testing.T) {
	m := NewMetrics("n1")
	hedged := func(model string) *messages.Attempt {
		a := attempt(model, messages.ErrorClass_ok, 5, false)
		a.Hedged = true
		return a
	}
	m.Response("nats", "", &messages.InferResponse{ServedBy: "gpt-5", Attempts: []*messages.Attempt{
		attempt("claude-4-sonnet", messages.ErrorClass_cancelled, 90, false), hedged("gpt-5")}}, time.Millisecond)
	m.Response("nats", "", &messages.InferResponse{ServedBy: "gpt-5", Attempts: []*messages.Attempt{hedged("gpt-5")}}, time.Millisecond)
	m.Response("nats", "", &messages.InferResponse{ServedBy: "claude-4-sonnet", Attempts: []*messages.Attempt{hedged("claude-4-sonnet")}}, time.Millisecond)
	assert.Equal(t, map[string]float64{"model=gpt-5": 2, "model=claude-4-sonnet": 1}, family(scrape(t, m.Handler()), "hive_hedges_total"))
}

func TestMetricsEvents(t *testing.T) {
	m := NewMetrics("n1")
	m.Breaker(&messages.BreakerTransition{Node: "n2", Model: "gpt-5", From: messages.BreakerState_closed, To: messages.BreakerState_open})
	m.Breaker(&messages.BreakerTransition{Node: "n2", Model: "gpt-5", From: messages.BreakerState_open, To: messages.BreakerState_half_open})
	m.Breaker(&messages.BreakerTransition{Model: "claude-4-sonnet", To: messages.BreakerState_forced_open})
	m.Breaker(nil)
	m.Health(&messages.HealthChanged{Node: "n2", Model: "gpt-5", From: messages.HealthStatus_available, To: messages.HealthStatus_degraded})
	m.Health(&messages.HealthChanged{Node: "n2", Model: "gpt-5", From: messages.HealthStatus_degraded, To: messages.HealthStatus_unavailable})
	m.Health(nil)
	m.Recovery(&messages.RecoveryEvent{Node: "n2", Model: "gpt-5", Kind: messages.RecoveryEvent_restart, Attempt: 1})
	m.Recovery(&messages.RecoveryEvent{Node: "n2", Model: "gpt-5", Kind: messages.RecoveryEvent_restart, Attempt: 2})
	m.Recovery(&messages.RecoveryEvent{Node: "n2", Model: "gpt-5", Kind: messages.RecoveryEvent_ramp_step, RampPercent: 25})
	m.Recovery(nil)
	m.Alert(nil)

	fams := scrape(t, m.Handler())
	assert.Equal(t, map[string]float64{
		"model=gpt-5,node=n2":           float64(messages.BreakerState_half_open),
		"model=claude-4-sonnet,node=n1": float64(messages.BreakerState_forced_open),
	}, family(fams, "hive_breaker_state"), "an event without a node is this node's")
	assert.Equal(t, map[string]float64{
		"model=gpt-5,node=n2,to=open":                  1,
		"model=gpt-5,node=n2,to=half_open":             1,
		"model=claude-4-sonnet,node=n1,to=forced_open": 1,
	}, family(fams, "hive_breaker_transitions_total"))
	assert.Equal(t, map[string]float64{"model=gpt-5,node=n2": float64(messages.HealthStatus_unavailable)}, family(fams, "hive_model_health"))
	assert.Equal(t, map[string]float64{
		"model=gpt-5,node=n2,to=degraded":    1,
		"model=gpt-5,node=n2,to=unavailable": 1,
	}, family(fams, "hive_health_changes_total"))
	assert.Equal(t, map[string]float64{"model=gpt-5,node=n2": 2}, family(fams, "hive_restarts_total"))
	assert.Equal(t, map[string]float64{
		"kind=restart,model=gpt-5,node=n2":   2,
		"kind=ramp_step,model=gpt-5,node=n2": 1,
	}, family(fams, "hive_recovery_events_total"))
	assert.Empty(t, family(fams, "hive_alerts_total"))
}

func TestMetricsAlerts(t *testing.T) {
	type event struct {
		id, rule string
		state    messages.Alert_State
	}
	fired, resolved, acked, escalated := messages.Alert_fired, messages.Alert_resolved, messages.Alert_acknowledged, messages.Alert_escalated
	tests := []struct {
		name       string
		events     []event
		wantFiring map[string]float64
		wantTotal  map[string]float64
	}{
		{
			name:       "fired twice with one id counts once",
			events:     []event{{"a1", "breaker_open", fired}, {"a1", "breaker_open", fired}},
			wantFiring: map[string]float64{"rule=breaker_open": 1},
			wantTotal:  map[string]float64{"rule=breaker_open,severity=warning,state=fired": 1},
		},
		{
			name:       "resolved stops firing",
			events:     []event{{"a1", "breaker_open", fired}, {"a1", "breaker_open", resolved}},
			wantFiring: map[string]float64{"rule=breaker_open": 0},
			wantTotal: map[string]float64{
				"rule=breaker_open,severity=warning,state=fired":    1,
				"rule=breaker_open,severity=warning,state=resolved": 1,
			},
		},
		{
			name:       "acknowledged keeps firing",
			events:     []event{{"a1", "breaker_open", fired}, {"a1", "breaker_open", acked}, {"a1", "breaker_open", acked}},
			wantFiring: map[string]float64{"rule=breaker_open": 1},
			wantTotal: map[string]float64{
				"rule=breaker_open,severity=warning,state=fired":        1,
				"rule=breaker_open,severity=warning,state=acknowledged": 1,
			},
		},
		{
			name:       "escalated after fired is still one",
			events:     []event{{"a1", "breaker_open", fired}, {"a1", "breaker_open", escalated}, {"a1", "breaker_open", fired}},
			wantFiring: map[string]float64{"rule=breaker_open": 1},
			wantTotal: map[string]float64{
				"rule=breaker_open,severity=warning,state=fired":     2,
				"rule=breaker_open,severity=warning,state=escalated": 1,
			},
		},
		{
			name:       "escalated unseen fires",
			events:     []event{{"a1", "breaker_open", escalated}},
			wantFiring: map[string]float64{"rule=breaker_open": 1},
			wantTotal:  map[string]float64{"rule=breaker_open,severity=warning,state=escalated": 1},
		},
		{
			name:       "resolve or acknowledge of an unseen alert",
			events:     []event{{"a1", "breaker_open", resolved}, {"a2", "breaker_open", acked}},
			wantFiring: map[string]float64{},
			wantTotal: map[string]float64{
				"rule=breaker_open,severity=warning,state=resolved":     1,
				"rule=breaker_open,severity=warning,state=acknowledged": 1,
			},
		},
		{
			name: "ids apart",
			events: []event{
				{"a1", "breaker_open", fired}, {"a2", "breaker_open", fired}, {"a3", "error_rate", fired},
				{"a2", "breaker_open", resolved}, {"a2", "breaker_open", resolved},
			},
			wantFiring: map[string]float64{"rule=breaker_open": 1, "rule=error_rate": 1},
			wantTotal: map[string]float64{
				"rule=breaker_open,severity=warning,state=fired":    2,
				"rule=breaker_open,severity=warning,state=resolved": 2,
				"rule=error_rate,severity=warning,state=fired":      1,
			},
		},
		{
			name:       "fires again after resolving",
			events:     []event{{"a1", "breaker_open", fired}, {"a1", "breaker_open", resolved}, {"a1", "breaker_open", fired}},
			wantFiring: map[string]float64{"rule=breaker_open": 1},
			wantTotal: map[string]float64{
				"rule=breaker_open,severity=warning,state=fired":    2,
				"rule=breaker_open,severity=warning,state=resolved": 1,
			},
		},
		{
			name:       "no id: rule, node and model identify it",
			events:     []event{{"", "breaker_open", fired}, {"", "breaker_open", fired}},
			wantFiring: map[string]float64{"rule=breaker_open": 1},
			wantTotal:  map[string]float64{"rule=breaker_open,severity=warning,state=fired": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics("n1")
			for _, e := range tt.events {
				m.Alert(&messages.Alert{Id: e.id, Rule: e.rule, State: e.state, Severity: messages.Alert_warning, Node: "n1", Model: "gpt-5"})
			}
			fams := scrape(t, m.Handler())
			assert.Equal(t, tt.wantFiring, family(fams, "hive_alerts_firing"))
			assert.Equal(t, tt.wantTotal, family(fams, "hive_alerts_total"))
		})
	}
}

// Model names past maxNames share one "_other" series.
func TestMetricsCardinality(t *testing.T) {
	m := NewMetrics("n1")
	const n = maxNames + 88
	for i := range n {
		model := fmt.Sprintf("model-%d", i)
		m.Response("nats", "", &messages.InferResponse{ServedBy: model, Attempts: []*messages.Attempt{attempt(model, messages.ErrorClass_ok, 1, false)}}, time.Millisecond)
		m.Breaker(&messages.BreakerTransition{Model: model, To: messages.BreakerState_open})
	}
	fams := scrape(t, m.Handler())
	requests := family(fams, "hive_requests_total")
	assert.Len(t, requests, maxNames+1)
	assert.Equal(t, float64(88), requests["error_class=ok,ingress=nats,outcome=ok,served_by=_other"])
	attempts := family(fams, "hive_attempts_total")
	assert.Len(t, attempts, maxNames+1)
	assert.Equal(t, float64(88), attempts["error_class=ok,model=_other"])
	assert.Len(t, family(fams, "hive_breaker_state"), maxNames+1)
}

// Recording and scraping at once keeps every count (run with -race).
func TestMetricsConcurrent(t *testing.T) {
	m := NewMetrics("n1")
	const workers, each = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			model := fmt.Sprintf("model-%d", w%2)
			for i := range each {
				a := attempt(model, messages.ErrorClass_ok, 1, false)
				a.Hedged = true
				m.Response("nats", "", &messages.InferResponse{ServedBy: model, Attempts: []*messages.Attempt{a}}, time.Millisecond)
				m.Alert(&messages.Alert{Id: fmt.Sprint(i % 10), Rule: "r", State: messages.Alert_fired})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			scrape(t, m.Handler())
		}
	})
	wg.Wait()
	fams := scrape(t, m.Handler())
	assert.Equal(t, map[string]float64{
		"error_class=ok,ingress=nats,outcome=ok,served_by=model-0": workers / 2 * each,
		"error_class=ok,ingress=nats,outcome=ok,served_by=model-1": workers / 2 * each,
	}, family(fams, "hive_requests_total"))
	assert.Equal(t, map[string]float64{"model=model-0": workers / 2 * each, "model=model-1": workers / 2 * each}, family(fams, "hive_hedges_total"))
	assert.Equal(t, map[string]float64{"rule=r": 10}, family(fams, "hive_alerts_firing"))
}

// metricsHandler is handler with m as Config.Metrics.
func metricsHandler(t *testing.T, f *fake, m *Metrics) *wire {
	t.Helper()
	h, err := New(Config{Node: "n1", Dispatcher: f, Readiness: ready{}, Metrics: m})
	require.NoError(t, err)
	return serveWire(t, h)
}

func TestMetricsRoute(t *testing.T) {
	get := func(h http.Handler, method string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/metrics", nil))
		return rec
	}
	t.Run("absent without Metrics", func(t *testing.T) {
		rec := get(metricsHandler(t, newFake(t), nil), http.MethodGet)
		assert.Equal(t, http.StatusNotFound, rec.Code)
	})
	t.Run("served with Metrics", func(t *testing.T) {
		h := metricsHandler(t, newFake(t), NewMetrics("n1"))
		rec := get(h, http.MethodGet)
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain"), rec.Header().Get("Content-Type"))
		assert.Equal(t, http.StatusMethodNotAllowed, get(h, http.MethodPost).Code)
	})
}

// Every chat completion the gateway answers, plain or streamed, counts as
// an "http" request; one refused before dispatch does not.
func TestMetricsChat(t *testing.T) {
	f := newFake(t)
	f.respond = answer(&messages.InferResponse{
		Content: "Hello", ServedBy: "claude-4-sonnet", Degradation: messages.Degradation_minimal, OverheadUs: 80,
		Attempts: attempts("gpt-5", messages.ErrorClass_server_error, "claude-4-sonnet", messages.ErrorClass_ok),
	})
	m := NewMetrics("n1")
	srv := metricsHandler(t, f, m)

	rec := post(srv, simple, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	f.script = emits(
		piece("gpt-5", "Hel"),
		final(&messages.InferResponse{ServedBy: "gpt-5",
			Attempts: attempts("gpt-5", messages.ErrorClass_ok)}),
	)
	rec = post(srv, streamed, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	f.script = emits(
		piece("gpt-5", "Hel"),
		final(&messages.InferResponse{ServedBy: "gpt-5", Error: &messages.Error{Class: messages.ErrorClass_stream_cut},
			Attempts: attempts("gpt-5", messages.ErrorClass_stream_cut)}),
	)
	post(srv, streamed, nil)
	rec = post(srv, `{"model":"gpt-5"}`, nil)
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())

	resp, err := srv.Client().Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{
		"error_class=ok,ingress=http,outcome=ok,served_by=claude-4-sonnet":  1,
		"error_class=ok,ingress=http,outcome=ok,served_by=gpt-5":            1,
		"error_class=stream_cut,ingress=http,outcome=error,served_by=gpt-5": 1,
	}, family(fams, "hive_requests_total"))
	assert.Equal(t, map[string]float64{"from=gpt-5,to=claude-4-sonnet": 1}, family(fams, "hive_fallbacks_total"))
	assert.Equal(t, map[string]float64{"ingress=http": 3}, family(fams, "hive_request_duration_seconds"))
	assert.Equal(t, map[string]float64{"": float64(messages.Degradation_minimal)}, family(fams, "hive_degradation_level"))
	assert.Equal(t, map[string]float64{"": 1}, family(fams, "hive_overhead_seconds"), "streams have no overhead to record")
}

// benchResponse is a typical fallback answer: two attempts, a retry.
var benchResponse = &messages.InferResponse{
	ServedBy: "claude-4-sonnet", Degradation: messages.Degradation_minimal, OverheadUs: 42,
	Attempts: []*messages.Attempt{
		attempt("gpt-5", messages.ErrorClass_server_error, 30, true),
		attempt("claude-4-sonnet", messages.ErrorClass_ok, 200, false),
	},
}

func BenchmarkMetricsResponse(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		m := NewMetrics("n1")
		b.ReportAllocs()
		for b.Loop() {
			m.Response("nats", "", benchResponse, 230*time.Millisecond)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		m := NewMetrics("n1")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Response("nats", "", benchResponse, 230*time.Millisecond)
			}
		})
	})
}

// A candidate the router skipped for its limits was not called: it is no
// attempt in the metrics, though the request was served by a fallback.
func TestMetricsSkippedAttempts(t *testing.T) {
	m := NewMetrics("n1")
	m.Response("http", "gpt-5", &messages.InferResponse{
		ServedBy: "claude-4-sonnet",
		Attempts: []*messages.Attempt{
			{Model: "gpt-5", ErrorClass: messages.ErrorClass_context_length, Skipped: messages.Attempt_context_window},
			attempt("claude-4-sonnet", messages.ErrorClass_ok, 10, false),
		},
	}, 20*time.Millisecond)
	fams := scrape(t, m.Handler())
	assert.Equal(t, map[string]float64{"error_class=ok,model=claude-4-sonnet": 1}, family(fams, "hive_attempts_total"))
	assert.Equal(t, map[string]float64{"from=gpt-5,to=claude-4-sonnet": 1}, family(fams, "hive_fallbacks_total"))
}

// TestMetricsContinuations: a stream cut after text went out counts by
// what became of it (an unknown value as _other), and skipped malformed
// events by model.
func TestMetricsContinuations(t *testing.T) {
	m := NewMetrics("n1")
	cut := attempt("gpt-5", messages.ErrorClass_stream_cut, 9, false)
	cont := attempt("claude-4-sonnet", messages.ErrorClass_ok, 20, false)
	cont.Continued = "prefill"
	skipped := attempt("gpt-5", messages.ErrorClass_ok, 5, false)
	skipped.MalformedSkipped = 2
	m.Stream("http", "", &messages.InferResponse{ServedBy: "claude-4-sonnet", Continuation: "complete", Attempts: []*messages.Attempt{cut, cont}}, time.Millisecond)
	m.Stream("nats", "", &messages.InferResponse{ServedBy: "gpt-5", Continuation: "refused_tools",
		Error: &messages.Error{Class: messages.ErrorClass_stream_cut, Code: "stream_incomplete"}, Attempts: []*messages.Attempt{cut}}, time.Millisecond)
	m.Stream("nats", "", &messages.InferResponse{ServedBy: "gpt-5", Continuation: "from-a-newer-build", Attempts: []*messages.Attempt{skipped}}, time.Millisecond)
	m.Stream("nats", "", &messages.InferResponse{ServedBy: "gpt-5", Attempts: []*messages.Attempt{skipped}}, time.Millisecond)

	fams := scrape(t, m.Handler())
	assert.Equal(t, map[string]float64{
		"outcome=complete": 1, "outcome=failed": 0, "outcome=refused_tools": 1, "outcome=limit": 0,
		"outcome=deadline": 0, "outcome=no_candidate": 0, "outcome=_other": 1,
	}, family(fams, "hive_stream_continuations_total"))
	assert.Equal(t, map[string]float64{"model=gpt-5": 4}, family(fams, "hive_stream_malformed_events_total"))
}

func TestAttemptsHeaderMarksContinuation(t *testing.T) {
	cont := attempt("claude-4-sonnet", messages.ErrorClass_ok, 20, false)
	cont.Continued = "instruction"
	got := attemptsValue([]*messages.Attempt{attempt("gpt-5", messages.ErrorClass_stream_stall, 9, false), cont})
	assert.Equal(t, "gpt-5=stream_stall,claude-4-sonnet=ok+instruction", got)
}
