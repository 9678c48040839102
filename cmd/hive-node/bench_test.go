package main

import (
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

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
`

// BenchmarkInfer measures a whole request through a node: NATS
// request-reply, decode, router, model actor, sim provider with no latency,
// encode, reply. Parallel runs use 64 requesters on one connection.
func BenchmarkInfer(b *testing.B) {
	srv := bustest.NewServer(b)
	cfg, err := config.Parse(config.GlobalFile, nil, config.ModelsFile, []byte(benchModels))
	require.NoError(b, err)
	n, err := startNode(&serveFlags{natsURL: srv.ClientURL(), nodeID: "bench", httpAddr: "off"}, cfg, zerolog.Nop())
	require.NoError(b, err)
	b.Cleanup(func() { _ = n.shutdown() })
	nc := bustest.Connect(b, srv)

	jsonBody := []byte(`{"model":"instant","messages":[{"role":"user","content":"hi"}]}`)
	pbBody, err := proto.Marshal(&messages.InferRequest{Model: "instant", Messages: []*messages.ChatMessage{{Role: "user", Content: "hi"}}})
	require.NoError(b, err)

	for _, bc := range []struct {
		name string
		body []byte
	}{{"json", jsonBody}, {"protobuf", pbBody}} {
		b.Run(bc.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				if _, err := nc.Request("hive.v1.infer", bc.body, requestLimit); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parallel64", func(b *testing.B) {
			b.SetParallelism(32) // 32 x GOMAXPROCS(2) = 64 requesters
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := nc.Request("hive.v1.infer", bc.body, requestLimit); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
