package node

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrape reads a node's /metrics with the Prometheus text parser.
func scrape(t *testing.T, n *Node) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(n.httpURL + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	return fams
}

// counter returns the value of the family's series with exactly labels.
func counter(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, m := range fams[name].GetMetric() {
		got := make(map[string]string)
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if match {
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// TestMetricsOfARealNode: requests over NATS and a breaker that opens show
// up in /metrics, parsed as Prometheus parses it.
func TestMetricsOfARealNode(t *testing.T) {
	n, nc := startTestNodeWith(t, "recovery: {enabled: false}")
	fams := scrape(t, n)
	for _, name := range []string{"hive_breaker_state", "hive_model_health"} {
		got := map[string]float64{}
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "model" {
					got[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
		assert.Equal(t, map[string]float64{"primary": 0, "broken": 0, "backup": 0, "dead": 0}, got,
			"%s of every configured model before any transition (0: closed, unknown)", name)
	}

	for range 4 { // dead opens on its third failure; backup serves all four
		servedBy(t, nc, "dead")
	}
	servedBy(t, nc, "primary")

	fams = scrape(t, n)
	assert.Equal(t, 4.0, counter(fams, "hive_requests_total", map[string]string{"ingress": "nats", "served_by": "backup", "outcome": "ok"}))
	assert.Equal(t, 1.0, counter(fams, "hive_requests_total", map[string]string{"ingress": "nats", "served_by": "primary", "outcome": "ok"}))
	assert.Equal(t, 3.0, counter(fams, "hive_attempts_total", map[string]string{"model": "dead", "error_class": "connection"}))
	assert.Equal(t, 4.0, counter(fams, "hive_fallbacks_total", map[string]string{"from": "dead", "to": "backup"}),
		"every request for dead was served by backup: three failovers, and a fourth that skipped dead, whose breaker was open")
	assert.Equal(t, 1.0, counter(fams, "hive_breaker_transitions_total", map[string]string{"model": "dead", "to": "open"}))
	var open float64 = -1
	for _, m := range fams["hive_breaker_state"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "model" && l.GetValue() == "dead" {
				open = m.GetGauge().GetValue()
			}
		}
	}
	assert.Equal(t, 1.0, open, "hive_breaker_state of dead is 1 (open)")

	// A model forced open is never called: its requests served by its
	// fallback are fallbacks all the same.
	_, err := n.hive.Control("primary", "breaker_open", 0, "test", "") // what `hive-node breaker open` asks
	require.NoError(t, err)
	require.Equal(t, "backup", servedBy(t, nc, "primary"))
	fams = scrape(t, n)
	assert.Equal(t, 1.0, counter(fams, "hive_fallbacks_total", map[string]string{"from": "primary", "to": "backup"}),
		"a request for forced-open primary served by backup")
}
