package chaos

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

// recorder collects what a run observes, from the load workers, the event
// subscription, the timeline and the process waiters at once.
type recorder struct {
	// t0 is the start of the load; set once, before any request starts.
	t0 time.Time

	started, finished, ok atomic.Int64 // requests, for the progress line

	mu       sync.Mutex // guards requests, events, steps and waiters
	requests []Request
	events   []timedEvent
	steps    []AppliedStep
	waiters  []chan struct{} // signalled at the next event
	probes   []ProbeSample
}

// timedEvent is an event with the wall-clock time it was received: events
// arrive before the load starts too, when t0 is not known yet.
type timedEvent struct {
	at time.Time
	ev Event
}

func (rc *recorder) request(r Request) {
	rc.finished.Add(1)
	if r.Outcome == OK {
		rc.ok.Add(1)
	}
	rc.mu.Lock()
	rc.requests = append(rc.requests, r)
	rc.mu.Unlock()
}

func (rc *recorder) event(at time.Time, e Event) {
	rc.mu.Lock()
	rc.events = append(rc.events, timedEvent{at, e})
	for _, w := range rc.waiters {
		close(w)
	}
	rc.waiters = nil
	rc.mu.Unlock()
}

// awaitEvents waits until n events received since match want, or until
// done is closed; it reports whether they arrived.
func (rc *recorder) awaitEvents(since time.Time, n int, want func(Event) bool, done <-chan time.Time) bool {
	for {
		rc.mu.Lock()
		got := 0
		for _, te := range rc.events {
			if !te.at.Before(since) && want(te.ev) {
				got++
			}
		}
		if got >= n {
			rc.mu.Unlock()
			return true
		}
		w := make(chan struct{})
		rc.waiters = append(rc.waiters, w)
		rc.mu.Unlock()
		select {
		case <-w:
		case <-done:
			return false
		}
	}
}

func (rc *recorder) step(s AppliedStep) {
	rc.mu.Lock()
	rc.steps = append(rc.steps, s)
	rc.mu.Unlock()
}

