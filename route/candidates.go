package route

import (
	"slices"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// candidate is a member in the order one request tries them.
type candidate struct {
	member *Member
	index  int // in the group's members, for Weighted's scores
	// lastResort marks a member kept in by the group's open cap: it is
	// called past its open breaker (a Trickle).
	lastResort bool
}

// candidates orders a group's members for one request: the strategy's
// order over the members that admit traffic now (a ramping member only for
// its share), then the members the group's open cap keeps in as a last
// resort, least bad first.
func (g *Group) candidates(now time.Time) []candidate {
	if !g.strategy.reorders() && g.allAdmit(now) {
		return g.plain // the common case: shared, read-only, no allocation
	}
	admitting := make([]candidate, 0, len(g.members))
	var closedOut []candidate
	for i, m := range g.members {
		v := &m.View
		switch {
		case !v.Admits(now):
			if v.callable() {
				closedOut = append(closedOut, candidate{member: m, index: i})
			}
		case v.Ramp < 100 && g.random()*100 >= float64(v.Ramp):
			// Ramping back: this request goes elsewhere.
		default:
			admitting = append(admitting, candidate{member: m, index: i})
		}
	}
	switch g.strategy {
	case Weighted:
		admitting = g.weighted(admitting)
	case Random:
		for i := len(admitting) - 1; i > 0; i-- {
			j := int(g.random() * float64(i+1))
			admitting[i], admitting[j] = admitting[j], admitting[i]
		}
	}
	// The open cap: while some member admits, members beyond the share
	// allowed open still get traffic as a last resort, least bad first.
	// MayOpen(open, total) asks whether one more may open when open are.
	total := len(g.members)
	if len(admitting) > 0 && len(closedOut) > 0 && !g.protect.MayOpen(len(closedOut)-1, total) {
		slices.SortFunc(closedOut, func(a, b candidate) int { return a.member.View.OpenUntil.Compare(b.member.View.OpenUntil) })
		allowed := len(closedOut)
		for allowed > 0 && !g.protect.MayOpen(allowed-1, total) {
			allowed--
		}
		for _, c := range closedOut[:len(closedOut)-allowed] {
			c.lastResort = true
			admitting = append(admitting, c)
		}
	}
	return admitting
}

// allAdmit reports whether every member admits all traffic now.
func (g *Group) allAdmit(now time.Time) bool {
	for _, m := range g.members {
		if !m.View.Admits(now) || m.View.Ramp < 100 {
			return false
		}
	}
	return true
}

// weighted orders cs by smooth weighted round robin over weight x health
// score x ramp share: the first pick rotates fairly by weight, the rest
// follow by weight.
func (g *Group) weighted(cs []candidate) []candidate {
	if len(cs) < 2 {
		return cs
	}
	weight := func(c candidate) float64 {
		v := &c.member.View
		return c.member.Weight * max(v.Score, 0.01) * float64(max(v.Ramp, 1)) / 100
	}
	total, best := 0.0, -1
	for i, c := range cs {
		w := weight(c)
		total += w
		g.swrr[c.index] += w
		if best < 0 || g.swrr[c.index] > g.swrr[cs[best].index] {
			best = i
		}
	}
	g.swrr[cs[best].index] -= total
	out := make([]candidate, 0, len(cs))
	out = append(out, cs[best])
	rest := append(cs[:best:best], cs[best+1:]...)
	slices.SortStableFunc(rest, func(a, b candidate) int {
		switch wa, wb := weight(a), weight(b); {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return 0
	})
	return append(out, rest...)
}

// leastBad is the member of the group whose open period ends first, among
// those that may be called past their breaker and can hold r.
func (g *Group) leastBad(r *Request) (*Member, bool) {
	var best *Member
	for _, m := range g.members {
		if !m.View.callable() || r.limit(m) != messages.Attempt_called {
			continue
		}
		if best == nil || m.View.OpenUntil.Before(best.View.OpenUntil) {
			best = m
		}
	}
	return best, best != nil
}
