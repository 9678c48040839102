package openai

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowAnswer is what encoding/json makes of body, as Complete decoded it
// before quickAnswer; false when it fails or finds no choice.
func slowAnswer(body []byte) (answer, bool) {
	var cr chatResponse
	if json.Unmarshal(body, &cr) != nil || len(cr.Choices) == 0 {
		return answer{}, false
	}
	c := cr.Choices[0]
	return answer{content: c.Message.Content, refusal: c.Message.Refusal, finish: c.FinishReason, usage: cr.Usage.usage()}, true
}

// TestQuickAnswerAgreesWithEncodingJSON: whenever quickAnswer takes a body,
// it reads what encoding/json reads; the bodies it leaves go to
// encoding/json, which explains what is wrong with them.
func TestQuickAnswerAgreesWithEncodingJSON(t *testing.T) {
	tests := []struct {
		body  string
		quick bool // quickAnswer takes it
	}{
		{`{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"Hi","role":"assistant"}}],"usage":{"completion_tokens":4,"prompt_tokens":8,"total_tokens":12}}`, true},
		{`{"choices":[{"message":{"content":null,"refusal":"no"},"finish_reason":"stop"}]}`, true},
		{`{"choices":[{"message":{"content":"a\u00e9\n\"b"},"finish_reason":null}],"usage":null}`, true},
		{`{"choices":[{"finish_reason":"content_filter"}]}`, true},
		{` {"id":"x","choices":[{"index":0,"logprobs":null,"message":{"content":"\u00e9t\u00e9 \ud83d\ude00 日本","tool_calls":[{"a":[1,2.5e-3,true,false,null]}]}}],"usage":{"prompt_tokens":-0,"completion_tokens":2147483647,"details":{}}} `, true},
		{`{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1.5}}`, false},
		{`{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":4294967296}}`, false},
		{`{"choices":[{"message":{"content":5}}]}`, false},
		{`{"choices":[{"message":"x"}]}`, false},
		{`{"choices":[{"message":{"content":"a"}},{"message":{"content":"b"}}]}`, false},
		{`{"choices":[]}`, false},
		{`{"choices":{}}`, false},
		{`{"error":{"message":"overloaded","type":"server_error"}}`, false},
		{`{"choices":[{"message":{"content":"x"}}]`, false},
		{`[1]`, false},
		{`{"choices":[{"message":{"Content":"x"}}]}`, false},
		{`{"choices":[{"message":{"content":"a","content":"b"}}]}`, false},
		{`{"choices":[{"message":{"content":"x"}}]} x`, false},
		{`{"choices":[{"message":{"content":"x"}}],"n":01}`, false},
		{`{"choices":[{"message":{"content":"x\q"}}]}`, false},
	}
	for _, tt := range tests {
		got, ok := quickAnswer([]byte(tt.body))
		require.Equal(t, tt.quick, ok, tt.body)
		if ok {
			want, slowOK := slowAnswer([]byte(tt.body))
			require.True(t, slowOK, tt.body)
			assert.Equal(t, want, got, tt.body)
		}
	}
}

func FuzzQuickAnswer(f *testing.F) {
	f.Add(`{"choices":[{"finish_reason":"stop","message":{"content":"Hi"}}],"usage":{"completion_tokens":4,"prompt_tokens":8}}`)
	f.Add(`{"choices":[{"message":{"content":null,"refusal":"no"}}]}`)
	f.Add(`{"choices":[{"message":{"content":"\u00e9 \ud83d\ude00","x":[1,{"y":-2.5E+3}]}}],"usage":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		got, ok := quickAnswer([]byte(body))
		if !ok {
			return
		}
		want, slowOK := slowAnswer([]byte(body))
		require.True(t, slowOK, "encoding/json refuses %q", body)
		assert.Equal(t, want, got, body)
	})
}

// BenchmarkQuickAnswer reads a usual completion (the mock's).
func BenchmarkQuickAnswer(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":6,"total_tokens":14}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := quickAnswer(body); !ok {
			b.Fatal("not taken")
		}
	}
}
