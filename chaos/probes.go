package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// ProbeSample is one node's probe counters (every model's answered probes,
// from its status), read when a fault of a model began (its step done) or
// at its planned end, for probes_during_outage.
type ProbeSample struct {
	Fault   string        // the fault's id
	End     bool          // read at the fault's end; false: at its beginning
	At      time.Duration // when the reply came
	Node    string
	Started time.Time        // when the node started: tells a restarted node's fresh counters apart
	Probes  map[string]int64 // by model
}

// probeSampler reads the nodes' probe counters around the faults of a
// model; its readings at a fault's end run in the background until the
// load ends.
type probeSampler struct {
	r  *runner
	wg sync.WaitGroup
}

// around reads the counters now, as the fault step st is done, and plans a
// reading at its end when it has a duration.
func (ps *probeSampler) around(ctx context.Context, st Step, done time.Duration) {
	f := st.Fault
	if st.Action != ActFault || f == nil || f.GetKind() == messages.FaultSpec_kill || f.GetKind() == messages.FaultSpec_partition {
		return
	}
	ps.read(ctx, f.GetId(), false)
	ms := f.GetDurationMs()
	if ms <= 0 {
		return
	}
	end := done + time.Duration(f.GetStartAfterMs()+ms)*time.Millisecond
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		t := time.NewTimer(time.Until(ps.r.rec.t0.Add(end)))
		defer t.Stop()
		select {
		case <-t.C:
			ps.read(ctx, f.GetId(), true)
		case <-ctx.Done():
		}
	}()
}

// read asks every node for its status and records its probe counters.
func (ps *probeSampler) read(ctx context.Context, fault string, end bool) {
	cctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	replies, err := bus.AdminRequest(cctx, ps.r.ctl, ps.r.subjects, ps.r.address("all"), bus.CmdStatus, nil, gatherStall)
	if err != nil {
		ps.r.logf("probe counters not read for %s: %v", fault, err)
		return
	}
	at := time.Since(ps.r.rec.t0)
	for _, rep := range replies {
		st := rep.GetStatus()
		if st == nil {
			continue
		}
		s := ProbeSample{Fault: fault, End: end, At: at, Node: st.GetNode(), Started: st.GetStarted().AsTime(), Probes: map[string]int64{}}
		for _, m := range st.GetModels() {
			s.Probes[m.GetName()] = m.GetProbes()
		}
		ps.r.rec.probeSample(s)
	}
}

// probes counts the probes of the disrupted models on the disrupted nodes
// during each model disruption that ended during the load, from the
// counters read at its beginning and end.
func (m *measure) probes() (float64, string, bool) {
	var total int64
	measured := 0
	var problems []string
	for _, d := range m.modelDisruptions() {
		if !d.Ended {
			continue
		}
		n, err := m.probesDuring(d)
		if err != nil {
			problems = append(problems, d.ID+": "+err.Error())
			continue
		}
		total += n
		measured++
	}
	switch {
	case len(problems) > 0:
		return 0, "not counted: " + strings.Join(problems, "; "), false
	case measured == 0:
		return 0, "no disruption of a model ended during the load", false
	}
	return float64(total), fmt.Sprintf("over %d disruptions", measured), true
}

// probesDuring is the probes of d's models on d's nodes between the
// readings at d's beginning and end.
func (m *measure) probesDuring(d Disruption) (int64, error) {
	begin, end := map[string]ProbeSample{}, map[string]ProbeSample{}
	for _, s := range m.rec.ProbeSamples {
		if s.Fault != d.ID || !(d.Node == "all" || s.Node == d.Node) {
			continue
		}
		if s.End {
			end[s.Node] = s
		} else {
			begin[s.Node] = s
		}
	}
	if len(begin) == 0 || len(end) == 0 {
		return 0, fmt.Errorf("the nodes' probe counters were not read at its beginning and end")
	}
	var n int64
	for _, node := range sortedKeys(begin) {
		b := begin[node]
		e, ok := end[node]
		switch {
		case !ok:
			return 0, fmt.Errorf("%s did not answer at its end", node)
		case !e.Started.Equal(b.Started):
			return 0, fmt.Errorf("%s restarted during it", node)
		}
		for _, model := range sortedKeys(e.Probes) {
			if d.hits(model, node) {
				n += e.Probes[model] - b.Probes[model]
			}
		}
	}
	return n, nil
}

