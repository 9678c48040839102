package node

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
)

// peerModels is one node's models-resilience.yml: flaky and other fail
// with the given classes ("" for never), in front of backup. The same
// names on every node are the same upstream (sim models' identity).
func peerModels(flaky, other string, open string) string {
	sim := func(class string) string {
		if class == "" {
			return "{latency: 1ms}"
		}
		return "{failureRate: 1.0, errorClass: " + class + "}"
	}
	breaker := "{failureThreshold: 3, openDuration: " + open + "}"
	return `
models:
  flaky:
    provider: sim
    sim: ` + sim(flaky) + `
    retry: {maxRetries: 0}
    circuitBreaker: ` + breaker + `
    healthCheck: {enabled: true, interval: 1h}
    fallbacks: [backup]
  other:
    provider: sim
    sim: ` + sim(other) + `
    retry: {maxRetries: 0}
    circuitBreaker: ` + breaker + `
    fallbacks: [backup]
  backup:
    provider: sim
    sim: {latency: 1ms}
`
}

// startPeer starts node id on srv with its own models and HTTP, recovery
// off (so only breakers and peers move the state).
func startPeer(t testing.TB, srv *server.Server, id, models, global string) *Node {
	t.Helper()
	cfg, err := config.Parse(config.GlobalFile, []byte("recovery: {enabled: false}\n"+global), config.ModelsFile, []byte(models))
	require.NoError(t, err)
	n, err := Start(context.Background(), Config{Files: cfg, ID: id, NATS: bus.ConnectOptions{URLs: srv.ClientURL()}, HTTPAddr: "127.0.0.1:0"},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	return n
}

// breakers records every node's breaker transitions, in arrival order.
type breakers struct {
	t   testing.TB
	ch  chan *messages.BreakerTransition
	all []*messages.BreakerTransition
}

// breakerEvents follows every node's breaker transitions.
func breakerEvents(t testing.TB, srv *server.Server) *breakers {
	t.Helper()
	nc := bustest.Connect(t, srv)
	r := &breakers{t: t, ch: make(chan *messages.BreakerTransition, 4096)}
	subs, err := bus.SubscribeHealth(nc, bus.NewSubjects(""), zerolog.Nop(), func(m proto.Message) {
		if ev, ok := m.(*messages.BreakerTransition); ok {
			r.ch <- ev
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	})
	return r
}

// await returns the first event so far or to come matching want, and how
// many events had arrived up to and with it; it fails after a deadline.
func (r *breakers) await(what string, want func(*messages.BreakerTransition) bool) (*messages.BreakerTransition, int) {
	r.t.Helper()
	for i, ev := range r.all {
		if want(ev) {
			return ev, i + 1
		}
	}
	deadline := time.After(requestLimit)
	for {
		select {
		case ev := <-r.ch:
			r.all = append(r.all, ev)
			if want(ev) {
				return ev, len(r.all)
			}
		case <-deadline:
			r.t.Fatalf("no breaker event %s within %s", what, requestLimit)
			return nil, 0
		}
	}
}

func opened(node, model string, reason messages.BreakerTransition_Reason) func(*messages.BreakerTransition) bool {
	return func(ev *messages.BreakerTransition) bool {
		return ev.GetNode() == node && ev.GetModel() == model && ev.GetTo() == messages.BreakerState_open && ev.GetReason() == reason
	}
}

// drive sends requests for model to n over HTTP until stop is closed.
func drive(t *testing.T, n *Node, model string, stop <-chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := http.Post(n.HTTPURL()+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				return
			}
			_ = resp.Body.Close()
		}
	}()
}

// openOn drives n's model until its breaker opens, and returns the event.
func openOn(t *testing.T, r *breakers, n *Node, model string) *messages.BreakerTransition {
	t.Helper()
	stop := make(chan struct{})
	drive(t, n, model, stop)
	defer close(stop)
	ev, _ := r.await("opening "+model+" on "+n.cfg.ID, opened(n.cfg.ID, model, messages.BreakerTransition_consecutive))
	return ev
}

