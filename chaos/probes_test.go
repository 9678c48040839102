package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSustainedMajority(t *testing.T) {
	const T, F = true, false
	tests := []struct {
		name   string
		served []bool
		want   int
		ok     bool
	}{
		{"all served", []bool{T, T, T, T}, 0, true},
		{"served after two misses", []bool{F, F, T, T, T, T}, 2, true}, // from the first served one
		{"a lucky run then misses", []bool{T, T, F, F, F, T, T, T}, 5, true},
		{"half the traffic is not most", []bool{T, F, T, F, T, F, T, F}, 0, false},
		{"the last run must hold", []bool{T, T, T, F, F}, 0, false},
		{"too few requests", []bool{T, T}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sustainedMajority(tt.served, 3)
			assert.Equal(t, tt.ok, ok, "found")
			if tt.ok {
				assert.Equal(t, tt.want, got, "index")
			}
		})
	}
}

// probeSamples gives baseline's fault f1 readings of n1's counters: a at
// begin and end, b unchanged.
func probeSamples(rec *Recording, begin, end int64, restarted bool) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0
	if restarted {
		t1 = t0.Add(time.Minute)
	}
	rec.ProbeSamples = []ProbeSample{
		{Fault: "f1", At: 8 * time.Second, Node: "n1", Started: t0, Probes: map[string]int64{"a": begin, "b": 7}},
		{Fault: "f1", End: true, At: 14 * time.Second, Node: "n1", Started: t1, Probes: map[string]int64{"a": end, "b": 9}},
	}
}

func TestEvaluateRecoveryOnEvidence(t *testing.T) {
	tests := []struct {
		name      string
		objective string
		change    func(*Recording)
		want      float64
		measured  bool
		pass      bool
	}{
		{"most traffic back with the first success", "time_to_most_traffic <= 1s", nil, 0.5, true, true},
		{"most traffic waits for a sustained majority", "time_to_most_traffic <= 1s", func(r *Recording) {
			for s := 14500 * ms; s < 16*time.Second; s += 200 * ms { // every other request served by b: a half share
				at(r, s).ServedBy = "b"
			}
		}, 1.8, true, false}, // from 15.8 s on: a b a, b a a, a a a...
		{"most traffic never back", "time_to_most_traffic <= 1s", func(r *Recording) {
			for s := 14500 * ms; s < 20*time.Second; s += 100 * ms {
				at(r, s).ServedBy = "b"
			}
		}, 0, false, false},
		{"probes during the outage", "probes_during_outage <= 12", func(r *Recording) { probeSamples(r, 3, 15, false) }, 12, true, true},
		{"probes: counters not read", "probes_during_outage <= 12", nil, 0, false, false},
		{"probes: a node restarted", "probes_during_outage <= 12", func(r *Recording) { probeSamples(r, 3, 15, true) }, 0, false, false},
		{"calls during the outage: attempts and probes", "primary_calls_during_outage <= 20", func(r *Recording) { probeSamples(r, 3, 15, false) }, 17, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := baseline()
			if tt.change != nil {
				tt.change(rec)
			}
			o, err := ParseObjective(tt.objective)
			if err != nil {
				t.Fatal(err)
			}
			r := Evaluate([]Objective{o}, rec)[0]
			assert.Equal(t, tt.measured, r.Measured, "measured (note %q)", r.Note)
			assert.Equal(t, tt.pass, r.Pass, "pass (value %v, note %q)", r.Value, r.Note)
			if tt.measured {
				assert.InDelta(t, tt.want, r.Value, 1e-9, "value (note %q)", r.Note)
			}
		})
	}
}
