package gateway

import (
	"strconv"
	"unicode/utf8"
)

// The hot path's JSON, written by hand: a completion and a stream's chunk
// events, byte for byte what encoding/json makes of the same structs
// (TestEncodeAgreesWithEncodingJSON, FuzzEncode), without reflection.

// appendHead appends the fields a completion and a chunk begin with, the
// object left open.
func appendHead(b []byte, id, object string, created int64, model string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"object":`...)
	b = appendString(b, object)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	return appendString(b, model)
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
		b = appendString(b, ch.Message.Role)
		b = append(b, `,"content":`...)
		b = appendString(b, ch.Message.Content)
		b = append(b, `},"finish_reason":`...)
		b = appendString(b, ch.FinishReason)
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
				b = appendString(b, ch.Delta.Role)
				comma = true
			}
			if ch.Delta.Content != nil {
				if comma {
					b = append(b, ',')
				}
				b = append(b, `"content":`...)
				b = appendString(b, *ch.Delta.Content)
			}
			b = append(b, `},"finish_reason":`...)
			if ch.FinishReason == nil {
				b = append(b, "null"...)
			} else {
				b = appendString(b, *ch.FinishReason)
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

const hex = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does:
// <, > and & as \u003c, \u003e and \u0026, U+2028 and U+2029 escaped,
// invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
