package openai

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkRequestEncoding: AppendJSON writes what json.Marshal writes, and
// fails where it fails.
func checkRequestEncoding(t *testing.T, cr *chatRequest) {
	t.Helper()
	want, werr := json.Marshal(cr)
	got, gerr := cr.AppendJSON([]byte("prefix:"))
	if werr != nil {
		assert.Error(t, gerr, "json.Marshal: %v", werr)
		return
	}
	require.NoError(t, gerr)
	assert.Equal(t, "prefix:"+string(want), string(got))
}

func TestRequestEncodingAgreesWithEncodingJSON(t *testing.T) {
	temp := func(f float64) *float64 { return &f }
	for _, cr := range []*chatRequest{
		{Model: "gpt-5", Messages: []chatMessage{{Role: "user", Content: "Say hello."}}},
		{Model: "gpt-5"},
		{Model: "", Messages: []chatMessage{}},
		{Model: "m<&>\u2028", Messages: []chatMessage{{Role: "system", Content: "tab\t\"q\" \\ \x00 \xff é 日本 😀"},
			{Role: "assistant", Content: "Hel", Prefix: true}}, MaxTokens: 64, Temperature: temp(0.2), Stream: true,
			StreamOptions: &streamOptions{IncludeUsage: true}},
		{Model: "m", MaxCompletionTokens: -3, Temperature: temp(0)},
		{Model: "m", Temperature: temp(1e-7)},
		{Model: "m", Temperature: temp(1e21)},
		{Model: "m", Temperature: temp(-123456789.125)},
		{Model: "m", Temperature: temp(math.NaN())},
		{Model: "m", Temperature: temp(math.Inf(1))},
		{Model: "m", StreamOptions: &streamOptions{}},
		{Model: "m", Tools: json.RawMessage(` [ {"type": "function", "function": {"name": "<f>&", "parameters": {"a": [1, 2.5e-3, null]}}} ] `),
			ResponseFormat: json.RawMessage(`{"type":"json_object"}`)},
		{Model: "m", Tools: json.RawMessage(`[{"x":`)},
		{Model: "m", ResponseFormat: json.RawMessage(`{} {}`)},
	} {
		checkRequestEncoding(t, cr)
	}
}

func FuzzRequestEncoding(f *testing.F) {
	f.Add("gpt-5", "user", "Say <hello> & \u2028", false, int32(64), 0.7, `[{"type":"function"}]`)
	f.Fuzz(func(t *testing.T, model, role, content string, prefix bool, n int32, temp float64, tools string) {
		cr := &chatRequest{Model: model, Messages: []chatMessage{{Role: role, Content: content, Prefix: prefix}, {Role: "user", Content: tools}},
			MaxTokens: n, MaxCompletionTokens: -n, Temperature: &temp, Stream: prefix, Tools: json.RawMessage(tools)}
		if n%2 == 0 {
			cr.StreamOptions = &streamOptions{IncludeUsage: prefix}
			cr.ResponseFormat = json.RawMessage(content)
		}
		checkRequestEncoding(t, cr)
	})
}

// BenchmarkRequestEncoding writes the benchmark's request (bench/chat.lua's).
func BenchmarkRequestEncoding(b *testing.B) {
	cr := &chatRequest{Model: "direct-ok", Messages: []chatMessage{{Role: "user", Content: "Say hello."}}}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = cr.AppendJSON(buf[:0])
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(cr)
		}
	})
}
