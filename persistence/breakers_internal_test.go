package persistence

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

func snap(gen uint64) resilience.BreakerSnapshot {
	return resilience.BreakerSnapshot{State: messages.BreakerState_open, Generation: gen}
}

// TestQueueCoalesces: saves of one model collapse into its latest, in the
// order models were first saved.
func TestQueueCoalesces(t *testing.T) {
	var q queue
	q.put("a", snap(1))
	q.put("b", snap(2))
	q.put("a", snap(3))
	assert.Equal(t, []write{{"a", snap(3)}, {"b", snap(2)}}, q.take())
	assert.Empty(t, q.take(), "take empties the queue")

	q.put("a", snap(5))
	q.putBack("a", snap(4)) // failed, but a newer one is queued
	q.putBack("b", snap(2))
	assert.Equal(t, []write{{"a", snap(5)}, {"b", snap(2)}}, q.take())
}

func TestSnapshotEncoding(t *testing.T) {
	for _, s := range []resilience.BreakerSnapshot{
		{},
		{State: messages.BreakerState_open, Generation: 9, Trips: 3, OpenUntil: time.Date(2026, 11, 27, 4, 5, 6, 7, time.UTC)},
		{State: messages.BreakerState_metrics_only, Generation: 1},
	} {
		b, err := encodeSnapshot(s, "")
		require.NoError(t, err)
		got, err := decodeSnapshot(b)
		require.NoError(t, err)
		assert.Equal(t, s, got, "round trip of %s", b)
	}

	b, err := encodeSnapshot(snap(4), "")
	require.NoError(t, err)
	assert.JSONEq(t, `{"state":"open","generation":4,"trips":0}`, string(b), "stored form")

	got, err := decodeSnapshot([]byte(`{"state":"sideways","generation":4}`))
	require.NoError(t, err)
	assert.Equal(t, messages.BreakerState_half_open, got.State, "unknown state")

	_, err = decodeSnapshot([]byte("nope"))
	assert.Error(t, err)
}
