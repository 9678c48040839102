package gateway

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkQuick: when quickRequest takes raw, encoding/json takes it too and
// reads the same request from it.
func checkQuick(t *testing.T, raw string) bool {
	t.Helper()
	quick, ok := quickRequest([]byte(raw))
	if !ok {
		return false
	}
	var slow chatRequest
	require.NoError(t, json.Unmarshal([]byte(raw), &slow), "encoding/json refuses %q", raw)
	require.Len(t, quick.Messages, len(slow.Messages), raw)
	for i := range slow.Messages {
		text, e := content(slow.Messages[i].Content, i)
		require.Nil(t, e, "%q: %v", raw, e)
		assert.Equal(t, slow.Messages[i].Role, quick.Messages[i].Role, raw)
		assert.Equal(t, text, quick.Messages[i].text, raw)
		assert.True(t, quick.Messages[i].plain)
		slow.Messages[i], quick.Messages[i] = chatMessage{}, chatMessage{}
	}
	assert.Equal(t, slow, quick, raw)
	return true
}

func TestQuickRequestAgreesWithEncodingJSON(t *testing.T) {
	for _, tt := range []struct {
		raw   string
		quick bool
	}{
		{simple, true},
		{streamed, true},
		{`{"model":"gpt-5","stream":true,"stream_options":{"include_usage":true},"max_tokens":64,"max_completion_tokens":null,"temperature":0.2,"user":"u","n":1,"tools":[{"x":{}}],"messages":[{"role":"system","content":"be brief","name":"x"},{"role":"user","content":null}]}`, true},
		{`{"model":"gpt-5","tools":[{"type":"function","function":{"name":"f","parameters":{"a":[1,null]}}}],"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]}`, true},
		{`{"model":"gpt-5","tools":null,"response_format":null,"messages":[]}`, true},
		{`{"model":"gpt-5","Tools":[],"messages":[]}`, false},
		{`{"model":"gpt-5","messages":[{"role":"user","content":"caf\u00e9 日本 \ud83d\ude00"}]}`, true},
		{`{"model":"gpt-5","messages":[]}`, true},
		{`{"model":"gpt-5","messages":null,"stream_options":null}`, true},
		{`{"model":"gpt-5","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}`, false},
		{`{"model":"gpt-5","messages":[null]}`, false},
		{`{"Model":"gpt-5","messages":[]}`, false},
		{`{"model":"a","model":"b","messages":[]}`, false},
		{`{"model":"gpt-5","max_tokens":1.5,"messages":[]}`, false},
		{`{"model":"gpt-5","temperature":1e400,"messages":[]}`, false},
		{`{"model":"gpt-5","stream":"yes","messages":[]}`, false},
		{`{"model":"gpt-5","messages":[]} {}`, false},
		{`{"model":"gpt-5","messages":[{"role":"user","content":"x"}]`, false},
		{`[]`, false},
	} {
		assert.Equal(t, tt.quick, checkQuick(t, tt.raw), tt.raw)
	}
}

func FuzzQuickRequest(f *testing.F) {
	f.Add(simple)
	f.Add(`{"model":"gpt-5","stream":true,"stream_options":{"include_usage":true},"max_tokens":64,"temperature":0.2,"user":"u","n":1,"messages":[{"role":"system","content":"b\u00e9"},{"role":"user","content":null}]}`)
	f.Fuzz(func(t *testing.T, raw string) { checkQuick(t, raw) })
}

// BenchmarkQuickRequest reads the benchmark's request (bench/chat.lua's).
func BenchmarkQuickRequest(b *testing.B) {
	raw := []byte(`{"model":"direct-ok","messages":[{"role":"system","content":"You are brief."},{"role":"user","content":"Say hello."}],"max_tokens":32}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := quickRequest(raw); !ok {
			b.Fatal("not taken")
		}
	}
}
