package providers

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// StreamDeadlines are the three deadlines of a streamed answer. A zero
// deadline is off.
type StreamDeadlines struct {
	// FirstToken bounds the time from the start of the call (opening the
	// stream included) to the first chunk that carries text.
	FirstToken time.Duration
	// Idle bounds each wait for the next chunk once text has begun. It runs
	// only while Recv waits on the upstream, so a slow consumer does not
	// count against the model.
	Idle time.Duration
	// Total bounds the whole stream from the start of the call.
	Total time.Duration
}

// WithDeadlines opens a stream with open and enforces d on it. When a
// deadline passes, the context given to open is cancelled (which ends the
// upstream call) and Recv returns an *Error: stream_stall for the first
// token or idle deadline, timeout for the total one; a deadline that passes
// while open is still running makes WithDeadlines return that error. A
// stream that has already ended complete (io.EOF) stays complete. Deadlines
// are timers that fire in their own short-lived goroutine; Close stops them
// and closes the stream, and nothing started here outlives Close.
func WithDeadlines(ctx context.Context, d StreamDeadlines, open func(ctx context.Context) (Stream, error)) (Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &deadlineStream{d: d, cancel: cancel}
	s.total = s.arm(d.Total, messages.ErrorClass_timeout, "the stream took longer than its total deadline of %v", d.Total)
	s.first = s.arm(d.FirstToken, messages.ErrorClass_stream_stall, "no first token within %v", d.FirstToken)
	inner, err := open(ctx)
	if err != nil {
		s.stopTimers()
		cancel()
		if fired := s.fired.Load(); fired != nil {
			return nil, fired
		}
		return nil, err
	}
	s.inner = inner
	return s, nil
}

type deadlineStream struct {
	d      StreamDeadlines
	inner  Stream
	cancel context.CancelFunc

	// The timers are armed and stopped by Recv and Close; their functions
	// only set fired and cancel the context.
	total, first, idle *time.Timer
	fired              atomic.Pointer[Error] // the deadline that passed first

	started bool  // a chunk with text was received; owned by Recv
	err     error // the sticky end of the stream; owned by Recv

	closeOnce sync.Once
	closeErr  error
}

// arm starts a timer that records its error and cancels the stream; it
// returns nil when the deadline is off.
func (s *deadlineStream) arm(after time.Duration, class messages.ErrorClass, format string, arg time.Duration) *time.Timer {
	if after <= 0 {
		return nil
	}
	return time.AfterFunc(after, func() { s.expire(Errorf(class, format, arg)) })
}

func (s *deadlineStream) expire(e *Error) {
	s.fired.CompareAndSwap(nil, e)
	s.cancel()
}

func (s *deadlineStream) Recv() (Chunk, error) {
	if s.err != nil {
		return Chunk{}, s.err
	}
	if fired := s.fired.Load(); fired != nil {
		s.err = fired
		return Chunk{}, fired
	}
	if s.started && s.d.Idle > 0 {
		if s.idle == nil {
			s.idle = time.AfterFunc(s.d.Idle, func() {
				s.expire(Errorf(messages.ErrorClass_stream_stall, "no chunk within the idle deadline of %v", s.d.Idle))
			})
		} else {
			s.idle.Reset(s.d.Idle)
		}
	}
	c, err := s.inner.Recv()
	if s.idle != nil {
		s.idle.Stop()
	}
	switch {
	case errors.Is(err, io.EOF):
		s.err = io.EOF
		s.stopTimers()
		return c, io.EOF
	case err != nil:
		if fired := s.fired.Load(); fired != nil {
			err = fired
		} else if pe, ok := err.(*Error); ok && pe.Skippable {
			return Chunk{}, err // one bad event: the stream and its deadlines go on
		}
		s.err = err
		s.stopTimers()
		return Chunk{}, err
	}
	if c.Delta != "" && !s.started {
		s.started = true
		if s.first != nil {
			s.first.Stop()
		}
	}
	return c, nil
}

func (s *deadlineStream) stopTimers() {
	for _, t := range []*time.Timer{s.total, s.first} {
		if t != nil {
			t.Stop()
		}
	}
}

// Close stops the deadlines, cancels the upstream call and closes the
// stream. It may run while Recv waits: the cancel ends that wait.
func (s *deadlineStream) Close() error {
	s.closeOnce.Do(func() {
		s.stopTimers()
		s.cancel()
		s.closeErr = s.inner.Close()
	})
	return s.closeErr
}
