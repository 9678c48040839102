package resilience

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrGroupConfig is returned (wrapped, naming the field and its bound) by
// GroupConfig.Validate and NewGroup.
var ErrGroupConfig = errors.New("invalid group config")

const (
	// Half the group, as Envoy's max ejection share for a small cluster.
	groupDefaultMaxOpenShare = 0.5
	// One request a second: enough to notice a member has come back, and to
	// answer some users, without feeding a storm to a failing upstream.
	groupDefaultPanicRate = 1.0
	// The slowest trickle: one request an hour.
	groupMinPanicRate = 1.0 / 3600
)

// GroupConfig is the protection of one fallback group: the models a request
// may be served by. Its zero value caps open breakers at half the group and
// lets one request a second through in panic.
type GroupConfig struct {
	// MaxOpenShare is the largest share of the group whose breakers may be
	// open at once. When most of a group fails together the cause is more
	// likely shared (the network, Hive itself) than in each model, and
	// opening every breaker would turn a partial failure into a total one.
	// One member may always open, whatever the share, so a single-model
	// group keeps its breaker. 0 means 0.5; 1 turns the cap off.
	MaxOpenShare float64
	// PanicRate is how many requests a second are let through, to the
	// least-bad member, while no member admits (panic) rather than failing
	// them all. The allowance builds up to one second's worth, at least one
	// request, so the first request of a panic goes through. A rate, not a
	// share: the load on a failing upstream stays bounded however busy the
	// group is, and a quiet group still gets its few requests tried. 0 means
	// 1; a negative value means none (every request fails fast); otherwise
	// at least one an hour (1/3600).
	PanicRate float64
}

// Validate reports the first field out of range, wrapping ErrGroupConfig.
func (c GroupConfig) Validate() error {
	switch {
	case math.IsNaN(c.MaxOpenShare) || c.MaxOpenShare < 0 || c.MaxOpenShare > 1:
		return fmt.Errorf("%w: MaxOpenShare %v, want 0 (default) to 1", ErrGroupConfig, c.MaxOpenShare)
	case math.IsNaN(c.PanicRate) || math.IsInf(c.PanicRate, 0) || (c.PanicRate > 0 && c.PanicRate < groupMinPanicRate):
		return fmt.Errorf("%w: PanicRate %v, want 0 (default), negative (none), or finite and at least %.6f (one an hour)", ErrGroupConfig, c.PanicRate, groupMinPanicRate)
	}
	return nil
}

// Group applies GroupConfig to one fallback group. The owner counts the
// members' breaker states; Group decides.
//
// A Group is owned by one actor (the router of the group): it is not safe
// for concurrent use.
type Group struct {
	maxOpenShare float64
	panicOff     bool          // PanicRate negative: nothing passes
	interval     time.Duration // the cost of one panic request, 1/PanicRate
	capacity     time.Duration // most credit the bucket holds: 1 s, at least one interval

	// The token bucket counts time, not tokens: integer nanoseconds add up
	// exactly, where ten 0.1 tokens make less than one.
	credit time.Duration
	last   time.Time // when credit was last brought up to date
	primed bool      // the bucket has been used
}

// NewGroup returns a Group with cfg, or an error wrapping ErrGroupConfig.
func NewGroup(cfg GroupConfig) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Group{maxOpenShare: cfg.MaxOpenShare, panicOff: cfg.PanicRate < 0}
	if g.maxOpenShare == 0 {
		g.maxOpenShare = groupDefaultMaxOpenShare
	}
	rate := cfg.PanicRate
	if rate == 0 {
		rate = groupDefaultPanicRate
	}
	if !g.panicOff {
		g.interval = time.Duration(float64(time.Second) / rate)
		g.capacity = max(g.interval, time.Second)
	}
	return g, nil
}

// MayOpen reports whether one more breaker may open when open of the
// group's total members are open already (forced opens included). When it
// may not, the owner keeps that breaker closed, so the model keeps taking
// its share while the rest of the group is down. A forced open (bad
// credentials, an operator) is not a trip and does not ask. A model outside
// any group (total <= 0) may always open.
func (g *Group) MayOpen(open, total int) bool {
	if total <= 0 || open <= 0 {
		return true
	}
	// The small slack absorbs rounding in share x total (0.3 x 10).
	return float64(open+1) <= g.maxOpenShare*float64(total)+1e-9
}

// Panic reports whether the group is in panic: no member admits a call
// (closed, ramping, or half-open with a trial permit free). The router then
// asks AdmitInPanic for each request, and sends an admitted one to the
// least-bad member: the one whose open period ends first, say, or the best
// health score; the router knows those, Group does not.
func (g *Group) Panic(admitting int) bool { return admitting <= 0 }

// AdmitInPanic reports whether a request arriving at now may go through
// while the group is in panic, spending one request's worth of a bucket
// refilled at PanicRate. The bucket starts full. A clock that steps back
// adds nothing.
func (g *Group) AdmitInPanic(now time.Time) bool {
	if g.panicOff {
		return false
	}
	if !g.primed {
		g.primed, g.credit, g.last = true, g.capacity, now
	}
	if dt := now.Sub(g.last); dt > 0 {
		g.credit = min(g.capacity, g.credit+min(dt, g.capacity))
		g.last = now
	}
	if g.credit < g.interval {
		return false
	}
	g.credit -= g.interval
	return true
}
