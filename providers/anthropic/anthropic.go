package anthropic

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/internal/httpapi"
)

// Defaults for the zero values of Config.
const (
	DefaultBaseURL   = "https://api.anthropic.com/v1"
	DefaultVersion   = "2023-06-01"
	DefaultMaxTokens = 1024
)

// Config names an Anthropic Messages endpoint.
type Config struct {
	Name string // the configured model name, used in messages
	// BaseURL is the API root; /messages is appended. Empty means
	// DefaultBaseURL.
	BaseURL string
	// APIKey is the key itself (the caller reads it from the environment),
	// sent as x-api-key. It never appears in an error.
	APIKey string
	// UpstreamModel is the model name the API knows, such as
	// claude-sonnet-4-5; empty means Name.
	UpstreamModel string
	// Version is the anthropic-version header; empty means DefaultVersion.
	Version string
	// MaxTokens is sent when a request gives no max_tokens; 0 means
	// DefaultMaxTokens.
	MaxTokens int32
	// Client makes the calls; nil means the model's own pool of keep-alive
	// HTTP/1.1 connections (providers/internal/httpapi/pool.go), or
	// providers.HTTPClient() when the environment names a proxy for
	// BaseURL.
	Client *http.Client
	// Headers are added to every request (anthropic-beta, a proxy's
	// credentials); they may override the defaults. Values of 8 bytes or
	// more are treated as secrets and removed from errors.
	Headers map[string]string
}

// Model is an Anthropic model.
type Model struct {
	cfg   Config
	model string
	api   *httpapi.Endpoint
}

var _ providers.Streamer = (*Model)(nil)

// New validates cfg, applies its defaults and returns a Model. BaseURL must
// be an absolute http or https URL, MaxTokens not negative, and one of
// UpstreamModel and Name must be set.
func New(cfg Config) (*Model, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.MaxTokens == 0 {
		cfg.MaxTokens = DefaultMaxTokens
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("anthropic %s: BaseURL %q is not an absolute http(s) URL", cfg.Name, cfg.BaseURL)
	}
	if cfg.MaxTokens < 0 {
		return nil, fmt.Errorf("anthropic %s: MaxTokens %d is negative", cfg.Name, cfg.MaxTokens)
	}
	m := &Model{cfg: cfg, model: cmp.Or(cfg.UpstreamModel, cfg.Name)}
	if m.model == "" {
		return nil, fmt.Errorf("anthropic: neither UpstreamModel nor Name is set")
	}
	header := http.Header{}
	header.Set("anthropic-version", cfg.Version)
	if cfg.APIKey != "" {
		header.Set("x-api-key", cfg.APIKey)
	}
	m.api = httpapi.NewEndpoint(strings.TrimRight(cfg.BaseURL, "/")+"/messages", cfg.Client, header, cfg.APIKey, cfg.Headers)
	return m, nil
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type messagesRequest struct {
	Model       string    `json:"model"`
	MaxTokens   int32     `json:"max_tokens"`
	System      string    `json:"system,omitempty"`
	Messages    []message `json:"messages"`
	Temperature *float64  `json:"temperature,omitempty"`
	Stream      bool      `json:"stream,omitempty"`
}

type usageJSON struct {
	InputTokens              int32 `json:"input_tokens"`
	OutputTokens             int32 `json:"output_tokens"`
	CacheCreationInputTokens int32 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int32 `json:"cache_read_input_tokens"`
}

// prompt counts every input token, cached or not: the prompt's size.
func (u *usageJSON) prompt() int32 {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

type messagesResponse struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StopReason string     `json:"stop_reason"`
	Usage      *usageJSON `json:"usage"`
}

func (m *Model) body(req *messages.InferRequest, stream bool) messagesRequest {
	mr := messagesRequest{Model: m.model, MaxTokens: req.GetMaxTokens(), Stream: stream}
	if mr.MaxTokens <= 0 {
		mr.MaxTokens = m.cfg.MaxTokens
	}
	var system []string
	for _, msg := range req.GetMessages() {
		switch msg.GetRole() {
		case "system", "developer":
			system = append(system, msg.GetContent())
		case "assistant":
			text := msg.GetContent()
			if msg.GetPrefix() { // a prefill: the API refuses one that ends with white space
				text = strings.TrimRightFunc(text, unicode.IsSpace)
			}
			mr.Messages = append(mr.Messages, message{Role: "assistant", Content: text})
		default:
			mr.Messages = append(mr.Messages, message{Role: "user", Content: msg.GetContent()})
		}
	}
	mr.System = strings.Join(system, "\n\n")
	if mr.Messages == nil {
		mr.Messages = []message{}
	}
	if req.Temperature != nil {
		t := *req.Temperature
		mr.Temperature = &t
	}
	return mr
}

// Complete asks for a plain answer: the text blocks of the reply, joined.
// An unparsable 2xx body is malformed; a refusal is content_policy.
func (m *Model) Complete(ctx context.Context, req *messages.InferRequest) (*providers.Result, error) {
	status, body, perr := m.api.Answer(ctx, m.body(req, false))
	if perr != nil {
		return nil, perr
	}
	fail := func(e *providers.Error) error {
		e.StatusCode = status
		return e.Redact(m.api.Secrets...)
	}
	if e, ok := providers.ClassifyEvent(body, messages.ErrorClass_server_error); ok {
		return nil, fail(e)
	}
	var mr messagesResponse
	if err := json.Unmarshal(body, &mr); err != nil {
		return nil, fail(providers.Errorf(messages.ErrorClass_malformed, "unparsable answer: %v", err))
	}
	if mr.Content == nil && mr.StopReason == "" {
		return nil, fail(providers.Errorf(messages.ErrorClass_malformed, "answer without content or stop_reason"))
	}
	var text strings.Builder
	for _, block := range mr.Content {
		if block.Type == "text" {
			text.WriteString(block.Text)
		}
	}
	if mr.StopReason == "refusal" {
		return nil, fail(refusal(text.String()))
	}
	res := &providers.Result{Content: text.String(), StatusCode: status}
	if mr.Usage != nil {
		res.Usage = &messages.Usage{PromptTokens: mr.Usage.prompt(), CompletionTokens: mr.Usage.OutputTokens}
	}
	return res, nil
}

// refusal is the content_policy failure of a refusal stop_reason, with what
// the model said as the reason.
func refusal(said string) *providers.Error {
	if said = strings.TrimSpace(said); said == "" {
		return providers.Errorf(messages.ErrorClass_content_policy, "the model refused (stop_reason refusal)")
	}
	if len(said) > 300 {
		said = strings.ToValidUTF8(said[:300], "") + "..."
	}
	return providers.Errorf(messages.ErrorClass_content_policy, "the model refused (stop_reason refusal): %s", said)
}
