package resilience

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

const (
	degNone     = messages.Degradation_none
	degMinimal  = messages.Degradation_minimal
	degModerate = messages.Degradation_moderate
	degSevere   = messages.Degradation_severe
	degCritical = messages.Degradation_critical
)

// degradationUnder is the largest float64 below f.
func degradationUnder(f float64) float64 { return math.Nextafter(f, 0) }

func TestDegradationLevel(t *testing.T) {
	const healthy = 1.0
	tests := []struct {
		name string
		cfg  DegradationConfig
		rt   time.Duration
		rate float64
		want messages.Degradation
	}{
		{"fast and healthy", DegradationConfig{}, time.Second, healthy, degNone},
		{"no evidence (NaN)", DegradationConfig{}, 0, math.NaN(), degNone},

		// Response time: a threshold is crossed when exceeded.
		{"5 s exactly", DegradationConfig{}, 5 * time.Second, healthy, degNone},
		{"5 s + 1 ns", DegradationConfig{}, 5*time.Second + 1, healthy, degMinimal},
		{"8 s exactly", DegradationConfig{}, 8 * time.Second, healthy, degMinimal},
		{"8 s + 1 ns", DegradationConfig{}, 8*time.Second + 1, healthy, degModerate},
		{"15 s exactly", DegradationConfig{}, 15 * time.Second, healthy, degModerate},
		{"15 s + 1 ns", DegradationConfig{}, 15*time.Second + 1, healthy, degSevere},
		{"30 s exactly", DegradationConfig{}, 30 * time.Second, healthy, degSevere},
		{"30 s + 1 ns", DegradationConfig{}, 30*time.Second + 1, healthy, degCritical},

		// Success rate: a floor is crossed when undercut.
		{"0.95 exactly", DegradationConfig{}, 0, 0.95, degNone},
		{"just under 0.95", DegradationConfig{}, 0, degradationUnder(0.95), degMinimal},
		{"0.90 exactly", DegradationConfig{}, 0, 0.90, degMinimal},
		{"just under 0.90", DegradationConfig{}, 0, degradationUnder(0.90), degModerate},
		{"0.80 exactly", DegradationConfig{}, 0, 0.80, degModerate},
		{"just under 0.80", DegradationConfig{}, 0, degradationUnder(0.80), degSevere},
		{"0.60 exactly", DegradationConfig{}, 0, 0.60, degSevere},
		{"just under 0.60", DegradationConfig{}, 0, degradationUnder(0.60), degCritical},
		{"nothing succeeds", DegradationConfig{}, 0, 0, degCritical},
		{"a rate from counts: 19/20", DegradationConfig{}, 0, 19.0 / 20, degNone},
		{"a rate from counts: 9/10", DegradationConfig{}, 0, 9.0 / 10, degMinimal},

		// The most severe level wins.
		{"9 s with 0.97 is moderate", DegradationConfig{}, 9 * time.Second, 0.97, degModerate},
		{"2 s with 0.7 is severe", DegradationConfig{}, 2 * time.Second, 0.7, degSevere},
		{"16 s with 0.85 is severe", DegradationConfig{}, 16 * time.Second, 0.85, degSevere},
		{"6 s with 0.5 is critical", DegradationConfig{}, 6 * time.Second, 0.5, degCritical},
		{"31 s with 0.99 is critical", DegradationConfig{}, 31 * time.Second, 0.99, degCritical},

		// Configured thresholds.
		{
			"custom: 1.5 s past the 1 s moderate threshold",
			DegradationConfig{
				ResponseTime: [4]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second},
				SuccessRate:  [4]float64{0.999, 0.99, 0.9, 0.5},
			},
			1500 * time.Millisecond, 0.9995, degModerate,
		},
		{
			"custom rates with default times",
			DegradationConfig{SuccessRate: [4]float64{0.999, 0.99, 0.9, 0.5}},
			6 * time.Second, 0.85, degSevere,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Level(tt.rt, tt.rate); got != tt.want {
				t.Errorf("Level(%v, %v) = %v, want %v", tt.rt, tt.rate, got, tt.want)
			}
		})
	}
}

