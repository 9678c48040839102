package bus_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

func fullRequest() *messages.InferRequest {
	return &messages.InferRequest{
		RequestId:      "r-1",
		Model:          "gpt-5",
		Messages:       []*messages.ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi ✓"}},
		MaxTokens:      256,
		Temperature:    proto.Float64(0.2),
		DeadlineMs:     30000,
		Priority:       messages.InferRequest_critical,
		IdempotencyKey: "k-1",
		Metadata:       map[string]string{"tenant": "acme"},
	}
}

func fullResponse() *messages.InferResponse {
	return &messages.InferResponse{
		RequestId: "r-1",
		Content:   "hello",
		ServedBy:  "claude-4-sonnet",
		Node:      "n1",
		Attempts: []*messages.Attempt{
			{Model: "gpt-5", Node: "n1", ErrorClass: messages.ErrorClass_rate_limited, LatencyMs: 12.5, StatusCode: 429},
			{Model: "claude-4-sonnet", Node: "n1", LatencyMs: 80},
		},
		Usage:       &messages.Usage{PromptTokens: 10, CompletionTokens: 3},
		Degradation: messages.Degradation_minimal,
		OverheadUs:  42,
		Error:       &messages.Error{Class: messages.ErrorClass_rate_limited, Message: "slow down", RetryAfterMs: 7000, Code: "retry"},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msg  proto.Message
	}{
		{"request", fullRequest()},
		{"response", fullResponse()},
		{"empty request", &messages.InferRequest{}},
	}
	for _, enc := range []bus.Encoding{bus.Protobuf, bus.JSON} {
		for _, tt := range tests {
			t.Run(enc.String()+"/"+tt.name, func(t *testing.T) {
				b, err := bus.Encode(enc, tt.msg)
				require.NoError(t, err)
				got := tt.msg.ProtoReflect().New().Interface()
				require.NoError(t, bus.Decode(enc, b, got))
				assert.True(t, proto.Equal(tt.msg, got), "got %v, want %v", got, tt.msg)
			})
		}
	}
}

func TestCodecJSONNames(t *testing.T) {
	b, err := bus.Encode(bus.JSON, fullResponse())
	require.NoError(t, err)
	s := string(b)
	for _, want := range []string{`"requestId"`, `"servedBy"`, `"retryAfterMs"`, `"errorClass"`, `"rate_limited"`} {
		assert.Contains(t, s, want)
	}
	for _, unwanted := range []string{`"request_id"`, `"served_by"`} {
		assert.NotContains(t, s, unwanted)
	}
	empty, err := bus.Encode(bus.JSON, &messages.InferResponse{})
	require.NoError(t, err)
	assert.Equal(t, "{}", string(empty), "unset fields are left out")

	// Proto field names are accepted on input too.
	req := new(messages.InferRequest)
	require.NoError(t, bus.Decode(bus.JSON, []byte(`{"request_id":"a","model":"m","max_tokens":3}`), req))
	assert.Equal(t, "a", req.GetRequestId())
	assert.EqualValues(t, 3, req.GetMaxTokens())
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		enc  bus.Encoding
		body string
		want string // in the error text
	}{
		{"unknown json field", bus.JSON, `{"model":"m","temprature":0.5}`, `unknown field "temprature"`},
		{"json syntax", bus.JSON, `{"model":`, "decode json"},
		{"json wrong type", bus.JSON, `{"model":3}`, "model"},
		{"protobuf garbage", bus.Protobuf, "\xff\xff\xff", "decode protobuf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bus.Decode(tt.enc, []byte(tt.body), new(messages.InferRequest))
			require.ErrorIs(t, err, bus.ErrDecode)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDetectEncoding(t *testing.T) {
	pb, err := proto.Marshal(fullRequest())
	require.NoError(t, err)
	// Field 4 (max_tokens) as a varint: its tag byte is 0x20, a space.
	space, err := proto.Marshal(&messages.InferRequest{MaxTokens: 7})
	require.NoError(t, err)
	require.Equal(t, byte(' '), space[0], "test premise: a protobuf message can start with a space")

	tests := []struct {
		name   string
		header nats.Header
		body   []byte
		want   bus.Encoding
	}{
		{"protobuf body", nil, pb, bus.Protobuf},
		{"json body", nil, []byte(`{"model":"m"}`), bus.JSON},
		{"empty body", nil, nil, bus.Protobuf},
		{"protobuf starting with a space", nil, space, bus.Protobuf},
		{"json after a space is not sniffed", nil, []byte(` {"model":"m"}`), bus.Protobuf},
		{"json header", nats.Header{"Content-Type": {"application/json"}}, []byte(` {"model":"m"}`), bus.JSON},
		{"json header with charset", nats.Header{"Content-Type": {"application/json; charset=utf-8"}}, []byte(`[]`), bus.JSON},
		{"json header any case", nats.Header{"content-type": {"Application/JSON"}}, nil, bus.JSON},
		{"protobuf header", nats.Header{"Content-Type": {"application/x-protobuf"}}, pb, bus.Protobuf},
		{"unparsable header falls back to the body", nats.Header{"Content-Type": {";;"}}, []byte(`{}`), bus.JSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, bus.DetectEncoding(tt.header, tt.body))
		})
	}
}

func TestContentType(t *testing.T) {
	assert.Equal(t, "application/x-protobuf", bus.Protobuf.ContentType())
	assert.Equal(t, "application/json", bus.JSON.ContentType())
	assert.Equal(t, "json", bus.JSON.String())
	assert.Equal(t, "protobuf", bus.Protobuf.String())
}
