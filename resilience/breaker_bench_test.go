package resilience

import (
	"runtime"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// breakerBenchOutcomes is a mix that never trips the benchmarked breakers: one
// failure in four, a slow call in eight.
var breakerBenchOutcomes = [8]Outcome{
	breakerOK, breakerOK, breakerOK, breakerFail,
	breakerOK, breakerOK, {Class: messages.ErrorClass_ok, Latency: 90 * time.Second}, breakerFail,
}

// BenchmarkBreakerAllowDone is the closed breaker's hot path: bip03's count
// window of 100, consecutive threshold 5.
func BenchmarkBreakerAllowDone(b *testing.B) {
	benchBreakerCalls(b, presetBreaker(b, "bip03", BreakerConfig{}, nil), 0)
}

// BenchmarkBreakerTimeWindow is the same path over a 10 s time window of
// 10 buckets whose clock moves 1 ms a call, so buckets keep expiring.
func BenchmarkBreakerTimeWindow(b *testing.B) {
	benchBreakerCalls(b, presetBreaker(b, "hystrix", BreakerConfig{FailureRate: 0.9}, nil), time.Millisecond)
}

// benchBreakerCalls runs Allow and Done with breakerBenchOutcomes, moving
// the clock step a call.
func benchBreakerCalls(b *testing.B, br *Breaker, step time.Duration) {
	now := breakerT0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now = now.Add(step)
		p, err := br.Allow(now)
		if err != nil {
			b.Fatal(err)
		}
		if ts := br.Done(p, now, breakerBenchOutcomes[i&7]); ts != nil {
			b.Fatalf("transition %v", breakerSummary(ts))
		}
		i++
	}
}

// BenchmarkBreakerRefused is a rejection by an open breaker: the
// *OpenError is its one allocation.
func BenchmarkBreakerRefused(b *testing.B) {
	br := presetBreaker(b, "bip03", BreakerConfig{}, nil)
	br.ForceOpen(breakerT0, 0, messages.BreakerTransition_manual)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Allow(breakerT0); err == nil {
			b.Fatal("admitted")
		}
	}
}

// TestBreakerTimeWindowMemory shows that a time window holding 10,000
// outcomes costs a fixed, small amount: its buckets hold totals, not
// outcomes. Every byte allocated to build the breaker and feed it the
// 10,000 outcomes (within one 60 s window) is counted; recording itself
// allocates nothing.
func TestBreakerTimeWindowMemory(t *testing.T) {
	cfg := BreakerConfig{Window: TimeWindow, WindowDuration: time.Minute, WindowBuckets: 10,
		MinimumCalls: 20, FailureRate: 0.9}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	br, err := NewBreaker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := breakerT0
	for i := range 10_000 {
		now = now.Add(5 * time.Millisecond) // 10,000 calls in 50 s
		p, _ := br.Allow(now)
		br.Done(p, now, breakerBenchOutcomes[i&7])
	}
	runtime.ReadMemStats(&after)
	if e := br.Evidence(); e.Calls != 10_000 {
		t.Fatalf("window holds %d calls, want 10000", e.Calls)
	}
	bytes := after.TotalAlloc - before.TotalAlloc
	t.Logf("breaker with a 10-bucket time window holding 10,000 outcomes: %d bytes allocated in all", bytes)
	if bytes >= 1<<20 {
		t.Fatalf("allocated %d bytes, want under 1 MiB", bytes)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		p, _ := br.Allow(now)
		br.Done(p, now, breakerOK)
	})
	if allocs != 0 {
		t.Fatalf("Allow+Done allocates %v times a call, want 0", allocs)
	}
}
