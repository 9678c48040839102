package resilience

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

const (
	hsUnknown     = messages.HealthStatus_unknown
	hsAvailable   = messages.HealthStatus_available
	hsDegraded    = messages.HealthStatus_degraded
	hsUnavailable = messages.HealthStatus_unavailable
	hsMaintenance = messages.HealthStatus_maintenance
)

var healthTestStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func healthOK(lat time.Duration) Outcome { return Outcome{Latency: lat} }

func healthFail(c messages.ErrorClass) Outcome {
	return Outcome{Class: c, Latency: 50 * time.Millisecond}
}

// healthStep is one input to a Health at a stepped clock.
type healthStep struct {
	after      time.Duration // the clock advances by after before the step
	do         string        // observe, probe, tick, maintenance on, maintenance off
	o          Outcome
	times      int                     // repeats of the step (0 means 1), each 1 ms after the last
	want       []messages.HealthStatus // statuses changed to, over all repeats
	wantReason string                  // substring of the last change's reason
}

func TestHealthTransitions(t *testing.T) {
	ok := healthOK(200 * time.Millisecond)
	slow := healthOK(20 * time.Second)
	srv := healthFail(messages.ErrorClass_server_error)
	tests := []struct {
		name  string
		cfg   HealthConfig
		steps []healthStep
	}{
		{"first success makes it available", HealthConfig{}, []healthStep{
			{do: "observe", o: ok, want: []messages.HealthStatus{hsAvailable}, wantReason: "first evidence"},
			{do: "observe", o: ok, times: 50},
		}},
		{"caller mistakes are not evidence", HealthConfig{}, []healthStep{
			{do: "observe", o: healthFail(messages.ErrorClass_bad_request), times: 10},
			{do: "observe", o: healthFail(messages.ErrorClass_cancelled), times: 10},
			{do: "observe", o: ok, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: healthFail(messages.ErrorClass_context_length), times: 10},
		}},
		{"degraded by latency over 0.8 x timeout, then back", HealthConfig{Timeout: 10 * time.Second}, []healthStep{
			{do: "observe", o: healthOK(time.Second), want: []messages.HealthStatus{hsAvailable}},
			// The average goes 2.9, 4.61, 6.15, 7.53, 8.78 s: over 8 s at the 5th.
			{do: "observe", o: slow, times: 4},
			{do: "observe", o: slow, want: []messages.HealthStatus{hsDegraded}, wantReason: "average latency 8.781s over 8s (0.8 x timeout 10s)"},
			{do: "observe", o: slow, times: 10},
			{do: "observe", o: healthOK(100 * time.Millisecond), times: 20, want: []messages.HealthStatus{hsAvailable}, wantReason: "recovered"},
		}},
		{"degraded by success rate under the floor", HealthConfig{}, []healthStep{
			{do: "observe", o: ok, times: 8, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: srv},
			{do: "observe", o: ok},
			// 2 failures in 11 calls: 0.818 < 0.90.
			{do: "observe", o: srv, want: []messages.HealthStatus{hsDegraded}, wantReason: "success rate 0.818 under 0.9 over 11 calls"},
			{do: "observe", o: ok, times: 8},
			// 18 of 20 is 0.90: not under the floor.
			{do: "observe", o: ok, want: []messages.HealthStatus{hsAvailable}},
		}},
		{"the rate is not judged under MinCalls", HealthConfig{}, []healthStep{
			{do: "observe", o: srv, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: ok},
			{do: "observe", o: srv},
			{do: "observe", o: ok, times: 6},
			// 10th call: 8 of 10.
			{do: "observe", o: ok, want: []messages.HealthStatus{hsDegraded}},
		}},
		{"the full cycle", HealthConfig{Timeout: 10 * time.Second}, []healthStep{
			{do: "observe", o: ok, times: 100, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: slow, times: 10, want: []messages.HealthStatus{hsDegraded}, wantReason: "average latency"},
			{do: "observe", o: srv, times: 2},
			{do: "observe", o: srv, want: []messages.HealthStatus{hsUnavailable}, wantReason: "3 consecutive failures"},
			{do: "observe", o: srv, times: 5},
			// One success ends the run of failures; the average recovers.
			{do: "observe", o: healthOK(10 * time.Millisecond), times: 30, want: []messages.HealthStatus{hsDegraded, hsAvailable}},
		}},
		{"unavailable after 3 consecutive failures, available on the next success", HealthConfig{}, []healthStep{
			{do: "observe", o: ok, times: 100, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: srv, times: 2},
			{do: "observe", o: healthFail(messages.ErrorClass_timeout), want: []messages.HealthStatus{hsUnavailable}, wantReason: "3 consecutive failures"},
			{do: "observe", o: ok, want: []messages.HealthStatus{hsAvailable}, wantReason: "recovered"},
		}},
		{"unavailable rule disabled", HealthConfig{UnavailableAfter: -1, SuccessFloor: -1}, []healthStep{
			{do: "observe", o: ok, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: srv, times: 50},
		}},
		{"maintenance overrides the evidence", HealthConfig{}, []healthStep{
			{do: "observe", o: ok, times: 20, want: []messages.HealthStatus{hsAvailable}},
			{do: "maintenance on", want: []messages.HealthStatus{hsMaintenance}, wantReason: "operator"},
			{do: "maintenance on"},
			{do: "observe", o: srv, times: 5},
			{do: "probe", o: srv, times: 5},
			{do: "observe", o: ok},
			// Out of maintenance, the evidence decides: 5 failures in 26 calls.
			{do: "maintenance off", want: []messages.HealthStatus{hsDegraded}, wantReason: "success rate"},
			{do: "maintenance off"},
		}},
		{"maintenance ends into available", HealthConfig{}, []healthStep{
			{do: "maintenance on", want: []messages.HealthStatus{hsMaintenance}},
			{do: "observe", o: ok},
			{do: "maintenance off", want: []messages.HealthStatus{hsAvailable}, wantReason: "maintenance ended"},
		}},
		{"maintenance ends into unknown without evidence", HealthConfig{}, []healthStep{
			{do: "maintenance on", want: []messages.HealthStatus{hsMaintenance}},
			{do: "maintenance off", want: []messages.HealthStatus{hsUnknown}},
		}},
		{"probe failures count after 3 retries", HealthConfig{}, []healthStep{
			{do: "probe", o: srv, times: 3},
			{do: "probe", o: healthFail(messages.ErrorClass_timeout), want: []messages.HealthStatus{hsUnavailable}, wantReason: "4 probes failed in a row"},
			{do: "probe", o: srv, times: 3},
			{do: "probe", o: healthOK(time.Second), want: []messages.HealthStatus{hsAvailable}, wantReason: "recovered"},
		}},
		{"a probe success between failures restarts the series", HealthConfig{}, []healthStep{
			{do: "observe", o: ok, want: []messages.HealthStatus{hsAvailable}},
			{do: "probe", o: srv, times: 3},
			{do: "probe", o: ok},
			{do: "probe", o: srv, times: 3},
			{do: "observe", o: ok},
			{do: "probe", o: srv, times: 3},
			{do: "probe", o: srv, want: []messages.HealthStatus{hsUnavailable}},
		}},
		{"a cancelled probe is not evidence", HealthConfig{}, []healthStep{
			{do: "probe", o: healthFail(messages.ErrorClass_cancelled), times: 10},
		}},
		{"no probe retries", HealthConfig{ProbeRetries: -1}, []healthStep{
			{do: "probe", o: srv, want: []messages.HealthStatus{hsUnavailable}, wantReason: "1 probes failed"},
		}},
		{"a probe brings back a model unavailable from calls", HealthConfig{}, []healthStep{
			{do: "observe", o: ok, times: 100, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: srv, times: 3, want: []messages.HealthStatus{hsUnavailable}},
			{after: 30 * time.Second, do: "probe", o: healthOK(300 * time.Millisecond), want: []messages.HealthStatus{hsAvailable}},
		}},
		{"old failures leave the window", HealthConfig{Window: time.Minute, MinCalls: 5}, []healthStep{
			{do: "observe", o: ok, times: 8, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: srv, times: 2, want: []messages.HealthStatus{hsDegraded}},
			{after: 20 * time.Second, do: "tick"},
			// The window turns at 30 s: 14 of 16 over both halves.
			{after: 20 * time.Second, do: "observe", o: ok, times: 6},
			// The first half, with both failures, is dropped at 1 min: 6 of 6.
			{after: 20 * time.Second, do: "tick", want: []messages.HealthStatus{hsAvailable}, wantReason: "recovered"},
		}},
		{"a long silence empties the window", HealthConfig{Window: time.Minute, MinCalls: 5}, []healthStep{
			{do: "observe", o: ok, times: 8, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: srv, times: 2, want: []messages.HealthStatus{hsDegraded}},
			{after: time.Hour, do: "tick", want: []messages.HealthStatus{hsAvailable}},
		}},
		{"a clock going backwards changes nothing", HealthConfig{Window: time.Minute, MinCalls: 5}, []healthStep{
			{do: "observe", o: ok, times: 8, want: []messages.HealthStatus{hsAvailable}},
			{do: "observe", o: srv, times: 2, want: []messages.HealthStatus{hsDegraded}},
			{after: -time.Hour, do: "tick"},
			{after: -time.Hour, do: "observe", o: ok},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHealth(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			now := healthTestStart
			for i, st := range tt.steps {
				now = now.Add(st.after)
				var got []HealthChange
				for range max(st.times, 1) {
					now = now.Add(time.Millisecond)
					var ch []HealthChange
					switch st.do {
					case "observe":
						ch = h.Observe(now, st.o)
					case "probe":
						ch = h.Probe(now, st.o)
					case "tick":
						ch = h.Tick(now)
					case "maintenance on":
						ch = h.SetMaintenance(now, true)
					case "maintenance off":
						ch = h.SetMaintenance(now, false)
					default:
						t.Fatalf("step %d: unknown action %q", i, st.do)
					}
					got = append(got, ch...)
				}
				var gotTo []messages.HealthStatus
				for _, c := range got {
					gotTo = append(gotTo, c.To)
				}
				if !slices.Equal(gotTo, st.want) {
					t.Fatalf("step %d (%s x%d): changes to %v, want %v; snapshot %+v", i, st.do, max(st.times, 1), gotTo, st.want, h.Snapshot())
				}
				for j, c := range got {
					wantFrom := h.Status()
					if j+1 < len(got) {
						wantFrom = got[j+1].From
					}
					if c.To != wantFrom {
						t.Errorf("step %d: change %v -> %v is not followed by a change from %v", i, c.From, c.To, c.To)
					}
					if c.From == c.To {
						t.Errorf("step %d: change from %v to itself", i, c.From)
					}
					if c.Evidence.Status != c.To {
						t.Errorf("step %d: evidence status %v, want %v", i, c.Evidence.Status, c.To)
					}
				}
				if len(got) > 0 && !strings.Contains(got[len(got)-1].Reason, st.wantReason) {
					t.Errorf("step %d: reason %q, want it to contain %q", i, got[len(got)-1].Reason, st.wantReason)
				}
			}
		})
	}
}

// Each change is reported once, and the reported changes chain: the owner,
// publishing them in order, ends at the status Health holds.
func TestHealthChangesChain(t *testing.T) {
	h, err := NewHealth(HealthConfig{Timeout: 2 * time.Second, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := healthTestStart
	published := hsUnknown
	script := []Outcome{
		healthOK(100 * time.Millisecond), healthOK(3 * time.Second), healthFail(messages.ErrorClass_timeout),
		healthFail(messages.ErrorClass_connection), healthOK(10 * time.Millisecond), healthFail(messages.ErrorClass_bad_request),
		healthFail(messages.ErrorClass_server_error), healthFail(messages.ErrorClass_server_error),
	}
	changes := 0
	for i := range 5000 {
		now = now.Add(time.Duration(i%7) * 50 * time.Millisecond)
		var ch []HealthChange
		switch {
		case i%500 == 499:
			ch = h.SetMaintenance(now, (i/500)%2 == 0)
		case i%37 == 0:
			ch = h.Probe(now, script[i%len(script)])
		default:
			ch = h.Observe(now, script[(i*i)%len(script)])
		}
		for _, c := range ch {
			if c.From != published {
				t.Fatalf("call %d: change from %v, but %v was published last", i, c.From, published)
			}
			published = c.To
			changes++
		}
		if published != h.Status() {
			t.Fatalf("call %d: published %v, Status() %v", i, published, h.Status())
		}
	}
	if changes < 10 {
		t.Fatalf("only %d changes in the script, want a livelier one", changes)
	}
}

func TestHealthScore(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []Outcome
		times    int
		want     float64
	}{
		{"no evidence", nil, 0, 0.5},
		// 0.9 x 0.5 + 0.1 x (0.7 + 0.3 x 0.9)
		{"one success in 1s", []Outcome{healthOK(time.Second)}, 1, 0.547},
		// 0.9 x 0.547
		{"then a failure", []Outcome{healthOK(time.Second), healthFail(messages.ErrorClass_timeout)}, 1, 0.4923},
		// 0.9 x 0.5 + 0.1 x 0.7: the latency part is 0 at 10s and over
		{"one success in 12s", []Outcome{healthOK(12 * time.Second)}, 1, 0.52},
		// 0.9 x 0.5 + 0.1 x (0.7 + 0.3 x 0.5)
		{"one success in 5s", []Outcome{healthOK(5 * time.Second)}, 1, 0.535},
		{"instant successes converge to 1", []Outcome{healthOK(0)}, 300, 1},
		{"slow successes converge to 0.7", []Outcome{healthOK(10 * time.Second)}, 300, 0.7},
		{"failures converge to 0", []Outcome{healthFail(messages.ErrorClass_server_error)}, 300, 0},
		// Alternating success in 2s (0.94) and failure (0): the average swings
		// between s and 0.9 x s + 0.094, ending low at s = 0.0846 / 0.19.
		{"alternating success in 2s and failure", []Outcome{healthOK(2 * time.Second), healthFail(messages.ErrorClass_server_error)}, 300, 0.0846 / 0.19},
		{"caller mistakes leave it alone", []Outcome{healthFail(messages.ErrorClass_bad_request)}, 50, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHealth(HealthConfig{})
			if err != nil {
				t.Fatal(err)
			}
			now := healthTestStart
			for range tt.times {
				for _, o := range tt.outcomes {
					now = now.Add(time.Millisecond)
					h.Observe(now, o)
				}
			}
			if got := h.Score(); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Score() = %.6f, want %.6f", got, tt.want)
			}
		})
	}
}