func modelStatus(t *testing.T, n *Node, model string) *messages.ModelStatus {
	t.Helper()
	for _, m := range n.Status().GetModels() {
		if m.GetName() == model {
			return m
		}
	}
	t.Fatalf("node %s has no model %s", n.cfg.ID, model)
	return nil
}

// TestPeersAdoptAnUpstreamOpening: three nodes, one upstream; only a's
// calls fail (server_error). b and c open too, reason peer, with a as the
// origin, for a's period, without calling the model themselves.
func TestPeersAdoptAnUpstreamOpening(t *testing.T) {
	srv := bustest.NewServer(t)
	ch := breakerEvents(t, srv)
	a := startPeer(t, srv, "a", peerModels("server_error", "", "1h"), "")
	b := startPeer(t, srv, "b", peerModels("", "", "1h"), "")
	c := startPeer(t, srv, "c", peerModels("", "", "1h"), "")

	own := openOn(t, ch, a, "flaky")
	assert.Equal(t, messages.ErrorClass_server_error, own.GetClass())
	assert.Equal(t, "sim flaky", own.GetIdentity())
	for _, n := range []*Node{b, c} {
		ev, _ := ch.await("peer opening on "+n.cfg.ID, opened(n.cfg.ID, "flaky", messages.BreakerTransition_peer))
		assert.Equal(t, "a", ev.GetOrigin())
		assert.True(t, ev.GetOpenUntil().AsTime().Equal(own.GetOpenUntil().AsTime()), "adopted until %v, want a's %v", ev.GetOpenUntil().AsTime(), own.GetOpenUntil().AsTime())
		st := modelStatus(t, n, "flaky")
		assert.Equal(t, messages.BreakerState_open, st.GetBreaker())
		assert.Equal(t, "a", st.GetBreakerOrigin())
		assert.True(t, st.GetBreakerAdopted())
		assert.Zero(t, st.GetRequests()-st.GetSuccesses()-st.GetFailures(), "no call in flight")
		// The counter is bumped beside the event, not before it: polled.
		labels := map[string]string{"node": n.cfg.ID, "model": "flaky", "origin": "a"}
		require.Eventually(t, func() bool { return counter(scrape(t, n), "hive_breaker_peer_opens_total", labels) == 1 },
			requestLimit, 10*time.Millisecond, "hive_breaker_peer_opens_total%v", labels)
	}
	st := modelStatus(t, a, "flaky")
	assert.Equal(t, "a", st.GetBreakerOrigin())
	assert.False(t, st.GetBreakerAdopted(), "a's own opening is local")
}

// TestPeersWantASecondWitnessForNodeLocalFailures: a's connection to the
// upstream fails, the others' does not. b does not adopt a's opening (it
// has handled it: a's next event, on the same subscription, is adopted);
// once c's connection fails too, b adopts, with c as the origin.
func TestPeersWantASecondWitnessForNodeLocalFailures(t *testing.T) {
	srv := bustest.NewServer(t)
	ch := breakerEvents(t, srv)
	a := startPeer(t, srv, "a", peerModels("connection", "server_error", "1h"), "")
	b := startPeer(t, srv, "b", peerModels("", "", "1h"), "")
	c := startPeer(t, srv, "c", peerModels("connection", "", "1h"), "")

	openOn(t, ch, a, "flaky")
	openOn(t, ch, a, "other")
	_, upTo := ch.await("b adopting a's other", opened("b", "other", messages.BreakerTransition_peer))
	for _, ev := range ch.all[:upTo] {
		assert.False(t, ev.GetNode() == "b" && ev.GetModel() == "flaky", "b took a's connection failure alone: %v", ev)
	}
	st := modelStatus(t, b, "flaky")
	assert.Equal(t, messages.BreakerState_closed, st.GetBreaker(), "one node's broken network is not adopted")
	assert.Equal(t, messages.BreakerState_closed, modelStatus(t, c, "flaky").GetBreaker())

	openOn(t, ch, c, "flaky")
	ev, _ := ch.await("b adopting flaky on a second witness", opened("b", "flaky", messages.BreakerTransition_peer))
	assert.Equal(t, "c", ev.GetOrigin())
	assert.Equal(t, messages.ErrorClass_connection, ev.GetClass())
}

