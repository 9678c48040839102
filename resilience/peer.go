package resilience

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// DefaultWitnessWindow is Witnesses' Window when it is zero: how close
// together two nodes' node-local openings must be for either to be
// adopted.
const DefaultWitnessWindow = 30 * time.Second

// PeerOpen is another node's breaker opening for the same upstream, as a
// node learns it from the bus or from the shared state.
type PeerOpen struct {
	// Node is the node whose own evidence opened its breaker.
	Node string
	// Class caused the opening (ok when no outcome did: a ramp regression,
	// a slow-call rate).
	Class messages.ErrorClass
	// Until is when the peer's open period ends.
	Until time.Time
	// Trips is the peer's count of consecutive openings.
	Trips int
}

// Witnesses decides which peer openings a node adopts (docs/policy.md,
// "Sharing breaker state between nodes"). An opening whose class speaks of
// the upstream (Policy.PeerAtOnce) is adopted at once. Any other (a
// connection or timeout failure, which may be one node's broken network)
// is adopted only once a second node has opened for a node-local class
// within Window: one node with a bad route does not black-hole a healthy
// model for everyone.
//
// Like every policy here it is pure: time is a parameter, and one owner
// calls it. The zero value is ready, with DefaultWitnessWindow.
type Witnesses struct {
	// Window is how far apart two witnesses may be; DefaultWitnessWindow
	// when zero.
	Window time.Duration
	seen   map[string]time.Time // node -> its latest node-local opening
}

// Witness records that node opened for a node-local class at now: the
// owner's own openings count as witnesses too.
func (w *Witnesses) Witness(now time.Time, node string) {
	if w.seen == nil {
		w.seen = make(map[string]time.Time)
	}
	w.seen[node] = now
	w.forget(now)
}

// Judge records o, seen at now, and reports whether to adopt it: at once
// for an upstream-attributable class, otherwise when another node than
// o.Node witnessed within Window. An opening whose period has already
// ended is never adopted.
func (w *Witnesses) Judge(now time.Time, o PeerOpen) bool {
	if !o.Until.After(now) {
		return false
	}
	if PolicyFor(o.Class).PeerAtOnce {
		return true
	}
	w.Witness(now, o.Node)
	for node := range w.seen {
		if node != o.Node {
			return true
		}
	}
	return false
}

// forget drops witnesses older than Window.
func (w *Witnesses) forget(now time.Time) {
	win := w.Window
	if win <= 0 {
		win = DefaultWitnessWindow
	}
	for node, at := range w.seen {
		if now.Sub(at) > win {
			delete(w.seen, node)
		}
	}
}
