package gateway

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// checkEncode compares the hand-written encoders with encoding/json over
// the texts given.
func checkEncode(t *testing.T, id, model, text string, n int32) {
	c := &completion{ID: id, Object: "chat.completion", Created: int64(n), Model: model,
		Choices: []completionChoice{{Message: message{Role: "assistant", Content: text}, FinishReason: "stop"}},
		Usage:   &usage{PromptTokens: n, CompletionTokens: -n, TotalTokens: 0}}
	assert.Equal(t, marshal(t, c)+"\n", string(appendCompletion(nil, c)), "completion of %q", text)
	stop := text
	for _, ch := range []*chunk{
		{ID: id, Object: "chat.completion.chunk", Created: 7, Model: model, Choices: []chunkChoice{{Delta: delta{Role: "assistant", Content: &text}}}},
		{ID: id, Object: "chat.completion.chunk", Model: model, Choices: []chunkChoice{{Delta: delta{Content: &text}}}},
		{ID: id, Model: model, Choices: []chunkChoice{{FinishReason: &stop}}},
		{ID: id, Model: model, Choices: []chunkChoice{}, Usage: &usage{PromptTokens: n}},
		{ID: id, Model: model},
	} {
		assert.Equal(t, marshal(t, ch), string(appendChunk(nil, ch)), "chunk of %q", text)
	}
}

func TestEncodeAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "Hello", `quote " backslash \ slash /`, "<b>&amp;</b>", "tab\tnl\ncr\r\x00\x1f\x7f",
		"é 日本語 😀", "\u2028\u2029", "bad \xff\xfe utf-8 \xe2\x82", "\b\f"} {
		checkEncode(t, "chatcmpl-"+s, s, s, 42)
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("chatcmpl-x", "gpt-5", "Hello <world> & \u2028", int32(3))
	f.Fuzz(func(t *testing.T, id, model, text string, n int32) { checkEncode(t, id, model, text, n) })
}
