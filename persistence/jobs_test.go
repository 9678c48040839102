package persistence_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

// model is a Dispatcher that counts its calls and answers with the
// request's content; a request whose content is "hold" waits until release
// is closed (or its context ends).
type model struct {
	calls   atomic.Int32
	release chan struct{}
	started chan string // request contents, as calls begin
}

func newModel() *model {
	return &model{release: make(chan struct{}), started: make(chan string, 64)}
}

func (m *model) Dispatch(ctx context.Context, req *messages.InferRequest, sink messages.Sink) {
	m.calls.Add(1)
	content := req.GetMessages()[0].GetContent()
	if req.GetStream() {
		go func() {
			sink.Piece(req.GetModel(), "answer ")
			sink.Piece(req.GetModel(), "to "+content)
			sink.Final(&messages.InferResponse{ServedBy: req.GetModel()})
		}()
		return
	}
	m.started <- content
	go func() {
		if content == "hold" {
			select {
			case <-m.release:
			case <-ctx.Done():
				sink.Final(&messages.InferResponse{Error: messages.Failure(messages.ErrorClass_cancelled, "cancelled", "cancelled")})
				return
			}
		}
		sink.Final(&messages.InferResponse{RequestId: req.GetRequestId(), Content: "answer to " + content, ServedBy: req.GetModel()})
	}()
}

func (m *model) awaitStart(t *testing.T) string {
	t.Helper()
	select {
	case c := <-m.started:
		return c
	case <-time.After(wait):
		t.Fatal("no model call began")
		return ""
	}
}

// ended is a context that has ended: a shutdown whose grace is over.
func ended() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func job(content string) *messages.InferRequest {
	return &messages.InferRequest{Model: "m", Messages: []*messages.ChatMessage{{Role: "user", Content: content}}}
}

// openJobs opens the jobs of node on a fresh connection to srv.
func openJobs(t *testing.T, srv *server.Server, node string, cfg persistence.JobsConfig) (*persistence.Jobs, *nats.Conn) {
	t.Helper()
	nc := bustest.Connect(t, srv)
	cfg.Conn, cfg.Subjects, cfg.Node, cfg.Logger = nc, subjects, node, testLogger(t)
	j, err := persistence.OpenJobs(timeout(t), cfg)
	require.NoError(t, err)
	return j, nc
}

// work starts workers and stops them at cleanup.
func work(t *testing.T, j *persistence.Jobs, d bus.Dispatcher, slots, critical int) *persistence.Workers {
	t.Helper()
	w := j.Work(d, slots, critical)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		w.Stop(ctx)
	})
	return w
}

func awaitEnd(t *testing.T, j *persistence.Jobs, id string) *messages.JobStatus {
	t.Helper()
	st, err := j.Get(timeout(t), id, wait)
	require.NoError(t, err)
	require.Contains(t, []messages.JobStatus_State{messages.JobStatus_done, messages.JobStatus_failed}, st.GetState(), "job %s: %v", id, st)
	return st
}

// TestJobRunsOnceAndIsAnnounced: a submitted job is queued, run by a
// worker, recorded done with its result and announced on
// hive.v1.jobs.done.<id>.
func TestJobRunsOnceAndIsAnnounced(t *testing.T) {
	srv := bustest.NewServer(t)
	j, nc := openJobs(t, srv, "n1", persistence.JobsConfig{})
	done, err := nc.SubscribeSync(subjects.JobsDone("*"))
	require.NoError(t, err)
	m := newModel()
	acc, err := j.Submit(timeout(t), job("hello"))
	require.NoError(t, err)
	require.Nil(t, acc.GetError())
	st, err := j.Get(timeout(t), acc.GetJobId(), 0)
	require.NoError(t, err)
	assert.Equal(t, messages.JobStatus_queued, st.GetState(), "before any worker")

	work(t, j, m, 1, 1)
	st = awaitEnd(t, j, acc.GetJobId())
	assert.Equal(t, messages.JobStatus_done, st.GetState())
	assert.Equal(t, "answer to hello", st.GetResult().GetContent())
	assert.Equal(t, "n1", st.GetNode())
	assert.Equal(t, uint32(1), st.GetDeliveries())
	assert.Equal(t, acc.GetJobId(), st.GetResult().GetRequestId(), "the job id is the request id")

	msg, err := done.NextMsg(wait)
	require.NoError(t, err)
	ev := &messages.JobStatus{}
	require.NoError(t, bus.DecodeTyped(msg.Header, msg.Data, ev))
	assert.Equal(t, subjects.JobsDone(acc.GetJobId()), msg.Subject)
	assert.Equal(t, "answer to hello", ev.GetResult().GetContent())
	assert.Equal(t, int32(1), m.calls.Load())

	_, err = j.Get(timeout(t), "nosuchjob", 0)
	assert.ErrorIs(t, err, persistence.ErrJobNotFound)
}

