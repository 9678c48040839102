package bus

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cmmv-hive/resilience/internal/jsonwrite"
	"github.com/cmmv-hive/resilience/messages"
)

// A JSON encoder for InferResponse, the reply every JSON request gets,
// written out by hand because protojson's reflection cost as much as the
// rest of the reply (BenchmarkInfer json/parallel64: 11 % of the CPU).
// It writes what protojson writes, up to white space, field order and
// which characters are escaped (protojson's own white space varies from
// build to build on purpose): lowerCamelCase names, unset fields left
// out, enums by name, int32 as numbers, strings and doubles through
// internal/jsonwrite (whose doubles are protojson's). Whenever a message holds
// something it does not handle the way protojson does (an enum value with
// no name, a float that is not finite, a string that is not valid UTF-8,
// unknown fields, a nil in a list), it gives up and protojson encodes the
// message, errors included. If a field is added to one of these messages,
// the table in jsonFields no longer matches the descriptors, and every
// message goes to protojson until the encoder learns the field (a test
// says so).

// jsonFields are the JSON names, in field-number order, of the messages
// the encoder writes.
var jsonFields = map[protoreflect.FullName][]string{
	"hive.v1.InferResponse": {"requestId", "content", "servedBy", "node", "attempts", "usage", "degradation",
		"overheadUs", "error", "replayed", "continuation"},
	"hive.v1.Attempt": {"model", "node", "errorClass", "latencyMs", "statusCode", "retried", "hedged", "skipped",
		"continued", "malformedSkipped"},
	"hive.v1.Usage": {"promptTokens", "completionTokens"},
	"hive.v1.Error": {"class", "message", "retryAfterMs", "code"},
}

// fastJSON is set when jsonFields matches the messages' descriptors.
var fastJSON = func() bool {
	for _, m := range []proto.Message{(*messages.InferResponse)(nil), (*messages.Attempt)(nil), (*messages.Usage)(nil), (*messages.Error)(nil)} {
		d := m.ProtoReflect().Descriptor()
		var names []string
		for i := range d.Fields().Len() {
			names = append(names, d.Fields().Get(i).JSONName())
		}
		if !slices.Equal(names, jsonFields[d.FullName()]) {
			return false
		}
	}
	return true
}()

// appendResponseJSON appends r in JSON to b; ok is false when r must go to
// protojson instead (b is then to be dropped).
func appendResponseJSON(b []byte, r *messages.InferResponse) (_ []byte, ok bool) {
	if !fastJSON {
		return b, false
	}
	w := jsonWriter{b: b, ok: true}
	w.response(r)
	return w.b, w.ok
}

// jsonWriter appends JSON objects to b; ok turns false for good at the
// first value it cannot write as protojson would.
type jsonWriter struct {
	b      []byte
	ok     bool
	fields int // written in the innermost open object
}

func (w *jsonWriter) response(r *messages.InferResponse) {
	if !w.known(r) {
		return
	}
	fields := w.open()
	w.str("requestId", r.GetRequestId())
	w.str("content", r.GetContent())
	w.str("servedBy", r.GetServedBy())
	w.str("node", r.GetNode())
	if as := r.GetAttempts(); len(as) > 0 {
		w.key("attempts")
		w.b = append(w.b, '[')
		for i, a := range as {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.attempt(a)
		}
		w.b = append(w.b, ']')
	}
	if u := r.GetUsage(); u != nil && w.known(u) {
		w.key("usage")
		inner := w.open()
		w.int32("promptTokens", u.GetPromptTokens())
		w.int32("completionTokens", u.GetCompletionTokens())
		w.close(inner)
	}
	w.enum("degradation", int32(r.GetDegradation()), messages.Degradation_name)
	w.int32("overheadUs", r.GetOverheadUs())
	if e := r.GetError(); e != nil && w.known(e) {
		w.key("error")
		inner := w.open()
		w.enum("class", int32(e.GetClass()), messages.ErrorClass_name)
		w.str("message", e.GetMessage())
		w.int32("retryAfterMs", e.GetRetryAfterMs())
		w.str("code", e.GetCode())
		w.close(inner)
	}
	w.bool("replayed", r.GetReplayed())
	w.str("continuation", r.GetContinuation())
	w.close(fields)
}

func (w *jsonWriter) attempt(a *messages.Attempt) {
	if a == nil {
		w.ok = false
		return
	}
	if !w.known(a) {
		return
	}
	fields := w.open()
	w.str("model", a.GetModel())
	w.str("node", a.GetNode())
	w.enum("errorClass", int32(a.GetErrorClass()), messages.ErrorClass_name)
	w.double("latencyMs", a.GetLatencyMs())
	w.int32("statusCode", a.GetStatusCode())
	w.bool("retried", a.GetRetried())
	w.bool("hedged", a.GetHedged())
	w.enum("skipped", int32(a.GetSkipped()), messages.Attempt_Skip_name)
	w.str("continued", a.GetContinued())
	w.int32("malformedSkipped", a.GetMalformedSkipped())
	w.close(fields)
}

// known is false, and gives up, when m carries unknown fields.
func (w *jsonWriter) known(m proto.Message) bool {
	if len(m.ProtoReflect().GetUnknown()) > 0 {
		w.ok = false
	}
	return w.ok
}

// open starts an object and returns the field count of the one around it,
// for close.
func (w *jsonWriter) open() (outer int) {
	w.b = append(w.b, '{')
	outer, w.fields = w.fields, 0
	return outer
}

func (w *jsonWriter) close(outer int) {
	w.b = append(w.b, '}')
	w.fields = outer
}

func (w *jsonWriter) key(k string) {
	if w.fields > 0 {
		w.b = append(w.b, ',')
	}
	w.fields++
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

// str writes a set string; one that is not valid UTF-8 gives up
// (protojson refuses it, and says so).
func (w *jsonWriter) str(k, v string) {
	if v == "" {
		return
	}
	if !utf8.ValidString(v) {
		w.ok = false
		return
	}
	w.key(k)
	w.b = jsonwrite.String(w.b, v) // escapes more than protojson (<, >, &), to the same text
}

func (w *jsonWriter) int32(k string, v int32) {
	if v == 0 {
		return
	}
	w.key(k)
	w.b = strconv.AppendInt(w.b, int64(v), 10)
}

func (w *jsonWriter) bool(k string, v bool) {
	if !v {
		return
	}
	w.key(k)
	w.b = append(w.b, "true"...)
}

// enum writes a set enum value by name; a value without a name gives up
// (protojson writes its number).
func (w *jsonWriter) enum(k string, v int32, names map[int32]string) {
	if v == 0 {
		return
	}
	name, ok := names[v]
	if !ok {
		w.ok = false
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"')
}

// double writes a set v; -0 is set (its bits are not zero). protojson
// formats doubles as encoding/json does, as jsonwrite.Float; a value that
// is not finite gives up (protojson writes "NaN" and the like).
func (w *jsonWriter) double(k string, v float64) {
	if math.Float64bits(v) == 0 {
		return
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		w.ok = false
		return
	}
	w.key(k)
	w.b, _ = jsonwrite.Float(w.b, v)
}
