package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/messages"
)

// JobsHandler stores and reads durable jobs (persistence.Jobs, through a
// small adapter). Its methods run on goroutines of their own, several at
// once, and may wait on JetStream. A refusal (a bad request, an unknown
// job) is an answer with its error set; an error is a failure to answer
// (JetStream unreachable) and becomes a no_capacity reply.
type JobsHandler interface {
	Submit(ctx context.Context, req *messages.InferRequest) (*messages.JobAccepted, error)
	Get(ctx context.Context, id string, wait time.Duration) (*messages.JobStatus, error)
}

// Bounds of the jobs endpoints.
const (
	// jobsTimeout bounds one submit or one get, its wait excluded.
	jobsTimeout = 10 * time.Second
	// MaxJobWait bounds a get's wait_ms.
	MaxJobWait = 5 * time.Minute
)

// JobsConfig configures StartJobs.
type JobsConfig struct {
	Conn     *nats.Conn // required
	Subjects Subjects
	Node     string      // this node's name; required
	Handler  JobsHandler // required
	Logger   zerolog.Logger
	// Replies decides which reply subjects get an answer; nil allows
	// DefaultReplyPrefixes.
	Replies *ReplyGuard
}

// JobsEndpoint answers hive.v1.jobs.submit (InferRequest -> JobAccepted)
// and hive.v1.jobs.get (JobQuery -> JobStatus) in queue group "hive", so
// one node answers each, in the request's encoding (protobuf, or JSON as
// for infer). A request may leave Hive-Type out (these are public
// subjects, as infer is) but one that names another type is refused.
type JobsEndpoint struct {
	cfg  JobsConfig
	subs []*nats.Subscription
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup // one goroutine per request being answered
}

// StartJobs subscribes the jobs subjects.
func StartJobs(cfg JobsConfig) (*JobsEndpoint, error) {
	switch {
	case cfg.Conn == nil:
		return nil, errors.New("bus: JobsConfig.Conn is required")
	case cfg.Handler == nil:
		return nil, errors.New("bus: JobsConfig.Handler is required")
	}
	if err := ValidToken("node", cfg.Node); err != nil {
		return nil, fmt.Errorf("bus: jobs: %w", err)
	}
	e := &JobsEndpoint{cfg: cfg}
	e.ctx, e.stop = context.WithCancel(context.Background())
	for subject, h := range map[string]nats.MsgHandler{cfg.Subjects.JobsSubmit(): e.submit, cfg.Subjects.JobsGet(): e.get} {
		sub, err := cfg.Conn.QueueSubscribe(subject, QueueGroup, h)
		if err != nil {
			e.Stop()
			return nil, fmt.Errorf("subscribe %s: %w", subject, err)
		}
		e.subs = append(e.subs, sub)
	}
	if err := cfg.Conn.Flush(); err != nil {
		e.Stop()
		return nil, fmt.Errorf("jobs: flush subscriptions: %w", err)
	}
	return e, nil
}

// Stop unsubscribes, ends the gets that wait, and waits for every answer
// in progress.
func (e *JobsEndpoint) Stop() {
	unsubscribeAll(e.subs)
	e.subs = nil
	e.stop()
	e.wg.Wait()
}

// accept checks msg's reply subject and type and decodes it into m; it
// answers a refusal itself and then returns false.
func (e *JobsEndpoint) accept(msg *nats.Msg, m proto.Message, refusal func(*messages.Error) proto.Message) (Encoding, bool) {
	enc := DetectEncoding(msg.Header, msg.Data)
	if msg.Reply == "" || !e.cfg.Replies.Check("jobs", msg.Subject, msg.Reply) {
		return enc, false
	}
	if t := headerValue(msg.Header, TypeHeader); t != "" && t != TypeName(m) {
		e.answer(msg, enc, refusal(messages.Failure(messages.ErrorClass_bad_request, "wrong_type",
			"%s is %q; %s takes %s", TypeHeader, printableHeader(t), msg.Subject, TypeName(m))))
		return enc, false
	}
	if err := Decode(enc, msg.Data, m); err != nil {
		e.answer(msg, enc, refusal(messages.Failure(messages.ErrorClass_bad_request, "malformed_request", "%v", err)))
		return enc, false
	}
	return enc, true
}

