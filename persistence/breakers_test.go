package persistence_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

var (
	until    = time.Date(2026, 11, 27, 4, 5, 6, 0, time.UTC)
	openSnap = resilience.BreakerSnapshot{State: messages.BreakerState_open, Generation: 7, Trips: 2, OpenUntil: until}
	forced   = resilience.BreakerSnapshot{State: messages.BreakerState_forced_open, Generation: 3}
)

// TestBreakersAcrossRestart: what one Store saved, a new Store of the same
// node (a node restart) loads; another node's Store does not see it.
func TestBreakersAcrossRestart(t *testing.T) {
	nc, store := withStore(t)
	b := store.Breakers()
	_, ok := b.Load("gpt-5")
	require.False(t, ok, "snapshot before any save")

	b.Save("gpt-5", resilience.BreakerSnapshot{State: messages.BreakerState_half_open, Generation: 6})
	b.Save("claude", forced)
	b.Save("gpt-5", openSnap) // the latest wins
	got, ok := b.Load("gpt-5")
	require.True(t, ok)
	assert.Equal(t, openSnap, got, "load right after save, from the cache")
	require.NoError(t, b.Flush(timeout(t)))

	again := open(t, nc, "node-a").Breakers()
	for model, want := range map[string]resilience.BreakerSnapshot{"gpt-5": openSnap, "claude": forced} {
		got, ok := again.Load(model)
		require.True(t, ok, "%s not restored", model)
		assert.Equal(t, want, got, "%s restored", model)
	}
	_, ok = open(t, nc, "node-b").Breakers().Load("gpt-5")
	assert.False(t, ok, "node-b sees node-a's breaker")
}

// TestCloseFlushes: Close writes what was saved without a Flush.
func TestCloseFlushes(t *testing.T) {
	nc, store := withStore(t)
	store.Breakers().Save("gpt-5", openSnap)
	require.NoError(t, store.Close())
	require.NoError(t, store.Close(), "second close")
	store.Breakers().Save("gpt-5", forced) // after Close: memory only, and no panic

	got, ok := open(t, nc, "node-a").Breakers().Load("gpt-5")
	require.True(t, ok)
	assert.Equal(t, openSnap, got)
}

// TestBreakersSurviveServerRestart: the bucket is on disk, so a new server
// on the same store directory gives the snapshots back.
func TestBreakersSurviveServerRestart(t *testing.T) {
	dir := t.TempDir()
	opts := server.Options{JetStream: true, StoreDir: dir}

	first := bustest.NewServerWith(t, opts)
	nc := bustest.Connect(t, first)
	store := open(t, nc, "node-a")
	store.Breakers().Save("gpt-5", openSnap)
	require.NoError(t, store.Breakers().Flush(timeout(t)))
	require.NoError(t, store.Close())
	nc.Close()
	first.Shutdown()
	first.WaitForShutdown()

	nc = bustest.Connect(t, bustest.NewServerWith(t, opts))
	got, ok := open(t, nc, "node-a").Breakers().Load("gpt-5")
	require.True(t, ok, "snapshot lost with the server")
	assert.Equal(t, openSnap, got)
}

// TestFailedWriteIsRetried: while the bucket is gone writes fail and Flush
// says so; once it is back, the next Flush writes what was queued.
func TestFailedWriteIsRetried(t *testing.T) {
	nc, store := withStore(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteKeyValue(timeout(t), "hive_breakers"))

	b := store.Breakers()
	b.Save("gpt-5", openSnap)
	require.Error(t, b.Flush(timeout(t)), "flush without a bucket")
	got, ok := b.Load("gpt-5")
	require.True(t, ok, "a failed write must not lose the cached snapshot")
	assert.Equal(t, openSnap, got)

	open(t, nc, "node-b") // creates the bucket again
	require.NoError(t, b.Flush(timeout(t)), "flush once the bucket is back")
	got, ok = open(t, nc, "node-a").Breakers().Load("gpt-5")
	require.True(t, ok, "snapshot not written after the retry")
	assert.Equal(t, openSnap, got)
}