// TestAJoiningNodeReadsTheSharedState: a node that starts after a's
// opening has the model open (adopted from a) as soon as Start returns,
// before any traffic and with no event to wait for.
func TestAJoiningNodeReadsTheSharedState(t *testing.T) {
	srv := bustest.NewServer(t)
	ch := breakerEvents(t, srv)
	a := startPeer(t, srv, "a", peerModels("server_error", "", "1h"), "")
	openOn(t, ch, a, "flaky")
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	require.NoError(t, a.store.Breakers().Flush(ctx))

	late := startPeer(t, srv, "late", peerModels("", "", "1h"), "")
	st := modelStatus(t, late, "flaky")
	assert.Equal(t, messages.BreakerState_open, st.GetBreaker(), "the joining node knows flaky is dead")
	assert.Equal(t, "a", st.GetBreakerOrigin())
	assert.True(t, st.GetBreakerAdopted())
	assert.Zero(t, st.GetRequests())
}

// TestOneNodeTakesTheTrials: when an adopted open period ends, one node
// of three takes the half-open trial by the lease; the others stay open
// until it reports, then follow its outcome (closed, or reopened for the
// grown period).
func TestOneNodeTakesTheTrials(t *testing.T) {
	srv := bustest.NewServer(t)
	ch := breakerEvents(t, srv)
	nodes := []*Node{
		startPeer(t, srv, "a", peerModels("server_error", "", "300ms"), ""),
		startPeer(t, srv, "b", peerModels("", "", "300ms"), ""),
		startPeer(t, srv, "c", peerModels("", "", "300ms"), ""),
	}
	openOn(t, ch, nodes[0], "flaky")
	// Each node's first transition of flaky after the opening (a's own,
	// b's and c's adoption): half-open on the lease holder, a peer
	// transition (following the holder's outcome) on the others.
	next := map[string]*messages.BreakerTransition{}
	for _, n := range nodes {
		id := n.cfg.ID // b and c adopted from closed, so From open skips that
		ch.await("flaky leaving its first open period on "+id, func(ev *messages.BreakerTransition) bool {
			if ev.GetNode() != id || ev.GetModel() != "flaky" || ev.GetFrom() != messages.BreakerState_open {
				return false
			}
			next[id] = ev
			return true
		})
	}
	holders := 0
	for id, ev := range next {
		switch {
		case ev.GetTo() == messages.BreakerState_half_open:
			holders++
		case ev.GetReason() == messages.BreakerTransition_peer:
		default:
			t.Errorf("node %s left the open period by %v->%v %v, want half-open (the holder) or a peer transition", id, ev.GetFrom(), ev.GetTo(), ev.GetReason())
		}
	}
	assert.Equal(t, 1, holders, "half-open trials per open period, cluster-wide: %v", next)
}

// TestPeersAdoptAcrossAClusteredDeployment: the same rule as
// TestPeersAdoptAnUpstreamOpening on a deployment of three nats-servers in
// a cluster, each node on its own server: the events cross the routes.
func TestPeersAdoptAcrossAClusteredDeployment(t *testing.T) {
	servers := bustest.NewCluster(t, 3)
	ch := breakerEvents(t, servers[0])
	a := startPeer(t, servers[0], "a", peerModels("server_error", "", "1h"), "")
	// b's and c's subscriptions reach a's server by gossip over the routes,
	// one interest per route however many subscribers are behind it: a's
	// server counts two more for a's breaker subject once both arrived.
	subject := bus.NewSubjects("").Breaker("a", "flaky")
	local := servers[0].GlobalAccount().Interest(subject)
	b := startPeer(t, servers[1], "b", peerModels("", "", "1h"), "")
	c := startPeer(t, servers[2], "c", peerModels("", "", "1h"), "")
	require.Eventually(t, func() bool { return servers[0].GlobalAccount().Interest(subject) >= local+2 },
		requestLimit, time.Millisecond, "b's and c's interest in a's breaker events reached a's server")
	own := openOn(t, ch, a, "flaky")
	for _, n := range []*Node{b, c} {
		ev, _ := ch.await("peer opening on "+n.cfg.ID, opened(n.cfg.ID, "flaky", messages.BreakerTransition_peer))
		assert.Equal(t, "a", ev.GetOrigin())
		assert.True(t, ev.GetOpenUntil().AsTime().Equal(own.GetOpenUntil().AsTime()))
		st := modelStatus(t, n, "flaky")
		assert.Equal(t, messages.BreakerState_open, st.GetBreaker())
		assert.True(t, st.GetBreakerAdopted())
		assert.Zero(t, st.GetRequests(), "%s never called the dead upstream", n.cfg.ID)
	}
}

