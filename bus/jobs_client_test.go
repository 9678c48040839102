package bus_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
)

// fakeJobs accepts every job as "j1" and says every job is done.
type fakeJobs struct{}

func (fakeJobs) Submit(_ context.Context, req *messages.InferRequest) (*messages.JobAccepted, error) {
	return &messages.JobAccepted{JobId: "j1"}, nil
}

func (fakeJobs) Get(_ context.Context, id string, _ time.Duration) (*messages.JobStatus, error) {
	return &messages.JobStatus{JobId: id, State: messages.JobStatus_done, Result: &messages.InferResponse{Content: "done"}}, nil
}

// TestJobClient: SubmitJob and GetJob get the endpoint's typed answers,
// and ErrNoNodes when no node serves the jobs subjects. Each round trip
// uses the connection's shared reply inbox: before, each made a
// subscription of its own, whose 64K-message channel cost 512 KiB.
func TestJobClient(t *testing.T) {
	srv := bustest.NewServer(t)
	nc := bustest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := bus.SubmitJob(ctx, nc, subjects, &messages.InferRequest{Model: "m"})
	require.ErrorIs(t, err, bus.ErrNoNodes)

	ep, err := bus.StartJobs(bus.JobsConfig{Conn: bustest.Connect(t, srv), Subjects: subjects, Node: "n1", Handler: fakeJobs{}})
	require.NoError(t, err)
	defer ep.Stop()
	acc, err := bus.SubmitJob(ctx, nc, subjects, &messages.InferRequest{Model: "m", Messages: []*messages.ChatMessage{{Role: "user", Content: "hi"}}})
	require.NoError(t, err)
	assert.Equal(t, "j1", acc.GetJobId())
	st, err := bus.GetJob(ctx, nc, subjects, "j1", time.Second)
	require.NoError(t, err)
	assert.Equal(t, messages.JobStatus_done, st.GetState())
	assert.Equal(t, "done", st.GetResult().GetContent())

	const rounds = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range rounds {
		_, err := bus.GetJob(ctx, nc, subjects, "j1", 0)
		require.NoError(t, err)
	}
	runtime.ReadMemStats(&after)
	perRound := (after.TotalAlloc - before.TotalAlloc) / rounds
	assert.Less(t, perRound, uint64(128<<10), "bytes allocated per GetJob round trip, client and in-process server together")
}
