package chaos

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// A load of kind jobs submits each item as a durable job, as a client
// that must not lose work would: with its idempotency key when the
// scenario gives keys, sent again with the same key when no node
// acknowledged it in time; then it waits for the job's end, announced on
// hive.v1.jobs.done.<id>, reading the job's record as well every jobPoll
// because an announcement is core NATS (a node that dies between
// recording a result and announcing it sends none; the node that takes
// the job again announces it, AckWait later). After the load, the
// runner reads every job's record once more (settleJobs) for its
// deliveries and its result, and compares that result with every
// announcement the job had: a job answered twice differently shows as
// Results > 1.

// Bounds of the job load.
const (
	jobPoll     = time.Second     // a waiter reads its job's record this often while no announcement came
	getTimeout  = 2 * time.Second // one read of a job's record
	settleReads = 8               // records read at once after the load
)

// ClassNotAccepted is the error class the runner gives a job whose
// submission no node acknowledged, after every attempt.
const ClassNotAccepted = "not_accepted"

// jobHub receives the announcements of hive.v1.jobs.done.* and wakes the
// waiter of each job; it keeps what it saw of every job for settleJobs.
type jobHub struct {
	mu   sync.Mutex // guards jobs
	jobs map[string]*jobSeen
}

// jobSeen is what the hub saw of one job.
type jobSeen struct {
	ended     chan struct{} // closed at the first announcement
	first     *messages.JobStatus
	results   map[string]bool // the distinct results, by their deterministic encoding
	announced int
}

func newJobHub() *jobHub { return &jobHub{jobs: map[string]*jobSeen{}} }

// seen returns the job's entry, made on first use; h.mu is held.
func (h *jobHub) seen(id string) *jobSeen {
	s, ok := h.jobs[id]
	if !ok {
		s = &jobSeen{ended: make(chan struct{}), results: map[string]bool{}}
		h.jobs[id] = s
	}
	return s
}

// onDone records an announcement; it runs on the subscription's callback
// and only decodes and files.
func (h *jobHub) onDone(m *nats.Msg) {
	st := &messages.JobStatus{}
	if bus.DecodeTyped(m.Header, m.Data, st) != nil || st.GetJobId() == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.seen(st.GetJobId())
	s.announced++
	s.results[resultKey(st)] = true
	if s.first == nil {
		s.first = st
		close(s.ended)
	}
}

// ended is closed when the job's first announcement arrives.
func (h *jobHub) ended(id string) (<-chan struct{}, func() *messages.JobStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.seen(id)
	return s.ended, func() *messages.JobStatus {
		h.mu.Lock()
		defer h.mu.Unlock()
		return s.first
	}
}

// note adds the result of a record read from the bucket to the job's
// results, and returns how many distinct results and announcements the
// job has had.
func (h *jobHub) note(id string, st *messages.JobStatus) (results, announced int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.seen(id)
	if st != nil && jobEnded(st) {
		s.results[resultKey(st)] = true
	}
	return len(s.results), s.announced
}

// resultKey identifies a job's result: its deterministic encoding. Two
// runs of one job differ at least in their attempts' latencies.
func resultKey(st *messages.JobStatus) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(st.GetResult()) // plain fields always encode
	return string(b)
}

func jobEnded(st *messages.JobStatus) bool {
	return st.GetState() == messages.JobStatus_done || st.GetState() == messages.JobStatus_failed
}

// job submits req as a durable job and waits for its end.
func (g *loadGen) job(nc *nats.Conn, req *messages.InferRequest, r *Request, prompt string) {
	r.Job = &Job{}
	ctx, cancel := context.WithTimeout(g.abandon, g.load.Timeout+lostGrace)
	acc := g.submit(ctx, nc, req, r)
	cancel()
	if acc == nil {
		return
	}
	id := acc.GetJobId()
	r.Job.ID, r.Job.Accepted, r.Job.Duplicate = id, time.Since(g.rec.t0), acc.GetDuplicate()
	st := g.awaitJob(nc, r)
	if st == nil {
		if g.abandon.Err() != nil {
			r.Outcome = Abandoned
			return
		}
		r.Outcome, r.ErrorClass = Lost, ClassLost
		return
	}
	r.Job.Results, r.Job.Announced = g.hub.note(id, st)
	r.Job.Deliveries = int(st.GetDeliveries())
	res := st.GetResult()
	r.Node, r.ServedBy, r.Attempts = st.GetNode(), res.GetServedBy(), attempts(res.GetAttempts())
	if e := res.GetError(); e != nil || st.GetState() == messages.JobStatus_failed {
		r.Outcome, r.ErrorClass, r.ErrorCode = Failed, e.GetClass().String(), e.GetCode()
		return
	}
	g.judge(r, res.GetContent(), prompt)
}

