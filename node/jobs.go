package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/gateway"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

// nodeJobs is a node's share of the durable jobs: the job queue and
// idempotency buckets, the workers that run jobs, and the jobs subjects.
// It is nil when jobs are off or the node has no persistence.
type nodeJobs struct {
	store    *persistence.Jobs
	workers  *persistence.Workers
	endpoint *bus.JobsEndpoint
}

// openJobs opens the jobs store, or says at start why there is none.
func (n *Node) openJobs(ctx context.Context, c config.Jobs, p config.Persistence, subjects bus.Subjects) (*persistence.Jobs, error) {
	switch {
	case !c.Enabled:
		n.log.Info().Msg("durable jobs and idempotency keys are off (jobs.enabled: false)")
		return nil, nil
	case n.store == nil:
		n.log.Warn().Str("why", n.persistenceDetail).Msg("durable jobs and idempotency keys are off: they need JetStream; keyed requests are served as plain ones")
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, persistOpenTimeout)
	defer cancel()
	j, err := persistence.OpenJobs(ctx, persistence.JobsConfig{
		Conn: n.nc, Subjects: subjects, Node: n.cfg.ID, Replicas: p.Replicas,
		AckWait: c.AckWait, MaxDeliveries: c.MaxDeliveries, ResultTTL: c.ResultTTL, IdempotencyWindow: c.IdempotencyWindow,
		Logger: n.log,
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return j, nil
}

// startJobs starts the workers and the jobs subjects over d.
func (n *Node) startJobs(j *persistence.Jobs, c config.Jobs, subjects bus.Subjects, d bus.Dispatcher) error {
	if j == nil {
		return nil
	}
	ep, err := bus.StartJobs(bus.JobsConfig{Conn: n.nc, Subjects: subjects, Node: n.cfg.ID, Handler: jobsHandler{j}, Logger: n.log, Replies: n.replies})
	if err != nil {
		return err
	}
	n.jobs = &nodeJobs{store: j, workers: j.Work(d, c.Slots, c.CriticalSlots), endpoint: ep}
	n.log.Info().Int("slots", c.Slots).Int("critical_slots", c.CriticalSlots).Msg("durable jobs on")
	return nil
}

// drain stops taking jobs; the running ones go on.
func (j *nodeJobs) drain() {
	if j != nil {
		j.workers.Drain()
	}
}

// stop ends the jobs subjects and the workers: running jobs have until
// ctx ends, then go back to the queue unacknowledged.
func (j *nodeJobs) stop(ctx context.Context) int {
	if j == nil {
		return 0
	}
	j.endpoint.Stop()
	return j.workers.Stop(ctx)
}

// jobsHandler is bus.JobsHandler over the store.
type jobsHandler struct{ j *persistence.Jobs }

func (h jobsHandler) Submit(ctx context.Context, req *messages.InferRequest) (*messages.JobAccepted, error) {
	return h.j.Submit(ctx, req)
}

func (h jobsHandler) Get(ctx context.Context, id string, wait time.Duration) (*messages.JobStatus, error) {
	st, err := h.j.Get(ctx, id, wait)
	if errors.Is(err, persistence.ErrJobNotFound) {
		return &messages.JobStatus{JobId: id, Error: messages.Failure(messages.ErrorClass_bad_request, "not_found",
			"no job %q (never submitted, or its record expired after jobs.resultTTL)", id)}, nil
	}
	return st, err
}

// httpJobs is the gateway's job routes, or nil when jobs are off.
func (n *Node) httpJobs() gateway.Jobs {
	if n.jobs == nil {
		return nil
	}
	return jobsHandler{n.jobs.store}
}
