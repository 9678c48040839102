package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tiktoken-go/tokenizer"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/route"
)

// upstream is an OpenAI-compatible model on loopback that enforces its
// context window as OpenAI does: it counts the prompt with a real
// tokenizer (o200k_base, OpenAI's chat format: 3 tokens a message and 3
// for the reply) and answers 400 context_length_exceeded when the prompt
// plus max_tokens is more than window. A prompt holding "forbidden" gets
// 400 content_policy_violation when refuses is set.
type upstream struct {
	*httptest.Server
	name    string
	window  int
	refuses bool
	calls   atomic.Int32
}

func startUpstream(t *testing.T, name string, window int, refuses bool) *upstream {
	t.Helper()
	codec, err := tokenizer.Get(tokenizer.O200kBase)
	require.NoError(t, err)
	u := &upstream{name: name, window: window, refuses: refuses}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		var body struct {
			Messages  []struct{ Content string } `json:"messages"`
			MaxTokens int                        `json:"max_tokens"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		prompt := 3
		text := ""
		for _, m := range body.Messages {
			ids, _, _ := codec.Encode(m.Content)
			prompt += 3 + len(ids)
			text += m.Content
		}
		w.Header().Set("Content-Type", "application/json")
		if need := prompt + body.MaxTokens; need > u.window {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"message":"This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the messages, %d in the completion).","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
				u.window, need, prompt, body.MaxTokens)
			return
		}
		if u.refuses && strings.Contains(text, "forbidden") {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","code":"content_policy_violation"}}`)
			return
		}
		fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"%s read %d tokens"},"finish_reason":"stop"}],"usage":{"prompt_tokens":%d,"completion_tokens":4}}`,
			u.name, u.name, prompt, prompt)
	}))
	t.Cleanup(u.Close)
	return u
}

// startNodeWith starts a node serving models (a models-resilience.yml) on
// an in-process NATS server, with HTTP on loopback, and returns a client
// connection to that server.
func startNodeWith(t *testing.T, models string) (*Node, *nats.Conn) {
	t.Helper()
	srv := bustest.NewServer(t)
	cfg, err := config.Parse(config.GlobalFile, []byte("recovery: {enabled: false}\nhealthCheck: {enabled: false}"), config.ModelsFile, []byte(models))
	require.NoError(t, err)
	n, err := Start(context.Background(), Config{Files: cfg, ID: "limits", NATS: bus.ConnectOptions{URLs: srv.ClientURL()}, HTTPAddr: "127.0.0.1:0"},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	return n, bustest.Connect(t, srv)
}

// ask sends one chat completion through the node's HTTP endpoint with the
// OpenAI SDK, and returns the answer (nil on an error), the raw response
// and the error.
func ask(t *testing.T, n *Node, model, prompt string, maxTokens int64) (*openai.ChatCompletion, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestLimit)
	defer cancel()
	params := openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}
	if maxTokens > 0 {
		params.MaxTokens = openai.Int(maxTokens)
	}
	var raw *http.Response
	c := client(n)
	resp, err := c.Chat.Completions.New(ctx, params, option.WithResponseInto(&raw))
	return resp, raw, err
}

// limitsModels serves two mock upstreams: "tiny" holds 1,000 tokens and
// "roomy" 100,000. small and blind call tiny (small knows its window,
// blind does not, and falls back to roomy for a too-long prompt only);
// large calls roomy. Retries are allowed, so that a same-model retry would
// show.
func limitsModels(tiny, roomy *upstream) string {
	return fmt.Sprintf(`
models:
  small:
    provider: openai
    endpoint: %[1]s/v1
    upstreamModel: tiny
    contextWindow: 1000
    retry: {maxRetries: 3, baseDelay: 1ms}
    fallbacks: [large]
  blind:
    provider: openai
    endpoint: %[1]s/v1
    upstreamModel: tiny
    retry: {maxRetries: 3, baseDelay: 1ms}
    fallbacks: [large]
    contextWindowFallbacks: [large]
  large:
    provider: openai
    endpoint: %[2]s/v1
    upstreamModel: roomy
    contextWindow: 100000
  strict:
    provider: openai
    endpoint: %[1]s/v1
    upstreamModel: tiny
    fallbacks: [small]
    contentPolicyFallbacks: [large]
  plain:
    provider: openai
    endpoint: %[1]s/v1
    upstreamModel: tiny
    fallbacks: [large]
