package resilience

import (
	"testing"
	"time"
)

// breakerWindowTotals is a window's totals, for comparing in tests.
type breakerWindowTotals struct{ calls, failures, slow int }

func breakerWindowTotalsOf(w *breakerWindow) breakerWindowTotals {
	return breakerWindowTotals{w.calls, w.failures, w.slow}
}

func TestCountWindow(t *testing.T) {
	w := newBreakerWindow(BreakerConfig{Window: CountWindow, WindowSize: 3})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		failed, slow bool
		want         breakerWindowTotals
	}{
		{true, false, breakerWindowTotals{1, 1, 0}},
		{true, true, breakerWindowTotals{2, 2, 1}},
		{false, false, breakerWindowTotals{3, 2, 1}},
		{false, false, breakerWindowTotals{3, 1, 1}}, // the first failure leaves
		{false, false, breakerWindowTotals{3, 0, 0}}, // the slow failure leaves
		{false, true, breakerWindowTotals{3, 0, 1}},
	}
	for i, s := range steps {
		w.record(t0, s.failed, s.slow)
		if got := breakerWindowTotalsOf(&w); got != s.want {
			t.Fatalf("after call %d: totals %+v, want %+v", i+1, got, s.want)
		}
	}
	w.clear()
	if got := breakerWindowTotalsOf(&w); got != (breakerWindowTotals{}) {
		t.Fatalf("after clear: totals %+v, want zero", got)
	}
	w.record(t0, true, false)
	if got := breakerWindowTotalsOf(&w); got != (breakerWindowTotals{1, 1, 0}) {
		t.Fatalf("after clear and one failure: totals %+v, want {1 1 0}", got)
	}
}

func TestTimeWindow(t *testing.T) {
	// 10 s in 10 buckets of 1 s, aligned to the first outcome.
	w := newBreakerWindow(BreakerConfig{Window: TimeWindow, WindowDuration: 10 * time.Second, WindowBuckets: 10})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	w.record(at(0), true, false)
	w.record(at(500*time.Millisecond), true, true)
	w.record(at(3*time.Second), false, false)
	tests := []struct {
		name string
		now  time.Duration
		want breakerWindowTotals
	}{
		{"all inside", 9999 * time.Millisecond, breakerWindowTotals{3, 2, 1}},
		{"first bucket expires at 10 s", 10 * time.Second, breakerWindowTotals{1, 0, 0}},
		{"clock going back changes nothing", 5 * time.Second, breakerWindowTotals{1, 0, 0}},
		{"last bucket expires at 13 s", 13 * time.Second, breakerWindowTotals{0, 0, 0}},
	}
	for _, tt := range tests {
		w.advance(at(tt.now))
		if got := breakerWindowTotalsOf(&w); got != tt.want {
			t.Fatalf("%s: totals %+v, want %+v", tt.name, got, tt.want)
		}
	}
	// An outcome from a clock that went back lands in the newest bucket,
	// and leaves with it.
	w.record(at(12*time.Second), false, true)
	w.record(at(11*time.Second), true, false)
	w.advance(at(22*time.Second + 999*time.Millisecond))
	if got := breakerWindowTotalsOf(&w); got != (breakerWindowTotals{2, 1, 1}) {
		t.Fatalf("late outcome before its bucket expires: totals %+v, want {2 1 1}", got)
	}
	w.advance(at(23 * time.Second))
	if got := breakerWindowTotalsOf(&w); got != (breakerWindowTotals{}) {
		t.Fatalf("after the newest bucket expires: totals %+v, want zero", got)
	}
	// A jump far past the window clears every bucket once.
	w.record(at(14*time.Second), true, false)
	w.record(at(time.Hour), false, false)
	if got := breakerWindowTotalsOf(&w); got != (breakerWindowTotals{1, 0, 0}) {
		t.Fatalf("after a 1 h jump: totals %+v, want {1 0 0}", got)
	}
	// After a clear the next outcome starts a new epoch.
	w.clear()
	w.record(at(2*time.Hour), true, false)
	w.advance(at(2*time.Hour + 9*time.Second))
	if got := breakerWindowTotalsOf(&w); got != (breakerWindowTotals{1, 1, 0}) {
		t.Fatalf("after clear: totals %+v, want {1 1 0}", got)
	}
}

func TestNoWindowKeepsTotals(t *testing.T) {
	w := newBreakerWindow(BreakerConfig{Window: NoWindow})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		w.record(t0.Add(time.Duration(i)*time.Hour), i%2 == 0, i%4 == 0)
	}
	if got, want := breakerWindowTotalsOf(&w), (breakerWindowTotals{1000, 500, 250}); got != want {
		t.Fatalf("totals %+v, want %+v", got, want)
	}
}
