package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

// The official OpenAI Go SDK is the client: what it sees is what users of
// any OpenAI SDK see.

// sdk starts the gateway over f on an httptest server and returns a client
// of it that does not retry, so that each call is one request.
func sdk(t *testing.T, f *fake) openai.Client {
	t.Helper()
	srv := handler(t, f, nil)
	return openai.NewClient(
		option.WithBaseURL(srv.URL+"/v1/"),
		option.WithAPIKey("sk-test"),
		option.WithHTTPClient(srv.Client()),
		option.WithMaxRetries(0),
	)
}

func params(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hi")},
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func TestSDKCompletion(t *testing.T) {
	f := newFake(t)
	f.respond = answer(&messages.InferResponse{
		Content: "Hello there", ServedBy: "claude-4-sonnet",
		Attempts: attempts("gpt-5", messages.ErrorClass_overloaded, "claude-4-sonnet", messages.ErrorClass_ok),
		Usage:    &messages.Usage{PromptTokens: 5, CompletionTokens: 2},
	})
	client := sdk(t, f)

	var raw *http.Response
	p := params("gpt-5")
	p.MaxCompletionTokens = openai.Int(64)
	p.Temperature = openai.Float(0.2)
	got, err := client.Chat.Completions.New(ctx(t), p, option.WithResponseInto(&raw))
	require.NoError(t, err)

	assert.Equal(t, "claude-4-sonnet", got.Model, "the model that served, not the one asked for")
	require.Len(t, got.Choices, 1)
	assert.Equal(t, "Hello there", got.Choices[0].Message.Content)
	assert.Equal(t, "stop", got.Choices[0].FinishReason)
	assert.Equal(t, int64(7), got.Usage.TotalTokens)
	assert.Equal(t, "gpt-5=overloaded,claude-4-sonnet=ok", raw.Header.Get("X-Hive-Attempts"))

	req := f.last()
	assert.Equal(t, "gpt-5", req.GetModel())
	assert.Equal(t, int32(64), req.GetMaxTokens())
	assert.Equal(t, 0.2, req.GetTemperature())
	assert.Equal(t, []string{"system", "user"}, []string{req.GetMessages()[0].GetRole(), req.GetMessages()[1].GetRole()})
}

func TestSDKStream(t *testing.T) {
	f := newFake(t)
	f.script = emits(piece("gpt-5", "Hello, "), piece("gpt-5", "wide "), piece("gpt-5", "world."),
		final(&messages.InferResponse{ServedBy: "gpt-5",
			Usage: &messages.Usage{PromptTokens: 5, CompletionTokens: 3}, Attempts: attempts("gpt-5", messages.ErrorClass_ok)}))
	client := sdk(t, f)

	p := params("gpt-5")
	p.StreamOptions.IncludeUsage = openai.Bool(true)
	stream := client.Chat.Completions.NewStreaming(ctx(t), p)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	require.Len(t, acc.Choices, 1)
	assert.Equal(t, "Hello, wide world.", acc.Choices[0].Message.Content)
	assert.Equal(t, "stop", acc.Choices[0].FinishReason)
	assert.Equal(t, "gpt-5", acc.Model)
	assert.Equal(t, int64(8), acc.Usage.TotalTokens)
	assert.True(t, f.last().GetStream())
}

func TestSDKError(t *testing.T) {
	f := newFake(t)
	f.respond = answer(&messages.InferResponse{
		Attempts: attempts("gpt-5", messages.ErrorClass_circuit_open, "claude-4-sonnet", messages.ErrorClass_circuit_open),
		Error:    &messages.Error{Class: messages.ErrorClass_all_failed, Code: "all_down", Message: "every model is down", RetryAfterMs: 30_000},
	})
	client := sdk(t, f)

	_, err := client.Chat.Completions.New(ctx(t), params("gpt-5"))
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "got %T %v, want *openai.Error", err, err)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	assert.Equal(t, "all_failed", apiErr.Type)
	assert.Equal(t, "all_down", apiErr.Code)
	assert.Equal(t, "every model is down", apiErr.Message)
	assert.Equal(t, "30", apiErr.Response.Header.Get("Retry-After"))
}

