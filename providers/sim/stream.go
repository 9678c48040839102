package sim

import (
	"context"
	"io"
	"sync"
	"time"
	"unicode"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

var _ providers.Streamer = (*Model)(nil)

// Stream answers in word tokens: the drawn latency passes and the drawn
// failure, if any, is returned before the first token, as an upstream that
// fails fails before it streams; then each token follows the previous one
// after TokenDelay. Each token is a word with the white space after it, so
// the tokens joined are the answer; the last one carries the usage. The
// same seed and call order give the same outcomes and the same tokens.
// ctx ending, or Close, ends the stream with ctx's class (cancelled for
// Close).
func (m *Model) Stream(ctx context.Context, req *messages.InferRequest) (providers.Stream, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	reply, err := m.answer(req)
	if err != nil {
		return nil, err
	}
	tokens := Tokens(reply)
	if len(tokens) == 0 {
		tokens = []string{""} // an empty answer is one chunk, with the usage
	}
	return &stream{ctx: ctx, tokens: tokens, delay: m.cfg.TokenDelay, usage: usage(req, reply), closed: make(chan struct{})}, nil
}

// Tokens splits s into words, each with the white space that follows it
// (white space before the first word belongs to it).
func Tokens(s string) []string {
	var tokens []string
	start, inSpace, sawWord := 0, false, false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if inSpace && !space && sawWord {
			tokens = append(tokens, s[start:i])
			start = i
		}
		inSpace = space
		sawWord = sawWord || !space
	}
	if start < len(s) {
		tokens = append(tokens, s[start:])
	}
	return tokens
}

type stream struct {
	ctx    context.Context
	tokens []string
	delay  time.Duration
	usage  *messages.Usage

	next int   // the next token; owned by Recv
	err  error // the sticky end; owned by Recv

	closed    chan struct{}
	closeOnce sync.Once
}

func (s *stream) Recv() (providers.Chunk, error) {
	if s.err != nil {
		return providers.Chunk{}, s.err
	}
	if s.next == len(s.tokens) {
		s.err = io.EOF
		return providers.Chunk{}, io.EOF
	}
	if err := s.wait(); err != nil {
		s.err = err
		return providers.Chunk{}, err
	}
	c := providers.Chunk{Delta: s.tokens[s.next]}
	s.next++
	if s.next == len(s.tokens) {
		c.Usage = s.usage
	}
	return c, nil
}

// wait paces the tokens after the first one.
func (s *stream) wait() error {
	select {
	case <-s.closed:
		return providers.Errorf(messages.ErrorClass_cancelled, "the stream was closed")
	default:
	}
	if err := s.ctx.Err(); err != nil {
		return providers.Classify(err)
	}
	if s.next == 0 || s.delay <= 0 {
		return nil
	}
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.ctx.Done():
		return providers.Classify(s.ctx.Err())
	case <-s.closed:
		return providers.Errorf(messages.ErrorClass_cancelled, "the stream was closed")
	}
}

// Close ends the stream; it ends a Recv waiting for its next token.
func (s *stream) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}
