package main

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/node"
)

// cli runs a hive-node command against the deployment at url and returns
// its output and error.
func cli(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--nats-url", url) // --timeout: 5 s by default
	err := run(args, &out, &errOut)
	if errOut.Len() > 0 {
		t.Logf("stderr of %v:\n%s", args, errOut.String())
	}
	return out.String(), err
}

// servedBy sends one request for model and returns who served it.
func servedBy(t *testing.T, nc *nats.Conn, model string) string {
	t.Helper()
	_, resp := requestJSON(t, nc, `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
	require.Nil(t, resp.GetError())
	return resp.GetServedBy()
}

// TestAdminChangesRoutingAtOnce: the next request after an operator's
// command follows it.
func TestAdminChangesRoutingAtOnce(t *testing.T) {
	_, nc := startTestNode(t)
	url := nc.ConnectedUrl()
	require.Equal(t, "primary", servedBy(t, nc, "primary"))

	_, err := cli(t, url, "model", "disable", "primary", "--reason", "maintenance window")
	require.NoError(t, err)
	assert.Equal(t, "backup", servedBy(t, nc, "primary"), "a disabled model gets no traffic")
	_, err = cli(t, url, "model", "enable", "primary")
	require.NoError(t, err)
	assert.Equal(t, "primary", servedBy(t, nc, "primary"), "an enabled model is back at once")

	out, err := cli(t, url, "breaker", "open", "primary", "--node", "e2e")
	require.NoError(t, err)
	assert.Contains(t, out, "e2e: breaker_open primary: breaker forced_open")
	assert.Equal(t, "backup", servedBy(t, nc, "primary"), "a forced-open model gets no traffic")

	_, err = cli(t, url, "breaker", "close", "primary")
	require.NoError(t, err)
	out, err = cli(t, url, "status")
	require.NoError(t, err)
	assert.Regexp(t, `primary\s+sim\s+closed`, out)

	_, err = cli(t, url, "breaker", "open", "nosuch")
	assert.Equal(t, 1, exitCode(err), "an unknown model is refused: %v", err)
	_, err = cli(t, url, "breaker", "wiggle", "primary")
	assert.Equal(t, 2, exitCode(err), "an unknown verb is a usage error: %v", err)
}

// TestBreakerTransitionsOnceEach: a subscriber sees exactly one
// BreakerTransition per transition, in order.
func TestBreakerTransitionsOnceEach(t *testing.T) {
	// Without recovery, whose restart of dead would add a restored event.
	_, nc := startTestNodeWith(t, "recovery: {enabled: false}")
	sub, err := nc.SubscribeSync("hive.v1.events.breaker.e2e.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	// dead opens on its third consecutive failure (failureThreshold 3);
	// its requests are served by backup meanwhile.
	for range 5 {
		assert.Equal(t, "backup", servedBy(t, nc, "dead"))
	}
	url := nc.ConnectedUrl()
	for _, args := range [][]string{
		{"breaker", "close", "dead"},
		{"breaker", "open", "dead"},
		{"breaker", "reset", "dead"},
		{"breaker", "open", "backup"}, // the sentinel: nothing of dead's may come after it
	} {
		_, err := cli(t, url, args...)
		require.NoError(t, err, "%v", args)
	}
	want := []struct {
		model    string
		from, to messages.BreakerState
		reason   messages.BreakerTransition_Reason
	}{
		{"dead", messages.BreakerState_closed, messages.BreakerState_open, messages.BreakerTransition_consecutive},
		{"dead", messages.BreakerState_open, messages.BreakerState_closed, messages.BreakerTransition_manual},
		{"dead", messages.BreakerState_closed, messages.BreakerState_forced_open, messages.BreakerTransition_manual},
		{"dead", messages.BreakerState_forced_open, messages.BreakerState_closed, messages.BreakerTransition_manual},
		{"backup", messages.BreakerState_closed, messages.BreakerState_forced_open, messages.BreakerTransition_manual},
	}
	var lastGen uint32
	for i, w := range want {
		m, err := sub.NextMsg(requestLimit)
		require.NoError(t, err, "event %d", i)
		ev := &messages.BreakerTransition{}
		require.NoError(t, bus.DecodeTyped(m.Header, m.Data, ev))
		got := []any{ev.GetModel(), ev.GetFrom(), ev.GetTo()}
		require.Equal(t, []any{w.model, w.from, w.to}, got, "event %d: %v", i, ev)
		if w.reason != messages.BreakerTransition_manual {
			assert.Equal(t, w.reason, ev.GetReason(), "event %d", i)
		} else {
			assert.Equal(t, messages.BreakerTransition_manual, ev.GetReason(), "event %d", i)
			assert.Contains(t, ev.GetActor(), "(claimed)", "event %d names who asked", i)
		}
		assert.Equal(t, "e2e", ev.GetNode())
		assert.NotNil(t, ev.GetTime())
		if ev.GetModel() == "dead" {
			assert.Greater(t, ev.GetGeneration(), lastGen, "generations increase")
			lastGen = ev.GetGeneration()
		}
	}
}

// TestHealthCheck: a table of every model; exit 1 once one is unavailable.
func TestHealthCheck(t *testing.T) {
	// Without recovery, which would restart dead at once.
	_, nc := startTestNodeWith(t, "recovery: {enabled: false}")
	url := nc.ConnectedUrl()
	out, err := cli(t, url, "health-check")
	require.NoError(t, err, out)
	for _, m := range []string{"primary", "broken", "backup", "dead"} {
		assert.Regexp(t, `e2e\s+`+m+`\s+closed\s+-\s+unknown\s+100%`, out, "no call yet")
	}
	assert.Contains(t, out, "1 node(s), 4 model(s): 0 cannot take traffic, 0 node(s) draining")

	for range 3 { // dead: three failures in a row make it unavailable
		servedBy(t, nc, "dead")
	}
	out, err = cli(t, url, "health-check")
	require.Error(t, err, out)
	assert.Equal(t, 1, exitCode(err), "got %v", err)
	assert.Contains(t, err.Error(), "1 model(s) cannot take traffic")
	assert.Regexp(t, `e2e\s+dead\s+open\s+local\s+unavailable`, out)
	assert.Contains(t, out, "e2e/dead: breaker open; health unavailable")
}

// TestHealthCheckSaysWhyNothingServes: health-check exits 1, and says why,
// for every way a model stops taking traffic (a forced-open breaker, a
// disabled model, a supervisor that gave up) and for a draining node.
func TestHealthCheckSaysWhyNothingServes(t *testing.T) {
	_, nc := startTestNodeWith(t, chaosNode+"\nsupervision: {maxRestarts: 1, baseDelay: 1ms}")
	url := nc.ConnectedUrl()
	healthCheck := func(want int) string {
		t.Helper()
		out, err := cli(t, url, "health-check")
		code := 0
		if err != nil {
			code = exitCode(err)
		}
		require.Equal(t, want, code, "exit code of health-check: %v\n%s", err, out)
		return out
	}
	healthCheck(0)

	gaveUp := make(chan struct{})
	var once sync.Once
	_, err := nc.Subscribe("hive.v1.events.recovery.e2e.broken", func(msg *nats.Msg) {
		var ev messages.RecoveryEvent
		if bus.DecodeTyped(msg.Header, msg.Data, &ev) == nil && ev.GetKind() == messages.RecoveryEvent_gave_up {
			once.Do(func() { close(gaveUp) })
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	_, err = cli(t, url, "breaker", "open", "primary", "--reason", "provider incident")
	require.NoError(t, err)
	assert.Contains(t, healthCheck(1), "e2e/primary: breaker forced_open", "one breaker forced open")
	_, err = cli(t, url, "model", "disable", "backup")
	require.NoError(t, err)
	// broken panics on every call; with maxRestarts 1 its second crash
	// makes the supervisor give up. A request sent while it restarts finds
	// no model to call, so send them until the supervisor gives up.
	chaos(t, nc, false, &messages.FaultSpec{Model: "broken", Kind: messages.FaultSpec_panic})
	require.Eventually(t, func() bool {
		select {
		case <-gaveUp:
			return true
		default:
			infer(t, nc, "broken")
			return false
		}
	}, requestLimit, 20*time.Millisecond, "no gave_up RecoveryEvent of broken")

	out := healthCheck(1)
	assert.Contains(t, out, "1 node(s), 4 model(s): 3 cannot take traffic, 0 node(s) draining")
	assert.Contains(t, out, "e2e/primary: breaker forced_open")
	assert.Contains(t, out, "e2e/backup: disabled by an operator")
	assert.Contains(t, out, "e2e/broken: its supervisor gave up on it after repeated crashes")
	assert.NotContains(t, out, "e2e/dead:", "dead takes traffic: it has not failed yet")

	chaos(t, nc, true, nil)
	for _, args := range [][]string{{"breaker", "close", "primary"}, {"model", "enable", "backup"}, {"model", "enable", "broken"}} {
		_, err := cli(t, url, args...)
		require.NoError(t, err, "%v", args)
	}
	healthCheck(0)

	_, err = cli(t, url, "drain", "--node", "e2e")
	require.NoError(t, err)
	out = healthCheck(1)
	assert.Contains(t, out, "1 node(s), 4 model(s): 0 cannot take traffic, 1 node(s) draining")
	assert.Contains(t, out, "e2e: draining")
}

// TestHealthCheckNobodyThere exits 3 when no node answers.
func TestHealthCheckNobodyThere(t *testing.T) {
	_, nc := startTestNodeWith(t, "")
	var out, errOut bytes.Buffer
	err := run([]string{"health-check", "--nats-url", nc.ConnectedUrl(), "--subject-prefix", "elsewhere", "--timeout", "300ms"}, &out, &errOut)
	assert.Equal(t, 3, exitCode(err), "got %v", err)
}

// TestAuditAndBreakerSurviveRestart runs a node on its embedded server
// twice over one data directory.
func TestAuditAndBreakerSurviveRestart(t *testing.T) {
	dataDir := t.TempDir()
	cfg, err := config.Parse(config.GlobalFile, nil, config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	start := func() *node.Node {
		f := &serveFlags{natsListen: "127.0.0.1:-1", dataDir: dataDir, nodeID: "solo", httpAddr: "off"}
		n, err := startNode(f, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
		require.NoError(t, err)
		st := n.Status()
		require.True(t, st.GetPersistence(), "persistence is on with the embedded server: %s", st.GetPersistenceDetail())
		return n
	}

	n := start()
	url := n.NATSURL()
	_, err = cli(t, url, "breaker", "open", "primary", "--duration", "1h", "--reason", "bad answers")
	require.NoError(t, err)
	require.NoError(t, n.Stop())

	n = start()
	t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	url = n.NATSURL()
	out, err := cli(t, url, "status", "--json")
	require.NoError(t, err)
	reply := &messages.AdminReply{}
	require.NoError(t, protojson.Unmarshal([]byte(out), reply), out)
	for _, m := range reply.GetStatus().GetModels() {
		if m.GetName() == "primary" {
			assert.Equal(t, messages.BreakerState_forced_open, m.GetBreaker(), "the forced-open breaker came back with the node")
		}
	}

	out, err = cli(t, url, "audit", "--model", "primary")
	require.NoError(t, err)
	assert.Contains(t, out, "manual_action")
	assert.Contains(t, out, "bad answers")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.GreaterOrEqual(t, len(lines), 2, "the breaker transition and the manual action, from before the restart:\n%s", out)
}

// TestDrainMovesTrafficToOtherNodes: a drained node leaves the queue
// group; every later request is served by the other node.
func TestDrainMovesTrafficToOtherNodes(t *testing.T) {
	srv := bustest.NewServer(t)
	cfg, err := config.Parse(config.GlobalFile, nil, config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	nodes := make(map[string]*node.Node)
	for _, id := range []string{"a", "b"} {
		f := &serveFlags{natsFlags: natsFlags{natsURL: srv.ClientURL()}, nodeID: id, httpAddr: "127.0.0.1:0"}
		n, err := startNode(f, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, n.Stop()) })
		nodes[id] = n
	}
	nc := bustest.Connect(t, srv)

	out, err := cli(t, srv.ClientURL(), "drain", "--node", "a")
	require.NoError(t, err)
	assert.Contains(t, out, "a: drained")
	for range 20 {
		_, resp := requestJSON(t, nc, `{"model":"primary","messages":[{"role":"user","content":"hi"}]}`)
		require.Nil(t, resp.GetError())
		assert.Equal(t, "b", resp.GetNode(), "a drained node gets no NATS traffic")
	}
	res, err := http.Get(nodes["a"].HTTPURL() + "/readyz")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "a drained node is not ready")
	out, err = cli(t, srv.ClientURL(), "status", "--node", "a")
	require.NoError(t, err)
	assert.Contains(t, out, "draining: yes")
}

// TestDrainNamesItsNode: drain without --node or --all is refused and
// drains nothing; --all drains every node.
func TestDrainNamesItsNode(t *testing.T) {
	srv := bustest.NewServer(t)
	cfg, err := config.Parse(config.GlobalFile, nil, config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	for _, id := range []string{"a", "b"} {
		f := &serveFlags{natsFlags: natsFlags{natsURL: srv.ClientURL()}, nodeID: id, httpAddr: "off"}
		n, err := startNode(f, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	}
	url := srv.ClientURL()
	_, err = cli(t, url, "drain")
	assert.Equal(t, 2, exitCode(err), "drain without --node or --all is a usage error: %v", err)
	out, err := cli(t, url, "status")
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(out, "draining: no"), "no node drained by the refused command:\n%s", out)

	out, err = cli(t, url, "drain", "--all", "--reason", "maintenance")
	require.NoError(t, err)
	assert.Contains(t, out, "a: drained")
	assert.Contains(t, out, "b: drained")
	out, err = cli(t, url, "status")
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(out, "draining: yes"), "--all drains every node:\n%s", out)
}

// TestWithoutJetStream: a server without JetStream; the node serves and
// says it runs without persistence.
func TestWithoutJetStream(t *testing.T) {
	srv := bustest.NewServerWith(t, server.Options{})
	cfg, err := config.Parse(config.GlobalFile, nil, config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	f := &serveFlags{natsFlags: natsFlags{natsURL: srv.ClientURL()}, nodeID: "nojs", httpAddr: "off"}
	n, err := startNode(f, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	assert.False(t, n.Status().GetPersistence(), "persistence is off without JetStream")
	nc := bustest.Connect(t, srv)
	assert.Equal(t, "primary", servedBy(t, nc, "primary"), "the node serves without persistence")
	out, err := cli(t, srv.ClientURL(), "status")
	require.NoError(t, err)
	assert.Contains(t, out, "persistence: off (JetStream unavailable")
}
