package node

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// client is the official OpenAI Go SDK pointed at a node's HTTP endpoint.
func client(n *Node) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(n.httpURL+"/v1/"),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
	)
}

func chat(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}
}

// The OpenAI SDK, unchanged, gets answers from a node: the reply names
// the model that actually served, and the Hive headers tell the story.
func TestHTTPWithTheOpenAISDK(t *testing.T) {
	n, _ := startTestNode(t)
	c := client(n)
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()

	var raw *http.Response
	resp, err := c.Chat.Completions.New(ctx, chat("broken"), option.WithResponseInto(&raw))
	require.NoError(t, err)
	assert.Equal(t, "backup", resp.Model, "the model that served")
	assert.Equal(t, "backup here", resp.Choices[0].Message.Content)
	assert.Equal(t, "backup", raw.Header.Get("X-Hive-Served-By"))
	assert.Equal(t, "broken=server_error,broken=server_error,backup=ok", raw.Header.Get("X-Hive-Attempts"))

	stream := c.Chat.Completions.NewStreaming(ctx, chat("primary"))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	assert.Equal(t, "primary (simulated) received: hi", acc.Choices[0].Message.Content)

	_, err = c.Chat.Completions.New(ctx, chat("gpt-6"))
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "error %v", err)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	assert.Equal(t, "unknown_model", apiErr.Code)
}

// Every model down: 503 with a Retry-After, without calling any model.
func TestHTTPAllDownIs503WithRetryAfter(t *testing.T) {
	n, _ := startTestNodeWith(t, "recovery: {enabled: false}\ngroupProtection: {panicRate: 0}")
	c := client(n)
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	// "dead" opens after 3 failures; "backup" serves meanwhile. Then take
	// backup out of rotation, so nothing in the group takes traffic.
	for range 3 {
		_, err := c.Chat.Completions.New(ctx, chat("dead"))
		require.NoError(t, err)
	}
	_, err := n.hive.Control("backup", "model_disable", 0, "test", "")
	require.NoError(t, err)

	var raw *http.Response
	_, err = c.Chat.Completions.New(ctx, chat("dead"), option.WithResponseInto(&raw))
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "error %v", err)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	assert.Equal(t, "all_unavailable", apiErr.Code)
	assert.NotEmpty(t, apiErr.Response.Header.Get("Retry-After"), "Retry-After when every model is down")
}

// Every model forced open by an operator, until closed: still a 503 with
// Retry-After over HTTP, and retryAfterMs over NATS.
func TestHTTPAllForcedOpenIs503WithRetryAfter(t *testing.T) {
	n, nc := startTestNodeWith(t, "groupProtection: {panicRate: 0}")
	for _, m := range []string{"primary", "backup"} {
		_, err := n.hive.Control(m, "breaker_open", 0, "test", "") // what `hive-node breaker open` asks
		require.NoError(t, err, "breaker open %s", m)
	}
	c := client(n)
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	_, err := c.Chat.Completions.New(ctx, chat("primary"), option.WithMaxRetries(0))
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "error %v", err)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	assert.Equal(t, "all_unavailable", apiErr.Code)
	assert.Equal(t, "1", apiErr.Response.Header.Get("Retry-After"), "Retry-After when every model is forced open")
	assert.Equal(t, "1000", apiErr.Response.Header.Get("Retry-After-Ms"))

	_, resp := requestJSON(t, nc, `{"model":"primary","messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, int32(1000), resp.GetError().GetRetryAfterMs(), "retryAfterMs over NATS: %v", resp.GetError())
}
