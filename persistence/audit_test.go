package persistence_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

// publishMix publishes one event of every kind, the first four through
// bus.Events as a node does, and waits until all seven are stored.
func publishMix(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ev := bus.NewEvents(nc, subjects, testLogger(t))
	ev.Breaker(&messages.BreakerTransition{Node: "node-a", Model: "gpt-5", From: messages.BreakerState_closed, To: messages.BreakerState_open})
	ev.Health(&messages.HealthChanged{Node: "node-a", Model: "gpt-5", To: messages.HealthStatus_unavailable})
	ev.Recovery(&messages.RecoveryEvent{Node: "node-b", Model: "claude", Kind: messages.RecoveryEvent_manual_action, Actor: "alice"})
	ev.Alert(&messages.Alert{Rule: "error_rate", Severity: messages.Alert_warning, Node: "node-a", Model: "gpt-5"})
	ev.Alert(&messages.Alert{Rule: "open_breakers", Severity: messages.Alert_critical, Node: "node-b"})
	publishAdmin(t, nc, "node-b", "breaker_open", &messages.AdminCommand{Model: "gpt-5", Actor: "alice"})
	publishAdmin(t, nc, "node-a", "drain", &messages.AdminCommand{Actor: "bob"})
	awaitStored(t, nc, 7)
}

func TestReadAuditFilters(t *testing.T) {
	nc, _ := withStore(t)
	publishMix(t, nc)

	for _, tc := range []struct {
		name string
		q    persistence.Query
		want []string
	}{
		{"everything", persistence.Query{}, []string{
			"breaker.node-a.gpt-5", "health.node-a.gpt-5", "recovery.node-b.claude",
			"alert.warning.error_rate", "alert.critical.open_breakers",
			"admin.node-b.breaker_open", "admin.node-a.drain"}},
		{"model", persistence.Query{Model: "gpt-5"}, []string{
			"breaker.node-a.gpt-5", "health.node-a.gpt-5", "alert.warning.error_rate", "admin.node-b.breaker_open"}},
		{"node", persistence.Query{Node: "node-b"}, []string{
			"recovery.node-b.claude", "alert.critical.open_breakers", "admin.node-b.breaker_open"}},
		{"node and model", persistence.Query{Node: "node-b", Model: "gpt-5"}, []string{"admin.node-b.breaker_open"}},
		{"unknown model", persistence.Query{Model: "nope"}, []string{}},
		{"last hour", persistence.Query{Since: time.Hour, Model: "claude"}, []string{"recovery.node-b.claude"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := read(t, nc, tc.q)
			assert.Equal(t, tc.want, subjectsOf(got), "subjects read")
		})
	}

	all := read(t, nc, persistence.Query{})
	for i, e := range all {
		require.NotNil(t, e.Event, "entry %d (%s) not decoded", i, e.Subject)
		if i > 0 {
			assert.Greater(t, e.Seq, all[i-1].Seq, "entry %d out of order", i)
		}
	}
	assert.Equal(t, persistence.Entry{Seq: all[2].Seq, Time: all[2].Time, Subject: all[2].Subject,
		Kind: "recovery", Node: "node-b", Model: "claude", Event: all[2].Event}, all[2], "recovery entry")
	assert.Equal(t, "alice", all[2].Event.(*messages.RecoveryEvent).GetActor(), "who did the manual action")
	assert.Equal(t, []string{"node-a", "gpt-5"}, []string{all[3].Node, all[3].Model}, "alert node and model, from its fields")
	assert.Equal(t, "bob", all[6].Event.(*messages.AdminCommand).GetActor(), "who sent the admin command")
}

// TestReadAuditSince reads from a time between two events' storing, so
// only the second is delivered.
func TestReadAuditSince(t *testing.T) {
	nc, store := withStore(t)
	ev := bus.NewEvents(nc, subjects, testLogger(t))
	ev.Breaker(&messages.BreakerTransition{Node: "node-a", Model: "old", To: messages.BreakerState_open})
	awaitStored(t, nc, 1)
	first, err := store.Info(timeout(t))
	require.NoError(t, err)
	ev.Breaker(&messages.BreakerTransition{Node: "node-a", Model: "new", To: messages.BreakerState_open})
	awaitStored(t, nc, 2)
	second, err := store.Info(timeout(t))
	require.NoError(t, err)
	require.True(t, second.Last.After(first.Last), "stored at %s then %s", first.Last, second.Last)

	between := first.Last.Add(second.Last.Sub(first.Last) / 2)
	var got []persistence.Entry
	err = persistence.ReadAuditFrom(timeout(t), nc, subjects, persistence.Query{}, between, func(e persistence.Entry) error {
		got = append(got, e)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"breaker.node-a.new"}, subjectsOf(got), "events stored after %s", between)
}

