package bus_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

func hi() []*messages.ChatMessage { return []*messages.ChatMessage{{Role: "user", Content: "hi"}} }

// manyMessages is a JSON request with n messages.
func manyMessages(n int) string {
	return `{"model":"m","messages":[` + strings.TrimSuffix(strings.Repeat(`{"role":"user","content":"x"},`, n), ",") + `]}`
}

// manyMetadata is a JSON request with n metadata keys.
func manyMetadata(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	return `{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{` + b.String() + `}}`
}

// withPriority appends field 8 (priority) with value v to a protobuf
// request: protobuf keeps an enum number it does not know.
func withPriority(v uint64) []byte {
	b, err := proto.Marshal(&messages.InferRequest{Model: "m", Messages: hi()})
	if err != nil {
		panic(err) // a request of plain strings always encodes
	}
	b = protowire.AppendTag(b, 8, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// TestIngressRefusesOutOfBounds: over NATS, every value the HTTP gateway
// refuses is refused too, with the same code, and nothing is dispatched.
func TestIngressRefusesOutOfBounds(t *testing.T) {
	d := &countingDispatcher{}
	_, client := setup(t, d)
	pb := func(r *messages.InferRequest) []byte { return encode(t, bus.Protobuf, r) }
	for _, tc := range []struct {
		name string
		body []byte
		code string
	}{
		{"negative maxTokens", []byte(`{"model":"m","maxTokens":-1,"messages":[{"role":"user","content":"x"}]}`), "invalid_max_tokens"},
		{"negative maxTokens protobuf", pb(&messages.InferRequest{Model: "m", MaxTokens: -1, Messages: hi()}), "invalid_max_tokens"},
		{"unknown priority", []byte(`{"model":"m","priority":99,"messages":[{"role":"user","content":"x"}]}`), "invalid_priority"},
		{"unknown priority protobuf", withPriority(77), "invalid_priority"},
		{"temperature NaN", []byte(`{"model":"m","temperature":"NaN","messages":[{"role":"user","content":"x"}]}`), "invalid_temperature"},
		{"temperature -1e308", []byte(`{"model":"m","temperature":-1e308,"messages":[{"role":"user","content":"x"}]}`), "invalid_temperature"},
		{"temperature NaN protobuf", pb(&messages.InferRequest{Model: "m", Temperature: proto.Float64(math.NaN()), Messages: hi()}), "invalid_temperature"},
		{"temperature above 2", []byte(`{"model":"m","temperature":2.5,"messages":[{"role":"user","content":"x"}]}`), "invalid_temperature"},
		{"20,000 messages", []byte(manyMessages(20000)), "too_many_messages"},
		{"20,000 metadata keys", []byte(manyMetadata(20000)), "too_many_metadata"},
		{"unknown role", []byte(`{"model":"m","messages":[{"role":"wizard","content":"x"}]}`), "invalid_role"},
		{"negative deadline", []byte(`{"model":"m","deadlineMs":-5,"messages":[{"role":"user","content":"x"}]}`), "invalid_deadline"},
		{"no messages", []byte(`{"model":"m"}`), "missing_messages"},
		{"request id with a space", []byte(`{"model":"m","requestId":"a b","messages":[{"role":"user","content":"x"}]}`), "invalid_request_id"},
		{"idempotency key too long", []byte(`{"model":"m","idempotencyKey":"` + strings.Repeat("k", 129) + `","messages":[{"role":"user","content":"x"}]}`), "invalid_idempotency_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := infer(t, client, tc.body, nil)
			resp := &messages.InferResponse{}
			require.NoError(t, bus.DecodeTyped(reply.Header, reply.Data, resp), "%s", reply.Data)
			assert.Equal(t, messages.ErrorClass_bad_request, resp.GetError().GetClass())
			assert.Equal(t, tc.code, resp.GetError().GetCode(), "message %q", resp.GetError().GetMessage())
			assert.Equal(t, "400", reply.Header.Get("Nats-Service-Error-Code"))
		})
	}
	assert.Zero(t, d.n.Load(), "requests dispatched")
}

// TestErrorRepliesAreValidUTF8: a body that echoes an invalid UTF-8 byte in
// its decode error still gets a JSON reply that parses.
func TestErrorRepliesAreValidUTF8(t *testing.T) {
	_, client := setup(t, &countingDispatcher{})
	for _, body := range [][]byte{
		[]byte("{\"mod\xffel\":\"m\"}"),
		[]byte("{\"model\":\"m\",\"messages\":[{\"role\":\"\xfe\",\"content\":\"x\"}]}"),
		[]byte("{\"model\":\"m\",\xc3\"x\":1}"),
	} {
		reply := infer(t, client, body, nil)
		require.NotEmpty(t, reply.Data, "body %q", body)
		assert.True(t, utf8.Valid(reply.Data), "reply %q", reply.Data)
		resp := &messages.InferResponse{}
		require.NoError(t, bus.Decode(bus.JSON, reply.Data, resp), "reply %q", reply.Data)
		assert.Equal(t, messages.ErrorClass_bad_request, resp.GetError().GetClass())
	}
}

// FuzzIngress: whatever the body, JSON or protobuf, the node answers with
// a reply of the right type that decodes, valid UTF-8 when JSON, a
// bad_request error whenever it did not serve, and keeps serving.
func FuzzIngress(f *testing.F) {
	for _, seed := range []string{
		`{"model":"m","messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","maxTokens":-1,"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","priority":99,"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","temperature":"NaN","messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","temperature":-1e308,"messages":[]}`,
		`{"model":"m","stream":true,"messages":[{"role":"wizard","content":"x"}]}`,
		"{\"mod\xffel\":1}",
		manyMessages(3),
		manyMetadata(70),
	} {
		f.Add([]byte(seed))
	}
	f.Add(withPriority(77))
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		_, client := setup(t, &countingDispatcher{})
		reply, err := client.RequestMsg(&nats.Msg{Subject: subjects.Infer(), Data: body}, wait)
		require.NoError(t, err, "no reply to %q", body)
		if bus.DetectEncoding(reply.Header, body) == bus.JSON {
			assert.True(t, utf8.Valid(reply.Data), "reply %q", reply.Data)
		}
		var e *messages.Error
		switch reply.Header.Get(bus.TypeHeader) {
		case "hive.v1.InferResponse":
			resp := &messages.InferResponse{}
			require.NoError(t, bus.DecodeTyped(reply.Header, reply.Data, resp))
			e = resp.GetError()
			if e == nil {
				assert.Equal(t, "ok", resp.GetContent())
			}
		case "hive.v1.InferChunk":
			ch := &messages.InferChunk{}
			require.NoError(t, bus.DecodeTyped(reply.Header, reply.Data, ch))
			e = ch.GetError()
		default:
			t.Fatalf("reply of type %q to %q", reply.Header.Get(bus.TypeHeader), body)
		}
		if e != nil {
			assert.Equal(t, messages.ErrorClass_bad_request, e.GetClass(), "error %v", e)
			assert.True(t, utf8.ValidString(e.GetMessage()))
		}
	})
}
