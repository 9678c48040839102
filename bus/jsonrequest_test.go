package bus

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/cmmv-hive/resilience/messages"
)

// TestDecodeRequestJSONTakes: the common requests are read by the fast
// decoder, and read as protojson reads them.
func TestDecodeRequestJSONTakes(t *testing.T) {
	for _, doc := range []string{
		`{"model":"instant","messages":[{"role":"user","content":"hi"}]}`,
		` { "request_id" : "r1" , "model":"m", "stream":true, "max_tokens":-2147483648, "deadlineMs":2147483647,
		   "messages":[ {"role":"system","content":"é 😀 </script>"}, {"role":"assistant","content":"","prefix":false}, {} ] } `,
		`{"messages":[]}`,
		`{}`,
		"{\"maxTokens\":-0,\"stream\":false}\n",
	} {
		got := new(messages.InferRequest)
		require.True(t, decodeRequestJSON([]byte(doc), got), "taken: %s", doc)
		want := new(messages.InferRequest)
		require.NoError(t, jsonUnmarshal.Unmarshal([]byte(doc), want))
		assert.True(t, proto.Equal(want, got), "%s: got %v, want %v", doc, got, want)
	}
}

// TestDecodeRequestJSONLeaves: what the fast decoder does not take goes to
// protojson, whose answer, message or error, is the one given.
func TestDecodeRequestJSONLeaves(t *testing.T) {
	for _, doc := range []string{
		`{"model":"m","model":"n"}`,              // a duplicate: protojson refuses
		`{"requestId":"a","request_id":"b"}`,     // the same field twice
		`{"model":null}`,                         // null: unset, for protojson
		`{"model":"a\"b"}`,                       // an escape
		`{"model":"a` + "\xff" + `"}`,            // invalid UTF-8: protojson refuses
		`{"maxTokens":"5"}`,                      // a number as a string
		`{"maxTokens":5.0}`, `{"maxTokens":5e0}`, // a number written otherwise
		`{"maxTokens":2147483648}`,                  // out of range: protojson refuses
		`{"maxTokens":01}`,                          // not JSON
		`{"Model":"m"}`,                             // another case: protojson refuses
		`{"temperature":0.5}`,                       // a field it does not read
		`{"messages":[{"role":"user","name":"x"}]}`, // an unknown field: protojson refuses
		`{"stream":truex}`, `{"model":"m"} x`, `{"model":"m"`, ``, `[]`,
	} {
		fast := new(messages.InferRequest)
		assert.False(t, decodeRequestJSON([]byte(doc), fast), "left to protojson: %s", doc)
		got := new(messages.InferRequest)
		gotErr := decodeRequest(JSON, []byte(doc), got)
		want := new(messages.InferRequest)
		wantErr := Decode(JSON, []byte(doc), want)
		if wantErr != nil {
			assert.EqualError(t, gotErr, wantErr.Error(), "%s", doc)
			continue
		}
		require.NoError(t, gotErr, "%s", doc)
		assert.True(t, proto.Equal(want, got), "%s: got %v, want %v", doc, got, want)
	}
}

// TestDecodeRequestJSONAsProtojson: on documents drawn from the request's
// shape, mangled in every way the decoder must notice, whatever the fast
// decoder takes, protojson takes too and reads the same.
func TestDecodeRequestJSONAsProtojson(t *testing.T) {
	taken := 0
	rapid.Check(t, func(t *rapid.T) {
		doc := genRequestDoc(t)
		got := new(messages.InferRequest)
		if !decodeRequestJSON([]byte(doc), got) {
			return
		}
		taken++
		want := new(messages.InferRequest)
		require.NoError(t, protojson.Unmarshal([]byte(doc), want), "taken by the fast decoder, refused by protojson: %s", doc)
		require.True(t, proto.Equal(want, got), "%s: got %v, want %v", doc, got, want)
	})
	t.Logf("the fast decoder took %d documents", taken)
	assert.Positive(t, taken, "the fast decoder took some of the documents")
}

