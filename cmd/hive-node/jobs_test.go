package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
)

const slowSim = `
models:
  slow:
    provider: sim
    sim: {latency: 300ms}
`

// modelRequests reads a model's request count from the node's status.
func modelRequests(t *testing.T, nc *nats.Conn, node, model string) int64 {
	t.Helper()
	replies, err := bus.AdminRequest(t.Context(), nc, bus.Subjects{}, node, bus.CmdStatus, nil, time.Second)
	require.NoError(t, err)
	for _, m := range replies[0].GetStatus().GetModels() {
		if m.GetName() == model {
			return m.GetRequests()
		}
	}
	t.Fatalf("no model %s on %s", model, node)
	return 0
}

// TestRetriesWithTheSameKeyCallTheModelOnce: a client whose every request
// times out before the answer (300 ms model, 50 ms client timeout) retries
// with the same idempotency key until it gets one, on two nodes: the model
// is called once per distinct key, and every retry gets the first answer.
func TestRetriesWithTheSameKeyCallTheModelOnce(t *testing.T) {
	srv := bustest.NewServer(t)
	for _, node := range []string{"k1", "k2"} {
		cfg, err := config.Parse(config.GlobalFile, nil, config.ModelsFile, []byte(slowSim))
		require.NoError(t, err)
		n, err := startNode(&serveFlags{natsFlags: natsFlags{natsURL: srv.ClientURL()}, nodeID: node, httpAddr: "off"},
			cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	}
	nc := bustest.Connect(t, srv)
	const keys = 4
	retries := 0
	for k := range keys {
		body := fmt.Sprintf(`{"model":"slow","idempotencyKey":"key-%d-7f1c","messages":[{"role":"user","content":"question %d"}]}`, k, k)
		deadline := time.Now().Add(requestLimit)
		for {
			msg, err := nc.Request("hive.v1.infer", []byte(body), 50*time.Millisecond)
			if errors.Is(err, nats.ErrTimeout) && time.Now().Before(deadline) {
				retries++
				continue
			}
			require.NoError(t, err)
			resp := &messages.InferResponse{}
			require.NoError(t, protojson.Unmarshal(msg.Data, resp))
			require.Nil(t, resp.GetError(), "key %d: %v", k, resp.GetError())
			assert.Contains(t, resp.GetContent(), fmt.Sprintf("question %d", k))
			assert.True(t, resp.GetReplayed(), "a retry gets the first answer")
			break
		}
	}
	require.Greater(t, retries, keys, "the client timed out and retried")
	calls := modelRequests(t, nc, "k1", "slow") + modelRequests(t, nc, "k2", "slow")
	assert.Equal(t, int64(keys), calls, "model calls for %d distinct keys over %d retries", keys, retries)
}

// TestJobsOverHTTP: POST /v1/hive/jobs stores a job (202, Location), the
// same Idempotency-Key gives the same job (200, Idempotent-Replayed), and
// GET /v1/hive/jobs/{id}?wait= returns its result as a chat.completion.
func TestJobsOverHTTP(t *testing.T) {
	n, _ := startTestNode(t)
	post := func() (*http.Response, map[string]any) {
		r, err := http.NewRequest(http.MethodPost, n.HTTPURL()+"/v1/hive/jobs",
			strings.NewReader(`{"model":"primary","messages":[{"role":"user","content":"over http"}]}`))
		require.NoError(t, err)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", "http-job-2c9e")
		res, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		defer res.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
		return res, body
	}
	res, first := post()
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%v", first)
	id := first["id"].(string)
	assert.Equal(t, "/v1/hive/jobs/"+id, res.Header.Get("Location"))
	res, again := post()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, id, again["id"])
	assert.Equal(t, "true", res.Header.Get("Idempotent-Replayed"))

	got, err := http.Get(n.HTTPURL() + "/v1/hive/jobs/" + id + "?wait=10")
	require.NoError(t, err)
	defer got.Body.Close()
	b, err := io.ReadAll(got.Body)
	require.NoError(t, err)
	var job struct {
		Status string `json:"status"`
		Node   string `json:"node"`
		Result struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(b, &job), "%s", b)
	assert.Equal(t, "done", job.Status, "%s", b)
	assert.Equal(t, "e2e", job.Node)
	assert.Equal(t, "chat.completion", job.Result.Object)
	require.Len(t, job.Result.Choices, 1)
	assert.Contains(t, job.Result.Choices[0].Message.Content, "over http")

	missing, err := http.Get(n.HTTPURL() + "/v1/hive/jobs/nosuchjob")
	require.NoError(t, err)
	missing.Body.Close()
	assert.Equal(t, http.StatusNotFound, missing.StatusCode)
}
