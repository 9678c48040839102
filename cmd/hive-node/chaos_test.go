package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
)

// chaosNode is the resilience.yml of the chaos tests: chaos on, no
// recovery (its restarts would add events), quick same-model retries.
const chaosNode = "chaos: {enabled: true}\nrecovery: {enabled: false}\nretry: {baseDelay: 1ms}"

// chaos injects (or clears) a fault on the test node and returns its ack.
func chaos(t *testing.T, nc *nats.Conn, clear bool, spec *messages.FaultSpec) *messages.FaultAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	acks, err := bus.ChaosRequest(ctx, nc, bus.Subjects{}, "e2e", clear, spec, time.Second)
	require.NoError(t, err)
	require.Len(t, acks, 1)
	require.True(t, acks[0].GetOk(), "ack %v", acks[0])
	return acks[0]
}

func infer(t *testing.T, nc *nats.Conn, model string) *messages.InferResponse {
	t.Helper()
	_, resp := requestJSON(t, nc, `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
	return resp
}

// TestChaosErrorFaultFailsOver: an error fault on primary sends its
// traffic to backup; clearing it brings primary back.
func TestChaosErrorFaultFailsOver(t *testing.T) {
	_, nc := startTestNodeWith(t, chaosNode)
	require.Equal(t, "primary", infer(t, nc, "primary").GetServedBy())

	ack := chaos(t, nc, false, &messages.FaultSpec{Model: "primary", Kind: messages.FaultSpec_error, StatusCode: 503})
	assert.Equal(t, "e2e", ack.GetNode())
	assert.Equal(t, []string{ack.GetFaultId()}, ack.GetActive())
	for i := range 2 {
		resp := infer(t, nc, "primary")
		require.Nil(t, resp.GetError(), "request %d", i)
		assert.Equal(t, "backup", resp.GetServedBy(), "request %d", i)
		require.NotEmpty(t, resp.GetAttempts())
		first := resp.GetAttempts()[0]
		assert.Equal(t, "primary", first.GetModel())
		assert.Equal(t, messages.ErrorClass_overloaded, first.GetErrorClass())
		assert.Equal(t, int32(503), first.GetStatusCode())
	}
	assert.Equal(t, "backup", infer(t, nc, "backup").GetServedBy(), "backup itself is untouched")

	cleared := chaos(t, nc, true, &messages.FaultSpec{Id: ack.GetFaultId()})
	assert.Empty(t, cleared.GetActive())
	assert.Equal(t, "primary", infer(t, nc, "primary").GetServedBy(), "cleared: primary serves again")
}

// TestChaosPanicRestartsTheModel: a panic in primary's provider restarts
// its actor (a RecoveryEvent restart); the caller is answered, by the
// fallback, never left hanging.
func TestChaosPanicRestartsTheModel(t *testing.T) {
	_, nc := startTestNodeWith(t, chaosNode)
	events, err := nc.SubscribeSync("hive.v1.events.recovery.e2e.primary")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	ack := chaos(t, nc, false, &messages.FaultSpec{Model: "primary", Kind: messages.FaultSpec_panic})
	resp := infer(t, nc, "primary") // requestJSON fails the test when no answer comes
	if resp.GetError() == nil {
		assert.Equal(t, "backup", resp.GetServedBy())
	}
	for {
		msg, err := events.NextMsg(requestLimit)
		require.NoError(t, err, "no restart event")
		var ev messages.RecoveryEvent
		require.NoError(t, bus.DecodeTyped(msg.Header, msg.Data, &ev))
		if ev.GetKind() == messages.RecoveryEvent_restart {
			assert.Equal(t, "crash", ev.GetTrigger())
			assert.Contains(t, ev.GetDetail(), "injected fault "+ack.GetFaultId())
			break
		}
	}

	chaos(t, nc, true, nil)
	require.Eventually(t, func() bool { return infer(t, nc, "primary").GetServedBy() == "primary" },
		requestLimit, 20*time.Millisecond, "the restarted primary serves once the fault is cleared")
}

// TestChaosOffAnswersNothing: without chaos.enabled nothing listens on the
// chaos subjects.
func TestChaosOffAnswersNothing(t *testing.T) {
	_, nc := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	_, err := bus.ChaosRequest(ctx, nc, bus.Subjects{}, "all", false, &messages.FaultSpec{Kind: messages.FaultSpec_kill}, time.Second)
	assert.ErrorIs(t, err, bus.ErrNoNodes)
}

// TestChaosPartition: a partitioned node leaves NATS (requests find no
// responder) and comes back by itself when the partition ends.
func TestChaosPartition(t *testing.T) {
	n, nc := startTestNodeWith(t, chaosNode)
	require.Equal(t, "primary", infer(t, nc, "primary").GetServedBy())
	chaos(t, nc, false, &messages.FaultSpec{Id: "cut", Kind: messages.FaultSpec_partition, DurationMs: 1500})

	body := []byte(`{"model":"primary","messages":[{"role":"user","content":"hi"}]}`)
	require.Eventually(t, func() bool {
		_, err := nc.Request("hive.v1.infer", body, 200*time.Millisecond)
		return errors.Is(err, nats.ErrNoResponders)
	}, requestLimit, 10*time.Millisecond, "the partitioned node leaves NATS")
	assert.Error(t, n.Ready(), "a partitioned node is not ready")

	cameBack := time.Now()
	require.Eventually(t, func() bool {
		msg, err := nc.Request("hive.v1.infer", body, 200*time.Millisecond)
		return err == nil && len(msg.Data) > 0
	}, requestLimit, 20*time.Millisecond, "the node comes back when the partition ends")
	t.Logf("served again %v after the node was seen gone", time.Since(cameBack).Round(time.Millisecond))
	assert.NoError(t, n.Ready())
	assert.Equal(t, "primary", infer(t, nc, "primary").GetServedBy())
	assert.Empty(t, chaos(t, nc, true, nil).GetActive(), "the partition is over")
}

// TestChaosPartitionNeedsAnExternalServer: a node running the embedded
// server is that server; a partition of it is refused.
func TestChaosPartitionNeedsAnExternalServer(t *testing.T) {
	cfg, err := config.Parse(config.GlobalFile, []byte(chaosNode), config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	f := &serveFlags{nodeID: "e2e", natsListen: "127.0.0.1:-1", httpAddr: "off", dataDir: t.TempDir()}
	n, err := startNode(f, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	nc, err := nats.Connect(n.NATSURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	acks, err := bus.ChaosRequest(ctx, nc, bus.Subjects{}, "e2e", false,
		&messages.FaultSpec{Kind: messages.FaultSpec_partition, DurationMs: 1000}, time.Second)
	require.NoError(t, err)
	require.Len(t, acks, 1)
	assert.Equal(t, "unsupported", acks[0].GetError().GetCode())
	assert.Contains(t, acks[0].GetError().GetMessage(), "--nats-url")
	assert.Equal(t, "primary", infer(t, nc, "primary").GetServedBy(), "the node serves on")
}

// TestChaosKillIsKillDashNine: the real binary acknowledges a kill, then
// dies of SIGKILL.
func TestChaosKillIsKillDashNine(t *testing.T) {
	srv := bustest.NewServer(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, config.GlobalFile), []byte(chaosNode+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, config.ModelsFile), []byte(testModels), 0o600))
	cmd, lines := startBinary(t, "--config-dir", dir, "--nats-url", srv.ClientURL(), "--http-addr", "off",
		"--data-dir", t.TempDir(), "--node-id", "k1")
	waitFor(t, lines, "hive node serving")

	nc := bustest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	acks, err := bus.ChaosRequest(ctx, nc, bus.Subjects{}, "k1", false, &messages.FaultSpec{Kind: messages.FaultSpec_kill}, time.Second)
	require.NoError(t, err)
	require.Len(t, acks, 1)
	require.True(t, acks[0].GetOk(), "the kill is acknowledged first: %v", acks[0])

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		ws, ok := ee.Sys().(syscall.WaitStatus)
		require.True(t, ok)
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the node died of %v, want SIGKILL", ee)
	case <-time.After(requestLimit):
		t.Fatal("the node is still alive after its kill")
	}
}