func (e *JobsEndpoint) submit(msg *nats.Msg) {
	req := &messages.InferRequest{}
	refusal := func(err *messages.Error) proto.Message { return &messages.JobAccepted{Error: err} }
	enc, ok := e.accept(msg, req, refusal)
	if !ok {
		return
	}
	e.wg.Go(func() {
		ctx, cancel := context.WithTimeout(e.ctx, jobsTimeout)
		defer cancel()
		acc, err := e.cfg.Handler.Submit(ctx, req)
		if err != nil {
			acc = &messages.JobAccepted{Error: messages.Failure(messages.ErrorClass_no_capacity, "jobs_unavailable",
				"the job was not stored (try again, with the same idempotency key): %v", err)}
		}
		e.answer(msg, enc, acc)
	})
}

func (e *JobsEndpoint) get(msg *nats.Msg) {
	q := &messages.JobQuery{}
	refusal := func(err *messages.Error) proto.Message { return &messages.JobStatus{Error: err} }
	enc, ok := e.accept(msg, q, refusal)
	if !ok {
		return
	}
	wait := min(time.Duration(q.GetWaitMs())*time.Millisecond, MaxJobWait)
	if q.GetJobId() == "" || q.GetWaitMs() < 0 {
		e.answer(msg, enc, refusal(messages.Failure(messages.ErrorClass_bad_request, "bad_request", "jobId is required and waitMs must not be negative")))
		return
	}
	e.wg.Go(func() {
		ctx, cancel := context.WithTimeout(e.ctx, jobsTimeout+wait)
		defer cancel()
		st, err := e.cfg.Handler.Get(ctx, q.GetJobId(), wait)
		if err != nil {
			st = &messages.JobStatus{JobId: q.GetJobId(), Error: messages.Failure(messages.ErrorClass_no_capacity, "jobs_unavailable", "%v", err)}
		}
		e.answer(msg, enc, st)
	})
}

func (e *JobsEndpoint) answer(msg *nats.Msg, enc Encoding, m proto.Message) {
	if err := publish(e.cfg.Conn, msg.Reply, enc, m); err != nil {
		e.cfg.Logger.Warn().Err(err).Str("subject", msg.Subject).Msg("jobs reply not sent")
	}
}

// SubmitJob submits req as a durable job and returns the node's answer.
func SubmitJob(ctx context.Context, nc *nats.Conn, s Subjects, req *messages.InferRequest) (*messages.JobAccepted, error) {
	out := &messages.JobAccepted{}
	return out, requestTyped(ctx, nc, s.JobsSubmit(), req, out)
}

// GetJob reads job id's state; with wait, once it ends or after wait.
func GetJob(ctx context.Context, nc *nats.Conn, s Subjects, id string, wait time.Duration) (*messages.JobStatus, error) {
	out := &messages.JobStatus{}
	return out, requestTyped(ctx, nc, s.JobsGet(), &messages.JobQuery{JobId: id, WaitMs: int32(wait / time.Millisecond)}, out)
}

// requestTyped sends m on subject and decodes the one typed answer into
// out. Nobody answering is ErrNoNodes. It uses the connection's shared
// reply inbox (nats.Conn.RequestMsg): a subscription of its own per
// request, as gather makes for the admin commands' many answers, costs a
// 64K-message channel (512 KiB) each time.
func requestTyped(ctx context.Context, nc *nats.Conn, subject string, m, out proto.Message) error {
	msg, err := NewMsg(subject, Protobuf, m)
	if err != nil {
		return err
	}
	got, err := nc.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w on %s: no responders (does a node with persistence run?)", ErrNoNodes, subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w on %s: %w", ErrNoNodes, subject, err)
	case err != nil:
		return fmt.Errorf("request %s: %w", subject, err)
	}
	if err := CheckType(got.Header, out); err != nil {
		return fmt.Errorf("the answer on %s: %w", subject, err)
	}
	if err := Decode(DetectEncoding(got.Header, got.Data), got.Data, out); err != nil {
		return fmt.Errorf("an answer on %s does not decode: %w", subject, err)
	}
	return nil
}
