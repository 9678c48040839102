package chaos

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ms = time.Millisecond

// baseline is a 20 s run with a 2 s warmup: a request for model a every
// 100 ms, answered in 20 ms by a, except during fault f1 on a (8 s to
// 14 s), when b answers after a failed attempt on a for the first 5 of
// them and without touching a afterwards (its breaker opened at 8.25 s and
// closed at 15 s). The first request after the fault that a serves starts
// at 14.5 s.
func baseline() *Recording {
	rec := &Recording{Duration: 20 * time.Second, Warmup: 2 * time.Second, Elapsed: 20 * time.Second}
	for i := range 200 {
		start := time.Duration(i) * 100 * ms
		r := Request{ID: "r", Model: "a", Start: start, End: start + 20*ms, Outcome: OK, ServedBy: "a", Node: "n1",
			Attempts: []Attempt{{Model: "a", Node: "n1", Class: "ok"}}, Warmup: start < 2*time.Second}
		switch {
		case start >= 8*time.Second && start < 8500*ms:
			r.ServedBy = "b"
			r.Attempts = []Attempt{{Model: "a", Node: "n1", Class: "server_error"}, {Model: "b", Node: "n1", Class: "ok"}}
		case start >= 8500*ms && start < 14500*ms:
			r.ServedBy = "b"
			r.Attempts = []Attempt{{Model: "b", Node: "n1", Class: "ok"}}
		}
		rec.Requests = append(rec.Requests, r)
	}
	rec.Disruptions = []Disruption{{ID: "f1", Kind: "error", Node: "all", Model: "a", Start: 8 * time.Second, End: 14 * time.Second, Ended: true}}
	rec.Events = []Event{
		{At: 8250 * ms, Kind: "breaker", Node: "n1", Model: "a", From: "closed", To: "open"},
		{At: 9250 * ms, Kind: "breaker", Node: "n1", Model: "a", From: "open", To: "half_open"},
		{At: 9260 * ms, Kind: "breaker", Node: "n1", Model: "a", From: "half_open", To: "open"},
		{At: 14900 * ms, Kind: "breaker", Node: "n1", Model: "a", From: "open", To: "half_open"},
		{At: 15 * time.Second, Kind: "breaker", Node: "n1", Model: "a", From: "half_open", To: "closed"},
		{At: 10 * time.Second, Kind: "recovery", Node: "n1", Model: "a", Detail: "restart"},
	}
	return rec
}

// at returns the scored request started at t.
func at(rec *Recording, t time.Duration) *Request {
	for i := range rec.Requests {
		if rec.Requests[i].Start == t {
			return &rec.Requests[i]
		}
	}
	panic("no request at " + t.String())
}