func TestReadAuditEmptyStream(t *testing.T) {
	nc, _ := withStore(t)
	err := persistence.ReadAudit(timeout(t), nc, subjects, persistence.Query{}, func(e persistence.Entry) error {
		t.Errorf("got entry %s from an empty stream", e.Subject)
		return nil
	})
	require.NoError(t, err)
}

func TestReadAuditWithoutStream(t *testing.T) {
	nc := bustest.Connect(t, bustest.NewServer(t))
	err := persistence.ReadAudit(timeout(t), nc, subjects, persistence.Query{}, func(persistence.Entry) error { return nil })
	require.ErrorIs(t, err, persistence.ErrNoStream)
}

func TestReadAuditFollow(t *testing.T) {
	nc, _ := withStore(t)
	ev := bus.NewEvents(nc, subjects, testLogger(t))
	ev.Breaker(&messages.BreakerTransition{Node: "node-a", Model: "before", To: messages.BreakerState_open})

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	entries := make(chan persistence.Entry)
	done := make(chan error, 1)
	go func() {
		done <- persistence.ReadAudit(ctx, nc, subjects, persistence.Query{Follow: true}, func(e persistence.Entry) error {
			select {
			case entries <- e:
			case <-ctx.Done():
			}
			return nil
		})
	}()
	// The old event arriving proves the read has started, so the next one
	// is surely published after it.
	assert.Equal(t, "before", next(t, ctx, entries, done).Model)
	ev.Breaker(&messages.BreakerTransition{Node: "node-a", Model: "after", To: messages.BreakerState_open})
	assert.Equal(t, "after", next(t, ctx, entries, done).Model)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "follow ends without error when its context ends")
	case <-time.After(wait):
		t.Fatal("follow did not return after its context was cancelled")
	}
}

func TestReadAuditStopsOnCallbackError(t *testing.T) {
	nc, _ := withStore(t)
	publishMix(t, nc)
	errStop := errors.New("stop")
	calls := 0
	err := persistence.ReadAudit(timeout(t), nc, subjects, persistence.Query{}, func(persistence.Entry) error {
		calls++
		return errStop
	})
	require.ErrorIs(t, err, errStop)
	assert.Equal(t, 1, calls, "callbacks after an error")
}

// TestReadAuditUndecodable: a body that does not decode is delivered with
// Event nil rather than hidden from the audit.
func TestReadAuditUndecodable(t *testing.T) {
	nc, _ := withStore(t)
	require.NoError(t, nc.Publish(subjects.Breaker("node-a", "gpt-5"), []byte{0xff, 0xff}))
	awaitStored(t, nc, 1)
	got := read(t, nc, persistence.Query{Model: "gpt-5"})
	require.Len(t, got, 1)
	assert.Nil(t, got[0].Event)
	assert.Equal(t, "breaker", got[0].Kind)
	assert.Contains(t, persistence.FormatEntry(got[0]), "breaker.node-a.gpt-5 (not decoded)")
}

// TestFollowEvents: live events reach fn without JetStream, filtered by
// model, until the context ends.
func TestFollowEvents(t *testing.T) {
	nc := bustest.Connect(t, bustest.NewServerWith(t, server.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	entries := make(chan persistence.Entry)
	done := make(chan error, 1)
	go func() {
		done <- persistence.FollowEvents(ctx, nc, subjects, persistence.Query{Model: "gpt-5"}, func(e persistence.Entry) error {
			select {
			case entries <- e:
			case <-ctx.Done():
			}
			return nil
		})
	}()

	// Nothing says when the subscription is in place, so publish a probe
	// until one arrives: the only polling in these tests.
	ev := bus.NewEvents(nc, subjects, testLogger(t))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for probed := false; !probed; {
		ev.Health(&messages.HealthChanged{Node: "node-a", Model: "gpt-5", Reason: "probe"})
		select {
		case <-entries:
			probed = true
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("no probe arrived within the deadline")
		}
	}

	ev.Breaker(&messages.BreakerTransition{Node: "node-a", Model: "other", To: messages.BreakerState_open})
	ev.Breaker(&messages.BreakerTransition{Node: "node-a", Model: "gpt-5", To: messages.BreakerState_open})
	e := next(t, ctx, entries, done)
	for e.Kind == "health" { // probes still in flight
		e = next(t, ctx, entries, done)
	}
	assert.Equal(t, []string{"breaker", "node-a", "gpt-5"}, []string{e.Kind, e.Node, e.Model}, "want gpt-5's breaker event, and the other model's filtered out")
	assert.Zero(t, e.Seq)
	cancel()
	require.NoError(t, <-done, "follow ends without error when its context ends")
}
