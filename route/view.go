package route

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// View is what the router knows of a model: enough to skip it, weight it
// or hedge against it without asking. Model actors send a new one whenever
// it changes.
type View struct {
	Up        bool // the actor runs (false while restarting or given up)
	Enabled   bool // in rotation (false: an operator disabled it)
	Breaker   messages.BreakerState
	OpenUntil time.Time
	Ramp      int     // percent of traffic admitted while ramping back
	Score     float64 // health score, for weighted routing
	P95       time.Duration
}

// Admits reports whether the model may be sent traffic at now. An open
// breaker whose period has ended admits: the model's own breaker then
// decides whether a trial goes through.
func (v *View) Admits(now time.Time) bool {
	if !v.Up || !v.Enabled {
		return false
	}
	switch v.Breaker {
	case messages.BreakerState_open:
		return !now.Before(v.OpenUntil)
	case messages.BreakerState_forced_open:
		return false
	}
	return true
}

// callable reports whether the model may be called past its breaker: it
// runs, is in rotation and nobody forced its breaker open.
func (v *View) callable() bool {
	return v.Up && v.Enabled && v.Breaker != messages.BreakerState_forced_open
}

// Member is one model as every group it belongs to sees it. Groups share
// one Member per model: the owner updates View in place when the model
// reports a change, and every group sees it.
type Member struct {
	Name   string
	Weight float64 // static weight for Weighted; <= 0 means 1
	// Retry is the model's own same-model retry policy: a retry follows the
	// failed model's, whichever group the request is in.
	Retry resilience.RetryConfig
	// ContextWindow and MaxOutput are the model's known limits in tokens
	// (docs/context-windows.md); 0 is unknown, and an unknown limit holds
	// every request.
	ContextWindow int
	MaxOutput     int
	// Prefill says the model takes an assistant prefill: a cut stream it
	// continues is continued by Prefill, else by Instruction.
	Prefill bool
	View    View
}

// NewMember returns a member whose view is up, enabled, closed, at full
// traffic and of neutral score: a call sent before the model first reports
// waits in its actor's mailbox.
func NewMember(name string, weight float64, retry resilience.RetryConfig) *Member {
	if weight <= 0 {
		weight = 1
	}
	return &Member{Name: name, Weight: weight, Retry: retry, View: View{Up: true, Enabled: true, Ramp: 100, Score: 0.5}}
}
