package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

// serve runs Server(h) on loopback with a short ReadTimeout and returns its
// base URL.
func serve(t *testing.T, h *Handler, readTimeout time.Duration) string {
	t.Helper()
	srv := Server(h)
	srv.ReadTimeout = readTimeout
	return serveWireWith(t, h, srv).URL
}

func TestServerHasTimeouts(t *testing.T) {
	srv := Server(build(t, newFake(t), nil))
	assert.Equal(t, ReadTimeout, srv.ReadTimeout)
	assert.Equal(t, IdleTimeout, srv.IdleTimeout)
	assert.Equal(t, WriteTimeout, srv.WriteTimeout, "fasthttp counts it from the handler's return: from when the answer is ready")
	assert.Equal(t, 4096, srv.MaxRequestBodySize, "Config.MaxBody")
}

// slowModel answers after d: a model slower than the server's ReadTimeout.
func slowModel(d time.Duration) func(context.Context, *messages.InferRequest) *messages.InferResponse {
	return func(ctx context.Context, _ *messages.InferRequest) *messages.InferResponse {
		select {
		case <-time.After(d):
			return &messages.InferResponse{Content: "slow but fine", ServedBy: "gpt-5"}
		case <-ctx.Done():
			return &messages.InferResponse{Error: messages.Failure(messages.ErrorClass_cancelled, "cancelled", "the caller went away")}
		}
	}
}

// TestAnswersOutliveTheReadTimeout: ReadTimeout bounds the upload only: a
// completion or stream whose model takes longer is answered in full.
func TestAnswersOutliveTheReadTimeout(t *testing.T) {
	const readTimeout = 100 * time.Millisecond
	f := newFake(t)
	f.respond = slowModel(4 * readTimeout)
	f.script = func(ctx context.Context, req *messages.InferRequest, sink messages.Sink) {
		sink.Piece("", "slow ")
		resp := slowModel(4*readTimeout)(ctx, req)
		sink.Final(&messages.InferResponse{Content: "but fine", Error: resp.GetError(), ServedBy: "gpt-5"})
	}
	base := serve(t, build(t, f, nil), readTimeout)
	for _, stream := range []string{"false", "true"} {
		res, err := http.Post(base+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"gpt-5","stream":`+stream+`,"messages":[{"role":"user","content":"x"}]}`))
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err, "stream %s", stream)
		assert.Equal(t, http.StatusOK, res.StatusCode, "stream %s: %s", stream, body)
		assert.Contains(t, string(body), "but fine", "stream %s", stream)
		assert.NotContains(t, string(body), "error", "stream %s", stream)
	}
}

// TestSlowUploadIsCutOff: a client that sends headers and part of a body,
// then nothing, gets an answer once ReadTimeout is over, and never holds a
// dispatch.
func TestSlowUploadIsCutOff(t *testing.T) {
	f := newFake(t)
	base := serve(t, build(t, f, nil), 100*time.Millisecond)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"model\":")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "no answer to a stalled upload")
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Nil(t, f.last(), "a stalled upload was dispatched")
}
