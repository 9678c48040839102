package node

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
)

// benchPeriods is how many open periods of the dead upstream each trip
// of BenchmarkDeadUpstream counts half-open trials over.
const benchPeriods = 3

// BenchmarkDeadUpstream measures three nodes over loopback in front of
// one shared upstream, an OpenAI-compatible server (httptest) answering
// every chat call 500 and counting them, behind a fallback (a sim model),
// with a breaker of 3 consecutive failures, a constant open period of
// 300 ms and one trial call per half-open period; requests go one at a
// time, round-robin over one client per server, so load is spread over
// the nodes:
//   - calls/trip: calls that reached the dead upstream, all nodes
//     together, until every node had it open (sharing on: about
//     threshold + nodes - 1; off: about threshold x nodes);
//   - trials/period: calls that reached it over benchPeriods of the
//     following open periods (counted on node a), per period: the trials
//     the deployment ran per open period (with the lease: 1; off: one
//     per node);
//   - p50-ms, p99-ms (sharing on): from the opening on one node to the
//     adopted opening on another, by the events' own times.
//
// servers=1 runs the three nodes on one nats-server; servers=3 on a
// cluster of three (bustest.NewCluster), each node on its own server (a
// queue group prefers the members on the publisher's server, hence one
// client per server).
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
	var calls, trials int64
	var lags []time.Duration
	global := fmt.Sprintf("cluster: {shareBreakers: %v}\n", share)
	for range b.N {
		c, tr, lag := deadUpstreamTrip(b, servers, global)
		calls += c
		trials += tr
		lags = append(lags, lag...)
	}
	b.ReportMetric(float64(calls)/float64(b.N), "calls/trip")
	b.ReportMetric(float64(trials)/float64(b.N*benchPeriods), "trials/period")
	if len(lags) > 0 {
		sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
		b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// deadUpstream is an OpenAI-compatible upstream that is hard down: every
// chat call gets a 500, and is counted.
type deadUpstream struct {
	calls atomic.Int64
	url   string
}

func newDeadUpstream(tb testing.TB) *deadUpstream {
	tb.Helper()
	u := &deadUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
			http.NotFound(w, r)
			return
		}
		u.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"message":"upstream down","type":"server_error"}}`))
	}))
	tb.Cleanup(srv.Close)
	u.url = srv.URL + "/v1"
	return u
}

// deadUpstreamModels is a node's models-resilience.yml: flaky is the
// dead upstream, in front of backup. Every node names the same endpoint,
// so flaky has one identity on all of them.
func deadUpstreamModels(endpoint string) string {
	return `
models:
  flaky:
    provider: openai
    endpoint: ` + endpoint + `
    upstreamModel: gpt-5
    retry: {maxRetries: 0}
    circuitBreaker: {failureThreshold: 3, openDuration: 300ms, multiplier: 1, openJitter: 0, halfOpenPermits: 1, successThreshold: 1}
    healthCheck: {enabled: false}
    fallbacks: [backup]
  backup:
    provider: sim
    sim: {latency: 1ms}
`
}

// deadUpstreamTrip starts three nodes, sends requests over NATS until
// every node has flaky open and then until node a has seen benchPeriods+1
// of its open periods end, and returns the calls the upstream received
// in each phase and the propagation lags of adopted openings.
func deadUpstreamTrip(b *testing.B, servers int, global string) (calls, trials int64, lags []time.Duration) {
	b.Helper()
	srvs := []*server.Server{bustest.NewServer(b)}
	if servers > 1 {
		srvs = bustest.NewCluster(b, servers)
	}
	upstream := newDeadUpstream(b)
	ch := breakerEvents(b, srvs[0])
	ids := []string{"a", "b", "c"}
	for i, id := range ids {
		startPeer(b, srvs[i%len(srvs)], id, deadUpstreamModels(upstream.url), global)
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
	ended := 0 // node a's open periods that ended, after every node had flaky open
	i := 0
	send := func() {
		nc := conns[i%len(conns)]
		i++
		_, _ = nc.Request("hive.v1.infer", []byte(`{"model":"flaky","messages":[{"role":"user","content":"hi"}]}`), requestLimit)
	}
	drain := func() {
		for {
			select {
			case ev := <-ch.ch:
				ch.all = append(ch.all, ev)
				if ev.GetModel() != "flaky" {
					continue
				}
				if len(openAt) == len(ids) && ev.GetNode() == "a" && ev.GetFrom() == messages.BreakerState_open {
					ended++
				}
				if ev.GetTo() == messages.BreakerState_open && openAt[ev.GetNode()] == nil {
					openAt[ev.GetNode()] = ev
				}
			default:
				return
			}
		}
	}
	for len(openAt) < len(ids) {
		send()
		drain()
	}
	calls = upstream.calls.Load()
	// Trials are counted from the end of a's first open period to the
	// end of its (benchPeriods+1)th: whether a takes a period's trial
	// (after its event) or follows another node's (before it), the
	// window holds one period's trials benchPeriods times.
	giveUp := time.Now().Add(time.Minute)
	from := int64(-1)
	for ended <= benchPeriods {
		if time.Now().After(giveUp) {
			b.Fatalf("node a saw %d of %d open periods of flaky end within a minute", ended, benchPeriods+1)
		}
		send()
		drain()
		if ended >= 1 && from < 0 {
			from = upstream.calls.Load()
		}
	}
	trials = upstream.calls.Load() - from
	for _, ev := range openAt {
		if ev.GetReason() != messages.BreakerTransition_peer {
			continue
		}
		if first := openAt[ev.GetOrigin()]; first != nil {
			lags = append(lags, ev.GetTime().AsTime().Sub(first.GetTime().AsTime()))
		}
	}
	return calls, trials, lags
}
