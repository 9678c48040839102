package node

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
)

const benchModels = `
models:
  instant:
    provider: sim
    sim: {latency: 0ms}
    maxConcurrent: 1000
  dead:
    provider: sim
    sim: {latency: 0ms, failureRate: 1.0, errorClass: connection}
    maxConcurrent: 1000
    retry: {maxRetries: 0}
    circuitBreaker: {openDuration: 1h}
    fallbacks: [instant]
`

// BenchmarkInfer measures a whole request through a node: NATS
// request-reply, decode, router, model actor, sim provider with no latency,
// encode, reply. Parallel runs use 64 requesters on one connection.
// bare_echo is the ceiling on this machine: the same requests answered by a
// plain NATS subscriber that echoes them, in the same process.
func BenchmarkInfer(b *testing.B) {
	srv := bustest.NewServer(b)
	echo := bustest.Connect(b, srv)
	_, err := echo.QueueSubscribe("bench.echo", "echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	require.NoError(b, err)
	require.NoError(b, echo.Flush())
	cfg, err := config.Parse(config.GlobalFile, nil, config.ModelsFile, []byte(benchModels))
	require.NoError(b, err)
	n, err := Start(context.Background(), Config{Files: cfg, ID: "bench", NATS: bus.ConnectOptions{URLs: srv.ClientURL()}, HTTPAddr: "off"}, zerolog.Nop())
	require.NoError(b, err)
	b.Cleanup(func() { _ = n.Stop() })
	nc := bustest.Connect(b, srv)

	parallel64 := func(b *testing.B, subject string, body []byte) {
		b.SetParallelism(32) // 32 x GOMAXPROCS(2) = 64 requesters
		began := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := nc.Request(subject, body, requestLimit); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "req/s")
	}

	jsonBody := []byte(`{"model":"instant","messages":[{"role":"user","content":"hi"}]}`)
	pbBody, err := proto.Marshal(&messages.InferRequest{Model: "instant", Messages: []*messages.ChatMessage{{Role: "user", Content: "hi"}}})
	require.NoError(b, err)
	// "dead" always fails and falls back to "instant"; its breaker opens
	// on the first requests and stays open for the run.
	deadBody, err := proto.Marshal(&messages.InferRequest{Model: "dead", Messages: []*messages.ChatMessage{{Role: "user", Content: "hi"}}})
	require.NoError(b, err)
	for range 10 {
		_, err := nc.Request("hive.v1.infer", deadBody, requestLimit)
		require.NoError(b, err)
	}

	for _, bc := range []struct {
		name string
		body []byte
	}{{"json", jsonBody}, {"protobuf", pbBody}, {"protobuf_primary_down", deadBody}} {
		b.Run(bc.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				if _, err := nc.Request("hive.v1.infer", bc.body, requestLimit); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parallel64", func(b *testing.B) { parallel64(b, "hive.v1.infer", bc.body) })
	}
	b.Run("bare_echo/parallel64", func(b *testing.B) { parallel64(b, "bench.echo", pbBody) })
}