// TestJobIdempotencyKey: the same key and request give the first job's id,
// marked duplicate, and run once; the same key with another request is
// idempotency_conflict.
func TestJobIdempotencyKey(t *testing.T) {
	srv := bustest.NewServer(t)
	j, _ := openJobs(t, srv, "n1", persistence.JobsConfig{})
	m := newModel()
	work(t, j, m, 1, 1)
	first := job("once")
	first.IdempotencyKey = "5b1f3c2e-key"
	a, err := j.Submit(timeout(t), first)
	require.NoError(t, err)
	require.Nil(t, a.GetError())
	again := job("once")
	again.IdempotencyKey, again.RequestId = "5b1f3c2e-key", "a-retry"
	b, err := j.Submit(timeout(t), again)
	require.NoError(t, err)
	assert.Equal(t, a.GetJobId(), b.GetJobId())
	assert.True(t, b.GetDuplicate())
	other := job("something else")
	other.IdempotencyKey = "5b1f3c2e-key"
	c, err := j.Submit(timeout(t), other)
	require.NoError(t, err)
	assert.Equal(t, "idempotency_conflict", c.GetError().GetCode())

	awaitEnd(t, j, a.GetJobId())
	assert.Equal(t, int32(1), m.calls.Load(), "model calls")
}

// TestCriticalJobsAreNotStarved: with every normal slot busy and normal
// jobs queued behind, a critical job still runs at once.
func TestCriticalJobsAreNotStarved(t *testing.T) {
	srv := bustest.NewServer(t)
	j, _ := openJobs(t, srv, "n1", persistence.JobsConfig{})
	m := newModel()
	work(t, j, m, 1, 1)
	var normal []string
	for _, c := range []string{"hold", "hold", "hold"} {
		a, err := j.Submit(timeout(t), job(c))
		require.NoError(t, err)
		normal = append(normal, a.GetJobId())
	}
	assert.Equal(t, "hold", m.awaitStart(t), "the one normal slot is busy")
	crit := job("urgent")
	crit.Priority = messages.InferRequest_critical
	a, err := j.Submit(timeout(t), crit)
	require.NoError(t, err)
	st := awaitEnd(t, j, a.GetJobId())
	assert.Equal(t, "answer to urgent", st.GetResult().GetContent())
	st, err = j.Get(timeout(t), normal[2], 0)
	require.NoError(t, err)
	assert.Equal(t, messages.JobStatus_queued, st.GetState(), "the critical job went first")
	close(m.release)
	for _, id := range normal {
		awaitEnd(t, j, id)
	}
}

