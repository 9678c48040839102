package fault

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// Wrap returns p with r's faults for model applied to every call. The
// result is a providers.Streamer exactly when p is one, so a model that
// streams keeps streaming and one that does not keeps being called plainly.
// A nil r returns p itself.
//
// What each kind does to a call:
//   - latency: waits latency_ms +- jitter_ms before the call (cut short by
//     the call's context, which then classifies as timeout or cancelled).
//   - error: the call fails with error_class (from status_code when the
//     class is unset; server_error when both are) and status_code (derived
//     from the class when unset), before the provider is called.
//   - rate_limit: fails with rate_limited, status 429 and a Retry-After of
//     retry_after_ms.
//   - connection_reset: fails with connection, wrapping ECONNRESET, as a
//     transport error would.
//   - hang: blocks until the call's context ends, then fails with its class
//     (timeout at the attempt deadline, cancelled when the caller went).
//   - panic: panics in the provider call, which the model actor turns into
//     a restart.
//   - slow_first_token: a stream waits latency_ms +- jitter_ms before its
//     first piece; a plain call waits it before the call.
//   - cut_stream, stall_stream, malformed_chunk: a stream sends
//     after_tokens pieces, then ends with stream_cut, blocks until its
//     context ends (the stream deadlines then make it stream_stall), or
//     sends one event that does not parse (a Skippable malformed error)
//     and goes on. A plain call runs, then its answer is lost: stream_cut,
//     a wait for its context, or malformed. An answer shorter than
//     after_tokens pieces ends complete: the fault came too late.
func Wrap(model string, p providers.Provider, r *Registry) providers.Provider {
	if r == nil {
		return p
	}
	w := &provider{model: model, inner: p, reg: r}
	if s, ok := p.(providers.Streamer); ok {
		return &streamer{provider: w, inner: s}
	}
	return w
}

// provider is a wrapped plain provider.
type provider struct {
	model string
	inner providers.Provider
	reg   *Registry
}

// streamer is a wrapped provider that streams.
type streamer struct {
	*provider
	inner providers.Streamer
}

var _ providers.Streamer = (*streamer)(nil)

func (p *provider) Complete(ctx context.Context, req *messages.InferRequest) (*providers.Result, error) {
	pl := p.reg.plan(p.model, p.reg.now())
	if pl.none() {
		return p.inner.Complete(ctx, req)
	}
	if err := p.before(ctx, pl.delay+pl.firstToken, pl.fail); err != nil {
		return nil, err
	}
	res, err := p.inner.Complete(ctx, req)
	if err != nil || pl.stream == nil {
		return res, err
	}
	return nil, lost(ctx, pl.stream, nil)
}

func (s *streamer) Stream(ctx context.Context, req *messages.InferRequest) (providers.Stream, error) {
	pl := s.reg.plan(s.model, s.reg.now())
	if pl.none() {
		return s.inner.Stream(ctx, req)
	}
	if err := s.before(ctx, pl.delay, pl.fail); err != nil {
		return nil, err
	}
	st, err := s.inner.Stream(ctx, req)
	if err != nil || (pl.firstToken == 0 && pl.stream == nil) {
		return st, err
	}
	return &stream{ctx: ctx, inner: st, firstToken: pl.firstToken, fault: pl.stream, closed: make(chan struct{})}, nil
}

// before waits delay, then applies the failing fault, if any.
func (p *provider) before(ctx context.Context, delay time.Duration, fail *messages.FaultSpec) error {
	if err := wait(ctx, delay, nil); err != nil {
		return err
	}
	if fail == nil {
		return nil
	}
	id := fail.GetId()
	switch fail.GetKind() {
	case messages.FaultSpec_error:
		class, status := errorOf(fail)
		return &providers.Error{Class: class, StatusCode: status,
			Message: fmt.Sprintf("injected fault %s: %s from %s", id, class, p.model)}
	case messages.FaultSpec_rate_limit:
		return &providers.Error{Class: messages.ErrorClass_rate_limited, StatusCode: 429,
			RetryAfter: millis(fail.GetRetryAfterMs()),
			Message:    fmt.Sprintf("injected fault %s: rate limited by %s", id, p.model)}
	case messages.FaultSpec_connection_reset:
		reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
		return &providers.Error{Class: messages.ErrorClass_connection,
			Message: fmt.Sprintf("injected fault %s: %v", id, reset), Err: reset}
	case messages.FaultSpec_hang:
		<-ctx.Done()
		return providers.Classify(ctx.Err())
	case messages.FaultSpec_panic:
		panic(fmt.Sprintf("injected fault %s: panic in the provider of %s", id, p.model))
	}
	return nil
}

// lost is what a stream fault does to an answer: stream_cut, a wait until
// ctx ends (or closed closes), or malformed.
func lost(ctx context.Context, s *messages.FaultSpec, closed <-chan struct{}) error {
	switch s.GetKind() {
	case messages.FaultSpec_cut_stream:
		return providers.Errorf(messages.ErrorClass_stream_cut,
			"injected fault %s: the answer ended without its terminal event", s.GetId())
	case messages.FaultSpec_stall_stream:
		select {
		case <-ctx.Done():
			return providers.Classify(ctx.Err())
		case <-closed:
			return providers.Errorf(messages.ErrorClass_cancelled, "the stream was closed")
		}
	default: // malformed_chunk
		return providers.Errorf(messages.ErrorClass_malformed,
			"injected fault %s: an event that does not parse", s.GetId())
	}
}

// errorOf is the class and status of an error fault: as given, the class
// from the status when only it is given, server_error when neither is.
func errorOf(s *messages.FaultSpec) (messages.ErrorClass, int) {
	class, status := s.GetErrorClass(), int(s.GetStatusCode())
	switch {
	case class == messages.ErrorClass_ok && status > 0:
		class = providers.ClassifyHTTP(status, nil, nil).Class
	case class == messages.ErrorClass_ok:
		class = messages.ErrorClass_server_error
	}
	if status == 0 {
		status = providers.UpstreamStatus(class)
	}
	return class, status
}

// wait waits d, or until ctx ends (its class) or closed closes
// (cancelled).
func wait(ctx context.Context, d time.Duration, closed <-chan struct{}) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return providers.Classify(ctx.Err())
	case <-closed:
		return providers.Errorf(messages.ErrorClass_cancelled, "the stream was closed")
	}
}
