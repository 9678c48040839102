package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/cmmv-hive/resilience/route"
)

// fired is one timer the router's clock fired.
type fired struct {
	run   uint64
	which route.Timer
}

// The router's timers fire by the injected clock, earliest first; a
// request's timers go when it ends, and a re-armed timer fires once, at
// its new time.
func TestRouterTimers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	// ring would wake the router: the Go timer runs on real time, a minute
	// away, and is stopped at cleanup.
	ts := timers{now: func() time.Time { return now }, ring: func() {}}
	t.Cleanup(ts.stop)
	a, b, c := &run{id: 1}, &run{id: 2}, &run{id: 3}
	ts.arm(a, route.WaitTimer, t0.Add(time.Minute))
	ts.arm(b, route.HedgeTimer, t0.Add(20*time.Millisecond))
	ts.arm(c, route.RetryTimer, t0.Add(time.Second))
	ts.arm(b, route.WaitTimer, t0.Add(time.Minute+time.Second))
	ts.arm(a, route.RetryTimer, t0.Add(500*time.Millisecond))
	ts.arm(c, route.RetryTimer, t0.Add(2*time.Second)) // re-armed: later
	ts.drop(b)                                         // b ended: neither of its timers fires

	var got []fired
	fire := func(rn *run, which route.Timer) { got = append(got, fired{rn.id, which}) }
	ts.due(fire)
	assert.Empty(t, got, "nothing is due at t0")

	now = t0.Add(2 * time.Second)
	ts.due(fire)
	assert.Equal(t, []fired{{1, route.RetryTimer}, {3, route.RetryTimer}}, got, "due by 2s, earliest first")

	got = nil
	now = t0.Add(time.Hour)
	ts.due(fire)
	assert.Equal(t, []fired{{1, route.WaitTimer}}, got, "b's wait was dropped with b")
	assert.Empty(t, ts.heap, "every timer fired or dropped")
}
