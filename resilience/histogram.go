package resilience

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout, log-linear as in HdrHistogram. Durations are counted in
// units of 64 ns. The first 32 buckets hold one unit each (0 to 2 us); above,
// every power of two is split into 16 buckets of equal width, so a bucket is
// at most 1/16 as wide as its lower bound and its midpoint is within 1/32 of
// any value in it. 496 buckets reach 2^34 units, about 18 minutes.
const (
	histUnitShift = 6 // 64 ns units
	histSubBits   = 4 // 16 buckets per power of two
	histSubCount  = 1 << histSubBits
	histBuckets   = 496
)

// Histogram counts durations in fixed memory (about 4 KiB, whatever the
// number of values) and answers quantiles within 3.2 % of the true value for
// durations from 1 us to 18 min. Below 1 us the error is at most 32 ns;
// longer durations share the top bucket, and quantiles never exceed the
// largest value recorded. Record takes a few nanoseconds and never
// allocates. The zero value is an empty histogram.
//
// A Histogram is not safe for concurrent use; its owner records into it.
type Histogram struct {
	counts   [histBuckets]uint64
	total    uint64
	min, max time.Duration
}

// histIndex returns the bucket of d; negative durations count as 0.
func histIndex(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	v := uint64(d) >> histUnitShift
	if v < 2*histSubCount {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - histSubBits
	return min(shift*histSubCount+int(v>>shift), histBuckets-1)
}

// histMidpoint returns the middle of bucket i.
func histMidpoint(i int) time.Duration {
	if i < 2*histSubCount {
		return time.Duration(i)<<histUnitShift + 1<<(histUnitShift-1)
	}
	shift := i/histSubCount - 1
	sub := i%histSubCount + histSubCount
	lower := time.Duration(sub) << (shift + histUnitShift)
	return lower + 1<<(shift+histUnitShift-1)
}

// Record counts one duration; negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	if h.total == 0 {
		h.min, h.max = d, d
	} else {
		h.min = min(h.min, d)
		h.max = max(h.max, d)
	}
	h.counts[histIndex(d)]++
	h.total++
}

// Count is the number of durations recorded since the last Reset.
func (h *Histogram) Count() uint64 { return h.total }

// Min is the smallest duration recorded, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration { return h.min }

// Max is the largest duration recorded, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the duration under which a fraction q of the recorded
// durations fall (the value of rank ceil(q x Count)), within the stated
// error. q <= 0 (or NaN) gives Min, q >= 1 gives Max, and an empty histogram
// gives 0. It reads every bucket: call it for reports, not per call.
func (h *Histogram) Quantile(q float64) time.Duration {
	switch {
	case h.total == 0:
		return 0
	case q <= 0 || math.IsNaN(q):
		return h.min
	case q >= 1:
		return h.max
	}
	rank := max(uint64(math.Ceil(q*float64(h.total))), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			// The exact extremes bound the estimate: a bucket's midpoint may
			// lie beyond the values actually in it.
			return min(max(histMidpoint(i), h.min), h.max)
		}
	}
	return h.max
}

// Merge adds every duration counted in o to h, as if recorded into h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	if h.total == 0 {
		h.min, h.max = o.min, o.max
	} else {
		h.min = min(h.min, o.min)
		h.max = max(h.max, o.max)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }
