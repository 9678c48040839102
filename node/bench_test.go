package node

import (
	"context"
	"fmt"
	"sync/atomic"
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
// bare_echo_json and bare_echo_protobuf are the ceiling on this machine:
// the same requests answered by a plain NATS subscriber that echoes them,
// in the same process, serial and with 64 requesters.
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
	for _, bc := range []struct {
		name string
		body []byte
	}{{"json", jsonBody}, {"protobuf", pbBody}} {
		b.Run("bare_echo_"+bc.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				if _, err := nc.Request("bench.echo", bc.body, requestLimit); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("bare_echo_"+bc.name+"/parallel64", func(b *testing.B) { parallel64(b, "bench.echo", bc.body) })
	}
}

// BenchmarkJobs measures a durable job through a node beside a plain
// request, in one run, on the same sim model ("instant", no latency) and
// the same in-process JetStream server: infer is one hive.v1.infer
// request-reply; infer_keyed the same with an idempotency key of its own
// (the key's claim and answer in the idempotency bucket); job is
// hive.v1.jobs.submit and then hive.v1.jobs.get waiting for the end
// (bus.SubmitJob, bus.GetJob): the record's three writes, the stream, a
// worker's pull, the model, the result's announcement and the ack;
// job_submit the submission alone, until the job is stored (the job then
// runs behind the next ones). The difference of the serial figures is the
// latency a job adds; the parallel ones (64 clients on one connection, a
// node with 64 job slots) give the throughput.
func BenchmarkJobs(b *testing.B) {
	srv := bustest.NewServer(b)
	cfg, err := config.Parse(config.GlobalFile, []byte("jobs: {slots: 64}\n"), config.ModelsFile, []byte(benchModels))
	require.NoError(b, err)
	n, err := Start(context.Background(), Config{Files: cfg, ID: "bench", NATS: bus.ConnectOptions{URLs: srv.ClientURL()}, HTTPAddr: "off"}, zerolog.Nop())
	require.NoError(b, err)
	b.Cleanup(func() { _ = n.Stop() })
	require.NotNil(b, n.jobs, "jobs run on the node")
	nc := bustest.Connect(b, srv)
	subjects := bus.NewSubjects("")
	var seq atomic.Int64
	request := func(keyed bool) *messages.InferRequest {
		req := &messages.InferRequest{Model: "instant", Messages: []*messages.ChatMessage{{Role: "user", Content: "hi"}}}
		if keyed {
			req.IdempotencyKey = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), seq.Add(1))
		}
		return req
	}
	infer := func(keyed bool) func() error {
		return func() error {
			body, err := proto.Marshal(request(keyed))
			if err != nil {
				return err
			}
			m, err := nc.Request(subjects.Infer(), body, requestLimit)
			if err != nil {
				return err
			}
			resp := &messages.InferResponse{}
			if err := proto.Unmarshal(m.Data, resp); err != nil || resp.GetError() != nil {
				return fmt.Errorf("infer: %v %v", err, resp.GetError())
			}
			return nil
		}
	}
	job := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
		defer cancel()
		acc, err := bus.SubmitJob(ctx, nc, subjects, request(false))
		if err != nil || acc.GetError() != nil {
			return fmt.Errorf("submit: %v %v", err, acc.GetError())
		}
		st, err := bus.GetJob(ctx, nc, subjects, acc.GetJobId(), requestLimit)
		if err != nil || st.GetState() != messages.JobStatus_done {
			return fmt.Errorf("job %s: %v, state %s", acc.GetJobId(), err, st.GetState())
		}
		return nil
	}
	submit := func() error { // the acknowledgement alone: the job then runs behind
		ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
		defer cancel()
		acc, err := bus.SubmitJob(ctx, nc, subjects, request(false))
		if err != nil || acc.GetError() != nil {
			return fmt.Errorf("submit: %v %v", err, acc.GetError())
		}
		return nil
	}
	for _, bc := range []struct {
		name string
		do   func() error
	}{{"infer", infer(false)}, {"infer_keyed", infer(true)}, {"job", job}, {"job_submit", submit}} {
		b.Run(bc.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				if err := bc.do(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parallel64", func(b *testing.B) {
			b.SetParallelism(32) // 32 x GOMAXPROCS(2) = 64 clients
			began := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.do(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "ops/s")
		})
	}
}
