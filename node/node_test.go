package node

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
)

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

// startTestNode starts a node as `hive-node serve --nats-url` does,
// against an in-process NATS server, and returns a client connection.
func startTestNode(t *testing.T) (*Node, *nats.Conn) {
	t.Helper()
	return startTestNodeWith(t, "")
}

// startTestNodeWith is startTestNode with a resilience.yml.
func startTestNodeWith(t *testing.T, global string) (*Node, *nats.Conn) {
	t.Helper()
	srv := bustest.NewServer(t)
	cfg, err := config.Parse(config.GlobalFile, []byte(global), config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	n, err := Start(context.Background(), Config{Files: cfg, ID: "e2e", NATS: bus.ConnectOptions{URLs: srv.ClientURL()}, HTTPAddr: "127.0.0.1:0"},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
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

// servedBy sends one request for model and returns who served it.
func servedBy(t *testing.T, nc *nats.Conn, model string) string {
	t.Helper()
	_, resp := requestJSON(t, nc, `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
	require.Nil(t, resp.GetError())
	return resp.GetServedBy()
}

func TestNodeServesJSON(t *testing.T) {
	_, nc := startTestNode(t)
	_, resp := requestJSON(t, nc, `{"requestId":"j1","model":"primary","messages":[{"role":"user","content":"hi"}]}`)
	assert.Nil(t, resp.Error)
	assert.Equal(t, "j1", resp.RequestId)
	assert.Equal(t, "primary", resp.ServedBy)
	assert.Equal(t, "e2e", resp.Node)
	assert.Equal(t, "primary (simulated) received: hi", resp.Content)
	require.Len(t, resp.Attempts, 1)
	assert.Equal(t, messages.ErrorClass_ok, resp.Attempts[0].ErrorClass)
}

func TestNodeServesProtobuf(t *testing.T) {
	_, nc := startTestNode(t)
	body, err := proto.Marshal(&messages.InferRequest{Model: "primary", Messages: []*messages.ChatMessage{{Role: "user", Content: "hi"}}})
	require.NoError(t, err)
	msg, err := nc.Request("hive.v1.infer", body, requestLimit)
	require.NoError(t, err)
	var resp messages.InferResponse
	require.NoError(t, proto.Unmarshal(msg.Data, &resp), "a protobuf request gets a protobuf reply")
	assert.Equal(t, "primary", resp.ServedBy)
	assert.NotEmpty(t, resp.RequestId, "the node assigns a request id")
}

func TestNodeFailsOverToFallback(t *testing.T) {
	_, nc := startTestNode(t)
	_, resp := requestJSON(t, nc, `{"model":"broken","messages":[{"role":"user","content":"hi"}]}`)
	assert.Nil(t, resp.Error)
	assert.Equal(t, "backup", resp.ServedBy)
	assert.Equal(t, "backup here", resp.Content)
	// server_error is retried once on the same model, then fails over.
	require.Len(t, resp.Attempts, 3, "attempts: %v", resp.Attempts)
	for i, a := range resp.Attempts[:2] {
		assert.Equal(t, "broken", a.Model)
		assert.Equal(t, messages.ErrorClass_server_error, a.ErrorClass)
		assert.Equal(t, int32(500), a.StatusCode)
		assert.Equal(t, i == 1, a.Retried, "attempt %d retried", i)
	}
	assert.Equal(t, "backup", resp.Attempts[2].Model)
	assert.Equal(t, messages.ErrorClass_ok, resp.Attempts[2].ErrorClass)
}

func TestNodeRejectsBadInputAndKeepsServing(t *testing.T) {
	_, nc := startTestNode(t)
	tests := []struct {
		name      string
		body      string
		wantClass messages.ErrorClass
		wantCode  string
	}{
		{"malformed JSON", `{"model":`, messages.ErrorClass_bad_request, "malformed_request"},
		{"unknown field", `{"model":"primary","colour":"red"}`, messages.ErrorClass_bad_request, "malformed_request"},
		{"unknown model", `{"model":"gpt-6","messages":[{"role":"user","content":"hi"}]}`, messages.ErrorClass_bad_request, "unknown_model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, resp := requestJSON(t, nc, tt.body)
			require.NotNil(t, resp.Error, "reply %s", msg.Data)
			assert.Equal(t, tt.wantClass, resp.Error.Class)
			assert.Equal(t, tt.wantCode, resp.Error.Code)
			assert.NotEmpty(t, resp.Error.Message)
			assert.Equal(t, strconv.Itoa(tt.wantClass.Status()), msg.Header.Get(micro.ErrorCodeHeader), "service error header")

			_, ok := requestJSON(t, nc, `{"model":"primary","messages":[{"role":"user","content":"still there?"}]}`)
			assert.Equal(t, "primary", ok.ServedBy, "the node keeps serving after %s", tt.name)
		})
	}
	garbage, err := nc.Request("hive.v1.infer", []byte{0xff, 0xff, 0xff}, requestLimit)
	require.NoError(t, err)
	var resp messages.InferResponse
	require.NoError(t, proto.Unmarshal(garbage.Data, &resp))
	assert.Equal(t, "malformed_request", resp.GetError().GetCode(), "undecodable protobuf")
}

func TestNodeIsDiscoverableAndReady(t *testing.T) {
	n, nc := startTestNode(t)
	msg, err := nc.Request("$SRV.INFO.hive", nil, requestLimit)
	require.NoError(t, err)
	var info micro.Info
	require.NoError(t, json.Unmarshal(msg.Data, &info))
	assert.Equal(t, "hive", info.Name)
	// The public subject, then one per model (for nodes with other model
	// sets, which forward requests for this node's models here).
	require.NotEmpty(t, info.Endpoints)
	assert.Equal(t, "hive.v1.infer", info.Endpoints[0].Subject)
	assert.Equal(t, "hive", info.Endpoints[0].QueueGroup)
	var perModel []string
	for _, e := range info.Endpoints[1:] {
		assert.Equal(t, "hive", e.QueueGroup, "endpoint %s", e.Name)
		perModel = append(perModel, e.Subject)
	}
	assert.Equal(t, []string{"hive.v1.infer.primary", "hive.v1.infer.broken", "hive.v1.infer.backup", "hive.v1.infer.dead"}, perModel)

	res, err := http.Get(n.httpURL + "/readyz")
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

// A model hard down: every request is still served by the fallback, and
// once its breaker opens the dead model is no longer called at all.
func TestNodeRoutesAroundAHardDownModel(t *testing.T) {
	// Recovery would restart the dead model and probe it with a trial
	// call; this test is about routing alone.
	_, nc := startTestNodeWith(t, "recovery: {enabled: false}")
	deadCalls := 0
	for i := range 20 {
		_, resp := requestJSON(t, nc, `{"model":"dead","messages":[{"role":"user","content":"hi"}]}`)
		require.Nil(t, resp.Error, "request %d: %v", i, resp.Error)
		assert.Equal(t, "backup", resp.ServedBy, "request %d", i)
		for _, a := range resp.Attempts {
			if a.Model == "dead" {
				deadCalls++
			}
		}
	}
	assert.Equal(t, 3, deadCalls, "the dead model is called until its breaker opens at 3 failures, then never")
}

// A streamed request over NATS: pieces to the reply inbox in order, the
// final chunk last; a failing primary fails over before the first piece.
func TestNodeStreamsOverNATS(t *testing.T) {
	_, nc := startTestNode(t)
	text, c := streamOverNATS(t, nc, `{"model":"broken","stream":true,"messages":[{"role":"user","content":"stream please"}]}`)
	assert.Equal(t, messages.InferChunk_complete, c.Outcome, "final: %v", c)
	assert.Equal(t, "backup", c.ServedBy)
	require.NotEmpty(t, c.Attempts)
	assert.Equal(t, "broken", c.Attempts[0].Model)
	assert.Equal(t, "backup here", text, "only the fallback's answer reached the client")
}

// streamOverNATS sends a streamed request (JSON body) on hive.v1.infer and
// reads its chunks, checking they come numbered in order: it returns the
// text they carried and the final chunk.
func streamOverNATS(t *testing.T, nc *nats.Conn, body string) (string, *messages.InferChunk) {
	t.Helper()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, nc.PublishRequest("hive.v1.infer", inbox, []byte(body)))
	var text string
	for seq := uint32(1); ; seq++ {
		msg, err := sub.NextMsg(requestLimit)
		require.NoError(t, err)
		c := &messages.InferChunk{}
		require.NoError(t, protojson.Unmarshal(msg.Data, c), "chunk %s", msg.Data)
		require.Equal(t, seq, c.Seq, "chunks in order")
		text += c.Delta
		if c.Final {
			return text, c
		}
	}
}

// The node publishes its models' events on NATS as they happen: here the
// breaker of a hard-down model opening.
func TestNodePublishesBreakerEvents(t *testing.T) {
	_, nc := startTestNodeWith(t, "recovery: {enabled: false}")
	sub, err := nc.SubscribeSync("hive.v1.events.breaker.e2e.dead")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	for range 3 {
		requestJSON(t, nc, `{"model":"dead","messages":[{"role":"user","content":"hi"}]}`)
	}
	for {
		msg, err := sub.NextMsg(requestLimit)
		require.NoError(t, err, "a breaker event for dead")
		var ev messages.BreakerTransition
		require.NoError(t, bus.DecodeTyped(msg.Header, msg.Data, &ev))
		if ev.To == messages.BreakerState_open {
			assert.Equal(t, "e2e", ev.Node)
			assert.Equal(t, int32(3), ev.Evidence.GetConsecutiveFailures())
			return
		}
	}
}
