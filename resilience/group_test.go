package resilience

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func newTestGroup(t *testing.T, cfg GroupConfig) *Group {
	t.Helper()
	g, err := NewGroup(cfg)
	if err != nil {
		t.Fatalf("NewGroup(%+v): %v", cfg, err)
	}
	return g
}

func TestGroupMayOpen(t *testing.T) {
	tests := []struct {
		name        string
		share       float64
		open, total int
		want        bool
	}{
		{"single-model group keeps its breaker", 0, 0, 1, true},
		{"single-model group, tight cap", 0.1, 0, 1, true},
		{"two members: the first may open", 0, 0, 2, true},
		{"two members: not the second", 0, 1, 2, false},
		{"three members: one of three", 0, 1, 3, false},
		{"four members: two of four", 0, 1, 4, true},
		{"four members: not three", 0, 2, 4, false},
		{"0.3 of ten: the third", 0.3, 2, 10, true},
		{"0.3 of ten: not the fourth", 0.3, 3, 10, false},
		{"cap off: the last one", 1, 4, 5, true},
		{"cap off: none left to open", 1, 5, 5, false},
		{"tight cap: one may always open", 0.1, 0, 3, true},
		{"tight cap: not two", 0.1, 1, 3, false},
		{"no group", 0, 7, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGroup(t, GroupConfig{MaxOpenShare: tt.share})
			if got := g.MayOpen(tt.open, tt.total); got != tt.want {
				t.Errorf("MayOpen(%d, %d) with share %v = %v, want %v", tt.open, tt.total, tt.share, got, tt.want)
			}
		})
	}
}

func TestGroupPanic(t *testing.T) {
	g := newTestGroup(t, GroupConfig{})
	for _, tt := range []struct {
		admitting int
		want      bool
	}{{0, true}, {-1, true}, {1, false}, {3, false}} {
		if got := g.Panic(tt.admitting); got != tt.want {
			t.Errorf("Panic(%d) = %v, want %v", tt.admitting, got, tt.want)
		}
	}
}

func TestGroupAdmitInPanic(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		rate  float64
		every time.Duration // a request every
		until time.Duration
		want  []time.Duration // admitted requests
	}{
		{
			name: "default: one a second, the first at once",
			// 100 ms steps add up exactly: the bucket counts time.
			every: 100 * ms, until: 5 * time.Second,
			want: []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second},
		},
		{
			name:  "quiet group: every request passes",
			every: 3 * time.Second, until: 12 * time.Second,
			want: []time.Duration{0, 3 * time.Second, 6 * time.Second, 9 * time.Second, 12 * time.Second},
		},
		{
			name: "one in five seconds",
			rate: 0.2, every: time.Second, until: 12 * time.Second,
			want: []time.Duration{0, 5 * time.Second, 10 * time.Second},
		},
		{
			name: "four a second: a second's worth at once, then spaced",
			rate: 4, every: 50 * ms, until: 1500 * ms,
			want: []time.Duration{0, 50 * ms, 100 * ms, 150 * ms, 250 * ms, 500 * ms, 750 * ms, 1000 * ms, 1250 * ms, 1500 * ms},
		},
		{
			name: "none",
			rate: -1, every: time.Second, until: time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGroup(t, GroupConfig{PanicRate: tt.rate})
			var got []time.Duration
			for at := time.Duration(0); at <= tt.until; at += tt.every {
				if g.AdmitInPanic(rampAt(at)) {
					got = append(got, at)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("admitted at\n got  %v\n want %v", got, tt.want)
			}
		})
	}
}

func TestGroupAdmitInPanicClockBack(t *testing.T) {
	g := newTestGroup(t, GroupConfig{})
	if !g.AdmitInPanic(rampAt(10 * time.Second)) {
		t.Fatal("first request refused, want admitted")
	}
	for _, at := range []time.Duration{0, 5 * time.Second, 10 * time.Second} {
		if g.AdmitInPanic(rampAt(at)) {
			t.Errorf("at %v, after a request at 10 s: admitted, want refused", at)
		}
	}
	if !g.AdmitInPanic(rampAt(11 * time.Second)) {
		t.Errorf("at 11 s: refused, want admitted")
	}
}

func TestGroupConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     GroupConfig
		wantErr string // "" for valid
	}{
		{"zero value", GroupConfig{}, ""},
		{"custom", GroupConfig{MaxOpenShare: 1, PanicRate: 1.0 / 3600}, ""},
		{"panic off", GroupConfig{PanicRate: -1}, ""},
		{"share above 1", GroupConfig{MaxOpenShare: 1.5}, "MaxOpenShare 1.5"},
		{"negative share", GroupConfig{MaxOpenShare: -0.5}, "MaxOpenShare -0.5"},
		{"NaN share", GroupConfig{MaxOpenShare: math.NaN()}, "MaxOpenShare NaN"},
		{"infinite rate", GroupConfig{PanicRate: math.Inf(1)}, "PanicRate +Inf"},
		{"rate too slow", GroupConfig{PanicRate: 1e-6}, "PanicRate 1e-06"},
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
			if err == nil || !errors.Is(err, ErrGroupConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want ErrGroupConfig naming %q", err, tt.wantErr)
			}
			if _, nerr := NewGroup(tt.cfg); nerr == nil {
				t.Errorf("NewGroup accepted an invalid config")
			}
		})
	}
}
