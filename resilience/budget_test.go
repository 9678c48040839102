package resilience

import (
	"errors"
	"math"
	"testing"

	"pgregory.net/rapid"
)

func TestNewBudgetRejects(t *testing.T) {
	for _, ratio := range []float64{-0.1, 1.5, math.NaN(), math.Inf(1)} {
		if _, err := NewBudget(ratio, 0); !errors.Is(err, ErrBudgetConfig) {
			t.Errorf("NewBudget(%v, 0) error = %v, want ErrBudgetConfig", ratio, err)
		}
	}
}

func TestBudgetAllowed(t *testing.T) {
	tests := []struct {
		name     string
		ratio    float64
		floor    int
		inFlight int
		want     int
	}{
		{"idle group keeps the floor of 3", 0, 0, 0, 3},
		{"small group keeps the floor", 0, 0, 10, 3},
		{"20% of 10 is under the floor", 0.2, 3, 10, 3},
		{"20% of 20", 0, 0, 20, 4},
		{"20% of 100", 0, 0, 100, 20},
		{"20% rounds down", 0, 0, 24, 4},
		{"custom ratio and floor", 0.5, 1, 7, 3},
		{"no floor", 0.2, -1, 4, 0},
		{"full ratio", 1, -1, 9, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBudget(tt.ratio, tt.floor)
			if err != nil {
				t.Fatal(err)
			}
			for range tt.inFlight {
				b.Start()
			}
			if got := b.Allowed(); got != tt.want {
				t.Errorf("Allowed() with %d in flight = %d, want %d", tt.inFlight, got, tt.want)
			}
		})
	}
}

func TestBudgetZeroValueUsesDefaults(t *testing.T) {
	var b Budget
	for i := range 3 {
		if !b.TryAcquire() {
			t.Fatalf("TryAcquire %d on an idle zero Budget = false, want true (floor 3)", i+1)
		}
	}
	if b.TryAcquire() {
		t.Fatalf("4th TryAcquire on an idle zero Budget = true, want false")
	}
	for range 25 {
		b.Start()
	}
	if got, want := b.Allowed(), 5; got != want {
		t.Fatalf("Allowed() with 25 in flight = %d, want %d", got, want)
	}
	if !b.TryAcquire() || !b.TryAcquire() || b.TryAcquire() {
		t.Fatalf("with 25 in flight, want the 4th and 5th permits granted and the 6th refused; active %d", b.Active())
	}
	b.Release()
	if !b.TryAcquire() {
		t.Fatalf("TryAcquire after Release = false, want true")
	}
}

func TestBudgetNeverNegative(t *testing.T) {
	var b Budget
	b.Finish()
	b.Release()
	b.Release()
	if b.InFlight() != 0 || b.Active() != 0 {
		t.Fatalf("after unbalanced Finish/Release: in flight %d, active %d, want 0 and 0", b.InFlight(), b.Active())
	}
	// An extra Release must not mint a permit.
	for range 3 {
		b.TryAcquire()
	}
	if b.TryAcquire() {
		t.Fatalf("TryAcquire beyond the floor after unbalanced Release = true, want false")
	}
}

// TestBudgetProperties drives a budget with any sequence of calls, balanced or
// not, against a model: the counts never go negative, and a permit is granted
// exactly when the active extra calls are under max(floor(ratio x in flight),
// floor).
func TestBudgetProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ratio := rapid.SampledFrom([]float64{0, 0.1, 0.2, 0.5, 1}).Draw(t, "ratio")
		floor := rapid.IntRange(-1, 5).Draw(t, "floor")
		b, err := NewBudget(ratio, floor)
		if err != nil {
			t.Fatal(err)
		}
		wantRatio, wantFloor := ratio, floor
		if wantRatio == 0 {
			wantRatio = 0.2
		}
		if wantFloor == 0 {
			wantFloor = 3
		}
		wantFloor = max(wantFloor, 0)
		var inFlight, active int
		t.Repeat(map[string]func(*rapid.T){
			"Start": func(t *rapid.T) { b.Start(); inFlight++ },
			"Finish": func(t *rapid.T) {
				b.Finish()
				inFlight = max(inFlight-1, 0)
			},
			"TryAcquire": func(t *rapid.T) {
				allowed := max(int(math.Floor(wantRatio*float64(inFlight)+1e-9)), wantFloor)
				want := active < allowed
				if got := b.TryAcquire(); got != want {
					t.Fatalf("TryAcquire() = %v with %d active, %d in flight, %d allowed; want %v", got, active, inFlight, allowed, want)
				}
				if want {
					active++
					if active > allowed {
						t.Fatalf("%d active after a grant, over %d allowed", active, allowed)
					}
				}
			},
			"Release": func(t *rapid.T) {
				b.Release()
				active = max(active-1, 0)
			},
			"": func(t *rapid.T) {
				if b.InFlight() < 0 || b.Active() < 0 {
					t.Fatalf("negative counts: in flight %d, active %d", b.InFlight(), b.Active())
				}
				if b.InFlight() != inFlight || b.Active() != active {
					t.Fatalf("in flight %d, active %d; want %d and %d", b.InFlight(), b.Active(), inFlight, active)
				}
			},
		})
	})
}
