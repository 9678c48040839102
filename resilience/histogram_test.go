package resilience

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// histMaxRelErr is the error Histogram documents for 1 us .. 18 min.
const histMaxRelErr = 0.032

func histRelErr(got, want time.Duration) float64 {
	return math.Abs(float64(got-want)) / float64(want)
}

func TestHistogramBucketsCoverEveryDuration(t *testing.T) {
	// Every duration from 1 us to 18 min lands in a bucket whose midpoint is
	// within the documented error, and buckets never go backwards.
	prev := 0
	for d := time.Microsecond; d < 18*time.Minute; d += d/997 + 1 {
		i := histIndex(d)
		if i < prev {
			t.Fatalf("histIndex(%v) = %d, below histIndex of a shorter duration (%d)", d, i, prev)
		}
		prev = i
		if e := histRelErr(histMidpoint(i), d); e > histMaxRelErr {
			t.Fatalf("histIndex(%v) = %d with midpoint %v: error %.4f, want <= %v", d, i, histMidpoint(i), e, histMaxRelErr)
		}
	}
	if got, want := histIndex(time.Hour), histBuckets-1; got != want {
		t.Errorf("histIndex(1h) = %d, want the top bucket %d", got, want)
	}
	if got := histIndex(-time.Second); got != 0 {
		t.Errorf("histIndex(-1s) = %d, want 0", got)
	}
}

func TestHistogramQuantilesOnKnownDistributions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 100_000
	tests := []struct {
		name string
		draw func() time.Duration
	}{
		{"constant 250ms", func() time.Duration { return 250 * time.Millisecond }},
		{"uniform 1ms..1s", func() time.Duration { return time.Millisecond + time.Duration(r.Int64N(int64(999*time.Millisecond))) }},
		{"exponential mean 800ms", func() time.Duration {
			return time.Microsecond + time.Duration(r.ExpFloat64()*float64(800*time.Millisecond))
		}},
		{"log-normal around 2s", func() time.Duration { return time.Duration(math.Exp(r.NormFloat64()*0.8) * float64(2*time.Second)) }},
		{"bimodal 5ms and 20s", func() time.Duration {
			if r.IntN(10) == 0 {
				return 20*time.Second + time.Duration(r.Int64N(int64(time.Second)))
			}
			return 5*time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond)))
		}},
		{"microseconds", func() time.Duration { return time.Microsecond + time.Duration(r.Int64N(int64(50*time.Microsecond))) }},
		{"minutes", func() time.Duration { return time.Minute + time.Duration(r.Int64N(int64(9*time.Minute))) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			values := make([]time.Duration, n)
			for i := range values {
				values[i] = tt.draw()
				h.Record(values[i])
			}
			slices.Sort(values)
			if got := h.Count(); got != n {
				t.Fatalf("Count() = %d, want %d", got, n)
			}
			for _, q := range []float64{0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999} {
				want := values[int(math.Ceil(q*n))-1]
				got := h.Quantile(q)
				if e := histRelErr(got, want); e > histMaxRelErr {
					t.Errorf("Quantile(%v) = %v, want %v within %.1f%% (error %.2f%%)", q, got, want, 100*histMaxRelErr, 100*e)
				}
			}
			if got, want := h.Quantile(0), values[0]; got != want {
				t.Errorf("Quantile(0) = %v, want the minimum %v exactly", got, want)
			}
			if got, want := h.Quantile(1), values[n-1]; got != want {
				t.Errorf("Quantile(1) = %v, want the maximum %v exactly", got, want)
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("empty Quantile(0.5) = %v, want 0", got)
	}
	h.Record(-time.Second)
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("Quantile(0.5) after a negative duration = %v, want 0", got)
	}
	h.Reset()
	h.Record(time.Hour) // beyond the top bucket
	h.Record(2 * time.Hour)
	if got, want := h.Quantile(0.5), time.Hour; got != want {
		t.Errorf("Quantile(0.5) of 1h and 2h = %v, want %v (the top bucket, bounded by the extremes)", got, want)
	}
	if got, want := h.Quantile(math.NaN()), time.Hour; got != want {
		t.Errorf("Quantile(NaN) = %v, want the minimum %v", got, want)
	}
	if got, want := h.Quantile(7), 2*time.Hour; got != want {
		t.Errorf("Quantile(7) = %v, want the maximum %v", got, want)
	}
}

func TestHistogramMergeAndReset(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var a, b, all Histogram
	for i := range 10_000 {
		d := time.Duration(r.Int64N(int64(10 * time.Second)))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var empty Histogram
	a.Merge(&empty)
	empty.Merge(&a)
	if empty != a {
		t.Fatalf("an empty histogram merged with a differs from a")
	}
	a.Merge(&b)
	if a != all {
		t.Fatalf("a merged with b differs from recording every value into one histogram: count %d, want %d", a.Count(), all.Count())
	}
	a.Reset()
	if a != (Histogram{}) || a.Count() != 0 || a.Quantile(0.99) != 0 || a.Min() != 0 || a.Max() != 0 {
		t.Fatalf("after Reset: count %d, p99 %v, want an empty histogram", a.Count(), a.Quantile(0.99))
	}
}

func TestHistogramMemoryIsFixed(t *testing.T) {
	var h Histogram
	before := unsafe.Sizeof(h)
	if before > 4096 {
		t.Errorf("Histogram is %d bytes, want at most 4 KiB", before)
	}
	allocs := testing.AllocsPerRun(1000, func() { h.Record(1234 * time.Millisecond) })
	if allocs != 0 {
		t.Errorf("Record allocates %v times per call, want 0", allocs)
	}
	for i := range 1_000_000 {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	if after := unsafe.Sizeof(h); after != before {
		t.Errorf("Histogram size %d after a million values, want %d", after, before)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	// A spread of latencies so the bucket lookup is not always the same.
	var ds [256]time.Duration
	r := rand.New(rand.NewPCG(5, 6))
	for i := range ds {
		ds[i] = time.Duration(r.ExpFloat64() * float64(time.Second))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Record(ds[i&255])
		i++
	}
}

func BenchmarkHistogramQuantile(b *testing.B) {
	var h Histogram
	r := rand.New(rand.NewPCG(7, 8))
	for range 10_000 {
		h.Record(time.Duration(r.ExpFloat64() * float64(time.Second)))
	}
	b.ReportAllocs()
	for b.Loop() {
		h.Quantile(0.99)
	}
}
