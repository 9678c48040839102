package persistence

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// Idempotent requests. A request with an idempotency key (NATS field, HTTP
// Idempotency-Key header) claims its key in the idempotency bucket with
// Create, which exactly one node wins, then runs; its answer is written
// there. A repeat of the key within the window, on any node, never calls a
// model: it gets the first answer, or waits for it while the first request
// still runs (up to its own deadline). A repeat with another request is
// refused with idempotency_conflict. The first run is not cancelled when
// its caller goes away (a client that timed out and retries finds its
// answer); it still ends at its deadline. While it runs, its node rewrites
// the claim every claimRefresh; a claim left unrefreshed for staleAfter
// (its node died before answering) is taken over by the next repeat,
// which runs the request.

// claimRefresh is how often the node running a key's first request
// rewrites its claim, so that a repeat tells a claim whose node died from
// one whose request still runs, however long that may be.
const claimRefresh = 5 * time.Second

// staleAfter is how long a claim may go unrefreshed before a repeat takes
// it over, in claimRefresh periods: six missed rewrites, which also
// absorbs a skew of up to about 25 s between the nodes' clocks (a claim's
// time is its node's clock).
const staleAfter = 6

// idemWait bounds a repeat's wait for the first answer when its own
// request has no deadline.
const idemWait = 2 * time.Minute

// Idempotent returns next with idempotency keys honoured, through the
// idempotency bucket. Requests without a key go straight to next.
func (j *Jobs) Idempotent(next bus.Dispatcher) bus.Dispatcher {
	return &idempotent{j: j, next: next}
}

type idempotent struct {
	j    *Jobs
	next bus.Dispatcher
}

func (i *idempotent) Dispatch(ctx context.Context, req *messages.InferRequest, sink messages.Sink) {
	if req.GetIdempotencyKey() == "" {
		i.next.Dispatch(ctx, req, sink)
		return
	}
	// The bucket's round trips run off the caller's goroutine (a NATS
	// callback): Dispatch must not block.
	go i.serve(ctx, req, sink)
}

// serve settles req's key: a refusal or a replay goes to sink (a replayed
// stream is its one final chunk, the whole answer as its text); the first
// request runs, and its answer is recorded before it goes to sink.
func (i *idempotent) serve(ctx context.Context, req *messages.InferRequest, sink messages.Sink) {
	first, rev, replay := i.claim(ctx, req)
	if replay != nil {
		sink.Final(replay)
		return
	}
	runCtx, cancel := detached(ctx, req)
	i.next.Dispatch(runCtx, req, &recording{Sink: sink, i: i, first: first, cancel: cancel, release: i.keepClaim(first, rev)})
}

// recording is the sink of a key's first run: it passes the answer on to
// the caller and records it, a stream's pieces joined, for the repeats.
type recording struct {
	messages.Sink
	i       *idempotent
	first   *messages.JobStatus
	cancel  context.CancelFunc
	release func() // stops the claim's rewrites (keepClaim)

	mu   sync.Mutex // guards text and done: pieces and the final may race
	text strings.Builder
	done bool
}

func (r *recording) Piece(model, text string) {
	r.mu.Lock()
	if !r.done {
		r.text.WriteString(text)
	}
	r.mu.Unlock()
	r.Sink.Piece(model, text)
}

func (r *recording) Final(resp *messages.InferResponse) {
	r.mu.Lock()
	first := !r.done
	r.done = true
	text := r.text.String()
	r.mu.Unlock()
	if first {
		r.cancel()
		r.release()
		rec := resp
		if text != "" || resp == nil { // a stream: its text went out as pieces
			rec = &messages.InferResponse{Error: messages.Failure(messages.ErrorClass_stream_cut, "stream_incomplete",
				"the first answer ended before it was complete")}
			if resp != nil {
				rec = proto.Clone(resp).(*messages.InferResponse)
			}
			rec.Content = text + rec.GetContent()
		}
		r.i.record(r.first, rec)
	}
	r.Sink.Final(resp)
}

// detached is the context the first request of a key runs in: not ended
// by its caller going away, still ended by the request's deadline.
func detached(ctx context.Context, req *messages.InferRequest) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(base, dl)
	}
	if ms := req.GetDeadlineMs(); ms > 0 {
		return context.WithTimeout(base, time.Duration(ms)*time.Millisecond)
	}
	return context.WithCancel(base)
}

