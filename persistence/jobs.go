package persistence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// Durable jobs. A submitted InferRequest is stored in a JetStream
// work-queue stream (HIVE_JOBS) under hive.v1.jobs.queue.normal or
// .critical, and its record (a JobStatus) in the key-value bucket
// hive_jobs, keyed by job id. Every node pulls from the two durable
// consumers of the stream, "normal" and "critical", with worker slots of
// its own for each, so a backlog of normal jobs never holds a critical
// one. A worker marks the record running, keeps the message's ack alive
// while the model works (in-progress acks every AckWait/3), writes the
// result to the record, publishes it on hive.v1.jobs.done.<id>, and only
// then acknowledges the message: a node that dies before that leaves the
// message to be delivered again after AckWait, a node that finds the
// record already ended acknowledges without running it again, and a
// result is written only over a record that has not ended (a node that
// lost the job while running it and finishes late keeps the other's
// result), so a job has one result however often it is delivered. Past MaxDeliveries the
// job fails with the error "not finished after N deliveries".

// Defaults of JobsConfig.
const (
	DefaultAckWait           = 30 * time.Second
	DefaultMaxDeliveries     = 3
	DefaultResultTTL         = 24 * time.Hour
	DefaultIdempotencyWindow = 24 * time.Hour
)

// Job priority classes: the last token of the queue subject and the name
// of the consumer that serves it.
const (
	ClassNormal   = "normal"
	ClassCritical = "critical"
)

// jobIDHeader carries the job id on a stored job, beside Nats-Msg-Id.
const jobIDHeader = "Hive-Job-Id"

// ErrJobNotFound marks a job id that has no record: never submitted, or
// its record expired (ResultTTL).
var ErrJobNotFound = errors.New("job not found")

// JobsConfig configures OpenJobs. Conn and Node are required; the other
// zero values are documented defaults.
type JobsConfig struct {
	Conn     *nats.Conn
	Subjects bus.Subjects
	Node     string
	// Replicas of the stream and buckets in a JetStream cluster; default 1.
	Replicas int
	// AckWait is how long a job's message stays with a node that stopped
	// acknowledging it before another node gets it; default 30 s. While a
	// job runs its node extends it every AckWait/3.
	AckWait time.Duration
	// MaxDeliveries bounds how many nodes take one job; past it the job
	// fails. Default 3.
	MaxDeliveries int
	// ResultTTL is how long a job's record and result are kept; default
	// 24 h.
	ResultTTL time.Duration
	// IdempotencyWindow is how long an idempotency key holds: a repeat
	// within it returns the first result. Default 24 h.
	IdempotencyWindow time.Duration
	Logger            zerolog.Logger
}