// genRequestDoc draws a JSON document near the shape of an InferRequest.
func genRequestDoc(t *rapid.T) string {
	// Each value is mostly one the fast decoder takes, so that documents
	// with exactly one thing wrong come often.
	mostly := func(good, bad []string) *rapid.Generator[string] {
		return rapid.OneOf(rapid.SampledFrom(good), rapid.SampledFrom(good), rapid.SampledFrom(good), rapid.SampledFrom(bad))
	}
	ws := rapid.SampledFrom([]string{"", "", " ", "\n\t", "\r "})
	str := mostly([]string{`""`, `"user"`, `"hi there"`, `"é😀"`},
		[]string{`"a\"b"`, `"a\\nb"`, `"a` + "\xff" + `"`, `"a` + "\x01" + `"`, `"\u00e9"`, `null`, `"unterminated`, `5`, `true`})
	num := mostly([]string{`0`, `-0`, `7`, `-12`, `2147483647`, `-2147483648`},
		[]string{`2147483648`, `-2147483649`, `01`, `1.0`, `1e2`, `"3"`, `null`, `99999999999999999999`, `-`, `true`})
	boolean := mostly([]string{`true`, `false`}, []string{`null`, `truex`, `1`, `"true"`})
	value := func(t *rapid.T, key string) string {
		switch key {
		case "stream", "prefix", "Stream":
			return boolean.Draw(t, "bool")
		case "maxTokens", "max_tokens", "deadlineMs", "deadline_ms", "priority":
			return num.Draw(t, "num")
		}
		return str.Draw(t, "str")
	}
	object := func(t *rapid.T, keys []string, nested func(t *rapid.T, key string) (string, bool)) string {
		var b strings.Builder
		b.WriteString(ws.Draw(t, "ws") + "{")
		for i := range rapid.IntRange(0, 5).Draw(t, "fields") {
			if i > 0 {
				b.WriteString(ws.Draw(t, "ws") + ",")
			}
			key := rapid.SampledFrom(keys).Draw(t, "key")
			b.WriteString(ws.Draw(t, "ws") + `"` + key + `"` + ws.Draw(t, "ws") + ":" + ws.Draw(t, "ws"))
			if v, ok := nested(t, key); ok {
				b.WriteString(v)
			} else {
				b.WriteString(value(t, key))
			}
		}
		b.WriteString(ws.Draw(t, "ws") + "}")
		return b.String()
	}
	message := func(t *rapid.T) string {
		return object(t, []string{"role", "content", "content", "prefix", "name", "Role"}, func(*rapid.T, string) (string, bool) { return "", false })
	}
	doc := object(t, []string{"requestId", "request_id", "model", "model", "messages", "messages", "messages", "stream",
		"maxTokens", "max_tokens", "deadlineMs", "deadline_ms", "temperature", "Model", "priority", "metadata"},
		func(t *rapid.T, key string) (string, bool) {
			if key != "messages" {
				return "", false
			}
			if rapid.IntRange(0, 9).Draw(t, "odd_messages") == 0 {
				return rapid.SampledFrom([]string{`null`, `{}`, `[`, `[{}`, `[{},]`, `"x"`}).Draw(t, "odd"), true
			}
			var b strings.Builder
			b.WriteString("[")
			for i := range rapid.IntRange(0, 3).Draw(t, "messages") {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(message(t))
			}
			b.WriteString(ws.Draw(t, "ws") + "]")
			return b.String(), true
		})
	return doc + rapid.SampledFrom([]string{"", "", "", " ", "\n", "x", "}", "{}"}).Draw(t, "trailer")
}

// BenchmarkDecodeRequestJSON: the benchmark's request (node's
// BenchmarkInfer) read by the fast decoder and by protojson.
func BenchmarkDecodeRequestJSON(b *testing.B) {
	doc := []byte(`{"model":"instant","messages":[{"role":"user","content":"hi"}]}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !decodeRequestJSON(doc, new(messages.InferRequest)) {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := Decode(JSON, doc, new(messages.InferRequest)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