func TestEvaluate(t *testing.T) {
	fail := func(r *Request, class string) {
		r.Outcome, r.ErrorClass, r.ServedBy = Failed, class, ""
	}
	tests := []struct {
		name      string
		objective string
		change    func(*Recording)
		want      float64 // the measured value, in the metric's unit
		measured  bool
		pass      bool
	}{
		{"success rate, all ok", "success_rate >= 0.99", nil, 1, true, true},
		{"success rate, errors", "success_rate >= 0.99", func(r *Recording) {
			for i := range 3 {
				fail(at(r, time.Duration(30+i)*100*ms), "server_error")
			}
		}, 177.0 / 180, true, false},
		{"warmup errors are not scored", "success_rate == 1", func(r *Recording) {
			fail(at(r, 500*ms), "server_error")
		}, 1, true, true},
		{"lost and truncated count as failures", "success_rate >= 0.99", func(r *Recording) {
			at(r, 3*time.Second).Outcome = Lost
			at(r, 4*time.Second).Outcome = Truncated
		}, 178.0 / 180, true, false},
		{"abandoned requests are not scored", "requests == 179", func(r *Recording) {
			at(r, 19900*ms).Outcome = Abandoned
		}, 179, true, true},
		{"error rate during fault", "error_rate_during_fault <= 0.01", func(r *Recording) {
			fail(at(r, 9*time.Second), "all_failed")
		}, 1.0 / 60, true, false},
		{"success rate steady", "success_rate_steady >= 1", nil, 1, true, true},
		{"success rate after fault", "success_rate_after_fault >= 0.9", func(r *Recording) {
			for i := range 6 {
				fail(at(r, time.Duration(150+i)*100*ms), "timeout")
			}
		}, 54.0 / 60, true, true},
		{"p50 latency", "p50_latency <= 25ms", nil, 0.020, true, true},
		{"p99 latency only counts successes", "p99_latency <= 25ms", func(r *Recording) {
			a := at(r, 5*time.Second)
			a.End = a.Start + 3*time.Second // a slow failure
			fail(a, "timeout")
		}, 0.020, true, true},
		{"p99 latency during fault", "p99_latency_during_fault <= 100ms", func(r *Recording) {
			for i := range 3 {
				a := at(r, time.Duration(90+i)*100*ms)
				a.End = a.Start + 400*ms
			}
		}, 0.4, true, false},
		{"throughput ratio", "throughput_ratio >= 0.9", func(r *Recording) {
			for i := 80; i < 140; i += 2 {
				fail(at(r, time.Duration(i)*100*ms), "all_failed")
			}
		}, 0.5, true, false},
		{"throughput", "throughput_steady >= 9.9", nil, 10, true, true},
		{"latency ratio", "latency_ratio <= 1.1", func(r *Recording) {
			for i := 80; i < 140; i++ {
				a := at(r, time.Duration(i)*100*ms)
				a.End = a.Start + 30*ms
			}
		}, 1.5, true, false},
		{"failover time", "failover_time <= 200ms", nil, 0.020, true, true},
		{"failover time: the first requests failed", "failover_time <= 200ms", func(r *Recording) {
			for i := 80; i < 83; i++ {
				fail(at(r, time.Duration(i)*100*ms), "all_failed")
			}
		}, 0.320, true, false},
		{"failover never happened", "failover_time <= 1s", func(r *Recording) {
			for i := 80; i < 145; i++ {
				fail(at(r, time.Duration(i)*100*ms), "all_failed")
			}
		}, 0, false, false},
		{"detection time", "detection_time <= 500ms", nil, 0.25, true, true},
		{"breaker never opened", "detection_time <= 500ms", func(r *Recording) { r.Events = nil }, 0, false, false},
		{"recovery time waits for the breaker to close", "recovery_time <= 500ms", nil, 1, true, false},
		{"recovery time, breaker closed first", "recovery_time <= 1s", func(r *Recording) {
			r.Events = r.Events[:3]
			r.Events = append(r.Events, Event{At: 14100 * ms, Kind: "breaker", Node: "n1", Model: "a", From: "open", To: "closed"})
		}, 0.520, true, true},
		{"not recovered before the end", "recovery_time <= 5s", func(r *Recording) {
			r.Events = r.Events[:3] // the breaker stays open
		}, 0, false, false},
		{"a fault continued by another is measured from the last", "recovery_time <= 2s", func(r *Recording) {
			r.Disruptions[0].End = 11 * time.Second
			r.Disruptions = append(r.Disruptions, Disruption{ID: "f2", Kind: "latency", Node: "all", Model: "a", Start: 11*time.Second + 100*ms, End: 14 * time.Second, Ended: true})
		}, 1, true, true},
		{"no disruption ended during the load", "recovery_time <= 5s", func(r *Recording) {
			r.Disruptions[0].End, r.Disruptions[0].Ended = r.Duration, false
		}, 0, false, false},
		{"node recovery: first success on the node", "recovery_time <= 2s", func(r *Recording) {
			r.Disruptions = []Disruption{{ID: "kill-n2", Kind: "kill", Node: "n2", Start: 8 * time.Second, End: 12 * time.Second, Ended: true}}
			at(r, 13*time.Second).Node = "n2"
		}, 1.020, true, true},
		{"primary attempts during the outage", "primary_attempts_during_outage <= 3", nil, 5, true, false},
		{"primary attempts outside the outage do not count", "primary_attempts_during_outage <= 5", nil, 5, true, true},
		{"breaker refusals are not attempts on the model", "primary_attempts_during_outage <= 5", func(r *Recording) {
			a := at(r, 9*time.Second)
			a.Attempts = append(a.Attempts, Attempt{Model: "a", Class: "circuit_open"})
		}, 5, true, true},
		{"truncated successes", "truncated_successes == 0", func(r *Recording) {
			at(r, 9*time.Second).Outcome = Truncated
		}, 1, true, false},
		{"streams", "streams == 2", func(r *Recording) {
			at(r, 9*time.Second).Streamed = true
			at(r, 10*time.Second).Streamed = true
		}, 2, true, true},
		{"incomplete streams", "incomplete_streams == 0", func(r *Recording) {
			a := at(r, 9*time.Second)
			a.Streamed, a.Outcome, a.ErrorClass, a.ErrorCode = true, Failed, "stream_cut", "stream_incomplete"
			b := at(r, 10*time.Second) // failed before any text: a plain error, not incomplete
			b.Streamed, b.Outcome, b.ErrorClass = true, Failed, "server_error"
		}, 1, true, false},
		{"continued streams", "continued_streams >= 1", func(r *Recording) {
			a := at(r, 9*time.Second)
			a.Streamed, a.Continuation = true, "complete"
			b := at(r, 10*time.Second) // cut, not rescued
			b.Streamed, b.Continuation = true, "refused_tools"
		}, 1, true, true},
		{"lost requests", "lost_requests == 0", func(r *Recording) {
			a := at(r, 9*time.Second)
			a.Outcome, a.End = Lost, a.Start+6*time.Second
		}, 1, true, false},
		{"lost in flight at a kill are excused", "lost_outside_node_faults == 0", func(r *Recording) {
			r.Disruptions = append(r.Disruptions, Disruption{ID: "kill-n2", Kind: "kill", Node: "n2", Start: 10*time.Second + 10*ms, End: 12 * time.Second, Ended: true})
			a := at(r, 10*time.Second)
			a.Outcome, a.End = Lost, a.Start+6*time.Second
		}, 0, true, true},
		{"lost after a kill are not", "lost_outside_node_faults == 0", func(r *Recording) {
			r.Disruptions = append(r.Disruptions, Disruption{ID: "kill-n2", Kind: "kill", Node: "n2", Start: 10 * time.Second, End: 12 * time.Second, Ended: true})
			a := at(r, 10100*ms)
			a.Outcome, a.End = Lost, a.Start+6*time.Second
		}, 1, true, false},
		{"restarts", "restarts >= 1", nil, 1, true, true},
		{"breaker opens", "breaker_opens >= 2", nil, 2, true, true},
		{"no adopted opens", "adopted_opens == 0", nil, 0, true, true},
		{"model attempts on any node, from the sending", "model_attempts_during_outage <= 5", func(r *Recording) {
			r.Disruptions[0].Node, r.Disruptions[0].Sent = "n2", 7900*ms
		}, 6, true, false},
		{"primary attempts only on the disrupted node", "primary_attempts_during_outage <= 5", func(r *Recording) {
			r.Disruptions[0].Node = "n2"
		}, 0, true, true},
		{"fallback rate during the fault", "fallback_rate_during_fault >= 1", nil, 1, true, true},
		{"fallback rate in steady state", "fallback_rate_steady <= 0", nil, 0, true, true},
		{"fallback rate of failures only", "fallback_rate_during_fault >= 1", func(r *Recording) {
			for i := range r.Requests {
				if r.Requests[i].Start >= 8*time.Second && r.Requests[i].Start < 14*time.Second {
					r.Requests[i].Outcome = Failed
				}
			}
		}, 0, false, false},
		{"adopted opens", "adopted_opens == 0", func(r *Recording) {
			r.Events = append(r.Events,
				Event{At: 8251 * ms, Kind: "breaker", Node: "n2", Model: "a", From: "closed", To: "open", Detail: "peer"},
				Event{At: 8252 * ms, Kind: "breaker", Node: "n3", Model: "a", From: "closed", To: "open", Detail: "consecutive"})
		}, 1, true, false},
		{"half opens on every node", "half_opens <= 2", func(r *Recording) {
			r.Events = append(r.Events, Event{At: 9251 * ms, Kind: "breaker", Node: "n2", Model: "a", From: "open", To: "half_open"})
		}, 3, true, false},
		{"no requests at all", "success_rate >= 0.99", func(r *Recording) { r.Requests = nil }, 0, false, false},
		{"no requests: counts are zero", "lost_requests == 0", func(r *Recording) { r.Requests = nil }, 0, true, true},
		{"no steady state", "throughput_ratio >= 0.9", func(r *Recording) {
			r.Disruptions[0].Start = r.Warmup
		}, 0, false, false},
		{"no disruption: nothing during a fault", "error_rate_during_fault <= 0.01", func(r *Recording) {
			r.Disruptions = nil
		}, 0, false, false},
		{"no disruption: everything is steady", "success_rate_steady >= 1", func(r *Recording) {
			r.Disruptions = nil
		}, 1, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := baseline()
			if tt.change != nil {
				tt.change(rec)
			}
			o, err := ParseObjective(tt.objective)
			require.NoError(t, err)
			res := Evaluate([]Objective{o}, rec)
			require.Len(t, res, 1)
			got := res[0]
			assert.Equal(t, tt.measured, got.Measured, "measured (note %q)", got.Note)
			if tt.measured {
				assert.InDelta(t, tt.want, got.Value, 1e-6, "value (note %q)", got.Note)
			} else {
				assert.NotEmpty(t, got.Note, "an unmeasured objective says why")
			}
			assert.Equal(t, tt.pass, got.Pass, "pass: measured %s against %s", got.MeasuredString(), o.TargetString())
		})
	}
}

