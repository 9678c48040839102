package openai

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cmmv-hive/resilience/internal/jsonwrite"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/internal/httpapi"
)

// Config names an OpenAI-compatible endpoint.
type Config struct {
	Name string // the configured model name, used in messages
	// BaseURL is the API root, such as https://api.openai.com/v1 or
	// http://127.0.0.1:11434/v1; /chat/completions is appended. Required.
	BaseURL string
	// APIKey is the key itself (the caller reads it from the environment),
	// sent as a bearer token; empty sends no Authorization header, as local
	// servers want. It never appears in an error.
	APIKey string
	// UpstreamModel is the model name the API knows; empty means Name.
	UpstreamModel string
	// MaxCompletionTokens sends the request's max_tokens as
	// max_completion_tokens, which OpenAI's reasoning models (o-series,
	// gpt-5) require; off sends max_tokens, which every compatible server
	// understands.
	MaxCompletionTokens bool
	// Client makes the calls; nil means the model's own pool of keep-alive
	// HTTP/1.1 connections (providers/internal/httpapi/pool.go), or
	// providers.HTTPClient() when the environment names a proxy for
	// BaseURL.
	Client *http.Client
	// Headers are added to every request (an organisation, a project, an
	// Azure api-key); they may override the defaults. Values of 8 bytes or
	// more are treated as secrets and removed from errors.
	Headers map[string]string
}

// Model is an OpenAI-compatible chat model.
type Model struct {
	cfg   Config
	model string
	api   *httpapi.Endpoint
}

var _ providers.Streamer = (*Model)(nil)

// New validates cfg and returns a Model. BaseURL must be an absolute http or
// https URL, and one of UpstreamModel and Name must be set.
func New(cfg Config) (*Model, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("openai %s: BaseURL %q is not an absolute http(s) URL", cfg.Name, cfg.BaseURL)
	}
	m := &Model{cfg: cfg, model: cmp.Or(cfg.UpstreamModel, cfg.Name)}
	if m.model == "" {
		return nil, fmt.Errorf("openai: neither UpstreamModel nor Name is set")
	}
	auth := http.Header{}
	if cfg.APIKey != "" {
		auth.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	m.api = httpapi.NewEndpoint(strings.TrimRight(cfg.BaseURL, "/")+"/chat/completions", cfg.Client, auth, cfg.APIKey, cfg.Headers)
	return m, nil
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Prefix marks a final assistant message as the start of the answer,
	// as DeepSeek, Mistral and vLLM's OpenAI-compatible servers read it.
	Prefix bool `json:"prefix,omitempty"`
}

