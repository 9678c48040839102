package bus

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/cmmv-hive/resilience/messages"
)

// TestJSONFieldsMatchDescriptors: the hand-written JSON encoder knows every
// field of the messages it writes. When this fails, a field was added to
// one of them: teach it to jsonWriter and to jsonFields.
func TestJSONFieldsMatchDescriptors(t *testing.T) {
	assert.True(t, fastJSON, "jsonFields no longer matches hive.proto; every JSON reply goes to protojson")
}

// TestAppendResponseJSONAsProtojson: for any InferResponse it takes, the
// encoder writes what protojson writes, up to white space and order: the
// same document once parsed, and the same message once read back.
func TestAppendResponseJSONAsProtojson(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := genResponse(t)
		got, ok := appendResponseJSON([]byte("kept:"), r)
		require.True(t, ok, "a message the encoder handles")
		require.Equal(t, "kept:", string(got[:5]), "appends to what the buffer holds")
		got = got[5:]
		want, err := jsonMarshal.Marshal(r)
		require.NoError(t, err)

		var gotDoc, wantDoc any
		require.NoError(t, json.Unmarshal(got, &gotDoc), "valid JSON: %s", got)
		require.NoError(t, json.Unmarshal(want, &wantDoc))
		require.Equal(t, wantDoc, gotDoc, "got %s\nwant %s", got, want)

		back := new(messages.InferResponse)
		require.NoError(t, protojson.Unmarshal(got, back), "%s", got)
		require.True(t, proto.Equal(r, back), "read back from %s:\n%v\nwant\n%v", got, back, r)
	})
}

// TestAppendResponseJSONGivesUp: what the encoder does not write as
// protojson would goes to protojson, through appendEncode, error included.
func TestAppendResponseJSONGivesUp(t *testing.T) {
	withUnknown := &messages.InferResponse{Content: "x"}
	withUnknown.ProtoReflect().SetUnknown([]byte{0xf8, 0x7f, 0x01}) // field 2047, varint 1
	for _, tc := range []struct {
		name    string
		resp    *messages.InferResponse
		invalid bool // protojson refuses it too
	}{
		{name: "invalid UTF-8 content", resp: &messages.InferResponse{Content: "a\xffb"}, invalid: true},
		{name: "invalid UTF-8 error message", resp: &messages.InferResponse{Error: &messages.Error{Message: "\xc3"}}, invalid: true},
		{name: "NaN latency", resp: &messages.InferResponse{Attempts: []*messages.Attempt{{LatencyMs: math.NaN()}}}},
		{name: "infinite latency", resp: &messages.InferResponse{Attempts: []*messages.Attempt{{LatencyMs: math.Inf(-1)}}}},
		{name: "enum value without a name", resp: &messages.InferResponse{Error: &messages.Error{Class: messages.ErrorClass(99)}}},
		{name: "unknown fields", resp: withUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := appendResponseJSON(nil, tc.resp)
			assert.False(t, ok, "left to protojson")
			got, err := appendEncode(JSON, make([]byte, 0, 64), tc.resp)
			want, wantErr := Encode(JSON, tc.resp)
			if tc.invalid {
				assert.Error(t, err)
				assert.Error(t, wantErr)
				return
			}
			require.NoError(t, err)
			require.NoError(t, wantErr)
			assert.JSONEq(t, string(want), string(got))
		})
	}
}

// genResponse draws an InferResponse the encoder handles: valid UTF-8 with
// quotes, control characters and non-ASCII text, finite doubles of every
// magnitude (negative zero included), named enum values, empty and set
// nested messages.
func genResponse(t *rapid.T) *messages.InferResponse {
	str := rapid.OneOf(rapid.Just(""), rapid.String(), rapid.SampledFrom([]string{`"`, `\`, "\x00\x1f\u007f", "\b\f\n\r\t", "é😀\u2028", "</script>&"}))
	i32 := rapid.OneOf(rapid.Just(int32(0)), rapid.Int32())
	double := rapid.OneOf(rapid.Just(0.0), rapid.Just(math.Copysign(0, -1)), rapid.Float64(),
		rapid.SampledFrom([]float64{1e-7, -1e-7, 1e21, 1.5e-300, 123.456, math.MaxFloat64, math.SmallestNonzeroFloat64}))
	class := rapid.Custom(func(t *rapid.T) messages.ErrorClass {
		return messages.ErrorClass(rapid.SampledFrom(enumNumbers(messages.ErrorClass_name)).Draw(t, "class"))
	})
	r := &messages.InferResponse{
		RequestId:    str.Draw(t, "request_id"),
		Content:      str.Draw(t, "content"),
		ServedBy:     str.Draw(t, "served_by"),
		Node:         str.Draw(t, "node"),
		Degradation:  messages.Degradation(rapid.SampledFrom(enumNumbers(messages.Degradation_name)).Draw(t, "degradation")),
		OverheadUs:   i32.Draw(t, "overhead_us"),
		Replayed:     rapid.Bool().Draw(t, "replayed"),
		Continuation: str.Draw(t, "continuation"),
	}
	for range rapid.IntRange(0, 3).Draw(t, "attempts") {
		r.Attempts = append(r.Attempts, &messages.Attempt{
			Model:            str.Draw(t, "model"),
			Node:             str.Draw(t, "attempt_node"),
			ErrorClass:       class.Draw(t, "error_class"),
			LatencyMs:        double.Draw(t, "latency_ms"),
			StatusCode:       i32.Draw(t, "status_code"),
			Retried:          rapid.Bool().Draw(t, "retried"),
			Hedged:           rapid.Bool().Draw(t, "hedged"),
			Skipped:          messages.Attempt_Skip(rapid.SampledFrom(enumNumbers(messages.Attempt_Skip_name)).Draw(t, "skipped")),
			Continued:        str.Draw(t, "continued"),
			MalformedSkipped: i32.Draw(t, "malformed_skipped"),
		})
	}
	if rapid.Bool().Draw(t, "has_usage") {
		r.Usage = &messages.Usage{PromptTokens: i32.Draw(t, "prompt"), CompletionTokens: i32.Draw(t, "completion")}
	}
	if rapid.Bool().Draw(t, "has_error") {
		r.Error = &messages.Error{Class: class.Draw(t, "class"), Message: str.Draw(t, "message"),
			RetryAfterMs: i32.Draw(t, "retry_after_ms"), Code: str.Draw(t, "code")}
	}
	return r
}

func enumNumbers(names map[int32]string) []int32 {
	out := make([]int32, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	slices.Sort(out) // rapid draws the same value for the same seed
	return out
}

// BenchmarkEncodeResponseJSON: a typical answer written by the fast
// encoder and by protojson, into a reused buffer.
func BenchmarkEncodeResponseJSON(b *testing.B) {
	r := &messages.InferResponse{RequestId: "Zx3kQm9PqW2nVb7LcT5hJd", Content: "It was the best of times, it was the worst of times.",
		ServedBy: "gpt-5", Node: "n1", Usage: &messages.Usage{PromptTokens: 12, CompletionTokens: 13}, OverheadUs: 41,
		Attempts: []*messages.Attempt{{Model: "gpt-5", Node: "n1", LatencyMs: 12.345}}}
	buf := make([]byte, 0, 1024)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var ok bool
			if buf, ok = appendResponseJSON(buf[:0], r); !ok {
				b.Fatal("not written")
			}
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = jsonMarshal.MarshalAppend(buf[:0], r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
