package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// Config shapes a simulated model. The zero value answers at once and never
// fails.
type Config struct {
	Name        string        // model name used in replies
	Latency     time.Duration // mean latency of an answer
	Jitter      time.Duration // latency varies uniformly by +-Jitter
	FailureRate float64       // share of calls that fail, in [0, 1]
	ErrorClass  messages.ErrorClass
	Seed        uint64 // same seed and call order give the same outcomes
	Reply       string // fixed answer; empty builds one from the prompt
	// TokenDelay paces a streamed answer: the wait between two tokens
	// (words). The first token comes after the drawn latency.
	TokenDelay time.Duration
	// RejectPrefill makes the model refuse an assistant prefill as
	// Anthropic's models that take none do: a 400, bad_request with
	// providers.CodePrefillUnsupported.
	RejectPrefill bool
}

// Model is a simulated provider.
type Model struct {
	cfg Config

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// New returns a simulated model. A FailureRate outside [0, 1] or a negative
// latency, jitter or token delay is an error; an ErrorClass of ok means
// server_error.
func New(cfg Config) (*Model, error) {
	if cfg.FailureRate < 0 || cfg.FailureRate > 1 {
		return nil, fmt.Errorf("sim %s: failure rate %v outside [0, 1]", cfg.Name, cfg.FailureRate)
	}
	if cfg.Latency < 0 || cfg.Jitter < 0 {
		return nil, fmt.Errorf("sim %s: negative latency or jitter", cfg.Name)
	}
	if cfg.TokenDelay < 0 {
		return nil, fmt.Errorf("sim %s: negative token delay", cfg.Name)
	}
	if cfg.ErrorClass == messages.ErrorClass_ok {
		cfg.ErrorClass = messages.ErrorClass_server_error
	}
	return &Model{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}, nil
}

// draw decides one call's latency and whether it fails.
func (m *Model) draw() (time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.cfg.Latency
	if m.cfg.Jitter > 0 {
		d += time.Duration(m.rng.Int64N(int64(2*m.cfg.Jitter)+1)) - m.cfg.Jitter
	}
	fail := m.cfg.FailureRate > 0 && m.rng.Float64() < m.cfg.FailureRate
	return max(d, 0), fail
}

// Complete waits the drawn latency, then answers or fails with the
// configured class. It returns early with ctx's error when ctx ends.
func (m *Model) Complete(ctx context.Context, req *messages.InferRequest) (*providers.Result, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	reply, err := m.answer(req)
	if err != nil {
		return nil, err
	}
	return &providers.Result{Content: reply, Usage: usage(req, reply), StatusCode: 200}, nil
}

// begin draws one call's outcome and waits its latency: the time to the
// whole answer, or to the first token of a stream. It returns the
// simulated failure, or ctx's error when ctx ends first.
func (m *Model) begin(ctx context.Context) error {
	d, fail := m.draw()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return providers.Classify(ctx.Err())
		case <-t.C:
		}
	} else if err := ctx.Err(); err != nil {
		return providers.Classify(err)
	}
	if fail {
		e := providers.Errorf(m.cfg.ErrorClass, "simulated %s from %s", m.cfg.ErrorClass, m.cfg.Name)
		e.StatusCode = providers.UpstreamStatus(m.cfg.ErrorClass)
		return e
	}
	return nil
}

// answer is the answer to req. A continuation of a cut answer
// (providers.Continuation) gets the rest of the answer to the conversation
// before it, as a model that follows the prefill or the instruction would
// give it: what follows the partial answer when the whole one starts with
// it, else the whole one. With RejectPrefill, a prefill is refused.
func (m *Model) answer(req *messages.InferRequest) (string, error) {
	conv, sent, prefill, ok := providers.ContinuationOf(req)
	if !ok {
		return m.reply(req), nil
	}
	if prefill && m.cfg.RejectPrefill {
		e := providers.Errorf(messages.ErrorClass_bad_request,
			"HTTP 400: This model does not support assistant message prefill. The conversation must end with a user message.")
		e.StatusCode, e.Code = 400, providers.CodePrefillUnsupported
		return "", e
	}
	whole := m.reply(&messages.InferRequest{Messages: conv})
	if rest, ok := strings.CutPrefix(whole, sent); ok {
		return rest, nil
	}
	return whole, nil
}

// reply is the answer to req: the fixed Reply, or one built from the prompt.
func (m *Model) reply(req *messages.InferRequest) string {
	if m.cfg.Reply != "" {
		return m.cfg.Reply
	}
	return m.cfg.Name + " (simulated) received: " + lastUserContent(req)
}

func usage(req *messages.InferRequest, reply string) *messages.Usage {
	return &messages.Usage{
		PromptTokens:     int32(countTokens(req)),
		CompletionTokens: int32(len(strings.Fields(reply))),
	}
}

func lastUserContent(req *messages.InferRequest) string {
	for i := len(req.GetMessages()) - 1; i >= 0; i-- {
		if msg := req.Messages[i]; msg.GetRole() == "user" {
			return msg.GetContent()
		}
	}
	return ""
}

func countTokens(req *messages.InferRequest) int {
	n := 0
	for _, msg := range req.GetMessages() {
		n += len(strings.Fields(msg.GetContent()))
	}
	return n
}
