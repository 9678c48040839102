package persistence_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/persistence"
)

// leaseTTL is short so that a lease outlives it within the test.
const leaseTTL = time.Second

func openLeases(t *testing.T, nc *nats.Conn, node string) (*persistence.Store, *persistence.Leases) {
	t.Helper()
	s, err := persistence.Open(timeout(t), persistence.Config{Conn: nc, Subjects: subjects, Node: node, Logger: testLogger(t), LeaseTTL: leaseTTL})
	require.NoError(t, err, "open store for %s", node)
	t.Cleanup(func() { _ = s.Close() })
	require.NotNil(t, s.Leases())
	return s, s.Leases()
}

// watchLease follows identity's lease key: every write and delete.
func watchLease(t *testing.T, nc *nats.Conn, identity string) <-chan jetstream.KeyValueEntry {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(timeout(t), persistence.LeaseBucketName(subjects))
	require.NoError(t, err)
	w, err := kv.Watch(timeout(t), persistence.LeaseKey(identity))
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Stop() })
	return w.Updates()
}

// nextLease returns the next write or delete of the lease key, skipping the
// end-of-initial-values marker.
func nextLease(t *testing.T, updates <-chan jetstream.KeyValueEntry) jetstream.KeyValueEntry {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case e, ok := <-updates:
			if !ok {
				t.Fatal("the lease watch ended")
			}
			if e != nil {
				return e
			}
		case <-deadline:
			t.Fatalf("no change of the lease within %s", wait)
			return nil
		}
	}
}

// TestALeaseHeldPastItsTTLKeepsItsHolder: a holder's trials may take
// longer than the bucket's TTL; its refreshes (compare-and-set on its own
// revision) keep the lease its own past the TTL, so a second node does
// not take the trials too. Released, the other node wins it.
func TestALeaseHeldPastItsTTLKeepsItsHolder(t *testing.T) {
	nc := bustest.Connect(t, bustest.NewServer(t))
	_, a := openLeases(t, nc, "node-a")
	_, b := openLeases(t, nc, "node-b")
	const id = "openai http://127.0.0.1:1/v1 gpt-5"
	updates := watchLease(t, nc, id)

	won, err := a.Acquire(timeout(t), id)
	require.NoError(t, err)
	require.True(t, won, "the first to ask holds the lease")
	first := nextLease(t, updates)
	assert.Equal(t, "node-a", string(first.Value()))
	won, err = b.Acquire(timeout(t), id)
	require.NoError(t, err)
	assert.False(t, won, "a holds it")

	// Refreshes come every third of the TTL: after four, the lease has
	// lived longer than one TTL since it was taken.
	for i := range 4 {
		e := nextLease(t, updates)
		require.Equal(t, jetstream.KeyValuePut, e.Operation(), "refresh %d", i+1)
		assert.Equal(t, "node-a", string(e.Value()))
	}
	won, err = b.Acquire(timeout(t), id)
	require.NoError(t, err)
	assert.False(t, won, "a's refreshed lease is still a's past the TTL")
	won, err = a.Acquire(timeout(t), id)
	require.NoError(t, err)
	assert.True(t, won, "a asking again still holds it")

	a.Release(id)
	for e := nextLease(t, updates); e.Operation() == jetstream.KeyValuePut; e = nextLease(t, updates) {
		assert.Equal(t, "node-a", string(e.Value()), "a refresh racing the release")
	}
	won, err = b.Acquire(timeout(t), id)
	require.NoError(t, err)
	assert.True(t, won, "released, the lease goes to the next node that asks")
}

// TestALeaseOfAStoppedHolderExpires: a node that stops (or dies) holding
// the lease refreshes it no more, and the TTL frees it for another node.
func TestALeaseOfAStoppedHolderExpires(t *testing.T) {
	nc := bustest.Connect(t, bustest.NewServer(t))
	sa, a := openLeases(t, nc, "node-a")
	_, b := openLeases(t, nc, "node-b")
	const id = "sim flaky"
	won, err := a.Acquire(timeout(t), id)
	require.NoError(t, err)
	require.True(t, won)
	require.NoError(t, sa.Close()) // no release: as if it died
	// Expiry by the bucket's TTL sends no event: polled.
	require.Eventually(t, func() bool {
		won, err := b.Acquire(timeout(t), id)
		return err == nil && won
	}, wait, 50*time.Millisecond, "the lease of a stopped holder expires with the TTL")
}