// submit sends req to hive.v1.jobs.submit until a node accepts it, or
// the attempts or ctx run out; it records a refusal in r and returns nil.
func (g *loadGen) submit(ctx context.Context, nc *nats.Conn, req *messages.InferRequest, r *Request) *messages.JobAccepted {
	for {
		r.Sends++
		actx, cancel := g.attempt(ctx, r.Sends)
		acc, err := bus.SubmitJob(actx, nc, g.subjects, req)
		cancel()
		switch {
		case err == nil && acc.GetError() == nil:
			return acc
		case err != nil && g.again(ctx, r.Sends, err):
			continue
		case err != nil && g.abandon.Err() != nil:
			r.Outcome = Abandoned
		case err != nil && errors.Is(err, nats.ErrNoResponders):
			r.Outcome, r.ErrorClass = Failed, ClassNoResponders
		case err != nil:
			r.Outcome, r.ErrorClass, r.ErrorCode = Failed, ClassNotAccepted, err.Error()
		case acc.GetError().GetClass() == messages.ErrorClass_no_capacity && g.retries(r.Sends) && ctx.Err() == nil:
			continue // not stored (JetStream unreachable): the error says to send it again with its key
		default:
			r.Outcome, r.ErrorClass, r.ErrorCode = Failed, acc.GetError().GetClass().String(), acc.GetError().GetCode()
		}
		return nil
	}
}

// awaitJob waits for the end of r's job: its announcement, or its record
// read every jobPoll; nil when ResultTimeout passed first, or the run was
// interrupted.
func (g *loadGen) awaitJob(nc *nats.Conn, r *Request) *messages.JobStatus {
	id := r.Job.ID
	announced, first := g.hub.ended(id)
	deadline := time.NewTimer(g.load.ResultTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(jobPoll)
	defer poll.Stop()
	for {
		select {
		case <-announced:
			r.Job.Via = "done"
			return first()
		case <-poll.C:
			if st := g.readJob(nc, id); jobEnded(st) {
				r.Job.Via = "get"
				return st
			}
		case <-deadline.C:
			if st := g.readJob(nc, id); jobEnded(st) {
				r.Job.Via = "get"
				return st
			}
			return nil
		case <-g.abandon.Done():
			return nil
		}
	}
}

// readJob reads a job's record; nil when no node answered in time.
func (g *loadGen) readJob(nc *nats.Conn, id string) *messages.JobStatus {
	ctx, cancel := context.WithTimeout(g.abandon, getTimeout)
	defer cancel()
	st, err := bus.GetJob(ctx, nc, g.subjects, id, 0)
	if err != nil {
		return nil
	}
	return st
}

// settleJobs reads the record of every accepted job once the load is
// over: its deliveries, and its result, added to the results its
// announcements carried.
func (r *runner) settleJobs(ctx context.Context, hub *jobHub) {
	r.rec.mu.Lock()
	var idx []int
	var ids []string
	for i := range r.rec.requests {
		if j := r.rec.requests[i].Job; j != nil && j.ID != "" {
			idx, ids = append(idx, i), append(ids, j.ID)
		}
	}
	r.rec.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	records := make([]*messages.JobStatus, len(ids))
	next := make(chan int)
	var wg sync.WaitGroup
	for range settleReads {
		wg.Go(func() {
			for k := range next {
				gctx, cancel := context.WithTimeout(ctx, getTimeout)
				st, err := bus.GetJob(gctx, r.ctl, r.subjects, ids[k], 0)
				cancel()
				if err == nil && st.GetError() == nil {
					records[k] = st
				}
			}
		})
	}
	for k := range ids {
		if ctx.Err() != nil {
			break
		}
		next <- k
	}
	close(next)
	wg.Wait()
	unread := 0
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	for k, i := range idx {
		j := r.rec.requests[i].Job
		st := records[k]
		if st == nil {
			unread++
		} else {
			j.Deliveries = max(j.Deliveries, int(st.GetDeliveries()))
		}
		j.Results, j.Announced = hub.note(ids[k], st)
	}
	if unread > 0 {
		r.logf("%d of %d job records could not be read after the load", unread, len(ids))
	}
}
