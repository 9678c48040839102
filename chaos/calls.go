package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cmmv-hive/resilience/bus"
)

// nodeCalls is one node's count of model calls: the sum of its models'
// requests counters (every call a model actor admitted) and when the
// node started, which tells a restarted node's fresh counters apart.
type nodeCalls struct {
	started time.Time
	calls   int64
}

// modelCalls asks every node for its status and returns its model call
// counters; nil when no node answered.
func (r *runner) modelCalls(ctx context.Context) map[string]nodeCalls {
	cctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	replies, err := bus.AdminRequest(cctx, r.ctl, r.subjects, r.address("all"), bus.CmdStatus, nil, gatherStall)
	if err != nil {
		r.logf("model call counters not read: %v", err)
		return nil
	}
	out := map[string]nodeCalls{}
	for _, rep := range replies {
		st := rep.GetStatus()
		if st == nil {
			continue
		}
		nc := nodeCalls{started: st.GetStarted().AsTime()}
		for _, m := range st.GetModels() {
			nc.calls += m.GetRequests()
		}
		out[st.GetNode()] = nc
	}
	return out
}

// countCalls is the model calls made between two readings of the
// counters: measurable when the same nodes answered both times and none
// restarted in between (a restart begins its counters again and loses
// the calls made before it).
func countCalls(before, after map[string]nodeCalls) (int64, bool, string) {
	switch {
	case before == nil:
		return 0, false, "the nodes' counters were not read before the load"
	case after == nil:
		return 0, false, "the nodes' counters were not read after the load"
	}
	var calls int64
	var problems []string
	for _, node := range sortedKeys(before) {
		b := before[node]
		a, ok := after[node]
		switch {
		case !ok:
			problems = append(problems, node+" did not answer after the load")
		case !a.started.Equal(b.started):
			problems = append(problems, node+" restarted during the run")
		default:
			calls += a.calls - b.calls
		}
	}
	for _, node := range sortedKeys(after) {
		if _, ok := before[node]; !ok {
			problems = append(problems, node+" joined during the run")
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return 0, false, fmt.Sprintf("not counted: %s", strings.Join(problems, "; "))
	}
	return calls, true, ""
}
