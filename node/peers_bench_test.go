package node

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
)

// BenchmarkDeadUpstream measures, on three nodes of one NATS server over
// loopback, a shared upstream hard down (server_error on every node, a
// breaker of 3 consecutive failures) behind a fallback, with load spread
// over the nodes by the queue group:
//   - calls/trip: calls that reached the dead upstream, all nodes
//     together, until every node had it open (sharing on: about
//     threshold + nodes - 1; off: about threshold x nodes);
//   - p50-ms, p99-ms (sharing on): from the opening on one node to the
//     adopted opening on another, by the events' own times.
func BenchmarkDeadUpstream(b *testing.B) {
	for _, share := range []bool{true, false} {
		b.Run(fmt.Sprintf("share=%v", share), func(b *testing.B) {
			var calls int64
			var lags []time.Duration
			global := fmt.Sprintf("cluster: {shareBreakers: %v}\n", share)
			for range b.N {
				c, lag := deadUpstreamTrip(b, global)
				calls += c
				lags = append(lags, lag...)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/trip")
			if len(lags) > 0 {
				sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
				b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// deadUpstreamTrip starts three nodes, sends requests over NATS until
// every node has flaky open, and returns the calls flaky received and the
// propagation lags of adopted openings.
func deadUpstreamTrip(b *testing.B, global string) (int64, []time.Duration) {
	b.Helper()
	srv := bustest.NewServer(b)
	ch := breakerEvents(b, srv)
	ids := []string{"a", "b", "c"}
	nodes := make([]*Node, len(ids))
	for i, id := range ids {
		nodes[i] = startPeer(b, srv, id, peerModels("server_error", "", "1h"), global)
	}
	nc := bustest.Connect(b, srv)
	openAt := map[string]*messages.BreakerTransition{}
	for len(openAt) < len(ids) {
		_, _ = nc.Request("hive.v1.infer", []byte(`{"model":"flaky","messages":[{"role":"user","content":"hi"}]}`), requestLimit)
		for drained := false; !drained; {
			select {
			case ev := <-ch.ch:
				ch.all = append(ch.all, ev)
				if ev.GetModel() == "flaky" && ev.GetTo() == messages.BreakerState_open && openAt[ev.GetNode()] == nil {
					openAt[ev.GetNode()] = ev
				}
			default:
				drained = true
			}
		}
	}
	var calls int64
	for _, n := range nodes {
		st := n.Status()
		for _, m := range st.GetModels() {
			if m.GetName() == "flaky" {
				calls += m.GetFailures() + m.GetSuccesses()
			}
		}
	}
	var lags []time.Duration
	for _, ev := range openAt {
		if ev.GetReason() != messages.BreakerTransition_peer {
			continue
		}
		if first := openAt[ev.GetOrigin()]; first != nil {
			lags = append(lags, ev.GetTime().AsTime().Sub(first.GetTime().AsTime()))
		}
	}
	return calls, lags
}
