package resilience

import "time"

// breakerWindow remembers a breaker's recent counted outcomes. Its totals
// are kept current on every change, so reading them costs nothing, and its
// memory is fixed when it is built: a count window holds one byte per call
// of WindowSize, a time window 12 bytes per bucket however many calls it
// sees, and NoWindow only the totals.
type breakerWindow struct {
	kind WindowKind
	// calls, failures and slow are the totals over the window.
	calls, failures, slow int

	// Count window: a ring of the last len(ring) calls.
	ring []breakerWindowCall
	next int // the slot the next call overwrites

	// Time window: len(buckets) buckets of width each, the newest being
	// the absolute bucket number head, counted from epoch.
	buckets []breakerWindowBucket
	width   time.Duration
	epoch   time.Time
	head    int64
	started bool // epoch is set; the first outcome or advance sets it
}

// breakerWindowCall is one call in a count window.
type breakerWindowCall uint8

const (
	breakerCallFailed breakerWindowCall = 1 << iota
	breakerCallSlow
)

// breakerWindowBucket holds the totals of one slice of a time window.
type breakerWindowBucket struct{ calls, failures, slow int32 }

// newBreakerWindow builds the window c describes; c has its defaults.
func newBreakerWindow(c BreakerConfig) breakerWindow {
	w := breakerWindow{kind: c.Window}
	switch c.Window {
	case CountWindow:
		w.ring = make([]breakerWindowCall, c.WindowSize)
	case TimeWindow:
		w.buckets = make([]breakerWindowBucket, c.WindowBuckets)
		w.width = c.WindowDuration / time.Duration(c.WindowBuckets)
	}
	return w
}

// record adds one counted outcome at now.
func (w *breakerWindow) record(now time.Time, failed, slow bool) {
	var call breakerWindowCall
	if failed {
		call |= breakerCallFailed
	}
	if slow {
		call |= breakerCallSlow
	}
	switch w.kind {
	case CountWindow:
		if w.calls == len(w.ring) {
			w.remove(w.ring[w.next])
		}
		w.ring[w.next] = call
		w.next++
		if w.next == len(w.ring) {
			w.next = 0
		}
	case TimeWindow:
		w.advance(now)
		b := &w.buckets[w.head%int64(len(w.buckets))]
		b.calls++
		b.failures += int32(call & breakerCallFailed)
		b.slow += int32(call&breakerCallSlow) >> 1
	}
	w.calls++
	if failed {
		w.failures++
	}
	if slow {
		w.slow++
	}
}

// remove takes one count-window call out of the totals.
func (w *breakerWindow) remove(call breakerWindowCall) {
	w.calls--
	if call&breakerCallFailed != 0 {
		w.failures--
	}
	if call&breakerCallSlow != 0 {
		w.slow--
	}
}

// advance expires the time window's buckets that now has left behind. A
// clock that went back records into the newest bucket rather than
// corrupting older ones.
func (w *breakerWindow) advance(now time.Time) {
	if w.kind != TimeWindow {
		return
	}
	if !w.started {
		w.started, w.epoch, w.head = true, now, 0
		return
	}
	n := int64(now.Sub(w.epoch) / w.width)
	if n <= w.head {
		return
	}
	steps := min(n-w.head, int64(len(w.buckets)))
	for i := int64(1); i <= steps; i++ {
		b := &w.buckets[(w.head+i)%int64(len(w.buckets))]
		w.calls -= int(b.calls)
		w.failures -= int(b.failures)
		w.slow -= int(b.slow)
		*b = breakerWindowBucket{}
	}
	w.head = n
}

// clear forgets every outcome, keeping the memory.
func (w *breakerWindow) clear() {
	clear(w.ring)
	clear(w.buckets)
	w.calls, w.failures, w.slow = 0, 0, 0
	w.next, w.head, w.started = 0, 0, false
}