// TestAReconnectingNodeReadsTheSharedState: b is cut from NATS while a
// finds flaky dead, so a's event never reaches b; when b's connection
// comes back it reads the shared state again and has flaky open, adopted
// from a, without calling it.
func TestAReconnectingNodeReadsTheSharedState(t *testing.T) {
	srv := bustest.NewServer(t)
	ch := breakerEvents(t, srv)
	a := startPeer(t, srv, "a", peerModels("server_error", "", "1h"), "")
	b := startPeer(t, srv, "b", peerModels("", "", "1h"), "chaos: {enabled: true}\n")
	require.NoError(t, b.chaos.partition.Cut())
	require.Eventually(t, func() bool { return b.nc.IsReconnecting() }, requestLimit, time.Millisecond, "b cut from NATS")

	openOn(t, ch, a, "flaky")
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	require.NoError(t, a.store.Breakers().Flush(ctx))
	assert.Equal(t, messages.BreakerState_closed, modelStatus(t, b, "flaky").GetBreaker(), "b missed a's opening")

	require.NoError(t, b.chaos.partition.Heal())
	ev, _ := ch.await("b adopting a's opening after its reconnect", opened("b", "flaky", messages.BreakerTransition_peer))
	assert.Equal(t, "a", ev.GetOrigin())
	st := modelStatus(t, b, "flaky")
	assert.Equal(t, messages.BreakerState_open, st.GetBreaker())
	assert.True(t, st.GetBreakerAdopted())
	assert.Zero(t, st.GetRequests(), "b never called the dead upstream")
}

// TestOneNodeProbesAnOpenModel: while an upstream is open on three nodes
// (a's opening, adopted by b and c), only the node holding its trial lease
// probes it early; the others lost the lease and do not ask again before
// its TTL (30 s, longer than the test), so they send no probe.
func TestOneNodeProbesAnOpenModel(t *testing.T) {
	srv := bustest.NewServer(t)
	ch := breakerEvents(t, srv)
	global := "healthCheck: {openInterval: 20ms}\n"
	nodes := []*Node{
		startPeer(t, srv, "a", peerModels("server_error", "", "1h"), global),
		startPeer(t, srv, "b", peerModels("server_error", "", "1h"), global),
		startPeer(t, srv, "c", peerModels("server_error", "", "1h"), global),
	}
	openOn(t, ch, nodes[0], "flaky")
	for _, n := range nodes[1:] {
		ch.await("peer opening on "+n.cfg.ID, opened(n.cfg.ID, "flaky", messages.BreakerTransition_peer))
	}
	probes := func() (total int64, probing []string) {
		for _, n := range nodes {
			if p := modelStatus(t, n, "flaky").GetProbes(); p > 0 {
				total += p
				probing = append(probing, n.cfg.ID)
			}
		}
		return total, probing
	}
	// Failed probes publish nothing: the counters are polled.
	require.Eventually(t, func() bool { total, _ := probes(); return total >= 10 }, requestLimit, 10*time.Millisecond,
		"10 early probes of flaky in the deployment")
	_, probing := probes()
	assert.Len(t, probing, 1, "nodes that probed the open model: %v", probing)
	for _, n := range nodes {
		assert.Equal(t, messages.BreakerState_open, modelStatus(t, n, "flaky").GetBreaker(), "failed probes keep %s open", n.cfg.ID)
	}
}

