package chaos

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Result is one objective, measured.
type Result struct {
	Objective Objective
	Value     float64 // in the metric's unit; meaningful when Measured
	Measured  bool    // false when the run gave nothing to measure (no request in a window, no failover...)
	Pass      bool    // Measured and the objective holds
	Note      string  // why it could not be measured, or a detail of the value
}

// MeasuredString renders the value, or "n/a" and why.
func (r Result) MeasuredString() string {
	if !r.Measured {
		return "n/a"
	}
	return formatValue(r.Objective.Metric, r.Value)
}

// Evaluate measures every objective on rec. An objective whose metric
// cannot be measured fails, with a note saying why: an objective that
// could not be checked has not been met.
func Evaluate(objectives []Objective, rec *Recording) []Result {
	m := newMeasure(rec)
	out := make([]Result, 0, len(objectives))
	for _, o := range objectives {
		v, note, ok := m.value(o.Metric)
		r := Result{Objective: o, Value: v, Measured: ok, Note: note}
		r.Pass = ok && o.holds(v)
		out = append(out, r)
	}
	return out
}

// window is a set of requests and how long they were started over.
type window struct {
	name     string
	requests []*Request
	length   time.Duration
}

type measure struct {
	rec     *Recording
	windows map[string]window // by metric suffix
}

func newMeasure(rec *Recording) *measure {
	scored := rec.scored()
	end := rec.end()
	faults := rec.faultIntervals()
	firstStart, lastEnd, allEnded := end, rec.Warmup, true
	for _, d := range rec.Disruptions {
		firstStart = min(firstStart, max(d.Start, rec.Warmup))
		lastEnd = max(lastEnd, d.End)
		allEnded = allEnded && d.Ended
	}
	inFault := func(t time.Duration) bool {
		for _, iv := range faults {
			if t >= iv[0] && t < iv[1] {
				return true
			}
		}
		return false
	}
	var faultLen time.Duration
	for _, iv := range faults {
		faultLen += iv[1] - iv[0]
	}
	w := map[string]window{
		"":              {name: "the scored load", length: end - rec.Warmup},
		"_steady":       {name: "steady state", length: firstStart - rec.Warmup},
		"_during_fault": {name: "disruptions", length: faultLen},
		"_after_fault":  {name: "after the last disruption", length: 0},
	}
	if len(rec.Disruptions) > 0 && allEnded && lastEnd < end {
		a := w["_after_fault"]
		a.length = end - lastEnd
		w["_after_fault"] = a
	}
	for _, r := range scored {
		add := func(key string) {
			x := w[key]
			x.requests = append(x.requests, r)
			w[key] = x
		}
		add("")
		switch {
		case r.Start < firstStart:
			add("_steady")
		case inFault(r.Start):
			add("_during_fault")
		}
		if w["_after_fault"].length > 0 && r.Start >= lastEnd {
			add("_after_fault")
		}
	}
	return &measure{rec: rec, windows: w}
}

// value measures one metric: its value, a note, and whether it could be
// measured at all.
func (m *measure) value(metric string) (float64, string, bool) {
	for _, base := range []string{"success_rate", "error_rate", "p50_latency", "p99_latency", "throughput", "fallback_rate"} {
		if suffix, ok := strings.CutPrefix(metric, base); ok {
			if w, known := m.windows[suffix]; known {
				return m.windowed(base, w)
			}
		}
	}
	switch metric {
	case "throughput_ratio":
		return m.ratio("throughput")
	case "latency_ratio":
		return m.ratio("p50_latency")
	case "failover_time":
		return m.failover()
	case "detection_time":
		return m.detection()
	case "recovery_time":
		return m.recovery()
	case "primary_attempts_during_outage":
		return m.primaryAttempts()
	case "model_attempts_during_outage":
		return m.modelAttempts()
	case "probes_during_outage":
		return m.probes()
	case "primary_calls_during_outage":
		return m.primaryCalls()
	case "time_to_most_traffic":
		return m.mostTraffic()
	case "truncated_successes":
		return m.count(func(r *Request) bool { return r.Outcome == Truncated }), "", true
	case "streams":
		return m.count(func(r *Request) bool { return r.Streamed }), "", true
	case "incomplete_streams":
		return m.count(func(r *Request) bool { return r.Streamed && r.ErrorCode == "stream_incomplete" }), "", true
	case "continued_streams":
		return m.count(func(r *Request) bool { return r.Streamed && r.Continuation == "complete" }), "", true
	case "lost_requests":
		return m.count(func(r *Request) bool { return r.Outcome == Lost }), "", true
	case "lost_outside_node_faults":
		return m.count(func(r *Request) bool { return r.Outcome == Lost && !m.inFlightAtNodeFault(r) }), "", true
	case "requests":
		return float64(len(m.windows[""].requests)), "", true
	case "restarts":
		return m.events(func(e Event) bool { return e.Kind == "recovery" && e.Detail == "restart" }), "", true
	case "breaker_opens":
		return m.events(func(e Event) bool { return e.Kind == "breaker" && (e.To == "open" || e.To == "forced_open") }), "", true
	case "adopted_opens":
		return m.events(func(e Event) bool { return e.Kind == "breaker" && e.To == "open" && e.Detail == "peer" }), "", true
	case "half_opens":
		return m.events(func(e Event) bool { return e.Kind == "breaker" && e.To == "half_open" }), "", true
	case "lost_jobs":
		return m.jobs(func(r *Request) bool { return r.Job.ID != "" && r.Outcome == Lost })
	case "unaccepted_jobs":
		return m.jobs(func(r *Request) bool { return r.Job.ID == "" })
	case "conflicting_results":
		return m.jobs(func(r *Request) bool { return r.Job.Results > 1 })
	case "redelivered_jobs":
		return m.jobs(func(r *Request) bool { return r.Job.Deliveries > 1 })
	case "retried_requests":
		return m.all(func(r *Request) bool { return r.Sends > 1 }), "", true
	case "model_calls":
		if !m.rec.ModelCallsCounted {
			return 0, m.rec.ModelCallsNote, false
		}
		return float64(m.rec.ModelCalls), "", true
	case "extra_model_calls":
		return m.extraCalls()
	}
	return 0, "unknown metric", false
}