func TestDegradationAdmit(t *testing.T) {
	const (
		normal   = messages.InferRequest_normal
		high     = messages.InferRequest_high
		critical = messages.InferRequest_critical
	)
	on := DegradationConfig{CriticalOnly: true}
	fromSevere := DegradationConfig{CriticalOnly: true, CriticalOnlyFrom: degSevere}
	tests := []struct {
		name  string
		cfg   DegradationConfig
		level messages.Degradation
		p     messages.InferRequest_Priority
		want  bool
	}{
		{"off: normal at critical", DegradationConfig{}, degCritical, normal, true},
		{"on: normal at none", on, degNone, normal, true},
		{"on: normal at minimal", on, degMinimal, normal, false},
		{"on: high at minimal", on, degMinimal, high, false},
		{"on: critical at minimal", on, degMinimal, critical, true},
		{"on: critical at critical", on, degCritical, critical, true},
		{"from severe: normal at moderate", fromSevere, degModerate, normal, true},
		{"from severe: high at severe", fromSevere, degSevere, high, false},
		{"from severe: critical at severe", fromSevere, degSevere, critical, true},
		{"from severe: normal at critical", fromSevere, degCritical, normal, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Admit(tt.level, tt.p); got != tt.want {
				t.Errorf("Admit(%v, %v) = %v, want %v", tt.level, tt.p, got, tt.want)
			}
		})
	}
}

func TestDegradationConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     DegradationConfig
		wantErr string // "" for valid
	}{
		{"zero value", DegradationConfig{}, ""},
		{"custom", DegradationConfig{
			ResponseTime: [4]time.Duration{1, 2, 3, 4}, SuccessRate: [4]float64{1, 0.5, 0.25, 0},
			CriticalOnly: true, CriticalOnlyFrom: degCritical, LowerAfter: -1,
		}, ""},
		{"partly set times", DegradationConfig{ResponseTime: [4]time.Duration{3 * time.Second}}, "ResponseTime[1] = 0s, want > 0"},
		{"times not increasing", DegradationConfig{ResponseTime: [4]time.Duration{1, 2, 2, 4}}, "ResponseTime[2] = 2ns after 2ns, want strictly increasing"},
		{"negative time", DegradationConfig{ResponseTime: [4]time.Duration{-1, 2, 3, 4}}, "ResponseTime[0] = -1ns"},
		{"rates increasing", DegradationConfig{SuccessRate: [4]float64{0.9, 0.95, 0.8, 0.6}}, "SuccessRate[1] = 0.95 after 0.9, want strictly decreasing"},
		{"rate above 1", DegradationConfig{SuccessRate: [4]float64{1.5, 0.9, 0.8, 0.6}}, "SuccessRate[0] = 1.5, want 0..1"},
		{"negative rate", DegradationConfig{SuccessRate: [4]float64{0.9, 0.8, 0.6, -0.1}}, "SuccessRate[3] = -0.1"},
		{"NaN rate", DegradationConfig{SuccessRate: [4]float64{0.9, math.NaN(), 0.6, 0.5}}, "SuccessRate[1] = NaN"},
		{"unknown level", DegradationConfig{CriticalOnlyFrom: 7}, "CriticalOnlyFrom 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrDegradationConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want ErrDegradationConfig naming %q", err, tt.wantErr)
			}
			if _, nerr := NewDegradationTracker(tt.cfg); nerr == nil {
				t.Errorf("NewDegradationTracker accepted an invalid config")
			}
		})
	}
}