// keepClaim rewrites claim (at revision rev) every claimRefresh until the
// returned release is called; release returns once no rewrite is in
// flight, so the answer recorded after it is never overwritten. A rewrite
// that fails (the claim was taken over, JetStream did not answer) is tried
// again at the next period.
func (i *idempotent) keepClaim(claim *messages.JobStatus, rev uint64) (release func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(i.j.claimRefresh)
		defer tick.Stop()
		rec := proto.Clone(claim).(*messages.JobStatus)
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			rec.Updated = timestamppb.Now()
			ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
			if next, err := i.j.idem.Update(ctx, rec.GetJobId(), mustMarshal(rec), rev); err == nil {
				rev = next
			}
			cancel()
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// claim returns the key's record and its revision for the request that
// is to run it, or the answer a repeat gets instead (a replay, a
// conflict, or an error).
func (i *idempotent) claim(ctx context.Context, req *messages.InferRequest) (*messages.JobStatus, uint64, *messages.InferResponse) {
	key := keyID(req.GetIdempotencyKey())
	hash := bodyHash(req)
	now := timestamppb.Now()
	mine := &messages.JobStatus{JobId: key, State: messages.JobStatus_running, Node: i.j.cfg.Node, Submitted: now, Updated: now,
		Model: req.GetModel(), BodyHash: hash}
	wait := idemWait
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	} else if ms := req.GetDeadlineMs(); ms > 0 {
		wait = time.Duration(ms) * time.Millisecond
	}
	wctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		rev, err := i.j.idem.Create(wctx, key, mustMarshal(mine))
		if err == nil {
			return mine, rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, 0, failed(req, messages.Failure(messages.ErrorClass_no_capacity, "idempotency_unavailable",
				"the idempotency key could not be checked, so the request was not run: %v", err))
		}
		first, rev, err := loadRecord(wctx, i.j.idem, key, ErrJobNotFound)
		if errors.Is(err, ErrJobNotFound) {
			continue // expired between the two calls: claim it again
		}
		if err != nil {
			return nil, 0, failed(req, messages.Failure(messages.ErrorClass_no_capacity, "idempotency_unavailable", "%v", err))
		}
		switch {
		case string(first.GetBodyHash()) != string(hash):
			return nil, 0, failed(req, conflict())
		case ended(first):
			return nil, 0, replayed(req, first.GetResult())
		case time.Since(first.GetUpdated().AsTime()) > staleAfter*i.j.claimRefresh:
			// Its node died before answering: take the key over.
			if next, err := i.j.idem.Update(wctx, key, mustMarshal(mine), rev); err == nil {
				return mine, next, nil
			}
			continue
		}
		// Wait for the answer, or for the claim to go stale unrefreshed.
		stale := time.Until(first.GetUpdated().AsTime().Add(staleAfter * i.j.claimRefresh))
		sctx, scancel := context.WithTimeout(wctx, stale+time.Millisecond)
		got := i.await(sctx, key)
		wentStale := sctx.Err() != nil && wctx.Err() == nil
		scancel()
		if got != nil {
			if ended(got) {
				return nil, 0, replayed(req, got.GetResult())
			}
			continue
		}
		if wentStale {
			continue // nothing rewrote the claim meanwhile: look again
		}
		return nil, 0, failed(req, messages.Failure(messages.ErrorClass_timeout, "idempotency_in_progress",
			"the first request with this idempotency key is still running on node %s; its answer was not ready within this request's deadline", first.GetNode()))
	}
}

// await waits for the key's record to change and returns it; nil when
// ctx ended first.
func (i *idempotent) await(ctx context.Context, key string) *messages.JobStatus {
	w, err := i.j.idem.Watch(ctx, key, jetstream.UpdatesOnly())
	if err != nil {
		return nil
	}
	defer func() { _ = w.Stop() }()
	if st, _, err := loadRecord(ctx, i.j.idem, key, ErrJobNotFound); err == nil && ended(st) {
		return st // ended before the watch began
	}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				continue
			}
			st := &messages.JobStatus{State: messages.JobStatus_unknown}
			if e.Operation() == jetstream.KeyValuePut && proto.Unmarshal(e.Value(), st) == nil {
				return st
			}
			return st // deleted or purged: the caller claims again
		case <-ctx.Done():
			return nil
		}
	}
}

// record writes the first request's answer for the repeats. A cancelled
// answer (the deadline passed) is not kept: the key is released, so a
// retry runs the request.
func (i *idempotent) record(first *messages.JobStatus, resp *messages.InferResponse) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if resp.GetError().GetClass() == messages.ErrorClass_cancelled {
		_ = i.j.idem.Delete(ctx, first.GetJobId())
		return
	}
	rec := proto.Clone(first).(*messages.JobStatus)
	rec.State, rec.Result, rec.Updated = messages.JobStatus_done, resp, timestamppb.Now()
	if resp.GetError() != nil {
		rec.State = messages.JobStatus_failed
	}
	if _, err := i.j.idem.Put(ctx, rec.GetJobId(), mustMarshal(rec)); err != nil {
		i.j.cfg.Logger.Warn().Err(err).Str("key", rec.GetJobId()).Msg("idempotent answer not recorded: a repeat will wait, then run it again")
	}
}

// replayed is the first answer as a repeat gets it: its own request id.
func replayed(req *messages.InferRequest, first *messages.InferResponse) *messages.InferResponse {
	resp := proto.Clone(first).(*messages.InferResponse)
	if resp == nil {
		resp = &messages.InferResponse{}
	}
	resp.RequestId, resp.Replayed = req.GetRequestId(), true
	return resp
}

func failed(req *messages.InferRequest, e *messages.Error) *messages.InferResponse {
	return &messages.InferResponse{RequestId: req.GetRequestId(), Error: e}
}