func (m *measure) windowed(base string, w window) (float64, string, bool) {
	if len(w.requests) == 0 {
		return 0, "no request in " + w.name, false
	}
	var ok, fellBack int
	var lat []time.Duration
	for _, r := range w.requests {
		if r.Outcome == OK {
			ok++
			lat = append(lat, r.Latency())
			if r.ServedBy != r.Model {
				fellBack++
			}
		}
	}
	switch base {
	case "success_rate":
		return float64(ok) / float64(len(w.requests)), fmt.Sprintf("%d of %d", ok, len(w.requests)), true
	case "error_rate":
		return float64(len(w.requests)-ok) / float64(len(w.requests)), fmt.Sprintf("%d of %d", len(w.requests)-ok, len(w.requests)), true
	case "fallback_rate":
		if ok == 0 {
			return 0, "no successful request in " + w.name, false
		}
		return float64(fellBack) / float64(ok), fmt.Sprintf("%d of %d", fellBack, ok), true
	case "throughput":
		if w.length <= 0 {
			return 0, w.name + " has no length", false
		}
		return float64(ok) / w.length.Seconds(), fmt.Sprintf("%d over %s", ok, formatSeconds(w.length.Seconds())), true
	}
	if len(lat) == 0 {
		return 0, "no successful request in " + w.name, false
	}
	q := 0.5
	if base == "p99_latency" {
		q = 0.99
	}
	return percentile(lat, q).Seconds(), fmt.Sprintf("of %d", len(lat)), true
}

// ratio is the metric during disruptions over the same in steady state.
func (m *measure) ratio(base string) (float64, string, bool) {
	fault, note, ok := m.windowed(base, m.windows["_during_fault"])
	if !ok {
		return 0, note, false
	}
	steady, note, ok := m.windowed(base, m.windows["_steady"])
	if !ok {
		return 0, note, false
	}
	if steady == 0 {
		return 0, "steady state's " + base + " is 0", false
	}
	return fault / steady, fmt.Sprintf("%s / %s", formatValue(base, fault), formatValue(base, steady)), true
}

// modelDisruptions are the disruptions of one named model.
func (m *measure) modelDisruptions() []Disruption {
	var out []Disruption
	for _, d := range m.rec.Disruptions {
		if !d.nodeLevel() && d.Model != "*" {
			out = append(out, d)
		}
	}
	return out
}

// failover: worst over the disruptions of a model that was requested
// during them, from the disruption's beginning (its step sent) to the end
// of the first request for the model, started at or after it, that another
// model served.
func (m *measure) failover() (float64, string, bool) {
	worst, measured := -1.0, 0
	var missing []string
	for _, d := range m.modelDisruptions() {
		requested := false
		first := time.Duration(-1)
		for _, r := range m.windows[""].requests {
			if r.Model != d.Model || r.Start < d.from() || !d.hits(r.Model, r.Node) {
				continue
			}
			if r.Start < d.End {
				requested = true
			}
			if r.Outcome == OK && r.ServedBy != d.Model && (first < 0 || r.End < first) {
				first = r.End
			}
		}
		if !requested {
			continue
		}
		if first < 0 {
			missing = append(missing, d.ID)
			continue
		}
		measured++
		worst = max(worst, (first - d.from()).Seconds())
	}
	if len(missing) > 0 {
		return 0, "no request failed over during " + strings.Join(missing, ", "), false
	}
	if measured == 0 {
		return 0, "no disruption of a requested model", false
	}
	return worst, fmt.Sprintf("worst of %d", measured), true
}