// A stream cut after text reached the client is an error to the SDK, not
// a shorter answer.
func TestSDKStreamIncomplete(t *testing.T) {
	f := newFake(t)
	f.script = emits(piece("gpt-5", "Hello, "), piece("gpt-5", "wide "),
		final(&messages.InferResponse{ServedBy: "gpt-5",
			Attempts: attempts("gpt-5", messages.ErrorClass_stream_cut),
			Error:    messages.Failure(messages.ErrorClass_stream_cut, "eof", "the provider's stream ended without its terminal event")}))
	client := sdk(t, f)

	stream := client.Chat.Completions.NewStreaming(ctx(t), params("gpt-5"))
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.Error(t, stream.Err(), "an incomplete answer must surface as an error")
	var se *ssestream.StreamError
	require.True(t, errors.As(stream.Err(), &se), "got %T %v", stream.Err(), stream.Err())
	assert.Contains(t, string(se.Event.Data), `"code":"stream_incomplete"`)
	assert.Contains(t, string(se.Event.Data), `"type":"stream_cut"`)
	assert.Equal(t, "Hello, wide ", acc.Choices[0].Message.Content, "the text received before the cut")
	assert.Empty(t, acc.Choices[0].FinishReason, "no finish_reason for a cut answer")
}

// A stream that fails before any text is an HTTP error, which the SDK
// reports as *openai.Error with the status.
func TestSDKStreamFailsBeforeText(t *testing.T) {
	f := newFake(t)
	f.script = emits(final(&messages.InferResponse{Error: &messages.Error{Class: messages.ErrorClass_rate_limited, Code: "rate_limited", Message: "slow down", RetryAfterMs: 4200}}))
	client := sdk(t, f)

	stream := client.Chat.Completions.NewStreaming(ctx(t), params("gpt-5"))
	defer stream.Close()
	assert.False(t, stream.Next())
	var apiErr *openai.Error
	require.True(t, errors.As(stream.Err(), &apiErr), "got %T %v, want *openai.Error", stream.Err(), stream.Err())
	assert.Equal(t, http.StatusTooManyRequests, apiErr.StatusCode)
	assert.Equal(t, "rate_limited", apiErr.Type)
	assert.Equal(t, "5", apiErr.Response.Header.Get("Retry-After"))
	assert.Equal(t, "4200", apiErr.Response.Header.Get("Retry-After-Ms"))
}

func TestSDKModels(t *testing.T) {
	client := sdk(t, newFake(t))
	page, err := client.Models.List(ctx(t))
	require.NoError(t, err)
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		assert.Equal(t, "hive", m.OwnedBy)
	}
	assert.Equal(t, []string{"gpt-5", "claude-4-sonnet"}, ids)

	m, err := client.Models.Get(ctx(t), "claude-4-sonnet")
	require.NoError(t, err)
	assert.Equal(t, "claude-4-sonnet", m.ID)
}

// Over a real connection, a stream's X-Hive-Attempts arrives as a trailer.
func TestStreamTrailer(t *testing.T) {
	f := newFake(t)
	f.script = emits(piece("", "Hi"), final(&messages.InferResponse{ServedBy: "claude-4-sonnet", Attempts: attempts("gpt-5", messages.ErrorClass_timeout, "claude-4-sonnet", messages.ErrorClass_ok)}))
	srv := handler(t, f, nil)

	resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(streamed))
	require.NoError(t, err)
	defer resp.Body.Close()
	body := readAll(t, resp)
	assert.Contains(t, body, "data: [DONE]")
	assert.Equal(t, "gpt-5=timeout,claude-4-sonnet=ok", resp.Trailer.Get("X-Hive-Attempts"))
	assert.Equal(t, "claude-4-sonnet", resp.Trailer.Get("X-Hive-Served-By"))
}

// A rescued stream ends as any complete one ([DONE]), its trailers saying
// who continued it and how.
func TestStreamTrailerOfARescuedStream(t *testing.T) {
	f := newFake(t)
	cont := &messages.Attempt{Model: "claude-4-sonnet", ErrorClass: messages.ErrorClass_ok, Continued: "prefill"}
	f.script = emits(piece("gpt-5", "Hel"), piece("claude-4-sonnet", "lo"), final(&messages.InferResponse{ServedBy: "claude-4-sonnet",
		Continuation: "complete", Attempts: []*messages.Attempt{{Model: "gpt-5", ErrorClass: messages.ErrorClass_stream_cut}, cont}}))
	srv := handler(t, f, nil)

	resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(streamed))
	require.NoError(t, err)
	defer resp.Body.Close()
	body := readAll(t, resp)
	assert.Contains(t, body, "data: [DONE]")
	assert.NotContains(t, body, `"error"`)
	assert.Equal(t, "gpt-5=stream_cut,claude-4-sonnet=ok+prefill", resp.Trailer.Get("X-Hive-Attempts"))
	assert.Equal(t, "complete", resp.Trailer.Get("X-Hive-Continuation"))
}
