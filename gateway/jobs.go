package gateway

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// Jobs stores and reads durable jobs for POST /v1/hive/jobs and
// GET /v1/hive/jobs/{id}. A refusal is an answer with its error set; an
// error is a failure to answer (JetStream unreachable).
type Jobs interface {
	Submit(ctx context.Context, req *messages.InferRequest) (*messages.JobAccepted, error)
	Get(ctx context.Context, id string, wait time.Duration) (*messages.JobStatus, error)
}

// Bounds of the job routes.
const (
	jobTimeout  = 10 * time.Second
	maxJobWait  = 5 * time.Minute
	jobsPath    = "/v1/hive/jobs"
	jobObject   = "hive.job"
	headerIdemp = "Idempotent-Replayed"
)

// jobBody is the JSON of a job on the job routes.
type jobBody struct {
	ID         string       `json:"id"`
	Object     string       `json:"object"`
	Status     string       `json:"status"` // queued, running, done, failed
	Duplicate  bool         `json:"duplicate,omitempty"`
	Model      string       `json:"model,omitempty"`
	Node       string       `json:"node,omitempty"`
	Deliveries uint32       `json:"deliveries,omitempty"`
	CreatedAt  int64        `json:"created_at,omitempty"`
	Result     *completion  `json:"result,omitempty"`
	Error      *errorDetail `json:"error,omitempty"`
}

// submitJob is POST /v1/hive/jobs: the body of a chat completion (stream
// false), with Idempotency-Key honoured; 202 with the job and its
// Location as soon as it is stored.
func (g *gateway) submitJob(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.maxBody))
	if err != nil {
		e := bodyError(err)
		writeErrorParam(w, e.status, e.err, e.param)
		return
	}
	c, e := decode(r.Header.Get, raw)
	if e != nil {
		writeErrorParam(w, e.status, e.err, e.param)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), jobTimeout)
	defer cancel()
	acc, err := g.jobs.Submit(ctx, c.req)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, messages.Failure(messages.ErrorClass_no_capacity, "jobs_unavailable",
			"the job was not stored (retry with the same Idempotency-Key): %v", err))
		return
	}
	if e := acc.GetError(); e != nil {
		writeError(w, errorStatus(e), e)
		return
	}
	w.Header().Set("Location", jobsPath+"/"+acc.GetJobId())
	status := http.StatusAccepted
	if acc.GetDuplicate() {
		w.Header().Set(headerIdemp, "true")
		status = http.StatusOK
	}
	writeJSON(w, status, jobBody{ID: acc.GetJobId(), Object: jobObject, Status: "queued", Duplicate: acc.GetDuplicate(),
		Model: c.req.GetModel(), CreatedAt: now()})
}

// getJob is GET /v1/hive/jobs/{id}[?wait=SECONDS]: the job's state and,
// once it ended, its result as a chat.completion or its error. With wait
// the answer comes when the job ends, or after wait (at most 300 s).
func (g *gateway) getJob(w http.ResponseWriter, r *http.Request) {
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil || s < 0 {
			writeErrorParam(w, http.StatusBadRequest, messages.Failure(messages.ErrorClass_bad_request, "invalid_wait",
				"wait must be a whole number of seconds, at most %d", int(maxJobWait/time.Second)), "wait")
			return
		}
		wait = min(time.Duration(s)*time.Second, maxJobWait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), jobTimeout+wait)
	defer cancel()
	st, err := g.jobs.Get(ctx, r.PathValue("id"), wait)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, messages.Failure(messages.ErrorClass_no_capacity, "jobs_unavailable", "%v", err))
		return
	}
	if e := st.GetError(); e != nil {
		status := errorStatus(e)
		if e.GetCode() == "not_found" {
			status = http.StatusNotFound
		}
		writeError(w, status, e)
		return
	}
	body := jobBody{ID: st.GetJobId(), Object: jobObject, Status: st.GetState().String(), Model: st.GetModel(), Node: st.GetNode(),
		Deliveries: st.GetDeliveries(), CreatedAt: st.GetSubmitted().AsTime().Unix()}
	if res := st.GetResult(); res != nil {
		if e := res.GetError(); e != nil {
			d := toErrorBody(e, "").Error
			body.Error = &d
		} else {
			body.Result = &completion{ID: "chatcmpl-" + res.GetRequestId(), Object: "chat.completion", Created: st.GetUpdated().AsTime().Unix(),
				Model: res.GetServedBy(), Usage: toUsage(res.GetUsage()),
				Choices: []completionChoice{{Message: message{Role: "assistant", Content: res.GetContent()}, FinishReason: "stop"}}}
		}
	}
	writeJSON(w, http.StatusOK, body)
}