// detection: worst over the disruptions of a model, from its beginning
// (its step sent) to the first breaker event opening its breaker before
// the disruption ended.
func (m *measure) detection() (float64, string, bool) {
	worst, measured := -1.0, 0
	var missing []string
	for _, d := range m.modelDisruptions() {
		found := false
		for _, e := range m.rec.Events {
			if e.Kind == "breaker" && e.Model == d.Model && (e.To == "open" || e.To == "forced_open") &&
				e.At >= d.from() && e.At <= d.End && (d.Node == "all" || e.Node == d.Node) {
				worst = max(worst, (e.At - d.from()).Seconds())
				found = true
				break
			}
		}
		if found {
			measured++
		} else {
			missing = append(missing, d.ID)
		}
	}
	if len(missing) > 0 {
		return 0, "no breaker opened during " + strings.Join(missing, ", "), false
	}
	if measured == 0 {
		return 0, "no disruption of a model", false
	}
	return worst, fmt.Sprintf("worst of %d", measured), true
}

// blocking reports whether a breaker state keeps traffic away.
func blocking(state string) bool {
	return state == "open" || state == "half_open" || state == "forced_open"
}

// recovery: worst over the disruptions that ended during the load (and
// were not continued by another of the same target), from their end to
// the later of (a) the first success served by the model (the
// node, for a node disruption) among requests started after the end, when
// any request could be, and (b) the closing of every breaker of the model
// that was not closed at the end.
func (m *measure) recovery() (float64, string, bool) {
	worst, measured := -1.0, 0
	var missing []string
	for _, d := range m.rec.Disruptions {
		if !d.Ended || d.End >= m.rec.end() || m.continued(d) {
			continue
		}
		back, ok := m.backAt(d)
		if !ok {
			missing = append(missing, d.ID)
			continue
		}
		measured++
		worst = max(worst, (back - d.End).Seconds())
	}
	if len(missing) > 0 {
		return 0, "not recovered before the load ended: " + strings.Join(missing, ", "), false
	}
	if measured == 0 {
		return 0, "no disruption ended during the load", false
	}
	return worst, fmt.Sprintf("worst of %d", measured), true
}

// backToBack is how soon after a disruption's end another of the same
// target may start and still count as its continuation: steps written
// back to back (a latency creeping up) end and start a few hundred
// microseconds apart.
const backToBack = 250 * time.Millisecond

// continued reports whether another disruption of the same target is
// active at d's end, or starts right after it: recovery is measured from
// the end of the last of them.
func (m *measure) continued(d Disruption) bool {
	for _, o := range m.rec.Disruptions {
		if o == d || o.End <= d.End || o.Start > d.End+backToBack {
			continue
		}
		sameTarget := d.nodeLevel() && o.nodeLevel() && o.Node == d.Node ||
			!d.nodeLevel() && !o.nodeLevel() && (o.Model == "*" || o.Model == d.Model || d.Model == "*") &&
				(o.Node == "all" || d.Node == "all" || o.Node == d.Node)
		if sameTarget {
			return true
		}
	}
	return false
}

// backAt is when the disruption d was fully recovered from.
func (m *measure) backAt(d Disruption) (time.Duration, bool) {
	back := d.End
	serves := func(r *Request) bool {
		if d.nodeLevel() {
			return r.Node == d.Node
		}
		return (d.Model == "*" || r.ServedBy == d.Model) && (d.Node == "all" || r.Node == d.Node)
	}
	candidates, first := 0, time.Duration(-1)
	for _, r := range m.rec.Requests {
		if r.Start < d.End || r.Outcome == Abandoned {
			continue
		}
		if d.nodeLevel() || d.Model == "*" || r.Model == d.Model {
			candidates++
		}
		if r.Outcome == OK && serves(&r) && (first < 0 || r.End < first) {
			first = r.End
		}
	}
	if candidates > 0 || first >= 0 {
		if first < 0 {
			return 0, false
		}
		back = max(back, first)
	}
	if d.nodeLevel() {
		return back, true
	}
	// (b): replay the breaker events up to d.End, then wait for each
	// blocking breaker of the model to close.
	state := map[[2]string]string{}
	for key, s := range m.rec.Breakers0 {
		if node, model, ok := strings.Cut(key, "/"); ok && d.hits(model, node) {
			state[[2]string{node, model}] = s
		}
	}
	closedAt := map[[2]string]time.Duration{}
	for _, e := range m.rec.Events {
		if e.Kind != "breaker" || !d.hits(e.Model, e.Node) {
			continue
		}
		key := [2]string{e.Node, e.Model}
		if e.At <= d.End {
			state[key] = e.To
			continue
		}
		if _, done := closedAt[key]; !done && blocking(state[key]) && !blocking(e.To) {
			closedAt[key] = e.At
		}
	}
	for key, s := range state {
		if !blocking(s) {
			continue
		}
		at, ok := closedAt[key]
		if !ok {
			return 0, false
		}
		back = max(back, at)
	}
	return back, true
}

