package resilience

import (
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

func TestWitnesses(t *testing.T) {
	until := breakerT0.Add(time.Minute)
	open := func(node string, class messages.ErrorClass) PeerOpen {
		return PeerOpen{Node: node, Class: class, Until: until, Trips: 1}
	}
	type seen struct {
		at    time.Duration
		open  PeerOpen
		own   bool // a Witness of this node's own opening, not a Judge
		adopt bool
	}
	tests := []struct {
		name  string
		steps []seen
	}{
		{"upstream classes at once", []seen{
			{open: open("a", messages.ErrorClass_server_error), adopt: true},
			{open: open("a", messages.ErrorClass_overloaded), adopt: true},
			{open: open("a", messages.ErrorClass_rate_limited), adopt: true},
			{open: open("a", messages.ErrorClass_auth), adopt: true},
			{open: open("a", messages.ErrorClass_malformed), adopt: true},
			{open: open("a", messages.ErrorClass_stream_cut), adopt: true},
		}},
		{"one node's connection failures are not adopted", []seen{
			{open: open("a", messages.ErrorClass_connection)},
			{at: time.Second, open: open("a", messages.ErrorClass_timeout)},
		}},
		{"a second node within the window", []seen{
			{open: open("a", messages.ErrorClass_connection)},
			{at: 10 * time.Second, open: open("b", messages.ErrorClass_timeout), adopt: true},
		}},
		{"a second node past the window", []seen{
			{open: open("a", messages.ErrorClass_connection)},
			{at: 31 * time.Second, open: open("b", messages.ErrorClass_connection)},
		}},
		{"this node is the second witness", []seen{
			{own: true, open: PeerOpen{Node: "me"}},
			{at: time.Second, open: open("a", messages.ErrorClass_connection), adopt: true},
		}},
		{"an opening with no class needs a witness", []seen{
			{open: open("a", messages.ErrorClass_ok)},
		}},
		{"an ended period is never adopted", []seen{
			{open: PeerOpen{Node: "a", Class: messages.ErrorClass_server_error, Until: breakerT0}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Witnesses
			for i, s := range tt.steps {
				now := breakerT0.Add(s.at)
				if s.own {
					w.Witness(now, s.open.Node)
					continue
				}
				if got := w.Judge(now, s.open); got != s.adopt {
					t.Errorf("step %d: Judge(%s from %s) = %v, want %v", i, s.open.Class, s.open.Node, got, s.adopt)
				}
			}
		})
	}
}

func TestBreakerAdopt(t *testing.T) {
	until := breakerT0.Add(7 * time.Second)
	t.Run("closed opens until the peer's time, a peer reason", func(t *testing.T) {
		b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
		ts := b.Adopt(breakerT0, until, 3, messages.ErrorClass_rate_limited)
		wantBreakerSummary(t, "Adopt", ts, "closed->open peer")
		if got := breakerRefusedUntil(t, b, breakerT0.Add(time.Second)); !got.Equal(until) {
			t.Errorf("refused until %v, want %v", got, until)
		}
		if s := b.Snapshot(); s.Trips != 3 || s.Class != messages.ErrorClass_rate_limited {
			t.Errorf("snapshot trips %d class %v, want 3 rate_limited", s.Trips, s.Class)
		}
		wantBreakerSummary(t, "Tick at until", b.Tick(until), "open->half_open timer")
	})
	t.Run("open takes only a later period", func(t *testing.T) {
		b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
		b.Adopt(breakerT0, until, 1, messages.ErrorClass_server_error)
		wantBreakerSummary(t, "earlier", b.Adopt(breakerT0, until.Add(-time.Second), 1, messages.ErrorClass_server_error), "")
		wantBreakerSummary(t, "later", b.Adopt(breakerT0, until.Add(time.Second), 2, messages.ErrorClass_server_error), "open->open peer")
	})
	t.Run("operator states stay", func(t *testing.T) {
		b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
		b.ForceOpen(breakerT0, 0, messages.BreakerTransition_manual)
		wantBreakerSummary(t, "forced open", b.Adopt(breakerT0, until, 1, messages.ErrorClass_server_error), "")
		b.Disable(breakerT0)
		wantBreakerSummary(t, "disabled", b.Adopt(breakerT0, until, 1, messages.ErrorClass_server_error), "")
	})
	t.Run("an ended period changes nothing", func(t *testing.T) {
		b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
		wantBreakerSummary(t, "Adopt", b.Adopt(until, until, 1, messages.ErrorClass_server_error), "")
	})
	t.Run("peer close", func(t *testing.T) {
		b := presetBreaker(t, "bip03", BreakerConfig{}, nil)
		wantBreakerSummary(t, "closed", b.PeerClose(breakerT0), "")
		b.Adopt(breakerT0, until, 2, messages.ErrorClass_server_error)
		wantBreakerSummary(t, "open", b.PeerClose(breakerT0.Add(time.Second)), "open->closed peer")
		if s := b.Snapshot(); s.Trips != 2 {
			t.Errorf("trips after a peer close %d, want 2 (kept until TripReset)", s.Trips)
		}
	})
}
