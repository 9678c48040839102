package anthropic

import (
	"encoding/json"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"github.com/cmmv-hive/resilience/providers/internal/upstreamtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream is a scripted Anthropic server on loopback.
type upstream = upstreamtest.Server

// model is the model the tests use, over an upstream at baseURL.
func model(baseURL string, client *http.Client) (*Model, error) {
	return New(Config{Name: "claude", BaseURL: baseURL, APIKey: upstreamtest.APIKey, UpstreamModel: "claude-up", Client: client})
}

// serve starts an upstream answering with h and returns a model over it.
var serve = upstreamtest.ServeWith(model)

// ev is one event of the Messages stream.
func ev(typ, data string) string { return "event: " + typ + "\ndata: " + data + "\n\n" }

func delta(text string) string {
	b, _ := json.Marshal(map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": text}})
	return ev("content_block_delta", string(b))
}

var (
	messageStart = ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-up","stop_reason":null,"usage":{"input_tokens":25,"cache_read_input_tokens":5,"output_tokens":1}}}`)
	blockStart   = ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	ping         = ev("ping", `{"type": "ping"}`)
	blockStop    = ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	messageStop  = ev("message_stop", `{"type":"message_stop"}`)
)

func messageDelta(stopReason string) string {
	return ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"`+stopReason+`","stop_sequence":null},"usage":{"output_tokens":15}}`)
}
