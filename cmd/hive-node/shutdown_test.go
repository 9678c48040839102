package main

import (
	"time"

	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmv-hive/resilience/messages"
)

const slowModels = `
models:
  slow:
    provider: sim
    sim: {latency: 2s}
`

// inFlight reads the node's in-flight count from the micro stats of its
// infer endpoint.
func inFlight(t *testing.T, nc *nats.Conn) int {
	t.Helper()
	msg, err := nc.Request("$SRV.STATS.hive", nil, requestLimit)
	require.NoError(t, err)
	var stats micro.Stats
	require.NoError(t, json.Unmarshal(msg.Data, &stats))
	require.NotEmpty(t, stats.Endpoints)
	require.Equal(t, "infer", stats.Endpoints[0].Name, "the public endpoint comes first; the per-model ones carry the same node-wide data")
	var data struct {
		InFlight int `json:"in_flight"`
	}
	require.NoError(t, json.Unmarshal(stats.Endpoints[0].Data, &data))
	return data.InFlight
}

// startSlowNode runs the binary with one model that takes 2 s to answer,
// sends it a request, and returns once the node holds it in flight.
func startSlowNode(t *testing.T, grace string) (cmdWait func() error, signal func(), lines <-chan logLine, reply <-chan *nats.Msg) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "models-resilience.yml"), []byte(slowModels), 0o644))
	cmd, lines := startBinary(t, "--config-dir", dir, "--nats-listen", "127.0.0.1:-1", "--http-addr", "off",
		"--data-dir", t.TempDir(), "--node-id", "slow1", "--shutdown-grace", grace)
	ready := waitFor(t, lines, "hive node serving")
	nc, err := nats.Connect(ready["nats"].(string))
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	replies := make(chan *nats.Msg, 1)
	sub, err := nc.ChanSubscribe(nc.NewRespInbox(), replies)
	require.NoError(t, err)
	require.NoError(t, nc.PublishRequest("hive.v1.infer", sub.Subject, []byte(`{"model":"slow","messages":[{"role":"user","content":"take your time"}]}`)))
	// Polling: being in flight emits no event.
	require.Eventually(t, func() bool { return inFlight(t, nc) == 1 }, requestLimit, 5*time.Millisecond)
	return cmd.Wait, func() { require.NoError(t, cmd.Process.Signal(syscall.SIGTERM)) }, lines, replies
}

func awaitReply(t *testing.T, replies <-chan *nats.Msg) *messages.InferResponse {
	t.Helper()
	select {
	case msg := <-replies:
		var resp messages.InferResponse
		require.NoError(t, protojson.Unmarshal(msg.Data, &resp), "reply %s", msg.Data)
		return &resp
	case <-time.After(requestLimit):
		t.Fatal("the in-flight request got no reply")
		return nil
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	wait, sigterm, lines, replies := startSlowNode(t, "30s")
	sigterm()
	waitFor(t, lines, "shutting down: no new requests, finishing in-flight ones")
	resp := awaitReply(t, replies)
	assert.Nil(t, resp.Error, "the request in flight at SIGTERM completes")
	assert.Equal(t, "slow", resp.ServedBy)
	waitFor(t, lines, "stopped")
	assert.NoError(t, wait(), "exit status")
}

func TestShutdownPastGraceAnswersWithError(t *testing.T) {
	wait, sigterm, lines, replies := startSlowNode(t, "1ms")
	sigterm()
	resp := awaitReply(t, replies)
	require.NotNil(t, resp.Error, "a request still running when the grace ends is answered, not dropped")
	assert.Equal(t, "node_stopping", resp.Error.Code)
	var said []string
	for l := range lines { // until the process closes stderr
		if m, ok := l["message"].(string); ok {
			said = append(said, m)
		}
	}
	assert.Contains(t, said, "hive-node: stop ingress: 1 in-flight requests abandoned: context deadline exceeded",
		"the node says that it gave up on a request")
	assert.Error(t, wait(), "exit status is 1 after abandoning a request")
}