func TestHealthSnapshot(t *testing.T) {
	h, err := NewHealth(HealthConfig{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := healthTestStart
	// 100 successes of 1..100 ms, 2 of them over 8 s, and 5 failures.
	for i := 1; i <= 98; i++ {
		now = now.Add(time.Millisecond)
		h.Observe(now, healthOK(time.Duration(i)*time.Millisecond))
	}
	h.Observe(now, healthOK(9*time.Second))
	h.Observe(now, healthOK(9*time.Second))
	for range 5 {
		h.Observe(now, healthFail(messages.ErrorClass_server_error))
	}
	h.Probe(now, healthFail(messages.ErrorClass_timeout))
	s := h.Snapshot()
	checks := []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"Calls", float64(s.Calls), 105, 0},
		{"Failures", float64(s.Failures), 5, 0},
		{"Consecutive", float64(s.Consecutive), 5, 0},
		{"ProbeFailures", float64(s.ProbeFailures), 1, 0},
		{"SuccessRate", s.SuccessRate, 100.0 / 105, 1e-12},
		{"SlowRate", s.SlowRate, 2.0 / 105, 1e-12},
		{"P50 (ms)", s.P50.Seconds() * 1000, 50, 50 * histMaxRelErr},
		{"P95 (ms)", s.P95.Seconds() * 1000, 95, 95 * histMaxRelErr},
		{"P99 (ms)", s.P99.Seconds() * 1000, 9000, 9000 * histMaxRelErr},
		{"Score", s.Score, h.Score(), 0},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > c.tol {
			t.Errorf("Snapshot().%s = %v, want %v (within %v)", c.name, c.got, c.want, c.tol)
		}
	}
	if s.Status != hsUnavailable || s.Status != h.Status() {
		t.Errorf("Snapshot().Status = %v, want %v (Status() %v)", s.Status, hsUnavailable, h.Status())
	}
	if s.LatencyAvg <= 0 || s.LatencyAvg >= 9*time.Second {
		t.Errorf("Snapshot().LatencyAvg = %v, want a moving average between 0 and 9s", s.LatencyAvg)
	}

	e := s.Evidence()
	if e.Calls != 105 || e.Failures != 5 || e.ConsecutiveFailures != 5 || e.SuccessRate != s.SuccessRate ||
		e.SlowRate != s.SlowRate || e.LatencyP99Ms != float64(s.P99)/1e6 || e.LatencyAvgMs != float64(s.LatencyAvg)/1e6 {
		t.Errorf("Evidence() = %v, want the snapshot %+v in wire form", e, s)
	}
}

