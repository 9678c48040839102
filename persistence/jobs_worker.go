package persistence

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// Defaults of Workers.
const (
	DefaultJobSlots         = 4 // normal jobs a node runs at once
	DefaultCriticalJobSlots = 2 // critical jobs a node runs at once, beside the normal ones
	// fetchWait bounds one pull request, so that a stopping worker
	// notices soon.
	fetchWait = 5 * time.Second
	// recordTimeout bounds a worker's bucket writes.
	recordTimeout = 5 * time.Second
	// maxEndWrites bounds the writes of one result that other writers
	// get ahead of.
	maxEndWrites = 5
)

// Workers take jobs from the queue and run them through a Dispatcher:
// slots goroutines for normal jobs and critical more for critical ones.
// Drain stops them taking new jobs; Stop also ends the ones running.
type Workers struct {
	j    *Jobs
	d    bus.Dispatcher
	node string

	fetch       context.Context // ends at Drain: no new jobs
	stopFetch   context.CancelFunc
	run         context.Context // ends at Stop's deadline: running jobs are returned
	stopRunning context.CancelFunc
	loops       sync.WaitGroup // fetch loops, each with the job it runs
	returned    atomic.Int64   // jobs Stop returned to the queue
	idle        atomic.Int64   // pull requests that expired with no job
	fetchWait   time.Duration  // fetchWait; shorter in tests
}

// Work starts the workers. slots and critical default to
// DefaultJobSlots and DefaultCriticalJobSlots when 0.
func (j *Jobs) Work(d bus.Dispatcher, slots, critical int) *Workers {
	if slots <= 0 {
		slots = DefaultJobSlots
	}
	if critical <= 0 {
		critical = DefaultCriticalJobSlots
	}
	w := &Workers{j: j, d: d, node: j.cfg.Node, fetchWait: j.fetchWait}
	w.fetch, w.stopFetch = context.WithCancel(context.Background())
	w.run, w.stopRunning = context.WithCancel(context.Background())
	for class, n := range map[string]int{ClassNormal: slots, ClassCritical: critical} {
		for range n {
			w.loops.Go(func() { w.loop(j.cons[class]) })
		}
	}
	return w
}

// Drain stops taking jobs; the ones running go on to their end. A job a
// pull request had already claimed when it was cancelled goes back to the
// queue after AckWait.
func (w *Workers) Drain() { w.stopFetch() }

// Stop drains, waits until the running jobs end or ctx does, and then
// returns each job still running to the queue unacknowledged (Nak: another
// node takes it at once) without recording a result: a node never
// acknowledges a job it did not finish. It returns how many it returned.
func (w *Workers) Stop(ctx context.Context) int {
	w.Drain()
	// A loop ends once its running job does: waiting for the loops waits
	// for the jobs.
	idle := make(chan struct{})
	go func() {
		w.loops.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
		w.stopRunning()
		<-idle
	}
	w.stopRunning()
	return int(w.returned.Load())
}

