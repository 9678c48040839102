package chaos

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// jobsBase is a valid load of jobs on two nodes; its line numbers matter
// to the expected messages.
const jobsBase = `name: j
description: d
steadyState: s
nodes: 2
hive:
  global: {jobs: {ackWait: 2s, maxDeliveries: 2}}
  models:
    a: {}
load:
  kind: jobs
  rate: 10
  duration: 10s
  timeout: 3s
  idempotencyKeys: true
  retry: {after: 1s}
  mix:
    - {model: a}
objectives:
  - lost_jobs == 0
`

func TestParseJobs(t *testing.T) {
	sc, err := Parse("j.yml", []byte(jobsBase))
	require.NoError(t, err)
	l := sc.Load
	assert.Equal(t, LoadJobs, l.Kind)
	assert.True(t, l.IdempotencyKeys)
	assert.Equal(t, Retry{After: time.Second, Attempts: DefaultRetryAttempts}, l.Retry)
	assert.Equal(t, 3*(2*time.Second+3*time.Second), l.ResultTimeout, "(maxDeliveries + 1) x (ackWait + timeout)")

	sc, err = Parse("t.yml", []byte(base))
	require.NoError(t, err)
	assert.Equal(t, LoadRequests, sc.Load.Kind, "the default kind")
	assert.Equal(t, Retry{}, sc.Load.Retry, "no retries unless asked")
	assert.Zero(t, sc.Load.ResultTimeout)
}

func TestParseJobsErrors(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // jobsBase with old replaced by new
		want     string
	}{
		{"unknown kind", "kind: jobs", "kind: batch",
			`j.yml:10: load.kind: unknown kind "batch" (known: requests, jobs)`},
		{"keys not a boolean", "idempotencyKeys: true", "idempotencyKeys: yes",
			`j.yml:14: load.idempotencyKeys: "yes" is not true or false`},
		{"jobs that stream", "  timeout: 3s\n", "  timeout: 3s\n  streamShare: 0.5\n",
			`j.yml:14: load.streamShare: a job cannot stream (its answer is kept as one result): leave streamShare out with kind: jobs`},
		{"retried submissions without keys", "idempotencyKeys: true", "idempotencyKeys: false",
			`j.yml:15: load.retry: a submission sent again without an idempotency key may be stored as two jobs: set idempotencyKeys: true`},
		{"retry without after", "retry: {after: 1s}", "retry: {attempts: 4}",
			`j.yml:15: load.retry.after: is required: how long an attempt waits for its answer before the next is sent`},
		{"retry as long as the timeout", "retry: {after: 1s}", "retry: {after: 3s}",
			`j.yml:15: load.retry.after: 3s must be shorter than load.timeout (3s): the last attempt waits for the rest of it`},
		{"one attempt", "retry: {after: 1s}", "retry: {after: 1s, attempts: 1}",
			`j.yml:15: load.retry.attempts: 1 is out of range (2 to 100)`},
		{"unknown retry key", "retry: {after: 1s}", "retry: {after: 1s, backoff: 2}",
			`j.yml:15: load.retry.backoff: unknown key (known: after, attempts)`},
		{"result timeout of requests", "  kind: jobs\n", "  resultTimeout: 5s\n",
			`j.yml:10: load.resultTimeout: applies to kind: jobs only`},
		{"jobs turned off", "global: {jobs: {ackWait: 2s, maxDeliveries: 2}}", "global: {jobs: {enabled: false}}",
			`j.yml:10: load.kind: jobs are off in the hive configuration (hive.global.jobs.enabled: false)`},
		{"no persistence", "global: {jobs: {ackWait: 2s, maxDeliveries: 2}}", "global: {persistence: {enabled: false}}",
			`j.yml:10: load.kind: jobs are served only with persistence (JetStream), which hive.global.persistence.enabled turns off`},
		{"requests with keys and retries", "  kind: jobs\n", "  kind: requests\n", ""}, // valid
		{"keys without persistence", "{jobs: {ackWait: 2s, maxDeliveries: 2}}\n  models:\n    a: {}\nload:\n  kind: jobs\n",
			"{persistence: {enabled: false}}\n  models:\n    a: {}\nload:\n",
			"j.yml:13: load.idempotencyKeys: idempotency keys are served only with persistence (JetStream), which hive.global.persistence.enabled turns off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, jobsBase, tt.old, "the case must change the base")
			src := strings.Replace(jobsBase, tt.old, tt.new, 1)
			_, err := Parse("j.yml", []byte(src))
			if tt.want == "" {
				require.NoError(t, err, "scenario:\n%s", src)
				return
			}
			require.Error(t, err, "scenario:\n%s", src)
			assert.Equal(t, tt.want, err.Error(), "scenario:\n%s", src)
		})
	}
}