func TestParseObjective(t *testing.T) {
	tests := []struct {
		in      string
		metric  string
		op      string
		target  float64
		wantErr string
	}{
		{in: "success_rate >= 0.99", metric: "success_rate", op: ">=", target: 0.99},
		{in: "success_rate>=99.5%", metric: "success_rate", op: ">=", target: 0.995},
		{in: "recovery_time <= 5s", metric: "recovery_time", op: "<=", target: 5},
		{in: "p99_latency_during_fault < 250", metric: "p99_latency_during_fault", op: "<", target: 0.25},
		{in: "lost_requests == 0", metric: "lost_requests", op: "==", target: 0},
		{in: "throughput_ratio >= 90%", metric: "throughput_ratio", op: ">=", target: 0.9},
		{in: "latency_ratio <= 1.1", metric: "latency_ratio", op: "<=", target: 1.1},
		{in: "succes_rate >= 0.9", wantErr: `unknown metric "succes_rate" (did you mean "success_rate"?)`},
		{in: "success_rate => 0.9", wantErr: `"success_rate => 0.9" is not "<metric> <op> <target>" (such as "success_rate >= 0.99"; op is <=, >=, <, > or ==)`},
		{in: "success_rate >= 1.5", wantErr: `success_rate: "1.5" is a share: 0 to 1, or 0% to 100%`},
		{in: "recovery_time <= soon", wantErr: `recovery_time: "soon" is not a duration (use "30s", "250ms" or milliseconds)`},
		{in: "lost_requests <= 1.5", wantErr: `lost_requests: "1.5" is not a whole number >= 0`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			o, err := ParseObjective(tt.in)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.metric, o.Metric)
			assert.Equal(t, tt.op, o.Op)
			assert.InDelta(t, tt.target, o.Target, 1e-12)
		})
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	assert.Equal(t, time.Duration(5), percentile(ds, 0.5))
	assert.Equal(t, time.Duration(10), percentile(ds, 0.99))
	assert.Equal(t, time.Duration(0), percentile(nil, 0.5))
	assert.False(t, math.IsNaN(float64(percentile([]time.Duration{3}, 0.99))))
}

func TestSeries(t *testing.T) {
	rec := baseline()
	s := rec.Series()
	require.Len(t, s, 20)
	assert.True(t, s[1].Warmup)
	assert.False(t, s[2].Warmup)
	assert.Equal(t, 10, s[9].Requests)
	assert.Equal(t, map[string]int{"b": 10}, s[9].ServedBy)
	assert.Equal(t, []string{"f1"}, s[9].Disruptions)
	require.NotNil(t, s[9].SuccessRate)
	assert.InDelta(t, 1, *s[9].SuccessRate, 1e-9)
	require.NotNil(t, s[9].P99Ms)
	assert.InDelta(t, 20, *s[9].P99Ms, 1e-9)
}