// loop pulls one job at a time from cons until Drain.
func (w *Workers) loop(cons jetstream.Consumer) {
	for w.fetch.Err() == nil {
		ctx, cancel := context.WithTimeout(w.fetch, w.fetchWait)
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		cancel()
		switch {
		case err == nil:
			w.serve(msg)
		case w.fetch.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, jetstream.ErrNoMessages),
			errors.Is(err, nats.ErrTimeout): // the server ended the pull at its expiry, before ctx: no job came
			w.idle.Add(1)
		default:
			w.j.cfg.Logger.Warn().Err(err).Str("consumer", cons.CachedInfo().Name).Msg("jobs: pull failed; trying again")
			select { // a NATS outage: no busy loop
			case <-w.fetch.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// serve runs one delivered job to its end, or returns it.
func (w *Workers) serve(msg jetstream.Msg) {
	log := w.j.cfg.Logger
	id := msg.Headers().Get(jobIDHeader)
	meta, err := msg.Metadata()
	if err != nil || bus.ValidToken("job id", id) != nil {
		log.Error().Err(err).Str("job", id).Msg("jobs: a message without job id or metadata; dropped")
		_ = msg.Term()
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	rec, rev, err := w.j.load(rctx, id)
	switch {
	case errors.Is(err, ErrJobNotFound): // expired or deleted: keep the job, make a new record
		rec = &messages.JobStatus{JobId: id, Submitted: timestamppb.New(meta.Timestamp)}
	case err != nil:
		log.Warn().Err(err).Str("job", id).Msg("jobs: record not read; the job goes back to the queue")
		_ = msg.Nak()
		return
	case ended(rec):
		// Ended by a node whose ack was lost: never run twice. That node
		// may have died between the result and its announcement (a kill
		// -9 loses what its connection had not sent yet): announce it
		// again, the same result, so a client waiting only on
		// hive.v1.jobs.done.<id> gets it.
		w.j.publishDone(rec)
		_ = msg.Ack()
		return
	}
	req := &messages.InferRequest{}
	if err := bus.DecodeTyped(msg.Headers(), msg.Data(), req); err != nil {
		w.end(msg, rec, rev, &messages.InferResponse{Error: messages.Failure(messages.ErrorClass_bad_request, "malformed_job", "%v", err)})
		return
	}
	rec.Deliveries = uint32(meta.NumDelivered)
	rec.Model = req.GetModel()
	if int(meta.NumDelivered) > w.j.cfg.MaxDeliveries {
		w.end(msg, rec, rev, &messages.InferResponse{RequestId: req.GetRequestId(), Error: messages.Failure(messages.ErrorClass_no_capacity, "job_undelivered",
			"the job was taken %d times and no node finished it: each stopped or died while running it (the last was %s)",
			w.j.cfg.MaxDeliveries, rec.GetNode())})
		return
	}
	rec.State, rec.Node, rec.Updated = messages.JobStatus_running, w.node, timestamppb.Now()
	var werr error
	if rev == 0 {
		rev, werr = w.j.jobs.Create(rctx, id, mustMarshal(rec))
	} else {
		rev, werr = w.j.jobs.Update(rctx, id, mustMarshal(rec), rev)
	}
	if werr != nil {
		// Someone else wrote it meanwhile: if it ended, do not run again.
		if now, _, lerr := w.j.load(rctx, id); lerr == nil && ended(now) {
			_ = msg.Ack()
			return
		}
		if rev, werr = w.j.jobs.Put(rctx, id, mustMarshal(rec)); werr != nil {
			log.Warn().Err(werr).Str("job", id).Msg("jobs: running state not recorded")
			rev = 0
		}
	}

	resp, ok := w.dispatch(msg, req)
	if !ok { // Stop gave up on it: back to the queue, unrecorded
		_ = msg.Nak()
		w.returned.Add(1)
		log.Info().Str("job", id).Msg("jobs: returned to the queue unfinished at shutdown")
		return
	}
	w.end(msg, rec, rev, resp)
}

// dispatch runs req and keeps msg's ack alive meanwhile. ok is false when
// Stop ended the run first.
func (w *Workers) dispatch(msg jetstream.Msg, req *messages.InferRequest) (*messages.InferResponse, bool) {
	answer := make(jobAnswer, 1)
	ctx, cancel := context.WithCancel(w.run)
	defer cancel()
	w.d.Dispatch(ctx, req, answer)
	beat := time.NewTicker(w.j.cfg.AckWait / 3)
	defer beat.Stop()
	for {
		select {
		case resp := <-answer:
			if w.run.Err() != nil && resp.GetError().GetClass() == messages.ErrorClass_cancelled {
				return nil, false
			}
			return resp, true
		case <-beat.C:
			_ = msg.InProgress()
		case <-w.run.Done():
			// Let the dispatcher answer (it was cancelled): its reply is
			// not recorded either way.
			select {
			case <-answer:
			case <-time.After(recordTimeout):
			}
			return nil, false
		}
	}
}

// end records resp as the job's result, announces it and only then
// acknowledges the message. rev is the record's revision this worker
// wrote (0: none). The result is written only over a record that has not
// ended: a node that lost the job while it ran (cut from NATS past
// AckWait) and finishes after another node did keeps the other's result,
// so a job has one result however many nodes ran it.
func (w *Workers) end(msg jetstream.Msg, rec *messages.JobStatus, rev uint64, resp *messages.InferResponse) {
	rec.Result = resp
	rec.State = messages.JobStatus_done
	if resp.GetError() != nil {
		rec.State = messages.JobStatus_failed
	}
	rec.Node, rec.Updated = w.node, timestamppb.Now()
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	id := rec.GetJobId()
	for try := 1; ; try++ {
		var err error
		if rev == 0 {
			_, err = w.j.jobs.Create(ctx, id, mustMarshal(rec))
		} else {
			_, err = w.j.jobs.Update(ctx, id, mustMarshal(rec), rev)
		}
		if err == nil {
			break
		}
		// Written since (by another node, or it expired), or the write's
		// answer was lost. An ended record keeps its result; else write
		// over what is there now.
		now, nowRev, lerr := w.j.load(ctx, id)
		switch {
		case lerr == nil && proto.Equal(now, rec): // ours: the answer was lost, not the write
		case lerr == nil && ended(now):
			w.j.cfg.Logger.Info().Str("job", id).Str("by", now.GetNode()).Msg("jobs: ended meanwhile by another node; its result stands")
			_ = msg.Ack()
			return
		case try < maxEndWrites && lerr == nil && nowRev != rev:
			rev = nowRev
			continue
		case try < maxEndWrites && errors.Is(lerr, ErrJobNotFound) && rev != 0:
			rev = 0
			continue
		default:
			// Without its result the job must run again somewhere.
			w.j.cfg.Logger.Warn().Err(err).Str("job", id).Msg("jobs: result not recorded; the job goes back to the queue")
			_ = msg.Nak()
			return
		}
		break
	}
	w.j.publishDone(proto.Clone(rec).(*messages.JobStatus))
	if err := msg.DoubleAck(ctx); err != nil {
		// Redelivered later, it finds the record ended and is only acked.
		w.j.cfg.Logger.Debug().Err(err).Str("job", id).Msg("jobs: ack not confirmed")
	}
}

// jobAnswer is the sink of a job's run: a job never streams, so it has no
// pieces, and its reply waits in the channel; a second one is dropped.
type jobAnswer chan *messages.InferResponse

func (jobAnswer) Piece(string, string) {}

func (a jobAnswer) Final(resp *messages.InferResponse) {
	select {
	case a <- resp:
	default:
	}
}
