package node

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cmmv-hive/resilience/messages"
)

type dispatched chan *messages.InferRequest

func (d dispatched) Dispatch(_ context.Context, req *messages.InferRequest, _ messages.Sink) {
	d <- req
}

// TestAShutGateHoldsRequestsUntilItOpens: while the shared state is read
// again, requests wait; opened, the waiting one and later ones pass; a
// request whose context ends stops waiting.
func TestAShutGateHoldsRequestsUntilItOpens(t *testing.T) {
	var g gate
	got := make(dispatched, 4)
	d := g.dispatcher(got)
	d.Dispatch(context.Background(), &messages.InferRequest{Model: "open"}, nil)
	assert.Equal(t, "open", (<-got).GetModel(), "an open gate holds nothing")

	g.close()
	g.close() // shutting a shut gate changes nothing
	released := make(chan struct{})
	go func() {
		defer close(released)
		d.Dispatch(context.Background(), &messages.InferRequest{Model: "held"}, nil)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.Dispatch(ctx, &messages.InferRequest{Model: "gave-up"}, nil)
	assert.Equal(t, "gave-up", (<-got).GetModel(), "a request whose context ended goes on, unheld")
	select {
	case req := <-got:
		t.Fatalf("%s passed a shut gate", req.GetModel())
	default:
	}
	g.open()
	<-released
	assert.Equal(t, "held", (<-got).GetModel())
	g.open() // opening an open gate changes nothing
	d.Dispatch(context.Background(), &messages.InferRequest{Model: "after"}, nil)
	assert.Equal(t, "after", (<-got).GetModel())
}