func TestDegradationTracker(t *testing.T) {
	type reading struct {
		at    time.Duration
		level messages.Degradation
	}
	type change struct {
		at       time.Duration
		from, to messages.Degradation
	}
	s := time.Second
	tests := []struct {
		name       string
		lowerAfter time.Duration
		readings   []reading
		want       []change
	}{
		{
			name:     "raising is immediate, once",
			readings: []reading{{0, degNone}, {s, degModerate}, {2 * s, degModerate}, {3 * s, degCritical}},
			want:     []change{{s, degNone, degModerate}, {3 * s, degModerate, degCritical}},
		},
		{
			name:     "lowering waits for 30 s of calm",
			readings: []reading{{0, degSevere}, {s, degNone}, {30 * s, degNone}, {31 * s, degNone}, {40 * s, degNone}},
			want:     []change{{0, degNone, degSevere}, {31 * s, degSevere, degNone}},
		},
		{
			name: "flapping does not lower",
			readings: []reading{
				{0, degSevere}, {10 * s, degNone}, {20 * s, degSevere}, {30 * s, degNone},
				{40 * s, degSevere}, {50 * s, degNone}, {60 * s, degSevere}, {70 * s, degNone},
			},
			want: []change{{0, degNone, degSevere}},
		},
		{
			name:     "a return to the current level restarts the calm",
			readings: []reading{{0, degModerate}, {s, degNone}, {20 * s, degModerate}, {21 * s, degNone}, {50 * s, degNone}, {51 * s, degNone}},
			want:     []change{{0, degNone, degModerate}, {51 * s, degModerate, degNone}},
		},
		{
			name: "lowers to the highest level of the calm, then further",
			readings: []reading{
				{0, degCritical}, {s, degModerate}, {10 * s, degNone}, {31 * s, degNone},
				{40 * s, degNone}, {61 * s, degNone},
			},
			want: []change{{0, degNone, degCritical}, {31 * s, degCritical, degModerate}, {61 * s, degModerate, degNone}},
		},
		{
			name:       "custom calm",
			lowerAfter: 5 * s,
			readings:   []reading{{0, degMinimal}, {s, degNone}, {6 * s, degNone}},
			want:       []change{{0, degNone, degMinimal}, {6 * s, degMinimal, degNone}},
		},
		{
			name:       "no hysteresis",
			lowerAfter: -1,
			readings:   []reading{{0, degSevere}, {0, degMinimal}, {s, degSevere}, {s, degNone}},
			want: []change{
				{0, degNone, degSevere}, {0, degSevere, degMinimal},
				{s, degMinimal, degSevere}, {s, degSevere, degNone},
			},
		},
		{
			name:     "out-of-range levels are bounded",
			readings: []reading{{0, messages.Degradation(9)}, {s, messages.Degradation(9)}, {2 * s, messages.Degradation(-3)}, {32 * s, messages.Degradation(-3)}},
			want:     []change{{0, degNone, degCritical}, {32 * s, degCritical, degNone}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := NewDegradationTracker(DegradationConfig{LowerAfter: tt.lowerAfter})
			if err != nil {
				t.Fatal(err)
			}
			var got []change
			for _, r := range tt.readings {
				if c, ok := tr.Observe(rampAt(r.at), r.level); ok {
					got = append(got, change{c.At.Sub(rampT0), c.From, c.To})
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("changes:\n got  %v\n want %v", got, tt.want)
			}
			if len(tt.want) > 0 && tr.Level() != tt.want[len(tt.want)-1].to {
				t.Errorf("Level() = %v, want %v", tr.Level(), tt.want[len(tt.want)-1].to)
			}
		})
	}
}

func TestDegradationTrackerUpdateAndAdmit(t *testing.T) {
	tr, err := NewDegradationTracker(DegradationConfig{CriticalOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Admit(messages.InferRequest_normal) {
		t.Errorf("at none: normal refused, want admitted")
	}
	c, ok := tr.Update(rampT0, 9*time.Second, 0.97)
	if want := (DegradationChange{At: rampT0, From: degNone, To: degModerate}); !ok || c != want {
		t.Errorf("Update(9 s, 0.97) = %+v, %v; want %+v, true", c, ok, want)
	}
	if tr.Admit(messages.InferRequest_normal) || !tr.Admit(messages.InferRequest_critical) {
		t.Errorf("at moderate: Admit normal %v, critical %v; want false, true",
			tr.Admit(messages.InferRequest_normal), tr.Admit(messages.InferRequest_critical))
	}
}

func BenchmarkDegradationLevel(b *testing.B) {
	var cfg DegradationConfig
	rts := []time.Duration{time.Second, 6 * time.Second, 9 * time.Second, 20 * time.Second, 40 * time.Second}
	rates := []float64{1, 0.93, 0.85, 0.7, 0.5}
	var sum int
	i := 0
	for b.Loop() {
		sum += int(cfg.Level(rts[i%5], rates[(i/5)%5]))
		i++
	}
	if sum == 0 {
		b.Fatal("every level none")
	}
}
