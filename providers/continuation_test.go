package providers

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

var conversation = &messages.InferRequest{Model: "m", MaxTokens: 50, Messages: []*messages.ChatMessage{
	{Role: "system", Content: "be brief"}, {Role: "user", Content: "tell me"}}}

func TestContinuationPrefill(t *testing.T) {
	req := Continuation(conversation, "It was a dark \n", true)
	require.Len(t, req.GetMessages(), 3)
	last := req.GetMessages()[2]
	assert.Equal(t, "assistant", last.GetRole())
	assert.True(t, last.GetPrefix())
	assert.Equal(t, "It was a dark", last.GetContent(), "trailing white space trimmed: Anthropic refuses it")
	assert.Len(t, conversation.GetMessages(), 2, "the request itself is unchanged")
	assert.Equal(t, int32(50), req.GetMaxTokens())
	assert.Nil(t, messages.CheckRequest(req), "a continuation passes the request checks")

	conv, sent, prefill, ok := ContinuationOf(req)
	require.True(t, ok)
	assert.True(t, prefill)
	assert.Equal(t, "It was a dark", sent)
	assert.Len(t, conv, 2)
}

func TestContinuationInstruction(t *testing.T) {
	req := Continuation(conversation, "It was a dark ", false)
	require.Len(t, req.GetMessages(), 3)
	last := req.GetMessages()[2]
	assert.Equal(t, "user", last.GetRole())
	assert.False(t, last.GetPrefix())
	assert.Contains(t, last.GetContent(), "do not repeat")
	assert.Contains(t, last.GetContent(), "It was a dark ")

	conv, sent, prefill, ok := ContinuationOf(req)
	require.True(t, ok)
	assert.False(t, prefill)
	assert.Equal(t, "It was a dark ", sent, "the partial answer whole")
	assert.Len(t, conv, 2)

	_, _, _, ok = ContinuationOf(conversation)
	assert.False(t, ok, "a plain request is no continuation")
}

func TestPrefillRefusal(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   string
	}{
		{"anthropic", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill. The conversation must end with a user message."}}`, CodePrefillUnsupported},
		{"openai-compatible prefix", 400, `{"error":{"message":"prefix is not supported for this model","type":"invalid_request_error"}}`, CodePrefillUnsupported},
		{"plain bad request", 400, `{"error":{"message":"messages: field required","type":"invalid_request_error"}}`, ""},
		{"server error that mentions it", 500, `{"error":{"message":"prefill not supported"}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ClassifyHTTP(tt.status, http.Header{}, []byte(tt.body))
			assert.Equal(t, tt.code, e.Code)
			if tt.status == 400 {
				assert.Equal(t, messages.ErrorClass_bad_request, e.Class, "still bad_request: the code tells the router")
			}
		})
	}
}