// TestJobOfADeadNodeRunsElsewhere: a node that dies (its connection gone)
// while running a job never acknowledged it; after AckWait another node
// runs it, and the job has one result, counted as delivered twice.
func TestJobOfADeadNodeRunsElsewhere(t *testing.T) {
	srv := bustest.NewServer(t)
	cfg := persistence.JobsConfig{AckWait: time.Second}
	dead, deadConn := openJobs(t, srv, "dead", cfg)
	m1 := newModel()
	w1 := dead.Work(m1, 1, 1)
	a, err := dead.Submit(timeout(t), job("hold"))
	require.NoError(t, err)
	m1.awaitStart(t)
	deadConn.Close()                       // kill -9, as NATS sees it: no ack, no nak, no heartbeat
	t.Cleanup(func() { w1.Stop(ended()) }) // it holds its job until stopped

	live, _ := openJobs(t, srv, "live", cfg)
	m2 := newModel()
	close(m2.release)
	work(t, live, m2, 1, 1)
	st := awaitEnd(t, live, a.GetJobId())
	assert.Equal(t, messages.JobStatus_done, st.GetState())
	assert.Equal(t, "live", st.GetNode())
	assert.Equal(t, uint32(2), st.GetDeliveries())
	assert.Equal(t, int32(1), m2.calls.Load())
}

// TestJobFailsAfterMaxDeliveries: when every node that takes a job dies,
// it fails with job_undelivered once MaxDeliveries nodes had it.
func TestJobFailsAfterMaxDeliveries(t *testing.T) {
	srv := bustest.NewServer(t)
	cfg := persistence.JobsConfig{AckWait: time.Second, MaxDeliveries: 1}
	dead, deadConn := openJobs(t, srv, "dead", cfg)
	m1 := newModel()
	w1 := dead.Work(m1, 1, 1)
	a, err := dead.Submit(timeout(t), job("hold"))
	require.NoError(t, err)
	m1.awaitStart(t)
	deadConn.Close()
	t.Cleanup(func() { w1.Stop(ended()) }) // it holds its job until stopped

	live, _ := openJobs(t, srv, "live", cfg)
	m2 := newModel()
	work(t, live, m2, 1, 1)
	st := awaitEnd(t, live, a.GetJobId())
	assert.Equal(t, messages.JobStatus_failed, st.GetState())
	assert.Equal(t, "job_undelivered", st.GetResult().GetError().GetCode())
	assert.Contains(t, st.GetResult().GetError().GetMessage(), "no node finished it")
	assert.Zero(t, m2.calls.Load(), "the last delivery only records the failure")
}

// TestStopReturnsUnfinishedJobs: a node that stops past its grace gives
// its running job back unacknowledged and records nothing; another node
// runs it at once (no AckWait to wait out).
func TestStopReturnsUnfinishedJobs(t *testing.T) {
	srv := bustest.NewServer(t)
	cfg := persistence.JobsConfig{AckWait: time.Hour} // only a Nak can bring it back in this test
	a, _ := openJobs(t, srv, "a", cfg)
	m1 := newModel()
	w1 := a.Work(m1, 1, 1)
	acc, err := a.Submit(timeout(t), job("hold"))
	require.NoError(t, err)
	m1.awaitStart(t)
	assert.Equal(t, 1, w1.Stop(ended()), "jobs returned")
	st, err := a.Get(timeout(t), acc.GetJobId(), 0)
	require.NoError(t, err)
	assert.Equal(t, messages.JobStatus_running, st.GetState(), "no result recorded by the stopped node")

	b, _ := openJobs(t, srv, "b", cfg)
	m2 := newModel()
	close(m2.release)
	work(t, b, m2, 1, 1)
	st = awaitEnd(t, b, acc.GetJobId())
	assert.Equal(t, "b", st.GetNode())
	assert.Equal(t, "answer to hold", st.GetResult().GetContent())
}

// TestDrainFinishesRunningJobs: a drained node takes no new job but ends
// the one it runs.
func TestDrainFinishesRunningJobs(t *testing.T) {
	srv := bustest.NewServer(t)
	j, _ := openJobs(t, srv, "n1", persistence.JobsConfig{})
	m := newModel()
	w := work(t, j, m, 1, 1)
	running, err := j.Submit(timeout(t), job("hold"))
	require.NoError(t, err)
	m.awaitStart(t)
	w.Drain()
	close(m.release)
	st := awaitEnd(t, j, running.GetJobId())
	assert.Equal(t, messages.JobStatus_done, st.GetState())
	after, err := j.Submit(timeout(t), job("later"))
	require.NoError(t, err)
	w.Stop(timeout(t)) // the drained loops have all exited: nothing took it
	st, err = j.Get(timeout(t), after.GetJobId(), 0)
	require.NoError(t, err)
	assert.Equal(t, messages.JobStatus_queued, st.GetState())
	assert.Equal(t, int32(1), m.calls.Load())
}

