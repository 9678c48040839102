package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// Bounds on a command's output.
const (
	maxStdout  = 4 << 20 // an answer; more is malformed
	stderrTail = 2 << 10 // the end of standard error kept for a failure's message
	maxChunk   = 64 << 10
)

// placeholder in an argument is replaced by the prompt.
const placeholder = "{prompt}"

// Config describes a command used as a model.
type Config struct {
	Name string // the configured model name, used in messages
	// Command is the program and its arguments, run without a shell; a
	// program name without a slash is looked up in PATH. Required.
	Command []string
	// Timeout bounds one call, from start to exit; 0 means only the
	// caller's context bounds it.
	Timeout time.Duration
	// Env entries ("KEY=value") are added to the node's environment. Their
	// values of 8 bytes or more are treated as secrets and removed from
	// errors.
	Env []string
	// Dir is the working directory; empty means the node's.
	Dir string
}

// Model runs a command per call.
type Model struct {
	cfg     Config
	stdin   bool // the prompt goes on standard input
	secrets []string
}

var _ providers.Streamer = (*Model)(nil)

// New validates cfg: Command must name a program, Timeout must not be
// negative, and Env entries must have the form KEY=value.
func New(cfg Config) (*Model, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, fmt.Errorf("exec %s: Command is empty", cfg.Name)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("exec %s: Timeout %v is negative", cfg.Name, cfg.Timeout)
	}
	m := &Model{cfg: cfg, stdin: true}
	for _, arg := range cfg.Command {
		if strings.Contains(arg, placeholder) {
			m.stdin = false
		}
	}
	for _, kv := range cfg.Env {
		_, v, ok := strings.Cut(kv, "=")
		if !ok || strings.HasPrefix(kv, "=") {
			return nil, fmt.Errorf("exec %s: Env entry %q is not KEY=value", cfg.Name, kv)
		}
		if len(v) >= 8 {
			m.secrets = append(m.secrets, v)
		}
	}
	return m, nil
}

// Prompt renders a conversation as the text a command receives: the
// content of a single message, or every message as "role: content"
// separated by blank lines.
func Prompt(req *messages.InferRequest) string {
	msgs := req.GetMessages()
	if len(msgs) == 1 {
		return msgs[0].GetContent()
	}
	parts := make([]string, len(msgs))
	for i, msg := range msgs {
		parts[i] = msg.GetRole() + ": " + msg.GetContent()
	}
	return strings.Join(parts, "\n\n")
}

// args is the command line with the prompt in place.
func (m *Model) args(prompt string) []string {
	args := make([]string, len(m.cfg.Command))
	for i, arg := range m.cfg.Command {
		args[i] = strings.ReplaceAll(arg, placeholder, prompt)
	}
	return args
}

// Complete runs the command and answers with its standard output, trimmed
// of surrounding white space.
func (m *Model) Complete(ctx context.Context, req *messages.InferRequest) (*providers.Result, error) {
	r, err := m.start(ctx, req)
	if err != nil {
		return nil, err
	}
	out, rerr := io.ReadAll(io.LimitReader(r.stdout, maxStdout+1))
	overflow := len(out) > maxStdout
	if overflow {
		r.kill()
	}
	r.finish()
	if overflow {
		return nil, providers.Errorf(messages.ErrorClass_malformed, "%s wrote more than %d bytes", m.cfg.Name, maxStdout)
	}
	if e := r.failure(); e != nil {
		return nil, e.Redact(m.secrets...)
	}
	if rerr != nil && !errors.Is(rerr, os.ErrClosed) { // closed: cut after the exit, see run.wait
		return nil, &providers.Error{Class: messages.ErrorClass_server_error, Message: "reading the output: " + rerr.Error(), Err: rerr}
	}
	content := strings.TrimSpace(strings.ToValidUTF8(string(out), string(utf8.RuneError)))
	if content == "" {
		return nil, r.empty().Redact(m.secrets...)
	}
	return &providers.Result{Content: content}, nil
}

// classifyStart classifies a command that could not start.
func classifyStart(name string, err error) *providers.Error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return providers.Classify(err)
	}
	return &providers.Error{Class: messages.ErrorClass_connection, Message: fmt.Sprintf("%s could not start: %v", name, err), Err: err}
}