// primaryCalls is every call that reached a disrupted model while it was
// disrupted: the attempts on it in replies (primary_attempts_during_outage)
// plus its probes (probes_during_outage).
func (m *measure) primaryCalls() (float64, string, bool) {
	attempts, note, ok := m.primaryAttempts()
	if !ok {
		return 0, note, false
	}
	probes, note, ok := m.probes()
	if !ok {
		return 0, note, false
	}
	return attempts + probes, fmt.Sprintf("%.0f attempts + %.0f probes", attempts, probes), true
}

// mostTrafficRun is how many consecutive requests for a model are judged
// together by time_to_most_traffic.
const mostTrafficRun = 3

// mostTraffic: worst over the disruptions of a model that ended during the
// load (and were not continued by another), from the end to the start of
// the first request for the model, started after it, from which on the
// model served (answered successfully) most of every run of
// mostTrafficRun consecutive requests for it, up to the next disruption of
// the model or the end of the load, itself served (so a run that begins
// with one more miss is not counted from the miss).
func (m *measure) mostTraffic() (float64, string, bool) {
	worst, measured := -1.0, 0
	var missing []string
	for _, d := range m.modelDisruptions() {
		if !d.Ended || m.continued(d) {
			continue
		}
		until := m.rec.end()
		for _, o := range m.modelDisruptions() {
			if o.Start > d.End && o.Start < until && (o.Model == d.Model || o.Model == "*" || d.Model == "*") {
				until = o.Start
			}
		}
		var served []bool
		var starts []time.Duration
		for _, r := range m.windows[""].requests {
			if r.Start >= d.End && r.Start < until && (d.Model == "*" || r.Model == d.Model) && d.hits(r.Model, r.Node) {
				served = append(served, r.Outcome == OK && (r.ServedBy == d.Model || d.Model == "*" && r.ServedBy == r.Model))
				starts = append(starts, r.Start)
			}
		}
		i, ok := sustainedMajority(served, mostTrafficRun)
		if !ok {
			missing = append(missing, d.ID)
			continue
		}
		measured++
		worst = max(worst, (starts[i] - d.End).Seconds())
	}
	if len(missing) > 0 {
		return 0, "the model never served most of its traffic again before the load (or the next disruption) ended: " + strings.Join(missing, ", "), false
	}
	if measured == 0 {
		return 0, "no disruption of a model ended during the load", false
	}
	return worst, fmt.Sprintf("worst of %d", measured), true
}

// sustainedMajority returns the first true value from which every run of
// k consecutive values holds more true than false; false when there is
// none (fewer than k values, or the last run has no majority).
func sustainedMajority(served []bool, k int) (int, bool) {
	n := len(served)
	if n < k {
		return 0, false
	}
	good := make([]bool, n-k+1) // the run starting at j has a majority
	count := 0
	for j := range n {
		if served[j] {
			count++
		}
		if j >= k && served[j-k] {
			count--
		}
		if j >= k-1 {
			good[j-k+1] = 2*count > k
		}
	}
	i := len(good)
	for i > 0 && good[i-1] {
		i--
	}
	if i == len(good) {
		return 0, false
	}
	for !served[i] { // a run with a majority holds a true value
		i++
	}
	return i, true
}

func (rc *recorder) probeSample(s ProbeSample) {
	rc.mu.Lock()
	rc.probes = append(rc.probes, s)
	rc.mu.Unlock()
}

func sortProbeSamples(s []ProbeSample) []ProbeSample {
	out := slices.Clone(s)
	slices.SortStableFunc(out, func(a, b ProbeSample) int { return int(a.At - b.At) })
	return out
}