`, tiny.URL, roomy.URL)
}

// words returns a prompt of n words of English prose.
func words(n int) string {
	const text = "the router skips a model whose window cannot hold the prompt and sends it to one that can "
	w := strings.Fields(text)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w[i%len(w)])
	}
	return b.String()
}

func TestContextWindowThroughTheGateway(t *testing.T) {
	tiny, roomy := startUpstream(t, "tiny", 1000, true), startUpstream(t, "roomy", 100_000, false)
	n, nc := startNodeWith(t, limitsModels(tiny, roomy))
	long := words(3000) // about 3,000 tokens: too long for tiny, short for roomy

	t.Run("a short prompt is served by the primary", func(t *testing.T) {
		before := tiny.calls.Load()
		resp, raw, err := ask(t, n, "small", "hi", 100)
		require.NoError(t, err)
		assert.Equal(t, "small", resp.Model)
		assert.Equal(t, "small=ok", raw.Header.Get("X-Hive-Attempts"))
		assert.Equal(t, before+1, tiny.calls.Load())
	})

	t.Run("a long prompt skips a model whose window is known", func(t *testing.T) {
		before := tiny.calls.Load()
		resp, raw, err := ask(t, n, "small", long, 0)
		require.NoError(t, err)
		assert.Equal(t, "large", resp.Model)
		assert.Equal(t, "small=skipped:context_window,large=ok", raw.Header.Get("X-Hive-Attempts"))
		assert.Equal(t, before, tiny.calls.Load(), "the small model is not called")
	})

	t.Run("over NATS, the attempts say why a model was skipped", func(t *testing.T) {
		before := tiny.calls.Load()
		_, resp := requestJSON(t, nc, `{"model":"small","messages":[{"role":"user","content":"`+long+`"}]}`)
		require.Nil(t, resp.GetError())
		assert.Equal(t, "large", resp.GetServedBy())
		require.Len(t, resp.GetAttempts(), 2)
		a := resp.GetAttempts()[0]
		assert.Equal(t, "small", a.GetModel())
		assert.Equal(t, messages.Attempt_context_window, a.GetSkipped())
		assert.Equal(t, messages.ErrorClass_context_length, a.GetErrorClass())
		assert.Equal(t, before, tiny.calls.Load())
	})

	t.Run("max_tokens counts against the window", func(t *testing.T) {
		before := tiny.calls.Load()
		resp, raw, err := ask(t, n, "small", "hi", 2000)
		require.NoError(t, err)
		assert.Equal(t, "large", resp.Model)
		assert.Equal(t, "small=skipped:context_window,large=ok", raw.Header.Get("X-Hive-Attempts"))
		assert.Equal(t, before, tiny.calls.Load())
	})

	t.Run("an unknown window costs one call, and no retry", func(t *testing.T) {
		before := tiny.calls.Load()
		resp, raw, err := ask(t, n, "blind", long, 0)
		require.NoError(t, err)
		assert.Equal(t, "large", resp.Model)
		assert.Equal(t, "blind=context_length,large=ok", raw.Header.Get("X-Hive-Attempts"))
		assert.Equal(t, before+1, tiny.calls.Load(), "one call on the small model, not retried")
	})

	t.Run("an estimate below the real count costs one call", func(t *testing.T) {
		// A prompt just over tiny's window by the real tokenizer that the
		// estimate, a lower bound, still lets through: small is called once,
		// answers context_length, and large (a larger known window) serves.
		codec, err := tokenizer.Get(tokenizer.O200kBase)
		require.NoError(t, err)
		prompt := ""
		for k := 100; ; k++ {
			prompt = words(k)
			if ids, _, _ := codec.Encode(prompt); 3+3+len(ids) > 1000 {
				break
			}
		}
		require.LessOrEqual(t, route.EstimateText(prompt)+7, 1000, "the estimate lets this prompt through")
		before := tiny.calls.Load()
		resp, raw, err := ask(t, n, "small", prompt, 0)
		require.NoError(t, err)
		assert.Equal(t, "large", resp.Model)
		assert.Equal(t, "small=context_length,large=ok", raw.Header.Get("X-Hive-Attempts"))
		assert.Equal(t, before+1, tiny.calls.Load())
	})

	t.Run("with no larger window known, context_length is returned", func(t *testing.T) {
		// plain falls back to large, but plain's window is unknown and it
		// has no context-window fallback: nothing is known to be larger.
		before, beforeRoomy := tiny.calls.Load(), roomy.calls.Load()
		_, _, err := ask(t, n, "plain", long, 0)
		var apiErr *openai.Error
		require.True(t, errors.As(err, &apiErr), "error %v", err)
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
		assert.Equal(t, "context_length", apiErr.Code)
		assert.Contains(t, apiErr.Message, "maximum context length is 1000 tokens", "the provider's message")
		assert.Equal(t, before+1, tiny.calls.Load())
		assert.Equal(t, beforeRoomy, roomy.calls.Load())
	})

	t.Run("no window can hold the prompt: no model is called", func(t *testing.T) {
		before, beforeRoomy := tiny.calls.Load(), roomy.calls.Load()
		_, raw, err := ask(t, n, "small", words(150_000), 0)
		var apiErr *openai.Error
		require.True(t, errors.As(err, &apiErr), "error %v", err)
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
		assert.Equal(t, "context_window", apiErr.Code)
		assert.Contains(t, apiErr.Message, "the largest context window of small is 100000 (large)")
		assert.Contains(t, apiErr.Message, "prompt tokens (estimated)")
		assert.Equal(t, "small=skipped:context_window,large=skipped:context_window", raw.Header.Get("X-Hive-Attempts"))
		assert.Equal(t, before, tiny.calls.Load())
		assert.Equal(t, beforeRoomy, roomy.calls.Load())
	})
}

func TestContentPolicyThroughTheGateway(t *testing.T) {
	tiny, roomy := startUpstream(t, "tiny", 1000, true), startUpstream(t, "roomy", 100_000, false)
	n, _ := startNodeWith(t, limitsModels(tiny, roomy))

	// strict's refusal goes to its policy fallback, large, not to small.
	before := tiny.calls.Load()
	resp, raw, err := ask(t, n, "strict", "a forbidden question", 0)
	require.NoError(t, err)
	assert.Equal(t, "large", resp.Model)
	assert.Equal(t, "strict=content_policy,large=ok", raw.Header.Get("X-Hive-Attempts"))
	assert.Equal(t, before+1, tiny.calls.Load(), "neither retried nor sent to small")

	// plain has no policy fallback: the provider's reason, at once.
	_, _, err = ask(t, n, "plain", "a forbidden question", 0)
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "error %v", err)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	assert.Equal(t, "content_policy", apiErr.Code)
	assert.Contains(t, apiErr.Message, "rejected as a result of our safety system")
	assert.Equal(t, before+2, tiny.calls.Load())
}
