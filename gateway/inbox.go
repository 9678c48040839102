package gateway

import (
	"sync"

	"github.com/cmmv-hive/resilience/messages"
)

// inbox is the messages.Sink of one HTTP request: the one place the
// gateway takes what the request path sends. It hands the pieces and the
// final reply to the handler's goroutine without ever blocking the sender,
// which may be an actor: they wait in memory until written, and one answer
// bounds how many wait. It keeps the first Final and drops whatever comes
// after it, and everything once the handler has returned.
type inbox struct {
	mu     sync.Mutex // guards parts, final, ended and closed
	parts  []part
	final  *messages.InferResponse
	ended  bool          // Final came
	closed bool          // the handler returned
	ready  chan struct{} // capacity 1: something came since the last take
}

// part is one piece of a streamed answer.
type part struct{ model, text string }

var _ messages.Sink = (*inbox)(nil)

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

// Piece keeps a piece of the answer for the handler.
func (a *inbox) Piece(model, text string) {
	a.mu.Lock()
	if a.ended || a.closed {
		a.mu.Unlock()
		return
	}
	a.parts = append(a.parts, part{model: model, text: text})
	a.mu.Unlock()
	a.signal()
}

// Final keeps the reply for the handler; a nil reply is kept as one.
func (a *inbox) Final(resp *messages.InferResponse) {
	a.mu.Lock()
	if a.ended || a.closed {
		a.mu.Unlock()
		return
	}
	a.ended, a.final = true, resp
	a.mu.Unlock()
	a.signal()
}

func (a *inbox) signal() {
	select {
	case a.ready <- struct{}{}:
	default:
	}
}

// take returns the pieces that came since the last take, and, once Final
// came and after its pieces, the reply with ended true.
func (a *inbox) take() (ps []part, final *messages.InferResponse, ended bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ps, a.parts = a.parts, nil
	return ps, a.final, a.ended
}

// close drops everything from now on: the handler has returned.
func (a *inbox) close() {
	a.mu.Lock()
	a.closed, a.parts = true, nil
	a.mu.Unlock()
}
