package route

import (
	"errors"
	"testing"

	"github.com/cmmv-hive/resilience/resilience"
)

func TestNewGroupRefuses(t *testing.T) {
	a := NewMember("a", 0, resilience.RetryConfig{})
	random := func() float64 { return 0.5 }
	tests := []struct {
		name string
		cfg  GroupConfig
	}{
		{"no node", GroupConfig{Members: []*Member{a}, Random: random}},
		{"no members", GroupConfig{Node: "n1", Random: random}},
		{"no random", GroupConfig{Node: "n1", Members: []*Member{a}}},
		{"unknown strategy", GroupConfig{Node: "n1", Members: []*Member{a}, Random: random, Strategy: "fastest"}},
		{"member twice", GroupConfig{Node: "n1", Members: []*Member{a, a}, Random: random}},
		{"nil member", GroupConfig{Node: "n1", Members: []*Member{a, nil}, Random: random}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewGroup(tt.cfg); !errors.Is(err, ErrGroupConfig) {
				t.Errorf("NewGroup: got %v, want an error matching ErrGroupConfig", err)
			}
		})
	}
	if _, err := NewGroup(GroupConfig{Node: "n1", Members: []*Member{a}, Random: random, BudgetRatio: 2}); !errors.Is(err, resilience.ErrBudgetConfig) {
		t.Errorf("NewGroup with budget ratio 2: got %v, want ErrBudgetConfig", err)
	}
}

func TestStrategyValid(t *testing.T) {
	for _, s := range []Strategy{Sequential, Parallel, Hedged, Weighted, Random} {
		if !s.Valid() {
			t.Errorf("%q: not valid", s)
		}
	}
	for _, s := range []Strategy{"", "fastest", "Sequential"} {
		if s.Valid() {
			t.Errorf("%q: valid", s)
		}
	}
}

// A new member's view takes traffic and weighs neutrally, and a weight of
// zero is one.
func TestNewMember(t *testing.T) {
	m := NewMember("a", 0, resilience.RetryConfig{})
	if m.Weight != 1 || !m.View.Admits(t0) || m.View.Ramp != 100 || m.View.Score != 0.5 {
		t.Errorf("NewMember: got weight %v and view %+v, want weight 1, admitting, ramp 100, score 0.5", m.Weight, m.View)
	}
}