// onEvent records a message of hive.v1.events.>; it runs on the
// subscription's callback and only decodes and appends.
func (rc *recorder) onEvent(s bus.Subjects) nats.MsgHandler {
	return func(m *nats.Msg) {
		now := time.Now()
		e, _ := persistence.DecodeEvent(s, m.Subject, m.Header, m.Data, now) // undecodable: Event nil, still listed
		ev := Event{Kind: e.Kind, Node: e.Node, Model: e.Model, Line: persistence.FormatEntry(e)}
		switch x := e.Event.(type) {
		case *messages.BreakerTransition:
			ev.From, ev.To, ev.Detail = x.GetFrom().String(), x.GetTo().String(), x.GetReason().String()
		case *messages.HealthChanged:
			ev.From, ev.To = x.GetFrom().String(), x.GetTo().String()
		case *messages.RecoveryEvent:
			ev.Detail = x.GetKind().String()
		case *messages.Alert:
			ev.Detail = x.GetState().String() + " " + x.GetRule()
		case *messages.AdminCommand:
			ev.Detail = m.Subject[lastDot(m.Subject)+1:]
		}
		rc.event(now, ev)
	}
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// build turns what was recorded into a Recording: offsets from t0, events
// before the load folded into the starting breaker states, disruptions
// derived from the applied steps.
func (rc *recorder) build(sc *Scenario, elapsed time.Duration, breakers0 map[string]string) *Recording {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rec := &Recording{
		Duration:  sc.Load.Duration,
		Warmup:    sc.Load.Warmup,
		Elapsed:   elapsed,
		Requests:  slices.Clone(rc.requests),
		Steps:     slices.Clone(rc.steps),
		Breakers0: map[string]string{},

		ProbeSamples: sortProbeSamples(rc.probes),
	}
	for k, v := range breakers0 {
		rec.Breakers0[k] = v
	}
	slices.SortStableFunc(rec.Requests, func(a, b Request) int { return int(a.Start - b.Start) })
	events := slices.Clone(rc.events)
	slices.SortStableFunc(events, func(a, b timedEvent) int { return a.at.Compare(b.at) })
	for _, te := range events {
		at := te.at.Sub(rc.t0)
		if at < 0 {
			if te.ev.Kind == "breaker" {
				rec.Breakers0[te.ev.Node+"/"+te.ev.Model] = te.ev.To
			}
			continue
		}
		if at > elapsed+sc.Load.Timeout {
			continue // after the load and its last replies: stopping nodes
		}
		te.ev.At = at
		rec.Events = append(rec.Events, te.ev)
	}
	for k, v := range rec.Breakers0 {
		if v == "closed" {
			delete(rec.Breakers0, k)
		}
	}
	rec.Disruptions = disruptions(rec.Steps, rec.end())
	return rec
}

// disruptions derives the periods the timeline broke something from the
// steps as applied. Each starts when its step was done (the nodes had
// answered; for a fault, plus its startAfterMs) and lasts: a fault for its
// durationMs or until a clear that names it (or clears everything) on its
// node or on all was sent; a forced-open breaker or a disabled model until
// its duration ends or the command that undoes it was sent; a killed or
// drained node until a restart of it was sent; a partition for its
// duration. So a disruption holds only the time it surely held: a node
// applies a step between its sending and its answer, and a request
// started in between may already meet the model healed.
func disruptions(steps []AppliedStep, end time.Duration) []Disruption {
	var out []Disruption
	for i, as := range steps {
		if as.Err != "" {
			continue
		}
		st := as.Step
		d := Disruption{Node: st.Node, Start: as.Done, Sent: as.Applied, End: -1}
		later := steps[i+1:]
		switch st.Action {
		case ActFault:
			f := st.Fault
			d.ID, d.Kind = f.GetId(), f.GetKind().String()
			d.Start += time.Duration(f.GetStartAfterMs()) * time.Millisecond
			d.Sent += time.Duration(f.GetStartAfterMs()) * time.Millisecond
			d.Model = f.GetModel()
			if d.Model == "" {
				d.Model = "*"
			}
			switch f.GetKind() {
			case messages.FaultSpec_kill:
				d.Model = ""
				d.End = restartOf(later, st.Node)
			case messages.FaultSpec_partition:
				d.Model = ""
			}
			if f.GetKind() != messages.FaultSpec_kill {
				if ms := f.GetDurationMs(); ms > 0 {
					d.End = d.Start + time.Duration(ms)*time.Millisecond
				}
				for _, c := range later {
					if c.Step.Action == ActClear && (c.Step.ClearID == "" || c.Step.ClearID == f.GetId()) &&
						(c.Step.Node == "all" || c.Step.Node == st.Node) {
						if d.End < 0 || c.Applied < d.End {
							d.End = max(c.Applied, d.Start)
						}
						break
					}
				}
			}
		case ActAdmin:
			d.ID, d.Kind, d.Model = "admin-"+strconv.Itoa(i+1), st.Command, st.Admin.GetModel()
			var undo []string
			switch st.Command {
			case "breaker_open":
				undo = []string{"breaker_close", "breaker_reset"}
				if ms := st.Admin.GetDurationMs(); ms > 0 {
					d.End = d.Start + time.Duration(ms)*time.Millisecond
				}
			case "model_disable":
				undo = []string{"model_enable"}
			case "drain":
				d.Model = ""
				d.End = restartOf(later, st.Node)
			default:
				continue // closing, resetting, enabling end disruptions; they are none
			}
			for _, c := range later {
				if c.Step.Action == ActAdmin && slices.Contains(undo, c.Step.Command) && c.Step.Admin.GetModel() == d.Model &&
					(c.Step.Node == "all" || c.Step.Node == st.Node) {
					if d.End < 0 || c.Applied < d.End {
						d.End = max(c.Applied, d.Start)
					}
					break
				}
			}
		case ActKill:
			d.ID, d.Kind = "kill-"+st.Node, "kill"
			d.End = restartOf(later, st.Node)
		default:
			continue
		}
		d.Ended = d.End >= 0 && d.End < end
		if !d.Ended {
			d.End = end
		}
		out = append(out, d)
	}
	return out
}

// restartOf is when a later step restarted node; -1 when none did.
func restartOf(later []AppliedStep, node string) time.Duration {
	for _, c := range later {
		if c.Step.Action == ActRestart && c.Step.Node == node && c.Err == "" {
			return c.Applied
		}
	}
	return -1
}
