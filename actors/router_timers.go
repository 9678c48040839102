package actors

import (
	"time"

	"github.com/cmmv-hive/resilience/route"
)

// timers are the router's armed request timers (retry waits, hedge delays,
// all-down waits), earliest first in a heap, behind one Go timer set for
// the earliest. Times are the injected clock's: the Go timer only wakes the
// router, which then fires whatever is due by that clock. A request's
// timers leave the heap when it ends, so a timer never fires for a request
// that is over, and one that is re-armed fires once. Deadlines are not
// here (see deadlines).
type timers struct {
	now  func() time.Time
	ring func() // wakes the router: sends it timersDue
	heap []*timer
	wake *time.Timer // nil until the first arm
	at   time.Time   // when wake is set for; zero when it is not set
}

// timer is one armed timer of a run; it lives in the run.
type timer struct {
	at    time.Time
	rn    *run
	index int32 // in the heap, from 1; 0 when not armed
	which route.Timer
}

// timersDue wakes the router: the earliest timer may be due.
type timersDue struct{}

var wakeUp = &timersDue{}

// arm (re)arms rn's timer which (not its DeadlineTimer) for at.
func (ts *timers) arm(rn *run, which route.Timer, at time.Time) {
	if rn.timers == nil { // most requests never arm one
		rn.timers = new([route.DeadlineTimer]timer)
	}
	t := &rn.timers[which]
	t.at, t.rn, t.which = at, rn, which
	if t.index == 0 {
		ts.heap = append(ts.heap, t)
		t.index = int32(len(ts.heap))
		ts.up(len(ts.heap) - 1)
	} else {
		ts.fix(int(t.index) - 1)
	}
	ts.schedule()
}

// drop disarms every timer of rn. The Go timer is left as it is: waking
// with nothing due costs less than re-arming it for every request that
// ends.
func (ts *timers) drop(rn *run) {
	if rn.timers == nil {
		return
	}
	for i := range rn.timers {
		if t := &rn.timers[i]; t.index != 0 {
			ts.remove(int(t.index) - 1)
		}
	}
}

// due fires, through fire, every timer due by now, earliest first (a timer
// fire arms at now or earlier is fired too), then sets the Go timer for the
// next one.
func (ts *timers) due(fire func(*run, route.Timer)) {
	ts.at = time.Time{}
	for len(ts.heap) > 0 && !ts.heap[0].at.After(ts.now()) {
		t := ts.heap[0]
		ts.remove(0)
		fire(t.rn, t.which)
	}
	ts.schedule()
}

// schedule sets the Go timer for the earliest timer, unless it is already
// set for earlier.
func (ts *timers) schedule() {
	if len(ts.heap) == 0 {
		return
	}
	next := ts.heap[0].at
	if !ts.at.IsZero() && !next.Before(ts.at) {
		return
	}
	ts.at = next
	d := max(next.Sub(ts.now()), 0)
	if ts.wake == nil {
		ts.wake = time.AfterFunc(d, ts.ring)
		return
	}
	ts.wake.Reset(d)
}

// stop stops the Go timer: the router is stopping.
func (ts *timers) stop() {
	if ts.wake != nil {
		ts.wake.Stop()
	}
}

// deadlines are the requests' DeadlineTimers. Every request arms one, a
// safety net that almost never fires (each attempt carries the deadline
// itself); a heap entry each would cost every request, so they are kept in
// their runs and one sweep checks them every route.DeadlineGrace while
// requests are open: a deadline fires up to that much late, on top of the
// grace it already has. A request's deadline goes with its run.
type deadlines struct {
	ring  func() // wakes the router: sends it deadlinesDue
	sweep *time.Timer
	armed bool // the sweep is set
}

// deadlinesDue wakes the router to check its requests' deadlines.
type deadlinesDue struct{}

var sweepUp = &deadlinesDue{}

// arm sets the sweep, unless it is set.
func (d *deadlines) arm() {
	if d.armed {
		return
	}
	d.armed = true
	if d.sweep == nil {
		d.sweep = time.AfterFunc(route.DeadlineGrace, d.ring)
		return
	}
	d.sweep.Reset(route.DeadlineGrace)
}

// stop stops the sweep: the router is stopping.
func (d *deadlines) stop() {
	if d.sweep != nil {
		d.sweep.Stop()
	}
}

// The heap: a binary min-heap on at, each timer knowing its index so that
// one can be removed when its request ends.

func (ts *timers) less(i, j int) bool { return ts.heap[i].at.Before(ts.heap[j].at) }

func (ts *timers) swap(i, j int) {
	h := ts.heap
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = int32(i+1), int32(j+1)
}

func (ts *timers) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !ts.less(i, parent) {
			return
		}
		ts.swap(i, parent)
		i = parent
	}
}

func (ts *timers) down(i int) bool {
	moved, n := false, len(ts.heap)
	for {
		small, l := i, 2*i+1
		if l < n && ts.less(l, small) {
			small = l
		}
		if r := l + 1; r < n && ts.less(r, small) {
			small = r
		}
		if small == i {
			return moved
		}
		ts.swap(i, small)
		i, moved = small, true
	}
}

func (ts *timers) fix(i int) {
	if !ts.down(i) {
		ts.up(i)
	}
}

func (ts *timers) remove(i int) {
	last := len(ts.heap) - 1
	if i != last {
		ts.swap(i, last)
	}
	t := ts.heap[last]
	ts.heap[last] = nil
	ts.heap = ts.heap[:last]
	t.index = 0
	if i != last {
		ts.fix(i)
	}
}