// TestAHealedUpstreamIsBackEverywhereOnOneProbe: flaky fails on every
// node (an injected fault) until a opens and b and c adopt it, for an
// hour; once it heals, the one node holding the trial lease half-opens it
// on an early probe (reason probe) and closes it on its trials, and the
// others follow its close (reason peer) without a half-open of their own:
// back everywhere long before the hour, on one node's probes.
func TestAHealedUpstreamIsBackEverywhereOnOneProbe(t *testing.T) {
	srv := bustest.NewServer(t)
	ch := breakerEvents(t, srv)
	global := "chaos: {enabled: true}\nhealthCheck: {openInterval: 50ms}\n"
	nodes := []*Node{
		startPeer(t, srv, "a", peerModels("", "", "1h"), global),
		startPeer(t, srv, "b", peerModels("", "", "1h"), global),
		startPeer(t, srv, "c", peerModels("", "", "1h"), global),
	}
	for _, n := range nodes {
		n.chaos.faults.Inject(&messages.FaultSpec{Id: "down", Model: "flaky", Kind: messages.FaultSpec_error,
			ErrorClass: messages.ErrorClass_server_error}, time.Now())
	}
	openOn(t, ch, nodes[0], "flaky")
	for _, n := range nodes[1:] {
		ch.await("peer opening on "+n.cfg.ID, opened(n.cfg.ID, "flaky", messages.BreakerTransition_peer))
	}
	// Heal only once the holder has probed 3 times: by then every node has
	// asked for the lease (each asks before its first probe, 40-50 ms in),
	// so the others lost it and wait out its TTL. (Healed earlier, a node
	// asking just as the holder's close released the lease could win it
	// and half-open too, before the close reached it: harmless, but not
	// what this test pins down.)
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if modelStatus(t, n, "flaky").GetProbes() >= 3 {
				return true
			}
		}
		return false
	}, requestLimit, 10*time.Millisecond, "3 failed early probes on the lease holder")
	for _, n := range nodes {
		n.chaos.faults.ClearAll()
	}

	next := map[string]*messages.BreakerTransition{}
	for _, n := range nodes {
		id := n.cfg.ID
		ch.await("flaky leaving open on "+id, func(ev *messages.BreakerTransition) bool {
			if ev.GetNode() != id || ev.GetModel() != "flaky" || ev.GetFrom() != messages.BreakerState_open {
				return false
			}
			next[id] = ev
			return true
		})
	}
	var prober string
	for id, ev := range next {
		switch {
		case ev.GetTo() == messages.BreakerState_half_open && ev.GetReason() == messages.BreakerTransition_probe && ev.GetActor() == "probe":
			assert.Empty(t, prober, "a second node half-opened on a probe: %s and %s", prober, id)
			prober = id
		case ev.GetTo() == messages.BreakerState_closed && ev.GetReason() == messages.BreakerTransition_peer:
		default:
			t.Errorf("node %s left open by %v->%v %v (actor %q), want an early probe's half-open (one node) or the holder's close (the others)",
				id, ev.GetFrom(), ev.GetTo(), ev.GetReason(), ev.GetActor())
		}
	}
	require.NotEmpty(t, prober, "no node half-opened flaky on a probe")
	closed, _ := ch.await("the prober closing flaky", func(ev *messages.BreakerTransition) bool {
		return ev.GetNode() == prober && ev.GetModel() == "flaky" && ev.GetFrom() == messages.BreakerState_half_open
	})
	assert.Equal(t, messages.BreakerState_closed, closed.GetTo(), "the prober's trials close flaky")
	for _, n := range nodes {
		assert.Equal(t, messages.BreakerState_closed, modelStatus(t, n, "flaky").GetBreaker(), "flaky on %s", n.cfg.ID)
	}
}
