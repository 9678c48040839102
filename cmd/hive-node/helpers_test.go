package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/node"
)

// The commands' tests run real nodes, started from serve's flags exactly
// as serve starts them, and talk to them as an operator does. The node's
// own tests are in node/.

const testModels = `
models:
  primary:
    provider: sim
    sim: {latency: 1ms}
    fallbacks: [backup]
  broken:
    provider: sim
    sim: {failureRate: 1.0, errorClass: server_error}
    retry: {baseDelay: 1ms}
    fallbacks: [backup]
  backup:
    provider: sim
    sim: {latency: 1ms, reply: "backup here"}
  dead:
    provider: sim
    sim: {failureRate: 1.0, errorClass: connection}
    retry: {maxRetries: 0}
    circuitBreaker: {failureThreshold: 3, openDuration: 1h}
    fallbacks: [backup]
`

// requestLimit bounds each request; replies normally come in milliseconds.
const requestLimit = 10 * time.Second

// startNode starts a node from serve's flags and cfg, as serve does.
func startNode(f *serveFlags, cfg *config.Config, log zerolog.Logger) (*node.Node, error) {
	return node.Start(context.Background(), nodeConfig(f, cfg, log), log)
}

// startTestNode starts a node as `hive-node serve --nats-url` does, against
// an in-process NATS server, and returns a client connection.
func startTestNode(t *testing.T) (*node.Node, *nats.Conn) {
	t.Helper()
	return startTestNodeWith(t, "")
}

// startTestNodeWith is startTestNode with a resilience.yml.
func startTestNodeWith(t *testing.T, global string) (*node.Node, *nats.Conn) {
	t.Helper()
	srv := bustest.NewServer(t)
	cfg, err := config.Parse(config.GlobalFile, []byte(global), config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	f := &serveFlags{natsFlags: natsFlags{natsURL: srv.ClientURL()}, nodeID: "e2e", httpAddr: "127.0.0.1:0"}
	n, err := startNode(f, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	return n, bustest.Connect(t, srv)
}

func requestJSON(t *testing.T, nc *nats.Conn, body string) (*nats.Msg, *messages.InferResponse) {
	t.Helper()
	msg, err := nc.Request("hive.v1.infer", []byte(body), requestLimit)
	require.NoError(t, err)
	require.Equal(t, byte('{'), msg.Data[0], "a JSON request gets a JSON reply, got %q", msg.Data)
	var resp messages.InferResponse
	require.NoError(t, protojson.Unmarshal(msg.Data, &resp), "reply %s", msg.Data)
	return msg, &resp
}
