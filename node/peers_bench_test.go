package node

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/bus"
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
//
// servers=1 runs the three nodes on one nats-server; servers=3 on a
// cluster of three (bustest.NewCluster), each node on its own server and
// the requests sent round-robin through one client per server (a queue
// group prefers the members on the publisher's server).
func BenchmarkDeadUpstream(b *testing.B) {
	for _, servers := range []int{1, 3} {
		for _, share := range []bool{true, false} {
			b.Run(fmt.Sprintf("servers=%d/share=%v", servers, share), func(b *testing.B) {
				benchDeadUpstream(b, servers, share)
			})
		}
	}
}

func benchDeadUpstream(b *testing.B, servers int, share bool) {
	var calls int64
	var lags []time.Duration
	global := fmt.Sprintf("cluster: {shareBreakers: %v}\n", share)
	for range b.N {
		c, lag := deadUpstreamTrip(b, servers, global)
		calls += c
		lags = append(lags, lag...)
	}
	b.ReportMetric(float64(calls)/float64(b.N), "calls/trip")
	if len(lags) > 0 {
		sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
		b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// deadUpstreamTrip starts three nodes, sends requests over NATS until
// every node has flaky open, and returns the calls flaky received and the
// propagation lags of adopted openings.
func deadUpstreamTrip(b *testing.B, servers int, global string) (int64, []time.Duration) {
	b.Helper()
	srvs := []*server.Server{bustest.NewServer(b)}
	if servers > 1 {
		srvs = bustest.NewCluster(b, servers)
	}
	ch := breakerEvents(b, srvs[0])
	ids := []string{"a", "b", "c"}
	nodes := make([]*Node, len(ids))
	for i, id := range ids {
		nodes[i] = startPeer(b, srvs[i%len(srvs)], id, peerModels("server_error", "", "1h"), global)
	}
	var conns []*nats.Conn
	for _, srv := range srvs {
		conns = append(conns, bustest.Connect(b, srv))
	}
	// The recorder's subscription must have reached every server (routes
	// gossip it; a route carries one interest per subject, however many
	// subscribers are behind it) before the first request. The nodes'
	// own subscriptions were made while the later nodes started.
	subject := bus.NewSubjects("").Breaker("a", "flaky")
	deadline := time.Now().Add(requestLimit)
	for _, srv := range srvs {
		for srv.GlobalAccount().Interest(subject) < 1 {
			if time.Now().After(deadline) {
				b.Fatalf("the recorder's subscription did not reach %s within %s", srv.Name(), requestLimit)
			}
			time.Sleep(time.Millisecond)
		}
	}
	openAt := map[string]*messages.BreakerTransition{}
	for i := 0; len(openAt) < len(ids); i++ {
		nc := conns[i%len(conns)]
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
