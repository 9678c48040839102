package fault

import (
	"context"
	"sync"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// stream applies slow_first_token and a stream fault to an open stream.
// Like every Stream it is read by one goroutine; Close may come from
// another and ends a wait in Recv.
type stream struct {
	ctx        context.Context
	inner      providers.Stream
	firstToken time.Duration       // wait before the first piece; 0 for none
	fault      *messages.FaultSpec // cut_stream, stall_stream or malformed_chunk; nil for none

	waited bool  // firstToken has passed; owned by Recv
	spoilt bool  // malformed_chunk: the unparsable event was sent; owned by Recv
	sent   int   // pieces with text passed on; owned by Recv
	err    error // the sticky end; owned by Recv

	closed    chan struct{}
	closeOnce sync.Once
}

func (s *stream) Recv() (providers.Chunk, error) {
	if s.err != nil {
		return providers.Chunk{}, s.err
	}
	if s.fault != nil && s.fault.GetKind() == messages.FaultSpec_malformed_chunk {
		if !s.spoilt && s.sent >= int(s.fault.GetAfterTokens()) {
			// One event that does not parse, in a stream that goes on.
			s.spoilt = true
			e := providers.Errorf(messages.ErrorClass_malformed, "injected fault %s: an event that does not parse", s.fault.GetId())
			e.Skippable = true
			return providers.Chunk{}, e
		}
	} else if s.fault != nil && s.sent >= int(s.fault.GetAfterTokens()) {
		if s.fault.GetKind() != messages.FaultSpec_stall_stream {
			_ = s.inner.Close() // the upstream is gone
		}
		s.err = lost(s.ctx, s.fault, s.closed)
		return providers.Chunk{}, s.err
	}
	if !s.waited {
		s.waited = true
		if err := wait(s.ctx, s.firstToken, s.closed); err != nil {
			s.err = err
			return providers.Chunk{}, err
		}
	}
	c, err := s.inner.Recv()
	if err != nil {
		s.err = err
		return providers.Chunk{}, err
	}
	if c.Delta != "" {
		s.sent++
	}
	return c, nil
}

// Close ends a wait in Recv and closes the upstream stream.
func (s *stream) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return s.inner.Close()
}
