package openai

import (
	"encoding/json"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"github.com/cmmv-hive/resilience/providers/internal/upstreamtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream is a scripted OpenAI-compatible server on loopback.
type upstream = upstreamtest.Server

// model is the model the tests use, over an upstream at baseURL.
func model(baseURL string, client *http.Client) (*Model, error) {
	return New(Config{Name: "gpt", BaseURL: baseURL, APIKey: upstreamtest.APIKey, UpstreamModel: "gpt-up", Client: client})
}

// serve starts an upstream answering with h and returns a model over it.
var serve = upstreamtest.ServeWith(model)

// delta is one "data:" line carrying text.
func delta(text string) string {
	b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": text}, "finish_reason": nil}}})
	return "data: " + string(b) + "\n\n"
}

func finish(reason string) string {
	return `data: {"choices":[{"index":0,"delta":{},"finish_reason":"` + reason + `"}]}` + "\n\n"
}

const usageLine = `data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}` + "\n\n"
const done = "data: [DONE]\n\n"