// primaryAttempts counts the attempts on a model listed in replies to
// requests started while a disruption of that model was active, on a node
// it hit.
func (m *measure) primaryAttempts() (float64, string, bool) {
	return m.attemptsIn(func(d Disruption, r *Request, a Attempt) bool { return d.active(r.Start) && d.hits(a.Model, a.Node) })
}

// modelAttempts counts the attempts on a disrupted model, on whichever
// node, in requests started from the sending of its disruption to its end:
// with a shared upstream, what one node's disruption costs the others.
func (m *measure) modelAttempts() (float64, string, bool) {
	return m.attemptsIn(func(d Disruption, r *Request, a Attempt) bool {
		return d.Model == a.Model && r.Start >= d.from() && r.Start < d.End
	})
}

// attemptsIn counts the scored requests' attempts that reached their
// model (not the circuit_open refusals or skipped models) and that in
// says fall in a disruption of a model.
func (m *measure) attemptsIn(in func(d Disruption, r *Request, a Attempt) bool) (float64, string, bool) {
	ds := m.modelDisruptions()
	if len(ds) == 0 {
		return 0, "no disruption of a model", false
	}
	n := 0
	for _, r := range m.windows[""].requests {
		for _, a := range r.Attempts {
			if a.Class == "circuit_open" || a.Class == "skipped" {
				continue // refused by the model's breaker, or skipped: the call never reached the model
			}
			if slices.ContainsFunc(ds, func(d Disruption) bool { return in(d, r, a) }) {
				n++
			}
		}
	}
	return float64(n), "", true
}

// inFlightAtNodeFault reports whether r was in flight when a node was
// killed or cut from NATS: such a request may be lost with the node.
func (m *measure) inFlightAtNodeFault(r *Request) bool {
	for _, d := range m.rec.Disruptions {
		if d.nodeLevel() && r.Start <= d.Start && d.Start < r.End {
			return true
		}
	}
	return false
}

func (m *measure) count(pred func(*Request) bool) float64 {
	n := 0
	for _, r := range m.windows[""].requests {
		if pred(r) {
			n++
		}
	}
	return float64(n)
}

// all counts the requests of the whole run, warmup included, that were
// not abandoned.
func (m *measure) all(pred func(*Request) bool) float64 {
	n := 0
	for i := range m.rec.Requests {
		if r := &m.rec.Requests[i]; r.Outcome != Abandoned && pred(r) {
			n++
		}
	}
	return float64(n)
}

// jobs counts the jobs of the whole run for which pred holds; n/a for a
// load of requests.
func (m *measure) jobs(pred func(*Request) bool) (float64, string, bool) {
	n, total := 0, 0
	for i := range m.rec.Requests {
		r := &m.rec.Requests[i]
		if r.Job == nil || r.Outcome == Abandoned {
			continue
		}
		total++
		if pred(r) {
			n++
		}
	}
	if total == 0 {
		return 0, "no job in the run (a load of kind jobs has them)", false
	}
	return float64(n), fmt.Sprintf("of %d jobs", total), true
}

// extraCalls is model_calls minus the idempotency keys sent, abandoned
// requests included (their model may have run).
func (m *measure) extraCalls() (float64, string, bool) {
	if !m.rec.ModelCallsCounted {
		return 0, m.rec.ModelCallsNote, false
	}
	keys := 0
	for i := range m.rec.Requests {
		if m.rec.Requests[i].Keyed {
			keys++
		}
	}
	if keys == 0 {
		return 0, "no request carried an idempotency key (load.idempotencyKeys)", false
	}
	return float64(m.rec.ModelCalls) - float64(keys), fmt.Sprintf("%d calls for %d keys", m.rec.ModelCalls, keys), true
}

func (m *measure) events(pred func(Event) bool) float64 {
	n := 0
	for _, e := range m.rec.Events {
		if pred(e) {
			n++
		}
	}
	return float64(n)
}

// percentile is the nearest-rank q-quantile of ds (ds is reordered).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}
