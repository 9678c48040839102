package actors

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

func TestDrainRefusesNewRequestsAndWaitsForOpenOnes(t *testing.T) {
	g := newGate()
	h := startHive(t, ModelSpec{Name: "slow", Provider: g, Retry: noRetry}, simModel(t, "fast", 0, messages.ErrorClass_ok))
	open := send(h, request("slow"))
	<-g.entered

	drainDone := make(chan error, 1)
	go func() { drainDone <- h.Drain(context.Background()) }()

	// Once the router has taken the drain, new requests are refused at
	// once; until then a fast model still answers them.
	refused := await(t, send(h, request("fast")))
	for refused.GetError().GetCode() != "draining" {
		require.Equal(t, "fast", refused.GetServedBy(), "before the drain: %v", refused)
		refused = await(t, send(h, request("fast")))
	}
	assert.Equal(t, messages.ErrorClass_no_capacity, refused.GetError().GetClass())
	select {
	case err := <-drainDone:
		t.Fatalf("Drain returned (%v) with a request still open", err)
	default:
	}

	g.release <- struct{}{}
	assert.Equal(t, "slow", await(t, open).GetServedBy(), "the open request completes")
	require.NoError(t, <-drainDone)
}