func TestHealthEmptySnapshot(t *testing.T) {
	h, err := NewHealth(HealthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Snapshot(), (HealthSnapshot{Score: 0.5}); got != want {
		t.Errorf("Snapshot() of a new Health = %+v, want %+v", got, want)
	}
	if h.Status() != hsUnknown {
		t.Errorf("Status() of a new Health = %v, want unknown", h.Status())
	}
}

func TestHealthConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     HealthConfig
		wantErr string
	}{
		{"zero value", HealthConfig{}, ""},
		{"rules disabled", HealthConfig{DegradedRatio: -1, SuccessFloor: -1, UnavailableAfter: -1, ProbeRetries: -1}, ""},
		{"negative timeout", HealthConfig{Timeout: -time.Second}, "Timeout"},
		{"ratio over 1", HealthConfig{DegradedRatio: 1.2}, "DegradedRatio"},
		{"NaN ratio", HealthConfig{DegradedRatio: math.NaN()}, "DegradedRatio"},
		{"floor over 1", HealthConfig{SuccessFloor: 1.01}, "SuccessFloor"},
		{"negative MinCalls", HealthConfig{MinCalls: -1}, "MinCalls"},
		{"negative window", HealthConfig{Window: -time.Minute}, "Window"},
		{"window too short to halve", HealthConfig{Window: 1}, "Window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHealth(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewHealth() error = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrHealthConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewHealth() error = %v, want ErrHealthConfig naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestHealthObserveDoesNotAllocate(t *testing.T) {
	h, err := NewHealth(HealthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	now := healthTestStart
	h.Observe(now, healthOK(time.Millisecond))
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		h.Observe(now, healthOK(time.Millisecond))
	})
	if allocs != 0 {
		t.Errorf("Observe without a status change allocates %v times, want 0", allocs)
	}
}

