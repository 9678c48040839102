package gateway

import (
	"strconv"

	"github.com/cmmv-hive/resilience/internal/jsonwrite"
)

// The hot path's JSON, written by hand: a completion and a stream's chunk
// events, byte for byte what encoding/json makes of the same structs
// (TestEncodeAgreesWithEncodingJSON, FuzzEncode), without reflection.

// appendHead appends the fields a completion and a chunk begin with, the
// object left open.
func appendHead(b []byte, id, object string, created int64, model string) []byte {
	b = append(b, `{"id":`...)
	b = jsonwrite.String(b, id)
	b = append(b, `,"object":`...)
	b = jsonwrite.String(b, object)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	return jsonwrite.String(b, model)
}

// appendCompletion appends c and a newline, as json.Encoder would.
func appendCompletion(b []byte, c *completion) []byte {
	b = appendHead(b, c.ID, c.Object, c.Created, c.Model)
	b = append(b, `,"choices":[`...)
	for i := range c.Choices {
		ch := &c.Choices[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(ch.Index), 10)
		b = append(b, `,"message":{"role":`...)
		b = jsonwrite.String(b, ch.Message.Role)
		b = append(b, `,"content":`...)
		b = jsonwrite.String(b, ch.Message.Content)
		b = append(b, `},"finish_reason":`...)
		b = jsonwrite.String(b, ch.FinishReason)
		b = append(b, '}')
	}
	b = append(b, `],"usage":`...)
	b = appendUsage(b, c.Usage)
	return append(b, "}\n"...)
}

// appendChunk appends c, as json.Marshal would.
func appendChunk(b []byte, c *chunk) []byte {
	b = appendHead(b, c.ID, c.Object, c.Created, c.Model)
	b = append(b, `,"choices":`...)
	if c.Choices == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range c.Choices {
			ch := &c.Choices[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(ch.Index), 10)
			b = append(b, `,"delta":{`...)
			comma := false
			if ch.Delta.Role != "" {
				b = append(b, `"role":`...)
				b = jsonwrite.String(b, ch.Delta.Role)
				comma = true
			}
			if ch.Delta.Content != nil {
				if comma {
					b = append(b, ',')
				}
				b = append(b, `"content":`...)
				b = jsonwrite.String(b, *ch.Delta.Content)
			}
			b = append(b, `},"finish_reason":`...)
			if ch.FinishReason == nil {
				b = append(b, "null"...)
			} else {
				b = jsonwrite.String(b, *ch.FinishReason)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if c.Usage != nil {
		b = append(b, `,"usage":`...)
		b = appendUsage(b, c.Usage)
	}
	return append(b, '}')
}

func appendUsage(b []byte, u *usage) []byte {
	if u == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CompletionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens), 10)
	return append(b, '}')
}