func (c JobsConfig) withDefaults() (JobsConfig, error) {
	if c.Conn == nil {
		return c, fmt.Errorf("%w: Conn is nil", ErrInvalidConfig)
	}
	if err := bus.ValidToken("node", c.Node); err != nil {
		return c, fmt.Errorf("%w: Node: %w", ErrInvalidConfig, err)
	}
	if c.Replicas < 0 || c.Replicas > 5 || c.AckWait < 0 || c.MaxDeliveries < 0 || c.ResultTTL < 0 || c.IdempotencyWindow < 0 {
		return c, fmt.Errorf("%w: jobs: want 0 <= Replicas <= 5 and no negative AckWait, MaxDeliveries, ResultTTL, IdempotencyWindow", ErrInvalidConfig)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	if c.ResultTTL == 0 {
		c.ResultTTL = DefaultResultTTL
	}
	if c.IdempotencyWindow == 0 {
		c.IdempotencyWindow = DefaultIdempotencyWindow
	}
	return c, nil
}

// JobsStreamName is the jobs stream of a subject prefix: HIVE_JOBS for
// "hive".
func JobsStreamName(s bus.Subjects) string {
	return strings.ToUpper(prefixed(s, "_JOBS"))
}

// JobsBucketName is the bucket of job records: hive_jobs for "hive".
func JobsBucketName(s bus.Subjects) string {
	return prefixed(s, "_jobs")
}

// IdempotencyBucketName is the bucket of idempotent requests' results:
// hive_idempotency for "hive".
func IdempotencyBucketName(s bus.Subjects) string {
	return prefixed(s, "_idempotency")
}

// Jobs is a node's handle on the job queue and the idempotency bucket.
// OpenJobs makes one. It is safe for concurrent use.
type Jobs struct {
	cfg    JobsConfig
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	jobs   jetstream.KeyValue
	idem   jetstream.KeyValue
	cons   map[string]jetstream.Consumer // by class
	// fetchWait bounds the workers' pull requests, claimRefresh is how
	// often an idempotent request's claim is rewritten: the package's
	// constants, shorter in tests.
	fetchWait, claimRefresh time.Duration
}

// OpenJobs creates or updates the jobs stream, its two consumers and the
// two buckets. Errors match ErrUnavailable without JetStream.
func OpenJobs(ctx context.Context, cfg JobsConfig) (*Jobs, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, wrap("jetstream", err)
	}
	j := &Jobs{cfg: cfg, nc: cfg.Conn, js: js, cons: make(map[string]jetstream.Consumer),
		fetchWait: fetchWait, claimRefresh: claimRefresh}
	name := JobsStreamName(cfg.Subjects)
	j.stream, err = upsert(ctx, js.CreateOrUpdateStream, jetstream.StreamConfig{
		Name:        name,
		Description: "Hive durable jobs: each submitted InferRequest until a node has ended it",
		Subjects:    []string{cfg.Subjects.JobsQueues()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Replicas:    cfg.Replicas,
		// Submissions carry their job id as Nats-Msg-Id: a submit that is
		// sent twice (a client's retry, a reconnect) is stored once.
		Duplicates: cfg.IdempotencyWindow,
	})
	if err != nil {
		return nil, wrap("jobs stream "+name, err)
	}
	for _, class := range []string{ClassNormal, ClassCritical} {
		c, err := upsert(ctx, func(ctx context.Context, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
			return j.stream.CreateOrUpdateConsumer(ctx, cc)
		}, jetstream.ConsumerConfig{
			Durable:       class,
			Description:   "Hive nodes taking " + class + " jobs",
			FilterSubject: cfg.Subjects.JobsQueue(class),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			// One delivery more than allowed runs: the last one only
			// records that the job failed.
			MaxDeliver: cfg.MaxDeliveries + 1,
		})
		if err != nil {
			return nil, wrap("jobs consumer "+class, err)
		}
		j.cons[class] = c
	}
	if j.jobs, err = upsert(ctx, js.CreateOrUpdateKeyValue, jetstream.KeyValueConfig{
		Bucket:      JobsBucketName(cfg.Subjects),
		Description: "Hive job records: state, node and result of each job",
		History:     1,
		TTL:         cfg.ResultTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}); err != nil {
		return nil, wrap("jobs bucket", err)
	}
	if j.idem, err = upsert(ctx, js.CreateOrUpdateKeyValue, jetstream.KeyValueConfig{
		Bucket:      IdempotencyBucketName(cfg.Subjects),
		Description: "Hive idempotent requests: the first answer of each idempotency key",
		History:     1,
		TTL:         cfg.IdempotencyWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}); err != nil {
		return nil, wrap("idempotency bucket", err)
	}
	return j, nil
}

// keyID is the id a job or an idempotent request takes from its
// idempotency key: "k" and 32 hex digits of its SHA-256, the same on every
// node, a valid subject token and bucket key. An idempotency key should be
// unguessable (a UUID): whoever knows it can read the job.
func keyID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "k" + hex.EncodeToString(sum[:16])
}

// bodyHash is the SHA-256 of what a request asks, without the fields a
// retry may change (request_id, idempotency_key, deadline_ms): two
// requests with one key and the same hash are the same request.
func bodyHash(req *messages.InferRequest) []byte {
	c := proto.Clone(req).(*messages.InferRequest)
	c.RequestId, c.IdempotencyKey, c.DeadlineMs = "", "", 0
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c) // a request of plain strings always encodes
	sum := sha256.Sum256(b)
	return sum[:]
}

// ended reports whether a record's job is over.
func ended(st *messages.JobStatus) bool {
	return st.GetState() == messages.JobStatus_done || st.GetState() == messages.JobStatus_failed
}

func conflict() *messages.Error {
	return messages.Failure(messages.ErrorClass_bad_request, "idempotency_conflict",
		"this idempotency key was first used with another request: a key stands for one request (send a new key for a new request)")
}

// Submit stores req as a job and returns its id at once; the ack means the
// job is in the stream with its replication. A request that CheckRequest
// refuses gets JobAccepted with the error, as does a repeated idempotency
// key with another request (idempotency_conflict); a repeated key with the
// same request returns the first job's id with duplicate set. Other errors
// (JetStream unreachable) are returned.
func (j *Jobs) Submit(ctx context.Context, req *messages.InferRequest) (*messages.JobAccepted, error) {
	if p := messages.CheckRequest(req); p != nil {
		return &messages.JobAccepted{Error: p.Error()}, nil
	}
	if req.GetStream() {
		return &messages.JobAccepted{Error: messages.Failure(messages.ErrorClass_bad_request, "stream_job",
			"a job cannot stream: its answer is kept as one result (leave stream out, read it with hive.v1.jobs.get)")}, nil
	}
	id := nuid.Next()
	if k := req.GetIdempotencyKey(); k != "" {
		id = keyID(k)
	}
	hash := bodyHash(req)
	now := timestamppb.Now()
	rec := &messages.JobStatus{JobId: id, State: messages.JobStatus_queued, Submitted: now, Updated: now,
		Model: req.GetModel(), BodyHash: hash, IdempotencyKey: req.GetIdempotencyKey()}
	// The record first, with Create: of concurrent submissions of one key
	// exactly one goes on, and Get finds the job at once.
	if _, err := j.jobs.Create(ctx, id, mustMarshal(rec)); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, wrap("jobs bucket: create "+id, err)
		}
		first, _, err := j.load(ctx, id)
		if err != nil {
			return nil, err
		}
		if string(first.GetBodyHash()) != string(hash) {
			return &messages.JobAccepted{JobId: id, Error: conflict()}, nil
		}
		// Still queued, the first submission's node may have died between
		// the record and the message: store the message again. Its
		// Nats-Msg-Id makes that a no-op when it is stored already.
		if first.GetState() == messages.JobStatus_queued {
			if err := j.enqueue(ctx, id, req); err != nil {
				return nil, err
			}
		}
		return &messages.JobAccepted{JobId: id, Duplicate: true}, nil
	}
	if err := j.enqueue(ctx, id, req); err != nil {
		// Without its message the record would say queued forever.
		_ = j.jobs.Delete(context.WithoutCancel(ctx), id)
		return nil, err
	}
	return &messages.JobAccepted{JobId: id}, nil
}