type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	MaxTokens           int32          `json:"max_tokens,omitempty"`
	MaxCompletionTokens int32          `json:"max_completion_tokens,omitempty"`
	Temperature         *float64       `json:"temperature,omitempty"`
	Stream              bool           `json:"stream,omitempty"`
	StreamOptions       *streamOptions `json:"stream_options,omitempty"`
	// Tools and ResponseFormat are the caller's, passed on as they came.
	Tools          json.RawMessage `json:"tools,omitempty"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
}

// AppendJSON appends cr as json.Marshal writes it, without reflection
// (TestRequestEncodingAgreesWithEncodingJSON): the hot path's encoder. It
// fails as Marshal does, on a temperature that is not a number and on
// tools or a response format that are not JSON.
func (cr *chatRequest) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"model":`...)
	b = jsonwrite.String(b, cr.Model)
	b = append(b, `,"messages":`...)
	if cr.Messages == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range cr.Messages {
			m := &cr.Messages[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"role":`...)
			b = jsonwrite.String(b, m.Role)
			b = append(b, `,"content":`...)
			b = jsonwrite.String(b, m.Content)
			if m.Prefix {
				b = append(b, `,"prefix":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if cr.MaxTokens != 0 {
		b = append(b, `,"max_tokens":`...)
		b = strconv.AppendInt(b, int64(cr.MaxTokens), 10)
	}
	if cr.MaxCompletionTokens != 0 {
		b = append(b, `,"max_completion_tokens":`...)
		b = strconv.AppendInt(b, int64(cr.MaxCompletionTokens), 10)
	}
	if cr.Temperature != nil {
		b = append(b, `,"temperature":`...)
		var ok bool
		if b, ok = jsonwrite.Float(b, *cr.Temperature); !ok {
			return b, fmt.Errorf("temperature %v is not a JSON number", *cr.Temperature)
		}
	}
	if cr.Stream {
		b = append(b, `,"stream":true`...)
	}
	if cr.StreamOptions != nil {
		b = append(b, `,"stream_options":{"include_usage":`...)
		b = strconv.AppendBool(b, cr.StreamOptions.IncludeUsage)
		b = append(b, '}')
	}
	for _, raw := range []struct {
		key string
		v   json.RawMessage
	}{{`,"tools":`, cr.Tools}, {`,"response_format":`, cr.ResponseFormat}} {
		if len(raw.v) == 0 {
			continue
		}
		b = append(b, raw.key...)
		var ok bool
		if b, ok = jsonwrite.Raw(b, raw.v); !ok {
			return b, fmt.Errorf("%s is not JSON", raw.key[2:len(raw.key)-2])
		}
	}
	return append(b, '}'), nil
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type usageJSON struct {
	PromptTokens     int32 `json:"prompt_tokens"`
	CompletionTokens int32 `json:"completion_tokens"`
}

func (u *usageJSON) usage() *messages.Usage {
	if u == nil {
		return nil
	}
	return &messages.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
			Refusal string `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageJSON      `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (m *Model) body(req *messages.InferRequest, stream bool) *chatRequest {
	cr := &chatRequest{Model: m.model, Messages: make([]chatMessage, 0, len(req.GetMessages()))}
	for _, msg := range req.GetMessages() {
		cr.Messages = append(cr.Messages, chatMessage{Role: msg.GetRole(), Content: msg.GetContent(), Prefix: msg.GetPrefix()})
	}
	if t := req.GetTools(); t != "" {
		cr.Tools = json.RawMessage(t)
	}
	if f := req.GetResponseFormat(); f != "" {
		cr.ResponseFormat = json.RawMessage(f)
	}
	if m.cfg.MaxCompletionTokens {
		cr.MaxCompletionTokens = req.GetMaxTokens()
	} else {
		cr.MaxTokens = req.GetMaxTokens()
	}
	if req.Temperature != nil {
		t := *req.Temperature
		cr.Temperature = &t
	}
	if stream {
		cr.Stream = true
		cr.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	return cr
}

// Complete asks for a plain answer. See the package comment for what counts
// as complete; an unparsable 2xx body, or one without choices, is malformed.
func (m *Model) Complete(ctx context.Context, req *messages.InferRequest) (*providers.Result, error) {
	status, body, perr := m.api.Answer(ctx, m.body(req, false))
	if perr != nil {
		return nil, perr
	}
	malformed := func(format string, args ...any) error {
		e := providers.Errorf(messages.ErrorClass_malformed, format, args...)
		e.StatusCode = status
		return e
	}
	if a, ok := quickAnswer(body); ok {
		if err := refused(a.finish, a.refusal); err != nil {
			err.StatusCode = status
			return nil, err
		}
		return &providers.Result{Content: a.content, Usage: a.usage, StatusCode: status}, nil
	}
	var cr chatResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, malformed("unparsable answer: %v", err)
	}
	if len(cr.Choices) == 0 {
		if e, ok := providers.ClassifyEvent(body, messages.ErrorClass_server_error); ok {
			e.StatusCode = status
			return nil, e.Redact(m.api.Secrets...)
		}
		return nil, malformed("answer without choices")
	}
	choice := cr.Choices[0]
	if err := refused(choice.FinishReason, choice.Message.Refusal); err != nil {
		err.StatusCode = status
		return nil, err
	}
	return &providers.Result{Content: choice.Message.Content, Usage: cr.Usage.usage(), StatusCode: status}, nil
}

// answer is what Complete takes from a plain answer.
type answer struct {
	content, refusal, finish string
	usage                    *messages.Usage
}

// refused reports a content_policy failure when the provider filtered the
// answer or the model refused, with the reason when there is one.
func refused(finishReason, refusal string) *providers.Error {
	switch {
	case refusal != "":
		return providers.Errorf(messages.ErrorClass_content_policy, "the model refused: %s", refusal)
	case finishReason == "content_filter":
		return providers.Errorf(messages.ErrorClass_content_policy, "the provider's content filter stopped the answer (finish_reason content_filter)")
	case finishReason == "tool_calls" || finishReason == "function_call":
		// Hive answers with text only: a tool call passed on as an empty
		// success would be a lie, so the caller is told.
		e := providers.Errorf(messages.ErrorClass_bad_request, "the model answered with a tool call (finish_reason %s), which Hive does not pass back yet", finishReason)
		e.Code = CodeToolCalls
		return e
	}
	return nil
}

// CodeToolCalls is the Code of the bad_request a model's tool call becomes.
const CodeToolCalls = "tool_calls_unsupported"
