package exec

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// Stream runs the command and delivers its standard output a line at a
// time (a line longer than 64 KiB comes in pieces), each chunk with its
// line feed, so the chunks joined are the output. A command that cannot
// start fails here; every other failure comes from Recv.
func (m *Model) Stream(ctx context.Context, req *messages.InferRequest) (providers.Stream, error) {
	r, err := m.start(ctx, req)
	if err != nil {
		return nil, err
	}
	return &stream{m: m, r: r, br: bufio.NewReaderSize(r.stdout, maxChunk)}, nil
}

type stream struct {
	m  *Model
	r  *run
	br *bufio.Reader

	// Owned by Recv.
	sent     int    // bytes of output delivered
	nonBlank bool   // some output was not white space
	carry    []byte // the start of a UTF-8 sequence cut by a piece boundary
	err      error  // the sticky end

	closeOnce sync.Once
}

func (s *stream) Recv() (providers.Chunk, error) {
	if s.err != nil {
		return providers.Chunk{}, s.err
	}
	for {
		piece, err := s.br.ReadSlice('\n')
		if len(piece) > 0 {
			s.sent += len(piece)
			if s.sent > maxStdout {
				s.r.kill()
				s.r.finish()
				return s.fail(providers.Errorf(messages.ErrorClass_malformed, "%s wrote more than %d bytes", s.m.cfg.Name, maxStdout))
			}
			data := append(s.carry, piece...)
			s.carry = nil
			if errors.Is(err, bufio.ErrBufferFull) {
				data, s.carry = splitRune(data)
			}
			if c, ok := s.chunk(data); ok {
				return c, nil
			}
			continue
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(s.carry) > 0 {
			data := s.carry
			s.carry = nil
			if c, ok := s.chunk(data); ok {
				return c, nil
			}
		}
		return s.end(err)
	}
}

func (s *stream) chunk(data []byte) (providers.Chunk, bool) {
	if len(data) == 0 {
		return providers.Chunk{}, false
	}
	text := strings.ToValidUTF8(string(data), string(utf8.RuneError))
	if strings.TrimSpace(text) != "" {
		s.nonBlank = true
	}
	return providers.Chunk{Delta: text}, true
}

// end classifies the end of the output once the command has exited.
func (s *stream) end(readErr error) (providers.Chunk, error) {
	s.r.finish()
	if e := s.r.failure(); e != nil {
		if e.Class == messages.ErrorClass_server_error && s.sent > 0 {
			e = &providers.Error{Class: messages.ErrorClass_stream_cut, Message: e.Message + " (after part of the answer)", Err: e.Err}
		}
		return s.fail(e)
	}
	if readErr != nil && !errors.Is(readErr, io.EOF) && !errors.Is(readErr, os.ErrClosed) {
		return s.fail(&providers.Error{Class: messages.ErrorClass_stream_cut, Message: "reading the output: " + readErr.Error(), Err: readErr})
	}
	if !s.nonBlank {
		return s.fail(s.r.empty())
	}
	s.err = io.EOF
	return providers.Chunk{}, io.EOF
}

func (s *stream) fail(e *providers.Error) (providers.Chunk, error) {
	s.err = e.Redact(s.m.secrets...)
	return providers.Chunk{}, s.err
}

// splitRune holds back an incomplete UTF-8 sequence at the end of b.
func splitRune(b []byte) ([]byte, []byte) {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i], append([]byte(nil), b[i:]...)
			}
			break
		}
	}
	return b, nil
}

// Close kills the command and its group if it still runs, and waits for
// the run's goroutines; it ends a Recv in progress.
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		s.r.kill()
		s.r.finish()
	})
	return nil
}