// TestIdempotentRequests: over the idempotent dispatcher, a client that
// retries with the same key gets the first answer and the model runs once
// per key, retries arriving while the first still runs included; another
// request under a used key is idempotency_conflict; streams replay too.
func TestIdempotentRequests(t *testing.T) {
	srv := bustest.NewServer(t)
	j, _ := openJobs(t, srv, "n1", persistence.JobsConfig{})
	j2, _ := openJobs(t, srv, "n2", persistence.JobsConfig{}) // another node, same buckets
	m := newModel()
	d1, d2 := j.Idempotent(m), j2.Idempotent(m)

	call := func(d bus.Dispatcher, req *messages.InferRequest) <-chan *messages.InferResponse {
		out := make(finalOf, 1)
		d.Dispatch(context.Background(), req, out)
		return out
	}
	get := func(c <-chan *messages.InferResponse) *messages.InferResponse {
		select {
		case r := <-c:
			return r
		case <-time.After(wait):
			t.Fatal("no answer")
			return nil
		}
	}
	keyed := func(key, content, id string) *messages.InferRequest {
		r := job(content)
		r.IdempotencyKey, r.RequestId = key, id
		return r
	}
	// The first holds; retries on both nodes wait for it.
	first := call(d1, keyed("key-1", "hold", "r1"))
	m.awaitStart(t)
	retries := []<-chan *messages.InferResponse{call(d1, keyed("key-1", "hold", "r2")), call(d2, keyed("key-1", "hold", "r3"))}
	close(m.release)
	assert.Equal(t, "answer to hold", get(first).GetContent())
	for i, c := range retries {
		r := get(c)
		assert.Equal(t, "answer to hold", r.GetContent(), "retry %d", i)
		assert.Equal(t, []string{"r2", "r3"}[i], r.GetRequestId(), "a replay carries its own request id")
	}
	// Later retries too, on either node.
	for range 5 {
		assert.Equal(t, "answer to hold", get(call(d2, keyed("key-1", "hold", "later"))).GetContent())
	}
	assert.Equal(t, int32(1), m.calls.Load(), "model calls for one key")
	// Another request under the same key.
	r := get(call(d1, keyed("key-1", "something else", "r4")))
	assert.Equal(t, "idempotency_conflict", r.GetError().GetCode())
	// Distinct keys: one call each; no key: every time.
	for _, k := range []string{"key-2", "key-3"} {
		get(call(d1, keyed(k, "x", k)))
		get(call(d2, keyed(k, "x", k)))
	}
	get(call(d1, job("no key")))
	get(call(d1, job("no key")))
	assert.Equal(t, int32(5), m.calls.Load())

	// A stream's answer replays as the text of one complete final chunk.
	var mu sync.Mutex
	var chunks []*messages.InferChunk
	finals := make(chan struct{}, 2)
	sink := chunkSink(func(ch *messages.InferChunk) {
		mu.Lock()
		chunks = append(chunks, ch)
		mu.Unlock()
		if ch.GetFinal() {
			finals <- struct{}{}
		}
	})
	s := keyed("key-s", "stream", "s1")
	s.Stream = true
	d1.Dispatch(context.Background(), s, sink)
	<-finals
	d2.Dispatch(context.Background(), s, sink)
	select {
	case <-finals:
	case <-time.After(wait):
		t.Fatal("no replayed stream")
	}
	mu.Lock()
	defer mu.Unlock()
	last := chunks[len(chunks)-1]
	assert.Equal(t, "answer to stream", last.GetDelta())
	assert.Equal(t, messages.InferChunk_complete, last.GetOutcome())
	assert.True(t, last.GetReplayed(), "the replayed final chunk says so")
	assert.Equal(t, int32(6), m.calls.Load(), "the replayed stream called no model")
}