// jobRecording is a run of ten jobs: seven ended once; one ran twice (a
// node died holding it) and kept one result; one got two different
// results; one accepted job never ended; one submission no node
// acknowledged. Three submissions were sent twice.
func jobRecording() *Recording {
	rec := &Recording{Duration: 10 * time.Second, Elapsed: 10 * time.Second}
	for i := range 10 {
		start := time.Duration(i) * time.Second
		r := Request{ID: "j", Model: "a", Start: start, End: start + 250*ms, Outcome: OK, ServedBy: "a", Node: "n1", Sends: 1, Keyed: true,
			Job: &Job{ID: "k" + string(rune('0'+i)), Accepted: start + 5*ms, Deliveries: 1, Results: 1, Announced: 1, Via: "done"}}
		switch i {
		case 3:
			r.Job.Deliveries, r.End = 2, start+2300*ms
		case 4:
			r.Job.Results, r.Job.Announced = 2, 2
		case 5:
			r.Outcome, r.ErrorClass, r.Job.Results, r.Job.Announced, r.Job.Via = Lost, ClassLost, 0, 0, ""
		case 6:
			r.Outcome, r.ErrorClass, r.Job.ID, r.Sends = Failed, ClassNotAccepted, "", 4
		case 7, 8:
			r.Sends, r.Job.Duplicate, r.Replayed = 2, i == 8, i == 7
		}
		rec.Requests = append(rec.Requests, r)
	}
	return rec
}

func TestEvaluateJobs(t *testing.T) {
	tests := []struct {
		objective string
		change    func(*Recording)
		want      float64
		measured  bool
		note      string
	}{
		{"lost_jobs == 0", nil, 1, true, "of 10 jobs"},
		{"unaccepted_jobs == 0", nil, 1, true, "of 10 jobs"},
		{"conflicting_results == 0", nil, 1, true, "of 10 jobs"},
		{"redelivered_jobs <= 5", nil, 1, true, "of 10 jobs"},
		{"retried_requests >= 1", nil, 3, true, ""},
		{"lost_jobs == 0", func(r *Recording) {
			for i := range r.Requests {
				r.Requests[i].Job = nil
			}
		}, 0, false, "no job in the run (a load of kind jobs has them)"},
		{"abandoned jobs are not counted", func(r *Recording) { r.Requests[5].Outcome = Abandoned }, 0, true, "of 9 jobs"},
		{"model_calls >= 0", nil, 0, false, "not counted: n2 restarted during the run"},
		{"model_calls >= 0", func(r *Recording) { r.ModelCalls, r.ModelCallsCounted = 12, true }, 12, true, ""},
		{"extra_model_calls == 0", func(r *Recording) { r.ModelCalls, r.ModelCallsCounted = 12, true }, 2, true, "12 calls for 10 keys"},
		{"extra_model_calls == 0", func(r *Recording) {
			r.ModelCalls, r.ModelCallsCounted = 12, true
			for i := range r.Requests {
				r.Requests[i].Keyed = false
			}
		}, 0, false, "no request carried an idempotency key (load.idempotencyKeys)"},
	}
	for _, tt := range tests {
		t.Run(tt.objective, func(t *testing.T) {
			text := tt.objective
			if !strings.ContainsAny(text, "<>=") {
				text = "lost_jobs == 0"
			}
			o, err := ParseObjective(text)
			require.NoError(t, err)
			rec := jobRecording()
			rec.ModelCallsNote = "not counted: n2 restarted during the run"
			if tt.change != nil {
				tt.change(rec)
			}
			res := Evaluate([]Objective{o}, rec)[0]
			assert.Equal(t, tt.measured, res.Measured, "measured; note %q", res.Note)
			assert.InDelta(t, tt.want, res.Value, 1e-9, "value")
			assert.Equal(t, tt.note, res.Note)
		})
	}
}

