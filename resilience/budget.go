package resilience

import (
	"errors"
	"fmt"
	"math"
)

// ErrBudgetConfig is returned (wrapped, naming the argument and its bound) by
// NewBudget.
var ErrBudgetConfig = errors.New("invalid retry budget")

// Budget defaults: retries plus hedges at most 20 % of the requests in
// flight, but always 3, so that a quiet group can still retry.
const (
	budgetDefaultRatio = 0.2
	budgetDefaultMin   = 3
)

// Budget caps the extra calls (retries and hedges) of one fallback group, so
// that a failing model does not multiply the load on the others: at most
// ratio x the requests in flight, and always at least a floor. Its zero value is
// ready to use with the defaults (0.2 and 3).
//
// A Budget is owned by one actor and is not safe for concurrent use.
// Unbalanced calls (Finish without Start, Release without TryAcquire) are
// ignored: the counts never go negative.
type Budget struct {
	ratio    float64
	floor    int
	inFlight int // requests between Start and Finish
	extra    int // retries and hedges between TryAcquire and Release
}

// NewBudget returns a budget allowing ratio x in-flight requests, and at
// least floor, retries and hedges at once. ratio 0 means 0.2, otherwise it
// must be in (0, 1]; floor 0 means 3, a negative floor means none.
func NewBudget(ratio float64, floor int) (*Budget, error) {
	if math.IsNaN(ratio) || ratio < 0 || ratio > 1 {
		return nil, fmt.Errorf("%w: ratio %v, want 0 (default) or in (0, 1]", ErrBudgetConfig, ratio)
	}
	return &Budget{ratio: ratio, floor: floor}, nil
}

// Start records a request entering the group.
func (b *Budget) Start() { b.inFlight++ }

// Finish records a request leaving the group; extra calls without a request
// are ignored.
func (b *Budget) Finish() {
	if b.inFlight > 0 {
		b.inFlight--
	}
}

// TryAcquire reports whether a retry or hedge may go now, and if so counts
// it until Release.
func (b *Budget) TryAcquire() bool {
	if b.extra >= b.Allowed() {
		return false
	}
	b.extra++
	return true
}

// Release returns a permit taken by TryAcquire; extra calls are ignored.
func (b *Budget) Release() {
	if b.extra > 0 {
		b.extra--
	}
}

// Allowed is how many retries and hedges may run at once with the current
// requests in flight: ratio x in flight rounded down, and at least the
// floor.
func (b *Budget) Allowed() int {
	ratio, floor := b.ratio, b.floor
	if ratio == 0 {
		ratio = budgetDefaultRatio
	}
	switch {
	case floor == 0:
		floor = budgetDefaultMin
	case floor < 0:
		floor = 0
	}
	// The epsilon keeps 0.2 x 10 at 2 despite float rounding.
	return max(int(ratio*float64(b.inFlight)+1e-9), floor)
}

// InFlight is the number of requests between Start and Finish.
func (b *Budget) InFlight() int { return b.inFlight }

// Active is the number of retries and hedges between TryAcquire and Release.
func (b *Budget) Active() int { return b.extra }
