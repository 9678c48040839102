package bus

import (
	"unicode/utf8"

	"github.com/cmmv-hive/resilience/messages"
)

// A JSON decoder for the common shape of an InferRequest, for the same
// reason as jsonreply.go: protojson's reflection cost as much as the rest
// of the request (BenchmarkInfer json/parallel64: 11 % of the CPU). It
// takes a strict subset of what protojson takes, and only when it is sure
// protojson would read the same message:
//
//   - an object whose keys are among requestId, model, messages, stream,
//     maxTokens and deadlineMs (each also under its proto name), each at
//     most once; messages an array of objects whose keys are among role,
//     content and prefix, each at most once;
//   - strings without escapes or control characters, valid UTF-8;
//     integers written as plain decimals that fit an int32; true and false;
//   - white space anywhere JSON allows it, nothing after the object.
//
// Anything else (another field, null, an escape, a duplicate key, a
// number written otherwise, invalid JSON) leaves the body to protojson,
// which decides, errors included: what this decoder refuses is never
// refused because of it.

// decodeRequest decodes body in enc into req, as Decode does.
func decodeRequest(enc Encoding, body []byte, req *messages.InferRequest) error {
	if enc == JSON {
		if decodeRequestJSON(body, req) {
			return nil
		}
		req.Reset()
	}
	return Decode(enc, body, req)
}

// decodeRequestJSON decodes body into req when it is of the shape above;
// false leaves req partly filled, to be reset.
func decodeRequestJSON(body []byte, req *messages.InferRequest) bool {
	p := reqScanner{b: body}
	var seen [6]bool
	ok := p.object(func(key []byte) bool {
		switch string(key) { // compared, not copied
		case "requestId", "request_id":
			return once(&seen[0]) && p.str(&req.RequestId)
		case "model":
			return once(&seen[1]) && p.str(&req.Model)
		case "messages":
			return once(&seen[2]) && p.array(func() bool {
				m := new(messages.ChatMessage)
				req.Messages = append(req.Messages, m)
				var seen [3]bool
				return p.object(func(key []byte) bool {
					switch string(key) {
					case "role":
						return once(&seen[0]) && p.str(&m.Role)
					case "content":
						return once(&seen[1]) && p.str(&m.Content)
					case "prefix":
						return once(&seen[2]) && p.bool(&m.Prefix)
					}
					return false
				})
			})
		case "stream":
			return once(&seen[3]) && p.bool(&req.Stream)
		case "maxTokens", "max_tokens":
			return once(&seen[4]) && p.int32(&req.MaxTokens)
		case "deadlineMs", "deadline_ms":
			return once(&seen[5]) && p.int32(&req.DeadlineMs)
		}
		return false
	})
	p.ws()
	return ok && p.i == len(p.b)
}

// once marks a field read and is false when it was read already.
func once(seen *bool) bool {
	if *seen {
		return false
	}
	*seen = true
	return true
}

// reqScanner walks the JSON of decodeRequestJSON; every method returns
// false at the first thing outside that shape.
type reqScanner struct {
	b []byte
	i int
}

func (p *reqScanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips white space and takes c if it comes next.
func (p *reqScanner) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object walks an object, calling field with each key when its value is
// next.
func (p *reqScanner) object(field func(key []byte) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		key, ok := p.raw()
		if !ok || !p.next(':') || !field(key) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// array walks an array, calling elem with each element next.
func (p *reqScanner) array(elem func() bool) bool {
	if !p.next('[') {
		return false
	}
	if p.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.next(']') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// raw reads a string without escapes or control characters that is valid
// UTF-8, and returns its bytes.
func (p *reqScanner) raw() ([]byte, bool) {
	if !p.next('"') {
		return nil, false
	}
	start, ascii := p.i, true
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < ' ':
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (p *reqScanner) str(s *string) bool {
	b, ok := p.raw()
	*s = string(b)
	return ok
}

func (p *reqScanner) bool(v *bool) bool {
	p.ws()
	switch {
	case len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true":
		*v = true
		p.i += 4
	case len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false":
		*v = false
		p.i += 5
	default:
		return false
	}
	return p.delimited()
}

// int32 reads an integer in plain decimals (no fraction, no exponent, no
// leading zero) that fits an int32.
func (p *reqScanner) int32(v *int32) bool {
	p.ws()
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	start := p.i
	var n int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int64(p.b[p.i]-'0')
		p.i++
		if n > 1<<31 {
			return false
		}
	}
	digits := p.i - start
	if digits == 0 || (digits > 1 && p.b[start] == '0') {
		return false
	}
	if neg {
		n = -n
	}
	if n < -1<<31 || n > 1<<31-1 {
		return false
	}
	*v = int32(n)
	return p.delimited()
}

// delimited is true when a literal or number ends where it should: at
// white space, a comma, a closing bracket or the end (so that "truex" or
// "12.5" is not taken for true or 12).
func (p *reqScanner) delimited() bool {
	if p.i == len(p.b) {
		return true
	}
	switch p.b[p.i] {
	case ' ', '\t', '\n', '\r', ',', '}', ']':
		return true
	}
	return false
}