func BenchmarkHealthObserve(b *testing.B) {
	h, err := NewHealth(HealthConfig{})
	if err != nil {
		b.Fatal(err)
	}
	// Mostly fast successes and a few failures, 1 ms apart: the window turns
	// over every 2.5 min of clock.
	var outcomes [64]Outcome
	for i := range outcomes {
		outcomes[i] = healthOK(time.Duration(50+i*13) * time.Millisecond)
		if i%21 == 0 {
			outcomes[i] = healthFail(messages.ErrorClass_server_error)
		}
	}
	now := healthTestStart
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now = now.Add(time.Millisecond)
		h.Observe(now, outcomes[i&63])
		i++
	}
}

func BenchmarkHealthSnapshot(b *testing.B) {
	h, err := NewHealth(HealthConfig{})
	if err != nil {
		b.Fatal(err)
	}
	now := healthTestStart
	for i := range 10_000 {
		now = now.Add(time.Millisecond)
		h.Observe(now, healthOK(time.Duration(i%2000)*time.Millisecond))
	}
	b.ReportAllocs()
	for b.Loop() {
		h.Snapshot()
	}
}

func ExampleHealth() {
	h, _ := NewHealth(HealthConfig{})
	now := healthTestStart
	for i := range 5 {
		now = now.Add(time.Second)
		o := healthOK(300 * time.Millisecond)
		if i >= 2 {
			o = healthFail(messages.ErrorClass_timeout)
		}
		for _, c := range h.Observe(now, o) {
			fmt.Printf("%v -> %v: %s\n", c.From, c.To, c.Reason)
		}
	}
	// Output:
	// unknown -> available: first evidence
	// available -> unavailable: 3 consecutive failures
}