// finalOf is the Sink of a plain request: the reply goes to the channel.
type finalOf chan *messages.InferResponse

func (finalOf) Piece(string, string)              {}
func (f finalOf) Final(r *messages.InferResponse) { f <- r }

// chunkSink is the Sink of a stream, handing each call on as the chunk an
// ingress would send (numbering left out): a piece's text, or the final
// chunk with the reply's.
type chunkSink func(*messages.InferChunk)

func (f chunkSink) Piece(model, text string) { f(&messages.InferChunk{Delta: text, ServedBy: model}) }

func (f chunkSink) Final(r *messages.InferResponse) {
	ch := &messages.InferChunk{Final: true, Outcome: messages.InferChunk_complete, Delta: r.GetContent(),
		ServedBy: r.GetServedBy(), Error: r.GetError(), Replayed: r.GetReplayed()}
	if r.GetError() != nil {
		ch.Outcome = messages.InferChunk_incomplete
	}
	f(ch)
}

// jobsKV is the jobs bucket, for tests that write a record as another
// node would have.
func jobsKV(t *testing.T, nc *nats.Conn) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(timeout(t), persistence.JobsBucketName(subjects))
	require.NoError(t, err)
	return js, kv
}

// TestRepeatedKeyStoresAJobNeverStored: a node that died between a keyed
// job's record and its message left the record queued and nothing in the
// stream. The client's retry with the same key stores the message, so the
// job runs; before, the retry was answered "duplicate" and the job never
// ran. A repeat while the message is stored is not stored twice.
func TestRepeatedKeyStoresAJobNeverStored(t *testing.T) {
	srv := bustest.NewServer(t)
	j, nc := openJobs(t, srv, "n1", persistence.JobsConfig{})
	_, kv := jobsKV(t, nc)
	orphan := job("orphan")
	orphan.IdempotencyKey = "key-of-a-dead-submission"
	id := persistence.KeyID(orphan.IdempotencyKey)
	rec := &messages.JobStatus{JobId: id, State: messages.JobStatus_queued, Model: orphan.GetModel(),
		BodyHash: persistence.BodyHash(orphan), IdempotencyKey: orphan.GetIdempotencyKey()}
	b, err := proto.Marshal(rec)
	require.NoError(t, err)
	_, err = kv.Create(timeout(t), id, b)
	require.NoError(t, err)

	stored := job("stored")
	stored.IdempotencyKey = "key-of-a-stored-job"
	first, err := j.Submit(timeout(t), stored)
	require.NoError(t, err)
	require.Nil(t, first.GetError())

	for _, req := range []*messages.InferRequest{orphan, stored} {
		acc, err := j.Submit(timeout(t), req)
		require.NoError(t, err)
		require.Nil(t, acc.GetError())
		assert.True(t, acc.GetDuplicate(), "a repeat of %s", req.GetIdempotencyKey())
	}
	m := newModel()
	work(t, j, m, 1, 1)
	st := awaitEnd(t, j, id)
	assert.Equal(t, messages.JobStatus_done, st.GetState())
	assert.Equal(t, "answer to orphan", st.GetResult().GetContent())
	awaitEnd(t, j, first.GetJobId())
	assert.Equal(t, int32(2), m.calls.Load(), "model calls: one per key")
}

