package bus

import (
	"fmt"
	"mime"
	"strings"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/messages"
)

// Encoding is a wire encoding of Hive messages. A reply always uses the
// encoding of the request it answers.
type Encoding int

const (
	// Protobuf is protobuf binary, the default.
	Protobuf Encoding = iota
	// JSON is protojson with lowerCamelCase field names.
	JSON
)

// Content types, as sent in the Content-Type header of replies.
const (
	contentTypeProtobuf = "application/x-protobuf"
	contentTypeJSON     = "application/json"
)

// ContentTypeHeader is the header that selects a request's encoding and
// names a reply's.
const ContentTypeHeader = "Content-Type"

var (
	jsonMarshal   = protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: false}
	jsonUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: false}
	protoMarshal  = proto.MarshalOptions{}
)

// String returns "protobuf" or "json".
func (e Encoding) String() string {
	if e == JSON {
		return "json"
	}
	return "protobuf"
}

// ContentType returns the MIME type of e: application/x-protobuf or
// application/json.
func (e Encoding) ContentType() string {
	if e == JSON {
		return contentTypeJSON
	}
	return contentTypeProtobuf
}

// DetectEncoding returns JSON when the Content-Type header (matched without
// regard to case, parameters such as "; charset=utf-8" allowed) is
// application/json, or when the body's first byte is '{'; otherwise
// Protobuf. Only the very first byte counts: '{' (field 15, wire type 3)
// cannot start a protobuf message of ours, while a space (0x20, field 4,
// varint) can, so leading whitespace is not skipped.
func DetectEncoding(h nats.Header, body []byte) Encoding {
	if ct := headerValue(h, ContentTypeHeader); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == contentTypeJSON {
			return JSON
		}
	}
	if len(body) > 0 && body[0] == '{' {
		return JSON
	}
	return Protobuf
}

// headerValue returns the first value of key, matching the key without
// regard to case: NATS headers are case-sensitive and clients differ.
func headerValue(h nats.Header, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// Encode marshals m in enc. JSON uses lowerCamelCase names and leaves out
// unset fields.
func Encode(enc Encoding, m proto.Message) ([]byte, error) { return marshalAppend(enc, nil, m) }

// appendEncode is Encode appending to b, a reused buffer, with a JSON
// InferResponse written by hand when it can be (jsonreply.go): the
// ingress's replies are encoded into pooled buffers (see replymsg.go).
func appendEncode(enc Encoding, b []byte, m proto.Message) ([]byte, error) {
	if r, ok := m.(*messages.InferResponse); ok && enc == JSON {
		if out, ok := appendResponseJSON(b, r); ok {
			return out, nil
		}
	}
	return marshalAppend(enc, b, m)
}

// marshalAppend appends m in enc with protojson or proto.
func marshalAppend(enc Encoding, b []byte, m proto.Message) ([]byte, error) {
	var err error
	if enc == JSON {
		b, err = jsonMarshal.MarshalAppend(b, m)
	} else {
		b, err = protoMarshal.MarshalAppend(b, m)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", enc, err)
	}
	return b, nil
}

// Decode unmarshals body in enc into m. JSON accepts both lowerCamelCase and
// proto field names and rejects unknown fields. Every error matches
// ErrDecode and says what was wrong.
func Decode(enc Encoding, body []byte, m proto.Message) error {
	var err error
	if enc == JSON {
		err = jsonUnmarshal.Unmarshal(body, m)
	} else {
		err = proto.Unmarshal(body, m)
	}
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrDecode, enc, err)
	}
	return nil
}

// publish sends m on subject in enc, with the Content-Type and Hive-Type
// headers: how events, audit records and admin and chaos replies go out.
func publish(nc *nats.Conn, subject string, enc Encoding, m proto.Message) error {
	msg, err := NewMsg(subject, enc, m)
	if err != nil {
		return err
	}
	return nc.PublishMsg(msg)
}

// NewMsg encodes m in enc as a message on subject with the Content-Type
// and Hive-Type headers: every Hive message sent outside an Ingress is
// made here.
func NewMsg(subject string, enc Encoding, m proto.Message) (*nats.Msg, error) {
	body, err := Encode(enc, m)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(subject)
	msg.Header.Set(ContentTypeHeader, enc.ContentType())
	msg.Header.Set(TypeHeader, TypeName(m))
	msg.Data = body
	return msg, nil
}
