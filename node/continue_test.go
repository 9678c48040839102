package node

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
)

const rescueModels = `
models:
  gpt-5:
    provider: sim
    sim: {latency: 1ms, tokenDelay: 0ms, reply: "It was the best of times, it was the worst of times."}
    retry: {maxRetries: 0}
    fallbacks: [claude]
  claude:
    provider: sim
    supportsPrefill: true
    sim: {latency: 1ms, tokenDelay: 0ms, reply: "It was the best of times, it was the worst of times."}
`

// The official OpenAI Go SDK reads a stream that the real node rescued:
// gpt-5's stream is cut after three words (an injected fault), claude
// continues it from a prefill, and the SDK gets the whole answer, with a
// finish_reason, no error, and the story in the trailers; a NATS client
// gets the same stream, its final chunk saying so.
func TestHTTPRescuedStreamWithTheOpenAISDK(t *testing.T) {
	srv := bustest.NewServer(t)
	cfg, err := config.Parse(config.GlobalFile, []byte("chaos: {enabled: true}"), config.ModelsFile, []byte(rescueModels))
	require.NoError(t, err)
	n, err := Start(context.Background(), Config{Files: cfg, ID: "e2e", NATS: bus.ConnectOptions{URLs: srv.ClientURL()}, HTTPAddr: "127.0.0.1:0"},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	_, err = n.chaos.Inject(&messages.FaultSpec{Id: "cut", Model: "gpt-5", Kind: messages.FaultSpec_cut_stream, AfterTokens: 3})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	var raw *http.Response
	c := client(n)
	stream := c.Chat.Completions.NewStreaming(ctx, chat("gpt-5"), option.WithResponseInto(&raw))
	var acc openai.ChatCompletionAccumulator
	var models []string
	for stream.Next() {
		ch := stream.Current()
		acc.AddChunk(ch)
		if len(models) == 0 || models[len(models)-1] != ch.Model {
			models = append(models, ch.Model)
		}
	}
	require.NoError(t, stream.Err(), "a rescued stream is no error")
	require.NoError(t, stream.Close())
	require.Len(t, acc.Choices, 1)
	assert.Equal(t, "It was the best of times, it was the worst of times.", acc.Choices[0].Message.Content, "the whole answer, once")
	assert.Equal(t, "stop", acc.Choices[0].FinishReason)
	assert.Equal(t, []string{"gpt-5", "claude"}, models, "each event names the model that wrote it")
	assert.Equal(t, "text/event-stream", raw.Header.Get("Content-Type"))

	// The trailers follow [DONE], where the SDK stops reading and closes
	// the body, so it may or may not have read them: a client that wants
	// them reads the body to its end, as this one does.
	resp, err := http.Post(n.httpURL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-5","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Contains(t, string(body), "data: [DONE]")
	assert.Equal(t, "gpt-5=stream_cut,claude=ok+prefill", resp.Trailer.Get("X-Hive-Attempts"))
	assert.Equal(t, "complete", resp.Trailer.Get("X-Hive-Continuation"))

	// The same over NATS: one numbered stream, its final chunk marked.
	nc := bustest.Connect(t, srv)
	text, ch := streamOverNATS(t, nc, `{"model":"gpt-5","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, messages.InferChunk_complete, ch.Outcome, "final: %v", ch)
	assert.Equal(t, "complete", ch.Continuation)
	require.Len(t, ch.Attempts, 2)
	assert.Equal(t, messages.ErrorClass_stream_cut, ch.Attempts[0].ErrorClass)
	assert.Equal(t, "prefill", ch.Attempts[1].Continued)
	assert.Equal(t, "It was the best of times, it was the worst of times.", text)
}