// TestLateResultDoesNotReplaceAnother: a node still running a job that
// another node ended meanwhile (it was cut from NATS past AckWait and the
// job was delivered again) finds the record ended when it finishes: the
// other's result stands, and the late node announces nothing. Before, it
// wrote its own result over the other's and announced a second one.
func TestLateResultDoesNotReplaceAnother(t *testing.T) {
	srv := bustest.NewServer(t)
	j, nc := openJobs(t, srv, "late", persistence.JobsConfig{})
	js, kv := jobsKV(t, nc)
	m := newModel()
	work(t, j, m, 1, 1)
	acc, err := j.Submit(timeout(t), job("hold"))
	require.NoError(t, err)
	id := acc.GetJobId()
	m.awaitStart(t)
	running, err := j.Get(timeout(t), id, 0)
	require.NoError(t, err)
	require.Equal(t, messages.JobStatus_running, running.GetState())

	// The other node's end of the job, as its worker records it.
	other := proto.Clone(running).(*messages.JobStatus)
	other.State, other.Node = messages.JobStatus_done, "other"
	other.Result = &messages.InferResponse{RequestId: id, Content: "the other node's answer", ServedBy: "m"}
	b, err := proto.Marshal(other)
	require.NoError(t, err)
	_, err = kv.Put(timeout(t), id, b)
	require.NoError(t, err)
	announced, err := nc.SubscribeSync(subjects.JobsDone(id))
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	close(m.release)
	// The late node acknowledges the job: the work queue empties.
	stream, err := js.Stream(timeout(t), persistence.JobsStreamName(subjects))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := stream.Info(timeout(t))
		return err == nil && info.State.Msgs == 0
	}, wait, 10*time.Millisecond, "the late node never acknowledged the job")
	st, err := j.Get(timeout(t), id, 0)
	require.NoError(t, err)
	assert.Equal(t, "other", st.GetNode())
	assert.Equal(t, "the other node's answer", st.GetResult().GetContent())
	// An announcement would have reached this connection before the ack
	// was processed, so before the pong of this flush.
	require.NoError(t, nc.Flush())
	n, _, err := announced.Pending()
	require.NoError(t, err)
	assert.Zero(t, n, "announcements of the late result")
}

// syncBuffer is a log sink for one test.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestIdleWorkersAreQuiet: a pull request that expires with no job (the
// server ends it at its expiry, which nats.go reports as nats.ErrTimeout)
// is an idle worker, not a failure: it pulls again at once and logs
// nothing. Before, each expiry was logged as "pull failed" and the worker
// paused for a second, so an idle node warned every few seconds for each
// slot, and a job arriving in the pause waited for it.
func TestIdleWorkersAreQuiet(t *testing.T) {
	srv := bustest.NewServer(t)
	var logs syncBuffer
	nc := bustest.Connect(t, srv)
	j, err := persistence.OpenJobs(timeout(t), persistence.JobsConfig{Conn: nc, Subjects: subjects, Node: "n1", Logger: zerolog.New(&logs)})
	require.NoError(t, err)
	persistence.SetFetchWait(j, 20*time.Millisecond)
	w := work(t, j, newModel(), 1, 1)
	require.Eventually(t, func() bool { return persistence.IdlePulls(w) >= 20 }, wait, 5*time.Millisecond,
		"idle pulls: %d; log:\n%s", persistence.IdlePulls(w), &logs)
	assert.NotContains(t, logs.String(), "pull failed")
}