// enqueue stores job id's request in the stream, under its class's
// subject, with the job id as Nats-Msg-Id.
func (j *Jobs) enqueue(ctx context.Context, id string, req *messages.InferRequest) error {
	job := proto.Clone(req).(*messages.InferRequest)
	if job.RequestId == "" {
		job.RequestId = id
	}
	class := ClassNormal
	if req.GetPriority() == messages.InferRequest_critical {
		class = ClassCritical
	}
	msg, err := bus.NewMsg(j.cfg.Subjects.JobsQueue(class), bus.Protobuf, job)
	if err != nil {
		return err
	}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set(jobIDHeader, id)
	if _, err := j.js.PublishMsg(ctx, msg); err != nil {
		return wrap("jobs stream: store "+id, err)
	}
	return nil
}

// Get returns job id's record. With wait, it waits until the job ends or
// wait passes, whichever is first, and returns the record as it is then.
// An unknown id matches ErrJobNotFound.
func (j *Jobs) Get(ctx context.Context, id string, wait time.Duration) (*messages.JobStatus, error) {
	if err := bus.ValidToken("job id", id); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJobNotFound, err)
	}
	st, _, err := j.load(ctx, id)
	if err != nil || wait <= 0 || ended(st) {
		return st, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	w, err := j.jobs.Watch(wctx, id, jetstream.UpdatesOnly())
	if err != nil {
		return nil, wrap("jobs bucket: watch "+id, err)
	}
	defer func() { _ = w.Stop() }()
	// The job may have ended between the load and the watch.
	if st, _, err = j.load(ctx, id); err != nil || ended(st) {
		return st, err
	}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return st, nil
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			next := &messages.JobStatus{}
			if proto.Unmarshal(e.Value(), next) == nil {
				st = next
			}
			if ended(st) {
				return st, nil
			}
		case <-wctx.Done():
			return st, nil
		}
	}
}

// ListJobs calls fn with every job record of the deployment, in no order,
// without opening the queue: for the CLI. Errors match ErrNoStream when no
// node has made the jobs bucket, ErrUnavailable without JetStream.
func ListJobs(ctx context.Context, nc *nats.Conn, s bus.Subjects, fn func(*messages.JobStatus)) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return wrap("jetstream", err)
	}
	kv, err := js.KeyValue(ctx, JobsBucketName(s))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("%w: bucket %s", ErrNoStream, JobsBucketName(s))
	}
	if err != nil {
		return wrap("jobs bucket", err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return wrap("jobs bucket: list", err)
	}
	defer func() { _ = keys.Stop() }()
	for k := range keys.Keys() {
		st, _, err := loadRecord(ctx, kv, k, ErrJobNotFound)
		if errors.Is(err, ErrJobNotFound) {
			continue // expired or deleted since the listing
		}
		if err != nil {
			return err
		}
		fn(st)
	}
	return nil
}

// load reads a job record and its revision.
func (j *Jobs) load(ctx context.Context, id string) (*messages.JobStatus, uint64, error) {
	return loadRecord(ctx, j.jobs, id, ErrJobNotFound)
}

func loadRecord(ctx context.Context, kv jetstream.KeyValue, key string, notFound error) (*messages.JobStatus, uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", notFound, key)
	}
	if err != nil {
		return nil, 0, wrap("bucket "+kv.Bucket()+": get "+key, err)
	}
	st := &messages.JobStatus{}
	if err := proto.Unmarshal(e.Value(), st); err != nil {
		return nil, 0, fmt.Errorf("bucket %s: record %s does not decode: %w", kv.Bucket(), key, err)
	}
	return st, e.Revision(), nil
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // Hive's messages of plain fields always encode
	}
	return b
}

// publishDone announces an ended job on hive.v1.jobs.done.<id>.
func (j *Jobs) publishDone(st *messages.JobStatus) {
	msg, err := bus.NewMsg(j.cfg.Subjects.JobsDone(st.GetJobId()), bus.Protobuf, st)
	if err == nil {
		err = j.nc.PublishMsg(msg)
	}
	if err != nil {
		j.cfg.Logger.Warn().Err(err).Str("job", st.GetJobId()).Msg("job end not published")
	}
}
