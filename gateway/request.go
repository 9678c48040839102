package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/cmmv-hive/resilience/internal/jsonscan"
	"github.com/cmmv-hive/resilience/messages"
)

// chatRequest is the part of OpenAI's chat completions request that Hive
// uses. tools and response_format are passed on as they came (to
// OpenAI-compatible backends) and keep a cut stream from being spliced;
// other fields (seed, tool_choice...) are ignored, as OpenAI ignores
// unknown ones.
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           *int64        `json:"max_tokens"`
	MaxCompletionTokens *int64        `json:"max_completion_tokens"`
	Temperature         *float64      `json:"temperature"`
	Stream              bool          `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	User           string          `json:"user"`
	N              *int64          `json:"n"`
	Tools          json.RawMessage `json:"tools"`
	ResponseFormat json.RawMessage `json:"response_format"`
}

// chatMessage keeps content raw: OpenAI sends a string, null, or an array
// of typed parts.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	text    string          // the content, when quickRequest read it as a string or null
	plain   bool            // text is set
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Request headers Hive reads besides OpenAI's body.
const (
	headerRequestID   = "X-Request-Id"
	headerPriority    = "X-Hive-Priority"
	headerDeadline    = "X-Hive-Deadline-Ms"
	headerIdempotency = "Idempotency-Key"
	maxRequestID      = 128
)

// call is a decoded chat completion request.
type call struct {
	req          *messages.InferRequest
	includeUsage bool // stream_options.include_usage
}

// apiError is a failure the gateway itself answers, before any dispatch.
type apiError struct {
	status int
	err    *messages.Error
	param  string
}

func badRequest(code, param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, err: messages.Failure(messages.ErrorClass_bad_request, code, format, args...), param: param}
}

// header reads a request header by name ("" when absent).
type header func(name string) string

// decode reads a request's headers and body (the server has bounded it:
// Server's MaxRequestBodySize) into an InferRequest. Messages never quote
// the body: it may hold secrets.
func decode(get header, raw []byte) (*call, *apiError) {
	req := &messages.InferRequest{}
	if e := decodeHeaders(get, req); e != nil {
		return nil, e
	}
	body, ok := quickRequest(raw)
	if !ok {
		body = chatRequest{}
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&body); err != nil {
			return nil, bodyError(err)
		}
		if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
			if err == nil || isSyntax(err) {
				return nil, badRequest("invalid_json", "", "the body holds more than one JSON value")
			}
			return nil, bodyError(err)
		}
	}
	if e := fill(req, &body); e != nil {
		return nil, e
	}
	// The bounds both ingresses share, with the same codes as over NATS.
	if p := messages.CheckRequest(req); p != nil {
		return nil, &apiError{status: http.StatusBadRequest, err: p.Error(), param: openAIParam(p.Field, &body)}
	}
	return &call{req: req, includeUsage: body.StreamOptions != nil && body.StreamOptions.IncludeUsage}, nil
}

func decodeHeaders(get header, req *messages.InferRequest) *apiError {
	req.RequestId = get(headerRequestID)
	if req.RequestId == "" {
		req.RequestId = rand.Text()
	} else if !printable(req.RequestId) {
		return badRequest("invalid_request_id", "", "%s must be 1 to %d visible ASCII characters", headerRequestID, maxRequestID)
	}
	if v := get(headerPriority); v != "" {
		p, ok := messages.InferRequest_Priority_value[strings.ToLower(strings.TrimSpace(v))]
		if !ok {
			return badRequest("invalid_priority", "", "%s must be normal, high or critical", headerPriority)
		}
		req.Priority = messages.InferRequest_Priority(p)
	}
	if v := get(headerDeadline); v != "" {
		ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || ms <= 0 {
			return badRequest("invalid_deadline", "", "%s must be a positive number of milliseconds below 2^31", headerDeadline)
		}
		req.DeadlineMs = int32(ms)
	}
	if v := get(headerIdempotency); v != "" {
		if !printable(v) {
			return badRequest("invalid_idempotency_key", "", "%s must be 1 to %d visible ASCII characters", headerIdempotency, maxRequestID)
		}
		req.IdempotencyKey = v
	}
	return nil
}

// printable reports whether s is a short run of visible ASCII, safe to echo
// in a header and a log line.
func printable(s string) bool {
	if len(s) == 0 || len(s) > maxRequestID {
		return false
	}
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// tooLarge is the answer to a body over the limit.
func tooLarge(limit int64) *apiError {
	return &apiError{
		status: http.StatusRequestEntityTooLarge,
		err:    messages.Failure(messages.ErrorClass_bad_request, "body_too_large", "the body exceeds %d bytes", limit),
	}
}

// bodyError turns a read or JSON error into the gateway's answer.
func bodyError(err error) *apiError {
	var tooBig *http.MaxBytesError
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &tooBig):
		return tooLarge(tooBig.Limit)
	case errors.Is(err, io.EOF):
		return badRequest("invalid_json", "", "the body is empty")
	case errors.As(err, &typ) && typ.Field == "":
		return badRequest("invalid_json", "", "the body must be a JSON object")
	case errors.As(err, &typ):
		return badRequest("invalid_type", typ.Field, "%s has the wrong type (a JSON %s)", typ.Field, typ.Value)
	case errors.As(err, &syn):
		return badRequest("invalid_json", "", "the body is not valid JSON (at byte %d)", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid_json", "", "the body ends inside its JSON value")
	default: // the client stopped sending
		return badRequest("invalid_body", "", "the body could not be read")
	}
}

func isSyntax(err error) bool {
	var syn *json.SyntaxError
	return errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF)
}

// quickRequest reads the usual request, every field of the type OpenAI
// gives it and every content a string or null, in one pass without
// reflection (internal/jsonscan); false for anything else, which decode
// then reads with encoding/json for its precise errors
// (TestQuickRequestAgreesWithEncodingJSON, FuzzQuickRequest).
func quickRequest(raw []byte) (chatRequest, bool) {
	var b chatRequest
	p := jsonscan.New(raw)
	ok := p.Object(func(key string) bool {
		switch key {
		case "model":
			return p.Str(&b.Model)
		case "messages":
			if p.Null() {
				return true
			}
			b.Messages = []chatMessage{}
			return p.Array(func() bool {
				var m chatMessage
				m.plain = true
				ok := p.Object(func(key string) bool {
					switch key {
					case "role":
						return p.Str(&m.Role)
					case "content":
						return p.Str(&m.text)
					}
					return p.Skip()
				}, "role", "content")
				b.Messages = append(b.Messages, m)
				return ok
			})
		case "max_tokens":
			return p.Int64(&b.MaxTokens)
		case "max_completion_tokens":
			return p.Int64(&b.MaxCompletionTokens)
		case "temperature":
			return p.Float64(&b.Temperature)
		case "stream":
			return p.Bool(&b.Stream)
		case "stream_options":
			if p.Null() {
				b.StreamOptions = nil
				return true
			}
			b.StreamOptions = &struct {
				IncludeUsage bool `json:"include_usage"`
			}{}
			return p.Object(func(key string) bool {
				if key == "include_usage" {
					return p.Bool(&b.StreamOptions.IncludeUsage)
				}
				return p.Skip()
			}, "include_usage")
		case "user":
			return p.Str(&b.User)
		case "n":
			return p.Int64(&b.N)
		case "tools":
			return p.Raw(&b.Tools)
		case "response_format":
			return p.Raw(&b.ResponseFormat)
		}
		return p.Skip()
	}, "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "stream", "stream_options", "user", "n",
		"tools", "response_format")
	return b, ok && p.End()
}

// fill checks body and copies it into req.
func fill(req *messages.InferRequest, b *chatRequest) *apiError {
	if b.Model == "" {
		return badRequest("missing_model", "model", "model is required")
	}
	if len(b.Messages) == 0 {
		return badRequest("missing_messages", "messages", "messages must hold at least one message")
	}
	if b.N != nil && *b.N != 1 {
		return badRequest("unsupported_n", "n", "n must be 1: Hive returns one choice")
	}
	req.Model = b.Model
	req.Stream = b.Stream
	req.Messages = make([]*messages.ChatMessage, len(b.Messages))
	for i, m := range b.Messages {
		text := m.text
		if !m.plain {
			var e *apiError
			if text, e = content(m.Content, i); e != nil {
				return e
			}
		}
		req.Messages[i] = &messages.ChatMessage{Role: m.Role, Content: text}
	}
	limit, param := b.MaxTokens, "max_tokens"
	if b.MaxCompletionTokens != nil { // the newer name wins, as at OpenAI
		limit, param = b.MaxCompletionTokens, "max_completion_tokens"
	}
	if limit != nil {
		if *limit < 1 || *limit > math.MaxInt32 {
			return badRequest("invalid_max_tokens", param, "%s must be between 1 and %d", param, math.MaxInt32)
		}
		req.MaxTokens = int32(*limit)
	}
	req.Temperature = b.Temperature // bounds: messages.CheckRequest
	if b.User != "" {
		req.Metadata = map[string]string{"user": b.User}
	}
	req.Tools, req.ResponseFormat = rawJSON(b.Tools), rawJSON(b.ResponseFormat) // their shape: messages.CheckRequest
	if strings.Join(strings.Fields(req.Tools), "") == "[]" {
		req.Tools = "" // no tools
	}
	return nil
}

// rawJSON is a raw value as text, "" for null or absent.
func rawJSON(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	return string(raw)
}

// openAIParam names field, in messages.CheckRequest's protojson terms, as
// the OpenAI request does.
func openAIParam(field string, b *chatRequest) string {
	switch field {
	case "maxTokens":
		if b.MaxCompletionTokens != nil {
			return "max_completion_tokens"
		}
		return "max_tokens"
	case "metadata":
		return "user"
	case "responseFormat":
		return "response_format"
	}
	return field
}

// content returns a message's text: the string itself, "" for null or
// absent, or the texts of an array of parts joined by a newline (so words
// of adjacent parts do not run together). A part of another type than text
// is refused: Hive's models take text only.
func content(raw json.RawMessage, i int) (string, *apiError) {
	raw = bytes.TrimSpace(raw)
	param := fmt.Sprintf("messages[%d].content", i)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		return "", nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badRequest("invalid_type", param, "%s must be a string or an array of parts", param)
		}
		return s, nil
	case raw[0] == '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", badRequest("invalid_type", param, "%s must be a string or an array of parts", param)
		}
		texts := make([]string, len(parts))
		for j, p := range parts {
			if p.Type != "text" {
				pp := fmt.Sprintf("%s[%d].type", param, j)
				return "", badRequest("unsupported_content", pp, "%s: only text parts are supported", pp)
			}
			texts[j] = p.Text
		}
		return strings.Join(texts, "\n"), nil
	default:
		return "", badRequest("invalid_type", param, "%s must be a string or an array of parts", param)
	}
}
