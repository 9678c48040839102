// Package jsonscan reads JSON of a known shape in one pass over its bytes,
// without reflection, for the hot paths: the gateway's chat completion
// request and the OpenAI-compatible answer. A caller walks the document it
// expects (Object, Array, Str...); anything else, a value of another type,
// a key given twice or spelt in another case than the caller's (which
// encoding/json would match without regard to case), invalid JSON, makes a
// method return false, and the caller then decodes with encoding/json,
// which says what is wrong. So the walk never accepts a document that
// encoding/json would read differently (the callers' fuzz tests compare
// the two).
package jsonscan

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// New returns a Scanner over b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// End reports whether only white space is left.
func (p *Scanner) End() bool {
	p.ws()
	return p.i == len(p.b)
}

// Bool reads true, false or null (false) into v.
func (p *Scanner) Bool(v *bool) bool {
	switch p.peek() {
	case 't':
		*v = true
		return p.literal("true")
	case 'f':
		*v = false
		return p.literal("false")
	}
	return p.Null()
}

// Int64 reads a whole number, or null (nil), into v.
func (p *Scanner) Int64(v **int64) bool {
	if p.Null() {
		*v = nil
		return true
	}
	n, ok := p.whole(64)
	if ok {
		*v = &n
	}
	return ok
}

// Raw reads any value, checked, into v as it came (null included, as
// encoding/json keeps it in a json.RawMessage).
func (p *Scanner) Raw(v *json.RawMessage) bool {
	p.ws()
	start := p.i
	if !p.Skip() {
		return false
	}
	*v = append((*v)[:0], p.b[start:p.i]...)
	return true
}

// Float64 reads a number, or null (nil), into v.
func (p *Scanner) Float64(v **float64) bool {
	if p.Null() {
		*v = nil
		return true
	}
	p.ws()
	start := p.i
	if !p.number() {
		return false
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return false
	}
	*v = &f
	return true
}

// Scanner walks JSON; each method reports false on anything it does not
// take, and the walk is then abandoned.
type Scanner struct {
	b     []byte
	i     int
	depth int
}

const maxDepth = 64

func (p *Scanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, 0 at the end.
func (p *Scanner) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// object walks an object, calling field with each key once its value is
// next; names are the keys field reads, each taken once and only so spelt.
func (p *Scanner) Object(field func(key string) bool, names ...string) bool {
	if len(names) > 16 {
		panic("jsonscan: at most 16 names")
	}
	if p.peek() != '{' || p.depth >= maxDepth {
		return false
	}
	p.i++
	p.depth++
	defer func() { p.depth-- }()
	var seen [16]bool
	if p.peek() == '}' {
		p.i++
		return true
	}
	for {
		raw, ok := p.rawString()
		if !ok {
			return false
		}
		key := ""
		for j, n := range names {
			if foldEqual(raw, n) {
				if string(raw) != n || seen[j] {
					return false
				}
				seen[j], key = true, n
			}
		}
		if key == "" { // a key field does not read: the only one copied
			key = string(raw)
		}
		if p.peek() != ':' {
			return false
		}
		p.i++
		if !field(key) {
			return false
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// array walks an array, calling elem with each element next.
func (p *Scanner) Array(elem func() bool) bool {
	if p.peek() != '[' || p.depth >= maxDepth {
		return false
	}
	p.i++
	p.depth++
	defer func() { p.depth-- }()
	if p.peek() == ']' {
		p.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}

// rawString returns a string's bytes between its quotes, escapes kept; it
// takes only plain ASCII without escapes (anything else: false), so that
// the bytes are the string.
func (p *Scanner) rawString() ([]byte, bool) {
	if p.peek() != '"' {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return p.b[start:j], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// str reads a string or null ("") into s. A string with escapes or
// non-ASCII text is decoded by encoding/json, string alone.
func (p *Scanner) Str(s *string) bool {
	if p.Null() {
		*s = ""
		return true
	}
	if p.peek() != '"' {
		return false
	}
	if raw, ok := p.rawString(); ok {
		*s = common(raw)
		return true
	}
	start := p.i
	if !p.skipString() {
		return false
	}
	return json.Unmarshal(p.b[start:p.i], s) == nil
}

// common returns raw as a string, without a copy for the values most
// requests and answers repeat (roles, finish reasons).
func common(raw []byte) string {
	switch string(raw) {
	case "user":
		return "user"
	case "assistant":
		return "assistant"
	case "system":
		return "system"
	case "tool":
		return "tool"
	case "stop":
		return "stop"
	case "length":
		return "length"
	case "chat.completion":
		return "chat.completion"
	}
	return string(raw)
}

// foldEqual is strings.EqualFold for an ASCII raw (rawString's) and an
// ASCII name: the two compared without the copy of raw.
func foldEqual(raw []byte, name string) bool {
	if len(raw) != len(name) {
		return false
	}
	for i := range len(raw) {
		a, b := raw[i], name[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// skipString passes a string, checking its escapes.
func (p *Scanner) skipString() bool {
	p.i++ // the quote
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return false
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) {
					return false
				}
				for _, h := range p.b[p.i+2 : p.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				p.i += 6
			default:
				return false
			}
		default:
			p.i++
		}
	}
	return false
}

// null takes a null.
func (p *Scanner) Null() bool {
	if p.peek() == 'n' && p.literal("null") {
		return true
	}
	return false
}

func (p *Scanner) literal(word string) bool {
	if strings.HasPrefix(string(p.b[p.i:min(len(p.b), p.i+len(word))]), word) {
		p.i += len(word)
		return true
	}
	return false
}

// Int32 reads a whole number that fits an int32, or null (0), into n.
func (p *Scanner) Int32(n *int32) bool {
	if p.Null() {
		*n = 0
		return true
	}
	v, ok := p.whole(32)
	if ok {
		*n = int32(v)
	}
	return ok
}

// whole reads a JSON number that is a whole number of at most bits bits.
func (p *Scanner) whole(bits int) (int64, bool) {
	p.ws()
	start := p.i
	if !p.number() {
		return 0, false
	}
	v, err := strconv.ParseInt(string(p.b[start:p.i]), 10, bits)
	return v, err == nil
}

// number passes a JSON number.
func (p *Scanner) number() bool {
	b, i := p.b, p.i
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	p.i = i
	return true
}

// skip passes any value, checking it.
func (p *Scanner) Skip() bool {
	switch c := p.peek(); {
	case c == '{':
		return p.Object(func(string) bool { return p.Skip() })
	case c == '[':
		return p.Array(p.Skip)
	case c == '"':
		if !p.skipString() {
			return false
		}
		return true
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return false
}