// TestIdempotentClaimOfADeadNode: the node running a key's first request
// rewrites its claim while it runs, so a repeat on another node waits for
// the answer however long it takes; a claim nobody rewrites (its node
// died) is taken over once StaleAfter periods pass, and the repeat runs
// the request. Before, a dead node's claim held its key for 10 minutes,
// and every repeat meanwhile failed with idempotency_in_progress.
func TestIdempotentClaimOfADeadNode(t *testing.T) {
	srv := bustest.NewServer(t)
	const refresh = 50 * time.Millisecond
	open := func(node string) (*persistence.Jobs, *nats.Conn) {
		j, nc := openJobs(t, srv, node, persistence.JobsConfig{})
		persistence.SetClaimRefresh(j, refresh)
		return j, nc
	}
	live, _ := open("live")
	other, otherConn := open("other")
	dead, deadConn := open("dead")
	call := func(d bus.Dispatcher, key string) <-chan *messages.InferResponse {
		out := make(chan *messages.InferResponse, 1)
		req := job("hold")
		req.IdempotencyKey = key
		d.Dispatch(context.Background(), req, finalOf(out))
		return out
	}
	get := func(c <-chan *messages.InferResponse) *messages.InferResponse {
		t.Helper()
		select {
		case r := <-c:
			return r
		case <-time.After(wait):
			t.Fatal("no answer")
			return nil
		}
	}

	// A live node's long request: its claim outlives StaleAfter periods.
	js, err := jetstream.New(otherConn)
	require.NoError(t, err)
	kv, err := js.KeyValue(timeout(t), persistence.IdempotencyBucketName(subjects))
	require.NoError(t, err)
	m := newModel()
	release := sync.OnceFunc(func() { close(m.release) })
	t.Cleanup(release) // a failure below leaves no call holding
	first := call(live.Idempotent(m), "long")
	m.awaitStart(t)
	rewrites, err := kv.Watch(timeout(t), persistence.KeyID("long"), jetstream.UpdatesOnly())
	require.NoError(t, err)
	defer func() { _ = rewrites.Stop() }()
	repeat := call(other.Idempotent(m), "long")
	for n := 0; n < persistence.StaleAfter+2; {
		select {
		case e, ok := <-rewrites.Updates():
			if !ok {
				t.Fatalf("the watch ended after %d rewrites of the claim", n)
			}
			if e != nil {
				n++
			}
		case <-time.After(wait):
			t.Fatalf("the claim was rewritten %d times", n)
		}
	}
	assert.Equal(t, int32(1), m.calls.Load(), "the repeat took a live node's claim over")
	release()
	assert.Equal(t, "answer to hold", get(first).GetContent())
	assert.Equal(t, "answer to hold", get(repeat).GetContent())
	assert.Equal(t, int32(1), m.calls.Load(), "model calls for one key")

	// A dead node's claim: its connection gone, nothing rewrites it.
	stuck := newModel()
	t.Cleanup(func() { close(stuck.release) }) // the dead node's call ends with the test
	call(dead.Idempotent(stuck), "orphan")
	stuck.awaitStart(t)
	deadConn.Close()
	m2 := newModel()
	close(m2.release)
	r := get(call(other.Idempotent(m2), "orphan"))
	require.Nil(t, r.GetError(), "the repeat of a dead node's key")
	assert.Equal(t, "answer to hold", r.GetContent())
	assert.Equal(t, int32(1), m2.calls.Load())
}

// TestJobEndedByADeadNodeIsAnnouncedAgain: a node that recorded a job's
// result and died before announcing and acknowledging it leaves the job
// to be delivered again; the node that takes it runs nothing, announces
// the recorded result and acknowledges. Before, the result was never
// announced, and a client waiting on hive.v1.jobs.done.<id> waited for
// ever.
func TestJobEndedByADeadNodeIsAnnouncedAgain(t *testing.T) {
	srv := bustest.NewServer(t)
	j, nc := openJobs(t, srv, "n1", persistence.JobsConfig{})
	_, kv := jobsKV(t, nc)
	acc, err := j.Submit(timeout(t), job("once"))
	require.NoError(t, err)
	id := acc.GetJobId()
	queued, err := j.Get(timeout(t), id, 0)
	require.NoError(t, err)
	// The dead node's result, recorded; its announcement and ack lost.
	dead := proto.Clone(queued).(*messages.JobStatus)
	dead.State, dead.Node, dead.Deliveries = messages.JobStatus_done, "dead", 1
	dead.Result = &messages.InferResponse{RequestId: id, Content: "the dead node's answer", ServedBy: "m"}
	b, err := proto.Marshal(dead)
	require.NoError(t, err)
	_, err = kv.Put(timeout(t), id, b)
	require.NoError(t, err)
	announced, err := nc.SubscribeSync(subjects.JobsDone(id))
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	m := newModel()
	work(t, j, m, 1, 1)
	msg, err := announced.NextMsg(wait)
	require.NoError(t, err, "no announcement of the recorded result")
	st := &messages.JobStatus{}
	require.NoError(t, bus.DecodeTyped(msg.Header, msg.Data, st))
	assert.Equal(t, "dead", st.GetNode())
	assert.Equal(t, "the dead node's answer", st.GetResult().GetContent())
	assert.Zero(t, m.calls.Load(), "model calls")
}