func TestCountCalls(t *testing.T) {
	t0, t1 := time.Unix(100, 0), time.Unix(200, 0)
	before := map[string]nodeCalls{"n1": {t0, 10}, "n2": {t0, 5}}
	tests := []struct {
		name    string
		after   map[string]nodeCalls
		calls   int64
		counted bool
		note    string
	}{
		{"same nodes", map[string]nodeCalls{"n1": {t0, 40}, "n2": {t0, 25}}, 50, true, ""},
		{"a node restarted", map[string]nodeCalls{"n1": {t0, 40}, "n2": {t1, 3}}, 0, false, "not counted: n2 restarted during the run"},
		{"a node gone", map[string]nodeCalls{"n1": {t0, 40}}, 0, false, "not counted: n2 did not answer after the load"},
		{"a node joined", map[string]nodeCalls{"n1": {t0, 40}, "n2": {t0, 25}, "n3": {t1, 1}}, 0, false, "not counted: n3 joined during the run"},
		{"not read after", nil, 0, false, "the nodes' counters were not read after the load"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, counted, note := countCalls(before, tt.after)
			assert.Equal(t, tt.calls, calls)
			assert.Equal(t, tt.counted, counted)
			assert.Equal(t, tt.note, note)
		})
	}
	_, counted, note := countCalls(nil, before)
	assert.False(t, counted)
	assert.Equal(t, "the nodes' counters were not read before the load", note)
}

func TestReportJobs(t *testing.T) {
	rec := jobRecording()
	o, err := ParseObjective("lost_jobs == 0")
	require.NoError(t, err)
	rep := &Report{Scenario: "jobs", Target: "2 hive nodes", Recording: rec, Results: Evaluate([]Objective{o}, rec),
		Load: Load{Kind: LoadJobs, Rate: 1, Duration: 10 * time.Second, IdempotencyKeys: true, Retry: Retry{After: time.Second, Attempts: 4}, Mix: []Mix{{"a", 1}}}}
	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	for _, want := range []string{
		"load: 1 jobs/s, a key each, sent again after 1s (at most 4 times) to a x1",
		"; 3 sent more than once; 1 answered with their key's first answer\n",
		"jobs (warmup included): 10 submitted, 9 accepted (1 retries answered as duplicates), 8 done, 0 failed, 1 lost\n",
		"  1 delivered more than once, 1 with two different results, 0 ends read from the record before any announcement\n",
		"lost_jobs",
	} {
		assert.Contains(t, table.String(), want)
	}
	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var got struct {
		Summary summary `json:"summary"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &got))
	assert.Equal(t, &jobSummary{Submitted: 10, Accepted: 9, Duplicates: 1, Done: 8, Failed: 0, Lost: 1, Redelivered: 1, Conflicting: 1}, got.Summary.Jobs)
	assert.Equal(t, 3, got.Summary.Retried)
	assert.Equal(t, 1, got.Summary.Replayed)

	var lines bytes.Buffer
	require.NoError(t, rep.WriteRequests(&lines))
	var first jsonRequest
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(lines.String(), "\n", 2)[0]), &first))
	require.NotNil(t, first.Job)
	assert.Equal(t, jsonJob{ID: "k0", AcceptedMs: 5, Deliveries: 1, Results: 1, Announced: 1, Via: "done"}, *first.Job)
}

// TestJobHub: announcements wake the job's waiter, whether they come
// before or after it asks, and every distinct result is counted, the
// record's included.
func TestJobHub(t *testing.T) {
	h := newJobHub()
	announce := func(st *messages.JobStatus) {
		t.Helper()
		msg, err := bus.NewMsg("hive.v1.jobs.done."+st.GetJobId(), bus.Protobuf, st)
		require.NoError(t, err)
		h.onDone(msg)
	}
	result := func(id, node string) *messages.JobStatus {
		return &messages.JobStatus{JobId: id, State: messages.JobStatus_done, Node: node,
			Result: &messages.InferResponse{Content: "x", Node: node}}
	}
	announce(result("early", "n1"))
	ended, first := h.ended("early")
	select {
	case <-ended:
	default:
		t.Fatal("an announcement before the waiter asked did not wake it")
	}
	assert.Equal(t, "n1", first().GetNode())

	ended, first = h.ended("late")
	announce(result("late", "n2"))
	select {
	case <-ended:
	case <-time.After(time.Second):
		t.Fatal("an announcement after the waiter asked did not wake it")
	}
	assert.Equal(t, "n2", first().GetNode())

	announce(result("late", "n2")) // the same result again
	results, announced := h.note("late", result("late", "n2"))
	assert.Equal(t, 1, results)
	assert.Equal(t, 2, announced)
	results, _ = h.note("late", result("late", "n3")) // the record says another
	assert.Equal(t, 2, results)
	results, _ = h.note("late", &messages.JobStatus{JobId: "late", State: messages.JobStatus_running})
	assert.Equal(t, 2, results, "a record that has not ended has no result")

	h.onDone(&nats.Msg{Subject: "hive.v1.jobs.done.bad", Data: []byte("not a status")})
	results, announced = h.note("bad", nil)
	assert.Zero(t, results+announced, "an undecodable announcement is ignored")
}
