package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// Timeouts of the timeline's requests to nodes.
const (
	stepTimeout = 10 * time.Second       // an inject, clear or admin command
	gatherStall = 300 * time.Millisecond // waiting for one more node's answer, as the CLI does
)

// playTimeline applies each step at its offset from t0, in order, until
// ctx ends. A step that fails and leaves the scenario meaningless (a fault
// or command that no node applied, a kill or restart that did not happen)
// aborts the run through abort; a clear that fails is recorded only.
func (r *runner) playTimeline(ctx context.Context, abort func(error)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for _, st := range r.sc.Timeline {
		if wait := time.Until(r.rec.t0.Add(st.At)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		applied := time.Since(r.rec.t0)
		acks, err := r.apply(ctx, st)
		as := AppliedStep{Step: st, Applied: applied, Done: time.Since(r.rec.t0), Acks: acks}
		if err != nil {
			as.Err = err.Error()
		}
		r.rec.step(as)
		if err == nil {
			r.samples.around(ctx, st, as.Done)
		}
		r.logf("%s  %s: %s", fmtOffset(applied), st, orOK(as.Err))
		if err != nil && st.Action != ActClear {
			abort(fmt.Errorf("timeline step at %s (%s): %w", st.At, st, err))
			return
		}
	}
}

func orOK(s string) string {
	if s == "" {
		return "ok"
	}
	return s
}

// apply carries out one step; it returns one line per node that answered.
func (r *runner) apply(ctx context.Context, st Step) ([]string, error) {
	node := r.address(st.Node)
	switch st.Action {
	case ActFault, ActClear:
		spec := st.Fault
		clear := st.Action == ActClear
		if clear {
			spec = &messages.FaultSpec{Id: st.ClearID}
		}
		cctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		acks, err := bus.ChaosRequest(cctx, r.ctl, r.subjects, node, clear, spec, gatherStall)
		if !clear && len(acks) > 0 {
			r.injected.Store(true)
		}
		lines, failed := faultAcks(acks)
		if err != nil {
			return lines, err
		}
		return r.missing(st.Node, len(acks), lines, failed)
	case ActAdmin:
		cctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		replies, err := bus.AdminRequest(cctx, r.ctl, r.subjects, node, st.Command, st.Admin, gatherStall)
		var lines, failed []string
		for _, rep := range replies {
			if !rep.GetOk() {
				failed = append(failed, fmt.Sprintf("%s: %s", rep.GetNode(), rep.GetError().GetMessage()))
				lines = append(lines, fmt.Sprintf("%s: refused: %s", rep.GetNode(), rep.GetError().GetMessage()))
				continue
			}
			lines = append(lines, fmt.Sprintf("%s: %s", rep.GetNode(), rep.GetMessage()))
		}
		if err != nil {
			return lines, err
		}
		return r.missing(st.Node, len(replies), lines, failed)
	case ActKill:
		p, err := r.node(st.Node)
		if err != nil {
			return nil, err
		}
		if err := p.kill(); err != nil {
			return nil, err
		}
		r.rec.event(time.Now(), Event{Kind: "runner", Node: st.Node, Detail: "killed", Line: st.Node + " killed (SIGKILL) by the runner"})
		return []string{st.Node + ": killed"}, nil
	case ActRestart:
		p, err := r.node(st.Node)
		if err != nil {
			return nil, err
		}
		if p.running() {
			return nil, fmt.Errorf("%s is still running", st.Node)
		}
		if _, err := p.start(ctx); err != nil {
			return nil, err
		}
		r.rec.event(time.Now(), Event{Kind: "runner", Node: st.Node, Detail: "serving", Line: st.Node + " restarted and serving"})
		return []string{st.Node + ": serving again"}, nil
	}
	return nil, fmt.Errorf("unknown action %q", st.Action)
}

// faultAcks renders acks one line each and lists the refusals.
func faultAcks(acks []*messages.FaultAck) (lines, failed []string) {
	for _, a := range acks {
		if !a.GetOk() {
			msg := fmt.Sprintf("%s: %s", a.GetNode(), a.GetError().GetMessage())
			failed = append(failed, msg)
			lines = append(lines, "refused: "+msg)
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: ok, active [%s]", a.GetNode(), strings.Join(a.GetActive(), " ")))
	}
	return lines, failed
}

// missing fails a step that a node refused. Fewer answers than the nodes
// the runner has running is noted, not failed: a partitioned node cannot
// answer.
func (r *runner) missing(node string, answered int, lines, failed []string) ([]string, error) {
	if len(failed) > 0 {
		return lines, fmt.Errorf("refused by %s", strings.Join(failed, "; "))
	}
	if want := r.running(); node == "all" && answered < want {
		lines = append(lines, fmt.Sprintf("only %d of the %d running nodes answered", answered, want))
	}
	return lines, nil
}

// address turns a step's node into the token the subjects take: "all"
// becomes the node's own name when the runner started just one, so the
// request returns at its answer instead of waiting for more.
func (r *runner) address(node string) string {
	if node == "all" && len(r.nodeOrder) == 1 {
		return r.nodeOrder[0]
	}
	return node
}
